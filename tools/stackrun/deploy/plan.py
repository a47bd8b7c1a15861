"""`plan`: every stack planned against its current state; nothing applied, no lock taken.

A stack whose upstream was never applied is pending. With `--out DIR`, each stack's plan file
is kept in that folder with a manifest of what it was made from (stackrun.deploy.saved_plan),
for `deploy --plan` to apply exactly (stackrun.deploy.saved).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy import fingerprint, saved_plan
from stackrun.deploy.backend import backend_ready
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import missing_upstream
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
    record_failure,
    say,
    with_note,
)
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.selection import Selection, in_order
from stackrun.deploy.steps import PLAN_FILE, plan_stack
from stackrun.errors import StackFailed
from stackrun.release import canary
from stackrun.terraform import terraform_binary, terraform_version
from stackrun.terraform.state import outputs_of, read_state, serial_of
from stackrun.terraform.workspace import Workspace

NO_BACKEND = "state backend not created yet"


@dataclass
class PlanRun(Run):
    out: Path | None = None  # plan --out DIR
    manifest: saved_plan.Manifest | None = None  # the saved plan's, with `out`


def plan(
    workspace: Workspace,
    report: RunReport | None = None,
    out: Path | None = None,
    only: Selection | None = None,
) -> RunReport:
    """Plan every stack (refreshing state); a stack whose upstream was never applied is pending.

    With `out`, each stack's plan file is kept in that folder with a manifest of what it was
    made from, for `deploy --plan` to apply exactly. `only`: plan just these stacks, the
    outputs of the others read from their state.
    """
    report = report if report is not None else new_report(workspace, "plan")
    return execute(
        [
            build_artifacts,
            start_manifest,
            pending_without_backend,
            read_unselected_outputs,
            plan_stacks,
            save_manifest,
            print_summary,
        ],
        PlanRun(workspace, report, out=out, only=only),
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


def plan_stacks(run: PlanRun) -> None:
    """Each stack planned in order, the outputs of the ones before it as its inputs."""
    for index, stack in enumerate(run.stacks):
        missing = missing_upstream(stack, run.outputs)
        if missing:
            note = f"upstream not applied yet: {', '.join(missing)}"
            run.report.stacks.append(StackReport(stack.name, StackStatus.PENDING, note=note))
            if run.manifest is not None:
                run.manifest.add_pending(stack.name, note)
            continue
        with terminal.current().running(stack.name, "starting"):
            run.report.stacks.append(_plan_one(run, stack, index))


def _plan_one(run: PlanRun, stack: Stack, index: int) -> StackReport:
    """The stack's plan (kept in the manifest with `out`); its outputs read for the next."""
    workspace = run.workspace
    started = time.monotonic()
    first = 0 if run.only is None else 1  # the backend's stack is number 0
    announce(workspace, index + first, len(run.stacks) - 1 + first, stack, "planning")
    try:
        state = read_state(workspace, stack)
        held = canary.held_versions(stack, outputs_of(state, stack.module))
        tf, variables, stack_report, code = plan_stack(
            workspace, stack, run.outputs, lock=False, held=held
        )
        with_note(stack_report, pinned_note(workspace, stack))
    except (StackFailed, Interrupted) as error:
        record_failure(run.report, stack.name, run.stacks[index + 1 :], error)
        print_summary(run)
        raise
    stack_report.fingerprint = fingerprint.compute(workspace, stack, variables, serial_of(state))
    plan_file = tf.workdir / PLAN_FILE
    if run.manifest is not None:
        run.manifest.add(
            stack.name,
            stack_report.status,
            state,
            variables,
            stack_report.artifacts,
            stack_report.fingerprint,
            plan_file if code == 2 else None,
            stack_report.document(),
        )
    plan_file.unlink(missing_ok=True)
    run.outputs[stack.name] = outputs_of(state, stack.module)
    stack_report.seconds = time.monotonic() - started
    return stack_report


def save_manifest(run: PlanRun) -> None:
    if run.manifest is not None:
        run.manifest.save()
        say(run.workspace, f"\nsaved plan: {run.out} ({run.manifest.describe()})")
