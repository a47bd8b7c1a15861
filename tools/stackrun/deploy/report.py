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
from pathlib import Path
from typing import Any

from stackrun.terraform.tfjson import ResourceChange

SCHEMA_VERSION = 1
SCHEMA_PATH = "schemas/run-report.schema.json"

STATUSES = (
    "applied",
    "unchanged",
    "changes",
    "pending",
    "skipped",
    "destroyed",
    "failed",
    "interrupted",
    "not started",
)


@dataclass
class StackReport:
    name: str
    status: str  # one of STATUSES
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
            self.status == "pending"
        )

    def line(self) -> str:
        counts = f"{self.added} to add, {self.changed} to change, {self.destroyed} to destroy"
        if self.status in ("applied", "destroyed"):
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
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def has_changes(self) -> bool:
        return any(report.has_changes for report in self.stacks)

    @property
    def ok(self) -> bool:
        return not self.error and not any(
            report.status in ("failed", "interrupted") for report in self.stacks
        )

    def summary(self) -> str:
        lines = [f"{self.command} {self.environment}: summary"]
        lines += ["  " + report.line() for report in self.stacks]
        return "\n".join(lines)

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
    if stack.status in ("pending", "not started", "skipped"):
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
        replaced = [
            (stack.name, change.address)
            for stack in report.stacks
            for change in stack.resources
            if change.action == "replace"
        ]
        deleted = [
            (stack.name, change.address)
            for stack in report.stacks
            for change in stack.resources
            if change.action == "delete"
        ]
        if replaced or deleted:
            lines.append("> [!WARNING]")
            if deleted:
                lines.append(f"> **{len(deleted)} resource(s) destroyed:**")
                lines += [f"> - `{address}` ({stack})" for stack, address in deleted]
            if replaced:
                lines.append(f"> **{len(replaced)} resource(s) replaced (destroyed and created):**")
                lines += [f"> - `{address}` ({stack})" for stack, address in replaced]
            lines.append("")
        lines += ["| stack | status | changes | seconds | note |", "|---|---|---|---|---|"]
        for stack in report.stacks:
            note = stack.note
            if stack.error:
                note = (note + ": " if note else "") + stack.error.strip().splitlines()[0]
            seconds = f"{stack.seconds:.1f}" if stack.seconds else ""
            lines.append(
                f"| `{stack.name}` | {stack.status} | {_counts(stack)} | {seconds} "
                f"| {_cell(note)} |"
            )
        lines.append("")
        for stack in report.stacks:
            if not stack.resources and not stack.error:
                continue
            lines += [
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
        sections.append("\n".join(lines))
    return "\n".join(sections).rstrip() + "\n"
