"""`plan`: every stack planned against its current state; nothing applied, no lock taken.

A stack whose upstream was never applied is pending. With `--out DIR`, each stack's plan file
is kept in that folder with a manifest of what it was made from (stackrun.deploy.saved_plan),
for `deploy --plan` to apply exactly (stackrun.deploy.saved).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackrun import terminal
from stackrun.config import Stack
from stackrun.config.graph import consuming_downstream
from stackrun.deploy import fingerprint, saved_plan
from stackrun.deploy.backend import backend_ready
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import State, missing_upstream, outputs_from, read_states
from stackrun.deploy.parallel import side_by_side
from stackrun.deploy.pipeline import (
    Run,
    build_artifacts,
    execute,
    print_summary,
    read_unselected_outputs,
    select_all_stacks,
)
from stackrun.deploy.progress import (
    announce,
    new_report,
    pinned_note,
    say,
    with_note,
)
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.selection import Selection, in_order
from stackrun.deploy.steps import PLAN_FILE, plan_stack
from stackrun.errors import StackFailed
from stackrun.release import canary
from stackrun.terraform import terraform_binary, terraform_version
from stackrun.terraform.state import outputs_of, serial_of
from stackrun.terraform.workspace import Workspace

NO_BACKEND = "state backend not created yet"


@dataclass
class PlanRun(Run):
    out: Path | None = None  # plan --out DIR
    manifest: saved_plan.Manifest | None = None  # the saved plan's, with `out`
    parallelism: int = 1  # plan --parallelism N: up to N stacks planned side by side
    states: dict[str, State] = field(default_factory=dict)  # every stack's, read before planning


def plan(
    workspace: Workspace,
    report: RunReport | None = None,
    out: Path | None = None,
    only: Selection | None = None,
    parallelism: int = 1,
) -> RunReport:
    """Plan every stack (refreshing state); a stack whose upstream was never applied is pending.

    With `out`, each stack's plan file is kept in that folder with a manifest of what it was
    made from, for `deploy --plan` to apply exactly. `only`: plan just these stacks, the
    outputs of the others read from their state. Up to `parallelism` stacks are planned side
    by side: each takes its upstream values from its upstream's state, read before any plan.
    """
    report = report if report is not None else new_report(workspace, "plan")
    return execute(
        [
            build_artifacts,
            start_manifest,
            pending_without_backend,
            read_all_states,
            plan_stacks,
            save_manifest,
            print_summary,
        ],
        PlanRun(workspace, report, out=out, only=only, parallelism=parallelism),
    )


def start_manifest(run: PlanRun) -> None:
    """All stacks, the backend's first (with `only`: those stacks); with `out`, a new manifest
    of the saved plan."""
    if run.only is None:
        select_all_stacks(run)
    else:
        run.stacks = in_order(run.workspace.environment.stacks, run.only)
    if run.out is not None:
        run.report.saved_plan = str(run.out)
        run.manifest = saved_plan.Manifest.new(
            run.out, run.workspace.environment, terraform_version(terraform_binary())
        )


def pending_without_backend(run: PlanRun) -> None:
    """Without a state backend every stack is pending: the run ends here."""
    if backend_ready(run.workspace):
        return
    run.report.stacks = [
        StackReport(stack.name, StackStatus.PENDING, note=NO_BACKEND) for stack in run.stacks
    ]
    if run.manifest is not None:
        for stack in run.stacks:
            run.manifest.add_pending(stack.name, NO_BACKEND)
        run.manifest.save()
    print_summary(run)
    run.finished = True


def read_all_states(run: PlanRun) -> None:
    """Every stack's state, once, before any plan starts: a plan takes its upstream values from
    its upstream's state, not from its plan, so all stacks can be planned side by side."""
    environment = run.workspace.environment
    selected = {stack.name for stack in run.stacks}
    others = [stack for stack in environment.stacks if stack.name not in selected]
    run.states = read_states(run.workspace, [*run.stacks, *others])
    run.outputs.update(outputs_from(run.states, run.stacks))
    read_unselected_outputs(run, run.states)


def plan_stacks(run: PlanRun) -> None:
    """Every stack planned, up to `parallelism` side by side, none waiting for another (each
    takes its upstream values from the states read before, the backend's stack included); the
    report's and the manifest's entries in directory order, whichever finished first."""
    run.workspace.prefix_output = run.parallelism > 1
    planned: dict[str, PlannedStack] = {}
    try:
        side_by_side(
            run.stacks,
            {stack.name: set() for stack in run.stacks},
            run.parallelism,
            lambda stack, index: _plan_or_pending(run, stack, index, planned),
            run.report,
            start_order=longest_first(run.stacks, run.states),
        )
    except (StackFailed, Interrupted):
        note_upstream_pending(run)
        print_summary(run)
        raise
    finally:
        _keep_plans(run, planned)
    note_upstream_pending(run)


def longest_first(stacks: list[Stack], states: Mapping[str, State]) -> list[Stack]:
    """The stacks by how many resource instances their state holds, most first (directory
    order among equals): a plan's time grows with what it refreshes, and starting the longest
    plans first leaves the short ones to fill the cores at the end, instead of the longest
    running alone after every other one finished."""

    def instances(stack: Stack) -> int:
        resources = (states.get(stack.name) or {}).get("resources") or []
        return sum(len(resource.get("instances") or []) for resource in resources)

    return sorted(stacks, key=lambda stack: -instances(stack))


def _plan_or_pending(
    run: PlanRun, stack: Stack, index: int, planned: dict[str, PlannedStack]
) -> StackReport:
    """The stack's plan (kept in `planned`); pending when an upstream was never applied."""
    missing = missing_upstream(stack, run.outputs)
    if missing:
        note = f"upstream not applied yet: {', '.join(missing)}"
        return StackReport(stack.name, StackStatus.PENDING, note=note)
    with terminal.current().running(stack.name, "starting"):
        planned[stack.name] = _plan_one(run, stack, index)
    return planned[stack.name].report


@dataclass
class PlannedStack:
    """One stack's plan, until the manifest (with `out`) keeps it."""

    report: StackReport
    state: State
    variables: dict[str, str]
    fingerprint: str
    plan_file: Path | None  # None: the plan has no changes


def _plan_one(run: PlanRun, stack: Stack, index: int) -> PlannedStack:
    """The stack's plan, from its state as read before any plan started."""
    workspace = run.workspace
    started = time.monotonic()
    first = 0 if run.only is None else 1  # the backend's stack is number 0
    announce(workspace, index - 1 + first, len(run.stacks) - 1 + first, stack, "planning")
    state = run.states[stack.name]
    held = canary.held_versions(stack, outputs_of(state, stack.module))
    tf, variables, stack_report, code = plan_stack(
        workspace, stack, run.outputs, lock=False, held=held
    )
    with_note(stack_report, pinned_note(workspace, stack))
    current = fingerprint.compute(workspace, stack, variables, serial_of(state))
    stack_report.fingerprint = current
    stack_report.seconds = time.monotonic() - started
    plan_file = tf.workdir / PLAN_FILE
    if code != 2:
        plan_file.unlink(missing_ok=True)
    return PlannedStack(stack_report, state, variables, current, plan_file if code == 2 else None)


def _keep_plans(run: PlanRun, planned: dict[str, PlannedStack]) -> None:
    """With `out`, each stack's entry (and plan file) in the manifest, in directory order;
    the plan files in the stacks' folders removed."""
    for stack_report in run.report.stacks:
        plan = planned.get(stack_report.name)
        if run.manifest is not None and stack_report.status == StackStatus.PENDING:
            run.manifest.add_pending(stack_report.name, stack_report.note)
        elif run.manifest is not None and plan is not None:
            run.manifest.add(
                stack_report.name,
                stack_report.status,
                plan.state,
                plan.variables,
                stack_report.artifacts,
                plan.fingerprint,
                plan.plan_file,
                stack_report.document(),
            )
        if plan is not None and plan.plan_file is not None:
            plan.plan_file.unlink(missing_ok=True)


def note_upstream_pending(run: PlanRun) -> None:
    """A stack whose plan changes its outputs: every stack of the run that consumes them
    (directly or through other stacks of the run) was planned with the current ones, not those
    a deploy gives it; its report says so."""
    by_name = {stack_report.name: stack_report for stack_report in run.report.stacks}
    for upstream in run.report.stacks:
        if upstream.status != StackStatus.CHANGES or not upstream.outputs_changed:
            continue
        environment = run.workspace.environment
        for name in sorted(consuming_downstream(environment, upstream.name, set(by_name))):
            if by_name[name].status in (StackStatus.CHANGES, StackStatus.UNCHANGED):
                with_note(
                    by_name[name],
                    f"upstream {upstream.name} has pending changes: planned with its current "
                    "outputs",
                )


def save_manifest(run: PlanRun) -> None:
    if run.manifest is not None:
        run.manifest.save()
        say(run.workspace, f"\nsaved plan: {run.out} ({run.manifest.describe()})")
