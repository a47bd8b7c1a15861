"""`deploy`: plan and apply every stack whose fingerprint changed, in order or side by side."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stackrun.aws.bootstrap import bootstrap_stack
from stackrun.deploy.init_ahead import InitAhead
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import State, missing_upstream
from stackrun.deploy.parallel import deploy_side_by_side
from stackrun.deploy.pipeline import (
    FINISH_DEPLOY,
    Run,
    backend_and_guard,
    build_done,
    execute,
    local_baseline,
    open_states,
    print_summary,
    read_unselected_outputs,
    start_build,
)
from stackrun.deploy.progress import new_report, record_failure
from stackrun.deploy.report import RunReport
from stackrun.deploy.selection import Selection, in_order
from stackrun.deploy.stacks import StackRun, read_before
from stackrun.errors import StackFailed, StackrunError
from stackrun.terraform.workspace import Workspace


@dataclass
class DeployRun(Run):
    force: bool = False  # plan every stack, also those unchanged since their last apply
    parallelism: int = 1
    states: Mapping[str, State] | None = None  # the unselected stacks' states, when read already


def deploy(
    workspace: Workspace,
    force: bool = False,
    parallelism: int = 1,
    report: RunReport | None = None,
    only: Selection | None = None,
    states: Mapping[str, State] | None = None,
) -> RunReport:
    """Ensure the backend, then plan and apply every stack whose fingerprint changed.

    Stacks run in directory-number order; with `parallelism` > 1, stacks with no dependency
    path between them run side by side (at most that many at once). `force` plans every stack.
    `only`: deploy just these stacks; the others are left alone, their outputs read from
    their state (`states`, when the caller read them already).
    """
    report = report if report is not None else new_report(workspace, "deploy")
    run = DeployRun(
        workspace, report, force=force, parallelism=parallelism, only=only, states=states
    )
    return execute(
        [
            start_build,
            backend_and_guard("deploy"),
            build_done,
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
    (unless it was created a moment ago). With `only`, just those stacks (not the backend's);
    the outputs of the others are read from state, and each stack of the selection must find
    the outputs it takes from them there."""
    workspace = run.workspace
    run.stacks = in_order(workspace.environment.stacks, run.only)
    if run.only is None and not run.backend_created:
        run.stacks.insert(0, bootstrap_stack(workspace))
    read_unselected_outputs(run, run.states)
    if run.only is not None:
        _refuse_unapplied_upstream(run)


def _refuse_unapplied_upstream(run: DeployRun) -> None:
    """Before any stack runs: a selected stack that takes an output of a stack not selected
    and never applied cannot be deployed; name both and how to include it."""
    selected = {stack.name for stack in run.stacks}
    lines = [
        f"{stack.name} takes {', '.join(missing)} from stacks not selected and not deployed; "
        f"select them too (--stack +{stack.name})"
        for stack in run.stacks
        if (
            missing := [
                ref
                for ref in missing_upstream(stack, run.outputs)
                if ref.split(".", 1)[0] not in selected
            ]
        )
    ]
    if lines:
        raise StackrunError("\n".join(lines))


def deploy_stacks(run: DeployRun) -> None:
    """Each stack applied, or skipped while unchanged; the first failure stops the run."""
    stacks = run.stacks
    before = read_before(run.workspace, stacks, run.s3)
    ahead = InitAhead(run.workspace, stacks, {name: read.state for name, read in before.items()})
    stack_run = StackRun(
        run.workspace, run.outputs, run.force, run.s3, len(stacks), run.held_guard, ahead, before
    )
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
    finally:
        ahead.stop()
