"""One stack of a deploy: applied (or skipped while unchanged), then finished.

Finishing a stack: its outputs for later stacks, its database and invocations, its canaries,
then its fingerprint recorded in the backend (last: a stack whose later steps failed is planned
again next time) and its report line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackrun import terminal
from stackrun.aws.at_once import at_once
from stackrun.config import Stack
from stackrun.deploy import fingerprint, invoke
from stackrun.deploy.guard import HeldGuard
from stackrun.deploy.init_ahead import InitAhead
from stackrun.deploy.outputs import Outputs, missing_upstream, upstream_inputs
from stackrun.deploy.progress import announce, pinned_note, say, with_note
from stackrun.deploy.report import StackReport, StackStatus
from stackrun.deploy.steps import apply_stack, artifacts
from stackrun.errors import StackFailed
from stackrun.local.postgres import behind_rds
from stackrun.release import canary
from stackrun.terraform.state import outputs_of, read_state, serial_of
from stackrun.terraform.workspace import Workspace


@dataclass(frozen=True)
class Rendering:
    """What a stack is rendered and applied with: its upstream inputs, which of them are
    sensitive, and the versions its canary aliases are held on."""

    variables: dict[str, str]
    sensitive: frozenset[str]
    held: dict[str, str]


@dataclass(frozen=True)
class ReadBefore:
    """A stack's state and applied record, read before the run's first stack starts."""

    state: dict[str, Any] | None
    record: dict[str, Any]


def read_before(workspace: Workspace, stacks: Sequence[Stack], s3: Any) -> dict[str, ReadBefore]:
    """Every stack's state and applied record, all at once: one round trip instead of two per
    stack on the run's path. While the run holds the environment guard, only the run writes
    either, and each only after its stack's turn has come (and read them)."""

    def read(stack: Stack) -> ReadBefore:
        return ReadBefore(
            read_state(workspace, stack, s3), fingerprint.read_record(workspace, stack, s3)
        )

    return dict(zip((s.name for s in stacks), at_once(read, stacks), strict=True))


@dataclass
class StackRun:
    """Deploys single stacks of one run, sharing the outputs read so far."""

    workspace: Workspace
    outputs: dict[str, Outputs]
    force: bool
    s3: Any
    total: int
    guard: HeldGuard
    ahead: InitAhead | None = None  # inits of never-applied stacks, done in the background
    # read_before's: each taken once, at the stack's turn
    before: dict[str, ReadBefore] = field(default_factory=dict)

    def deploy(self, stack: Stack, index: int) -> StackReport:
        """Apply the stack, or skip it when its fingerprint is the one recorded; then finish.
        On a terminal, the stack is on the status block meanwhile."""
        with terminal.current().running(stack.name, "starting"):
            return self._deploy(stack, index)

    def _deploy(self, stack: Stack, index: int) -> StackReport:
        workspace = self.workspace
        self.guard.check(f"deploying {stack.name}")
        announce(workspace, index, self.total, stack, "deploying")
        started = time.monotonic()
        missing = missing_upstream(stack, self.outputs)
        if missing:
            raise StackFailed(
                stack.name, "plan", f"    upstream outputs missing: {', '.join(missing)}", None
            )
        variables, sensitive = upstream_inputs(stack, self.outputs)
        if self.ahead is not None:
            self.ahead.claim(stack)
        before = self.before.pop(stack.name, None)
        state = before.state if before else read_state(workspace, stack, self.s3)
        # canary functions: the apply publishes a new version, the alias stays (canary.py)
        held = canary.held_versions(stack, outputs_of(state, stack.module))
        workspace.render(stack, sensitive, held)
        current = fingerprint.compute(workspace, stack, variables, serial_of(state))
        record = before.record if before else None
        if not self.force and fingerprint.applied(
            workspace, stack, state, current, self.s3, record
        ):
            stack_report = StackReport(
                stack.name, StackStatus.SKIPPED, note="unchanged since its last apply"
            )
        else:
            # One `terraform apply` plans and applies in one process (no review happens between
            # the two in a deploy; `plan` is the command for reviewing). Saves a terraform run,
            # a provider start and a state load per stack.
            fingerprint.forget(workspace, stack, self.s3)
            with behind_rds.cluster_made_meanwhile(workspace, stack, new=state is None):
                stack_report = apply_stack(workspace, stack, variables)
        unapplied = state if stack_report.status == StackStatus.SKIPPED else None
        rendering = Rendering(variables, sensitive, held)
        return self.finish(stack, stack_report, rendering, started, unapplied)

    def finish(
        self,
        stack: Stack,
        stack_report: StackReport,
        rendering: Rendering,
        started: float,
        unapplied_state: dict[str, Any] | None,
    ) -> StackReport:
        """After a stack was applied (or skipped): outputs, database and invocations, canaries,
        fingerprint, report line. `unapplied_state`: the state as read before, when terraform
        has not run since; else None and the state is read again."""
        workspace = self.workspace
        pinned = pinned_note(workspace, stack)
        state = unapplied_state or read_state(workspace, stack, self.s3)
        stack_outputs = self._take_outputs(stack, state)
        # a saved plan's "unchanged" stack counts as applied
        applied = stack_report.status != StackStatus.SKIPPED
        # also for a skipped stack: it says which version a canary rolled back and left alone
        watched = canary.candidates(workspace, stack, stack_outputs, rendering.held)
        if not applied:
            watched = []
        if watched:
            state = self._release(stack, stack_report, rendering, watched)
            self.outputs[stack.name] = outputs_of(state, stack.module)
        current = fingerprint.compute(workspace, stack, rendering.variables, serial_of(state))
        if applied:
            # Recorded last: a stack whose later steps failed is planned again next time.
            fingerprint.record(workspace, stack, state, current, self.s3)
        stack_report.fingerprint = current
        stack_report.artifacts = artifacts(workspace, stack)
        stack_report.seconds = time.monotonic() - started
        with_note(stack_report, pinned)
        say(workspace, f"<== {stack_report.line()}")
        _raise_rolled_back(stack, watched)
        return stack_report

    def _take_outputs(self, stack: Stack, state: dict[str, Any] | None) -> Outputs:
        """The stack's outputs, kept for later stacks; then its database and invocations."""
        stack_outputs = outputs_of(state, stack.module)
        self.outputs[stack.name] = stack_outputs
        if stack.database:
            behind_rds.after_apply(self.workspace, stack, stack_outputs)
        if stack.invoke_on_deploy:
            # on every deploy, also when the stack was unchanged: a failed invoke (a migration
            # that failed) is retried by the next deploy, and a stack that waits for this one
            # (`after`) starts only when it succeeded
            invoke.on_deploy(self.workspace, stack, stack_outputs)
        return stack_outputs

    def _release(
        self,
        stack: Stack,
        report: StackReport,
        rendering: Rendering,
        watched: list[canary.Candidate],
    ) -> dict[str, Any] | None:
        """Watch the new versions' canaries; apply the stack again with the promoted ones, so
        terraform's state and outputs say where their alias is. Returns the stack's state."""
        workspace = self.workspace
        self.guard.check(f"releasing {stack.name}")
        terminal.current().phase(stack.name, "canary")
        canary.release(workspace, watched)
        promoted = {c.key: c.new for c in watched if c.outcome == canary.Outcome.PROMOTED}
        if promoted:
            workspace.render(stack, rendering.sensitive, {**rendering.held, **promoted})
            moved = apply_stack(workspace, stack, rendering.variables)
            report.changed += moved.changed
        with_note(
            report,
            ", ".join(f"canary: {c.key} {c.new} {c.outcome}" for c in watched),
        )
        return read_state(workspace, stack, self.s3)


def _raise_rolled_back(stack: Stack, watched: list[canary.Candidate]) -> None:
    """A canary that rolled its new version back fails the stack (after its report line)."""
    rolled_back = [c for c in watched if c.outcome == canary.Outcome.ROLLED_BACK]
    if rolled_back:
        raise StackFailed(
            stack.name,
            "canary",
            "\n".join(
                f"    {c.key}: version {c.new} rolled back by its canary ({c.breached()}); "
                f"{c.alias} stays on version {c.stable}. Deploy a fixed version."
                for c in rolled_back
            ),
            None,
            terraform=False,
        )
