"""`destroy`: every stack destroyed in reverse order; the state backend is kept.

Refused before anything is destroyed while a stack's resources have deletion protection on:
AWS would refuse the delete half-way through.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy import fingerprint, selection
from stackrun.deploy.backend import backend_ready
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import State, missing_upstream, outputs_from, read_states
from stackrun.deploy.pipeline import (
    Run,
    build_artifacts,
    execute,
    leave_guard,
    print_summary,
    read_unselected_outputs,
    take_guard,
)
from stackrun.deploy.progress import announce, new_report, record_failure, say
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.selection import Selection, in_order
from stackrun.deploy.steps import PLAN_FILE, apply_plan, plan_stack
from stackrun.errors import StackFailed, StackrunError
from stackrun.terraform.workspace import Workspace


@dataclass
class DestroyRun(Run):
    states: dict[str, State] = field(default_factory=dict)  # every stack's, read once


def destroy(
    workspace: Workspace,
    report: RunReport | None = None,
    only: Selection | None = None,
    states: Mapping[str, State] | None = None,
) -> RunReport:
    """Destroy every stack (`only`: those stacks) in reverse order. The state backend is kept.
    `states`: the stacks' states when the caller read them already (each is read once)."""
    report = report if report is not None else new_report(workspace, "destroy")
    return execute(
        [
            build_artifacts,
            stop_without_backend,
            read_all_states,
            refuse_consumed_destroy,
            refuse_protected_destroy,
            take_guard("destroy"),
            read_outputs,
            destroy_stacks,
            leave_guard,
            print_summary,
        ],
        DestroyRun(workspace, report, only=only, states=dict(states or {})),
    )


def stop_without_backend(run: Run) -> None:
    """Without a state backend there is nothing to destroy: the run ends here."""
    if not backend_ready(run.workspace):
        say(
            run.workspace,
            f"no state backend for {run.workspace.environment.name}: nothing to destroy",
        )
        run.finished = True


def read_all_states(run: DestroyRun) -> None:
    """Every stack's state, one GET each (those the caller read already are kept)."""
    unread = [stack for stack in run.workspace.environment.stacks if stack.name not in run.states]
    run.states.update(read_states(run.workspace, unread))


def deletion_protected_stacks(
    workspace: Workspace,
    states: Mapping[str, State] | None = None,
    only: Selection | None = None,
) -> dict[str, list[str]]:
    """Stack name -> its resources whose deletion protection is on (read from state, unless
    `states` holds them already); `only`: among those stacks."""
    from stackrun.terraform.state import deletion_protected

    stacks = in_order(workspace.environment.stacks, only)
    if states is None:
        states = read_states(workspace, stacks)
    return {
        stack.name: found
        for stack in stacks
        if (found := deletion_protected(states.get(stack.name)))
    }


def refuse_consumed_destroy(run: DestroyRun) -> None:
    """With a selection: refused while a deployed stack outside it consumes its outputs."""
    selection.refuse_consumed_destroy(run.workspace.environment, run.only, run.states)


def refuse_protected_destroy(run: DestroyRun) -> None:
    """Stop before anything is destroyed when AWS would refuse a delete half-way through."""
    environment = run.workspace.environment
    blocked = deletion_protected_stacks(run.workspace, run.states, run.only)
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


def read_outputs(run: DestroyRun) -> None:
    """The outputs in the states read (their dependants' inputs to plan the destroy); the
    stacks to destroy, reversed."""
    stacks = in_order(run.workspace.environment.stacks, run.only)
    run.outputs = outputs_from(run.states, stacks)
    read_unselected_outputs(run, run.states)
    run.stacks = list(reversed(stacks))


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
