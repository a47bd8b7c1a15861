"""`deploy --plan DIR`: apply exactly the plans saved by `plan --out DIR`, or refuse before
applying any.

Every stack is checked first (stackrun.deploy.saved_plan.check): a manifest of another
environment, a pending stack, a changed state, an altered plan file, a different zip, other
upstream values or another configuration refuse the whole plan, naming each stack and why.
Then stacks with changes are applied in order (`terraform apply <planfile>`); stacks planned
without changes are skipped. After each apply, the next stack's upstream values are compared
with those its plan was made with: when they differ the run stops there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy import fingerprint, saved_plan
from stackrun.deploy.backend import backend_ready
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.outputs import Outputs, upstream_inputs
from stackrun.deploy.pipeline import (
    FINISH_DEPLOY,
    Run,
    build_artifacts,
    execute,
    local_baseline,
    open_states,
    print_summary,
    select_all_stacks,
    take_guard,
)
from stackrun.deploy.progress import announce, new_report, record_failure, say
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.deploy.stacks import Rendering, StackRun
from stackrun.deploy.steps import PLAN_FILE, apply_plan, artifacts, init, report_of
from stackrun.errors import StackFailed, StackrunError
from stackrun.local.postgres import behind_rds
from stackrun.release import canary
from stackrun.terraform.state import outputs_of, read_state, serial_of
from stackrun.terraform.workspace import Workspace


@dataclass
class SavedRun(Run):
    folder: Path = Path()
    manifest: saved_plan.Manifest | None = None
    states: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # as read to check
    held: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> canary versions

    @property
    def loaded(self) -> saved_plan.Manifest:
        assert self.manifest is not None, "a stage needs the manifest before load_manifest"
        return self.manifest


def deploy_saved(workspace: Workspace, folder: Path, report: RunReport | None = None) -> RunReport:
    """Apply exactly the plans saved by `plan --out folder`, or refuse before applying any."""
    report = report if report is not None else new_report(workspace, "deploy")
    return execute(
        [
            load_manifest,
            refuse_unplanned,
            build_artifacts,
            open_states,
            take_guard("deploy"),
            check_saved_plans,
            local_baseline,
            apply_saved_plans,
            *FINISH_DEPLOY,
        ],
        SavedRun(workspace, report, folder=folder),
    )


def load_manifest(run: SavedRun) -> None:
    """The manifest of the saved plan, made for this environment and these stacks."""
    workspace = run.workspace
    run.report.saved_plan = str(run.folder)
    run.manifest = saved_plan.Manifest.load(run.folder)
    select_all_stacks(run)
    run.manifest.check_environment(workspace.environment, [stack.name for stack in run.stacks])
    say(workspace, f"checking the {run.manifest.describe()} before applying anything")


def refuse_unplanned(run: SavedRun) -> None:
    """A saved plan cannot create an environment, nor a stack planned as pending."""
    manifest = run.loaded
    pending = [
        entry["name"] for entry in manifest.stacks if entry.get("status") == StackStatus.PENDING
    ]
    if not backend_ready(run.workspace) or pending:
        raise StackrunError(
            f"refusing to apply the saved plan in {run.folder}: "
            + (", ".join(pending) or run.workspace.environment.name)
            + " were not planned (pending: their upstream stacks, or the state backend, did "
            "not exist when the plan was made). A saved plan cannot create an environment: "
            "deploy it without --plan first, then plan again. Nothing was applied"
        )


def check_saved_plans(run: SavedRun) -> None:
    """Every stack checked against the manifest before anything is applied."""
    outputs: dict[str, Outputs] = {}
    problems = []
    for stack in run.stacks:
        reason = _check_stack(run, stack, outputs)
        if reason:
            problems.append(f"  {stack.name}: {reason}")
    if problems:
        raise StackrunError(
            f"refusing to apply the saved plan in {run.folder}; nothing was applied:\n"
            + "\n".join(problems)
            + f"\nmake a new plan: plan {run.workspace.environment.name} --out DIR"
        )


def _check_stack(run: SavedRun, stack: Stack, outputs: dict[str, Outputs]) -> str | None:
    """Why the stack's saved plan may not be applied now (None when it may)."""
    workspace = run.workspace
    entry = run.loaded.stack(stack.name) or {}
    state = run.states[stack.name] = read_state(workspace, stack, run.s3)
    variables, sensitive = upstream_inputs(stack, outputs)
    run.held[stack.name] = canary.held_versions(stack, outputs_of(state, stack.module))
    workspace.render(stack, sensitive, run.held[stack.name])
    init(workspace, stack)
    current = saved_plan.Current(
        state,
        variables,
        artifacts(workspace, stack),
        fingerprint.compute(workspace, stack, variables, serial_of(state)),
    )
    outputs[stack.name] = outputs_of(state, stack.module)
    return saved_plan.check(run.loaded, entry, current)


def apply_saved_plans(run: SavedRun) -> None:
    """Applied in order, each against exactly the values it was planned with; then, as in any
    deploy, outputs, databases, invocations, canaries, fingerprints."""
    stacks = run.stacks
    stack_run = StackRun(run.workspace, run.outputs, False, run.s3, len(stacks), run.held_guard)
    for index, stack in enumerate(stacks, start=1):
        run.held_guard.check(f"deploying {stack.name}")
        try:
            with terminal.current().running(stack.name, "starting"):
                run.report.stacks.append(_apply_saved(run, stack_run, stack, index))
        except (StackFailed, Interrupted) as error:
            record_failure(run.report, stack.name, stacks[index:], error)
            print_summary(run)
            raise


def _apply_saved(run: SavedRun, stack_run: StackRun, stack: Stack, index: int) -> StackReport:
    workspace = run.workspace
    entry = run.loaded.stack(stack.name) or {}
    started = time.monotonic()
    variables, sensitive = upstream_inputs(stack, stack_run.outputs)
    if entry.get("inputs_sha256") != saved_plan.inputs_hash(variables):
        raise _needs_new_plan(run, stack)
    unchanged = entry.get("status") == StackStatus.UNCHANGED
    if unchanged:
        stack_report = StackReport(
            stack.name, StackStatus.UNCHANGED, note="no changes in the saved plan"
        )
    else:
        announce(workspace, index, len(run.stacks), stack, "applying the saved plan of")
        tf = workspace.terraform(stack.name, fresh_log=True)
        plan_file = tf.workdir / PLAN_FILE
        plan_file.write_bytes(run.loaded.plan_path(entry).read_bytes())
        fingerprint.forget(workspace, stack, run.s3)
        with behind_rds.cluster_made_meanwhile(workspace, stack, new=not run.states[stack.name]):
            result = apply_plan(workspace, stack, tf, {}, "apply <saved plan>")
        plan_file.unlink(missing_ok=True)
        stack_report = report_of(stack.name, StackStatus.APPLIED, result)
    unapplied = run.states[stack.name] if unchanged else None
    rendering = Rendering(variables, sensitive, run.held[stack.name])
    return stack_run.finish(stack, stack_report, rendering, started, unapplied)


def _needs_new_plan(run: SavedRun, stack: Stack) -> StackFailed:
    """The upstream stacks applied in this run changed the stack's inputs since its plan."""
    applied = {r.name for r in run.report.stacks if r.status == StackStatus.APPLIED}
    upstream = sorted(set(stack.upstream) & applied)
    environment = run.workspace.environment
    return StackFailed(
        stack.name,
        "its saved plan",
        f"    {stack.name} needs a new plan: the outputs of "
        f"{', '.join(upstream) or 'its upstream stacks'} applied in this run "
        "differ from those its plan was made with; nothing of "
        f"{stack.name} was applied. Plan again: plan {environment.name} "
        "--out DIR",
        None,
        terraform=False,
    )
