"""`destroy`: every stack destroyed in reverse order; the state backend is kept.

Refused before anything is destroyed while a stack's resources have deletion protection on:
AWS would refuse the delete half-way through.
"""

from __future__ import annotations

import time

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy import fingerprint
from stackrun.deploy.backend import backend_ready
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import collect_outputs, missing_upstream
from stackrun.deploy.pipeline import (
    Run,
    build_artifacts,
    execute,
    leave_guard,
    print_summary,
    take_guard,
)
from stackrun.deploy.progress import announce, new_report, record_failure, say
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.steps import PLAN_FILE, apply_plan, plan_stack
from stackrun.errors import StackFailed, StackrunError
from stackrun.terraform.workspace import Workspace


def destroy(workspace: Workspace, report: RunReport | None = None) -> RunReport:
    """Destroy every stack in reverse order. The state backend is kept."""
    report = report if report is not None else new_report(workspace, "destroy")
    return execute(
        [
            build_artifacts,
            stop_without_backend,
            refuse_protected_destroy,
            take_guard("destroy"),
            read_outputs,
            destroy_stacks,
            leave_guard,
            print_summary,
        ],
        Run(workspace, report),
    )


def stop_without_backend(run: Run) -> None:
    """Without a state backend there is nothing to destroy: the run ends here."""
    if not backend_ready(run.workspace):
        say(
            run.workspace,
            f"no state backend for {run.workspace.environment.name}: nothing to destroy",
        )
        run.finished = True


def deletion_protected_stacks(workspace: Workspace) -> dict[str, list[str]]:
    """Stack name -> its resources whose deletion protection is on (read from state)."""
    from stackrun.terraform.state import deletion_protected, read_state

    environment = workspace.environment
    s3 = workspace.target.client(environment, "s3")
    return {
        stack.name: found
        for stack in environment.stacks
        if (found := deletion_protected(read_state(workspace, stack, s3)))
    }


def refuse_protected_destroy(run: Run) -> None:
    """Stop before anything is destroyed when AWS would refuse a delete half-way through."""
    environment = run.workspace.environment
    blocked = deletion_protected_stacks(run.workspace)
    if not blocked:
        return
    lines = [
        f"refusing to destroy {environment.name}: deletion protection is on for",
        *(f"  {stack}: {', '.join(found)}" for stack, found in blocked.items()),
        "nothing was destroyed. To tear the environment down, turn the protection off first:",
        *(
            f"  set deletion_protection = false in live/{environment.name}/{stack}/stack.toml "
            f"and deploy (or deploy with --set {stack}.deletion_protection=false), then destroy"
            for stack in blocked
        ),
        "  or: destroy --lift-deletion-protection (does both, after the same confirmation)",
    ]
    raise StackrunError("\n".join(lines))


def read_outputs(run: Run) -> None:
    """Every stack's outputs (their dependants' inputs to plan the destroy); stacks reversed."""
    run.outputs = collect_outputs(run.workspace, announce=False)
    run.stacks = list(reversed(run.workspace.environment.stacks))


def destroy_stacks(run: Run) -> None:
    """Each stack's destroy planned, then applied when it has something to destroy."""
    for index, stack in enumerate(run.stacks, start=1):
        run.held_guard.check(f"destroying {stack.name}")
        announce(run.workspace, index, len(run.stacks), stack, "destroying")
        started = time.monotonic()
        try:
            with terminal.current().running(stack.name, "starting"):
                stack_report = _destroy_stack(run, stack)
        except (StackFailed, Interrupted) as error:
            record_failure(run.report, stack.name, run.stacks[index:], error)
            print_summary(run)
            raise
        stack_report.seconds = time.monotonic() - started
        run.report.stacks.append(stack_report)
        say(run.workspace, f"<== {stack_report.line()}")


def _destroy_stack(run: Run, stack: Stack) -> StackReport:
    workspace, outputs = run.workspace, run.outputs
    if missing_upstream(stack, outputs) and not outputs.get(stack.name):
        return StackReport(stack.name, StackStatus.UNCHANGED, note="nothing deployed")
    tf, variables, stack_report, code = plan_stack(workspace, stack, outputs, destroy=True)
    if code == 2:
        fingerprint.forget(workspace, stack, workspace.target.client(workspace.environment, "s3"))
        apply_plan(workspace, stack, tf, variables, "apply (destroy)")
        stack_report.status = StackStatus.DESTROYED
    (tf.workdir / PLAN_FILE).unlink(missing_ok=True)
    return stack_report
