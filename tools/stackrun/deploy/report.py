"""The run report: what a plan, deploy or destroy did, per stack, for people and programs.

The one owner of the report's shapes:

- the console summary (one line per stack, printed at the end of every run),
- `--report-file PATH`: a JSON document (schema: schemas/run-report.schema.json), per stack:
  status, counts, resources [address, action], seconds, fingerprint, artifact hashes, error,
- `--summary-file PATH`: Markdown for a job summary or a PR comment: a table per environment,
  a collapsible list of resource changes per stack, replacements and destroys called out.

Both files are written also when the run fails (the failed stack with its error summary, the
rest `not started`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from stackrun.terraform.tfjson import ResourceChange

SCHEMA_VERSION = 1
SCHEMA_PATH = "schemas/run-report.schema.json"


class StackStatus(StrEnum):
    """What a run did with one stack: the report's `status` (a str: the JSON stays the same)."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    CHANGES = "changes"
    PENDING = "pending"
    SKIPPED = "skipped"
    DESTROYED = "destroyed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not started"


@dataclass
class StackReport:
    name: str
    status: StackStatus
    seconds: float = 0.0
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    outputs_changed: bool = False
    note: str = ""
    resources: tuple[ResourceChange, ...] = ()
    fingerprint: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # function -> zip sha256
    error: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.destroyed or self.outputs_changed) or (
            self.status == StackStatus.PENDING
        )

    def line(self) -> str:
        counts = f"{self.added} to add, {self.changed} to change, {self.destroyed} to destroy"
        if self.status in (StackStatus.APPLIED, StackStatus.DESTROYED):
            counts = f"{self.added} added, {self.changed} changed, {self.destroyed} destroyed"
        text = f"{self.name:<24} {self.status:<12} {counts}"
        if self.outputs_changed:
            text += ", outputs change"
        if self.note:
            text += f"  ({self.note})"
        if self.seconds:
            text += f"  [{self.seconds:.1f}s]"
        return text

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "counts": {"add": self.added, "change": self.changed, "destroy": self.destroyed},
            "outputs_changed": self.outputs_changed,
            "resources": [change.document() for change in self.resources],
            "seconds": round(self.seconds, 3),
            "fingerprint": self.fingerprint,
            "artifacts": dict(sorted(self.artifacts.items())),
            "note": self.note,
            "error": self.error or None,
        }


@dataclass
class RunReport:
    command: str
    environment: str
    account_id: str = ""
    target: str = "aws"  # aws | local
    stacks: list[StackReport] = field(default_factory=list)
    error: str = ""  # why the run failed (also when it failed before any stack)
    saved_plan: str = ""  # plan --out DIR / deploy --plan DIR
    # --stack/--exclude: the stacks the run was limited to (the only ones listed); None: all
    selected: tuple[str, ...] | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def has_changes(self) -> bool:
        return any(report.has_changes for report in self.stacks)

    @property
    def ok(self) -> bool:
        return not self.error and not any(
            report.status in (StackStatus.FAILED, StackStatus.INTERRUPTED) for report in self.stacks
        )

    def summary(self) -> str:
        lines = [f"{self.command} {self.environment}: summary"]
        if self.selected is not None:
            lines.append(f"  {self.selection_note()}")
        lines += ["  " + report.line() for report in self.stacks]
        return "\n".join(lines)

    def selection_note(self) -> str:
        names = ", ".join(self.selected or ())
        return f"only the selected stacks ({names}); the others did not run"

    # ---- files ------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "command": self.command,
            "environment": self.environment,
            "account_id": self.account_id,
            "target": self.target,
            "started_at": self.started_at,
            "result": "succeeded" if self.ok else "failed",
            "has_changes": self.has_changes,
            "error": self.error or None,
            "saved_plan": self.saved_plan or None,
            "selected": list(self.selected) if self.selected is not None else None,
            "stacks": [stack.document() for stack in self.stacks],
        }

    def markdown(self) -> str:
        return markdown([self])

    def write(self, report_file: str | None, summary_file: str | None) -> None:
        if report_file:
            path = Path(report_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.document(), indent=2) + "\n")
        if summary_file:
            path = Path(summary_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.markdown())


_ICONS = {"delete": "🗑️", "replace": "♻️", "create": "🆕", "update": "🔧"}
_RESULT = {True: "✅", False: "❌"}


def _counts(stack: StackReport) -> str:
    if stack.status in (StackStatus.PENDING, StackStatus.NOT_STARTED, StackStatus.SKIPPED):
        return "-"
    text = f"+{stack.added} ~{stack.changed} -{stack.destroyed}"
    if stack.outputs_changed:
        text += ", outputs"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(reports: list[RunReport]) -> str:
    """One section (heading, table, details) per run report: one per environment."""
    sections = []
    for report in reports:
        lines = [
            f"### {_RESULT[report.ok]} {report.command} `{report.environment}`"
            + (f" (account {report.account_id}, {report.target})" if report.account_id else ""),
            "",
        ]
        if report.error:
            lines += ["**Error:**", "", "```text", report.error.replace("```", "'''"), "```", ""]
        if report.selected is not None:
            lines += [f"_{report.selection_note()}_", ""]
        lines += _warnings(report)
        lines += _table(report)
        for stack in report.stacks:
            lines += _details(stack)
        sections.append("\n".join(lines))
    return "\n".join(sections).rstrip() + "\n"


def _changes_of(report: RunReport, action: str) -> list[tuple[str, str]]:
    return [
        (stack.name, change.address)
        for stack in report.stacks
        for change in stack.resources
        if change.action == action
    ]


def _warnings(report: RunReport) -> list[str]:
    """Destroyed and replaced resources, called out above the table."""
    replaced = _changes_of(report, "replace")
    deleted = _changes_of(report, "delete")
    if not replaced and not deleted:
        return []
    lines = ["> [!WARNING]"]
    if deleted:
        lines.append(f"> **{len(deleted)} resource(s) destroyed:**")
        lines += [f"> - `{address}` ({stack})" for stack, address in deleted]
    if replaced:
        lines.append(f"> **{len(replaced)} resource(s) replaced (destroyed and created):**")
        lines += [f"> - `{address}` ({stack})" for stack, address in replaced]
    lines.append("")
    return lines


def _table(report: RunReport) -> list[str]:
    lines = ["| stack | status | changes | seconds | note |", "|---|---|---|---|---|"]
    for stack in report.stacks:
        note = stack.note
        if stack.error:
            note = (note + ": " if note else "") + stack.error.strip().splitlines()[0]
        seconds = f"{stack.seconds:.1f}" if stack.seconds else ""
        lines.append(
            f"| `{stack.name}` | {stack.status} | {_counts(stack)} | {seconds} | {_cell(note)} |"
        )
    lines.append("")
    return lines


def _details(stack: StackReport) -> list[str]:
    """A collapsible list of the stack's resource changes and its error ([] if none)."""
    if not stack.resources and not stack.error:
        return []
    lines = [
        "<details>",
        f"<summary><code>{stack.name}</code>: {stack.status}, "
        f"{len(stack.resources)} resource change(s)</summary>",
        "",
    ]
    lines += [
        f"- {_ICONS.get(change.action, '')} **{change.action}** `{change.address}`"
        for change in stack.resources
    ]
    if stack.error:
        lines += ["", "```text", stack.error.replace("```", "'''").rstrip(), "```"]
    lines += ["", "</details>", ""]
    return lines
