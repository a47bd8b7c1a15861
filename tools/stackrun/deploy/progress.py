"""What a run tells as it goes: the console lines and the run report's stack entries."""

from __future__ import annotations

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.report import RunReport, StackReport, StackStatus
from stackrun.errors import StackFailed
from stackrun.terraform.workspace import Workspace


def say(workspace: Workspace, text: str) -> None:
    print(text, file=workspace.console, flush=True)


def announce(workspace: Workspace, index: int, total: int, stack: Stack, verb: str) -> None:
    if not terminal.current().shows_starts:  # -q
        return
    say(workspace, f"\n==> [{index}/{total}] {verb} {stack.name} (module {stack.module.name})")


def new_report(workspace: Workspace, command: str) -> RunReport:
    """An empty report of one run of `command` in the workspace's environment."""
    environment = workspace.environment
    return RunReport(
        command,
        environment.name,
        account_id=environment.account_id,
        target="local" if workspace.target.local else "aws",
    )


def record_failure(
    report: RunReport, failed: str, remaining: list[Stack], error: StackFailed | Interrupted
) -> None:
    """The failed (or interrupted) stack's entry, then the stacks not started after it."""
    if isinstance(error, Interrupted):
        report.stacks.append(
            StackReport(failed, StackStatus.INTERRUPTED, note=str(error), error=str(error))
        )
    else:
        detail = "\n".join(line.strip() for line in error.detail.strip().splitlines())
        report.stacks.append(
            StackReport(failed, StackStatus.FAILED, note=error.step, error=detail or str(error))
        )
    report.stacks += [StackReport(stack.name, StackStatus.NOT_STARTED) for stack in remaining]


def with_note(report: StackReport, note: str) -> StackReport:
    if note:
        report.note = f"{report.note}; {note}" if report.note else note
    return report


def pinned_note(workspace: Workspace, stack: Stack) -> str:
    """Say which of the stack's functions a rollback pinned; the report's note ("" if none)."""
    pinned = {name: pin for name, pin in workspace.pins().items() if name in stack.functions}
    for name, pin in sorted(pinned.items()):
        say(workspace, f"    note: {pin.notice(workspace.environment.name, name)}")
    return ", ".join(f"{name} pinned to {pin.version}" for name, pin in sorted(pinned.items()))
