"""`deploy`: plan and apply every stack whose fingerprint changed, in order or side by side."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from stackrun.aws.bootstrap import bootstrap_stack
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.parallel import deploy_side_by_side
from stackrun.deploy.pipeline import (
    FINISH_DEPLOY,
    Run,
    backend_and_guard,
    build_artifacts,
    execute,
    local_baseline,
    open_states,
    print_summary,
)
from stackrun.deploy.progress import new_report, record_failure
from stackrun.deploy.report import RunReport
from stackrun.deploy.stacks import StackRun
from stackrun.errors import StackFailed
from stackrun.terraform.workspace import Workspace


@dataclass
class DeployRun(Run):
    force: bool = False  # plan every stack, also those unchanged since their last apply
    parallelism: int = 1
    only: Collection[str] | None = None  # deploy just these stacks


def deploy(
    workspace: Workspace,
    force: bool = False,
    parallelism: int = 1,
    report: RunReport | None = None,
    only: Collection[str] | None = None,
) -> RunReport:
    """Ensure the backend, then plan and apply every stack whose fingerprint changed.

    Stacks run in directory-number order; with `parallelism` > 1, stacks with no dependency
    path between them run side by side (at most that many at once). `force` plans every stack.
    `only`: deploy just these stacks; the others are left alone, their outputs read from state.
    """
    report = report if report is not None else new_report(workspace, "deploy")
    run = DeployRun(workspace, report, force=force, parallelism=parallelism, only=only)
    return execute(
        [
            build_artifacts,
            backend_and_guard("deploy"),
            local_baseline,
            open_states,
            select_stacks,
            deploy_stacks,
            *FINISH_DEPLOY,
        ],
        run,
    )


def select_stacks(run: DeployRun) -> None:
    """The environment's stacks after the backend's own: the backend is a stack too, and a
    change to modules/tfstate-bootstrap or to the backend settings is applied like any other
    (unless it was created a moment ago). With `only`, just those stacks; the outputs of the
    others are read from state."""
    from stackrun.terraform.state import outputs_of, read_state

    workspace = run.workspace
    environment = workspace.environment
    stacks = list(environment.stacks)
    if not run.backend_created:
        stacks.insert(0, bootstrap_stack(workspace))
    if run.only is not None:
        for stack in stacks:
            if stack.name not in run.only:
                state = read_state(workspace, stack, run.s3)
                run.outputs[stack.name] = outputs_of(state, stack.module)
        stacks = [stack for stack in stacks if stack.name in run.only]
    run.stacks = stacks


def deploy_stacks(run: DeployRun) -> None:
    """Each stack applied, or skipped while unchanged; the first failure stops the run."""
    stacks = run.stacks
    stack_run = StackRun(run.workspace, run.outputs, run.force, run.s3, len(stacks), run.held_guard)
    try:
        if run.parallelism > 1:
            deploy_side_by_side(stack_run, stacks, run.parallelism, run.report)
            return
        for index, stack in enumerate(stacks, start=1):
            try:
                run.report.stacks.append(stack_run.deploy(stack, index))
            except (StackFailed, Interrupted) as error:
                record_failure(run.report, stack.name, stacks[index:], error)
                raise
    except (StackFailed, Interrupted):
        print_summary(run)
        raise
