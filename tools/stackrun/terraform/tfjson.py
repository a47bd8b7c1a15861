"""Terraform's machine-readable UI (`plan -json`, `apply -json`): lines to read, changes, errors.

Terraform documents its human output as unstable and its JSON UI (one JSON object per line,
`type` = planned_change, resource_drift, change_summary, apply_start, apply_complete,
diagnostic, outputs, ...) as the interface for programs. This module is the one place that
reads it:

- `render`: the human line of an event (its `@message`, plus a diagnostic's detail), which is
  what the console and the stack's log show: never raw JSON, and never an output's value;
- `Changes.from_events`: the resources a plan or an apply changes (address and action), the
  counts of the change summary, and whether outputs change;
- `errors`: the error diagnostics, summary and detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Event = Mapping[str, Any]

# actions a report lists, in the order a reader wants them (destroys and replacements first)
ACTIONS = ("delete", "replace", "create", "update")
_COUNTED = {"create", "update", "delete", "replace"}


def parse_line(line: str) -> dict[str, Any] | None:
    """The event on one line of terraform's JSON UI, or None for any other line."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "@message" in value else None


def render(event: Event) -> str:
    """The human text of an event: its message; for a diagnostic, also its detail."""
    message = str(event.get("@message", ""))
    if event.get("type") != "diagnostic":
        return message
    diagnostic = event.get("diagnostic") or {}
    lines = [message]
    if diagnostic.get("address"):
        lines.append(f"  with {diagnostic['address']}")
    where = diagnostic.get("range") or {}
    if where.get("filename"):
        lines.append(f"  on {where['filename']} line {(where.get('start') or {}).get('line', '?')}")
    detail = str(diagnostic.get("detail") or "").rstrip()
    if detail:
        lines += ["", *(f"  {line}" if line else "" for line in detail.splitlines())]
    return "\n".join(lines)


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    def text(self) -> str:
        head = f"Error: {self.summary}" if self.severity == "error" else self.summary
        lines = [head]
        if self.address:
            lines.append(f"with {self.address}")
        if self.detail:
            lines += ["", *self.detail.rstrip().splitlines()]
        return "\n".join(lines)


def errors(events: Iterable[Event]) -> list[Diagnostic]:
    """The diagnostics of severity error, in the order terraform gave them."""
    found = []
    for event in events:
        if event.get("type") != "diagnostic":
            continue
        diagnostic = event.get("diagnostic") or {}
        if diagnostic.get("severity") != "error":
            continue
        found.append(
            Diagnostic(
                "error",
                str(diagnostic.get("summary", "")),
                str(diagnostic.get("detail") or ""),
                str(diagnostic.get("address") or ""),
            )
        )
    return found


@dataclass(frozen=True)
class ResourceChange:
    address: str
    action: str  # create | update | replace | delete

    def document(self) -> dict[str, str]:
        return {"address": self.address, "action": self.action}


@dataclass(frozen=True)
class Changes:
    """What a plan or an apply changes, from its events."""

    added: int = 0
    changed: int = 0
    destroyed: int = 0
    outputs_changed: bool = False
    resources: tuple[ResourceChange, ...] = field(default_factory=tuple)

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> Changes:
        planned: dict[str, str] = {}
        applied: dict[str, set[str]] = {}
        added = changed = destroyed = 0
        outputs_changed = False
        for event in events:
            kind = event.get("type")
            if kind == "planned_change":
                change = event.get("change") or {}
                address = (change.get("resource") or {}).get("addr", "")
                action = change.get("action", "")
                if action in _COUNTED and address:
                    planned[address] = action
            elif kind == "apply_complete":
                hook = event.get("hook") or {}
                address = (hook.get("resource") or {}).get("addr", "")
                action = hook.get("action", "")
                if action in _COUNTED and address:
                    applied.setdefault(address, set()).add(action)
            elif kind == "change_summary":
                summary = event.get("changes") or {}
                added = int(summary.get("add", 0))
                changed = int(summary.get("change", 0))
                destroyed = int(summary.get("remove", 0))
            elif kind == "outputs":
                outputs = event.get("outputs") or {}
                if any(
                    (item or {}).get("action") not in (None, "noop") for item in outputs.values()
                ):
                    outputs_changed = True
        # An apply of a saved plan does not plan again: its changes are the completed hooks
        # (a replacement completes twice, as delete and create).
        resources = dict(planned)
        for address, actions in applied.items():
            if address not in resources:
                resources[address] = "replace" if {"delete", "create"} <= actions else min(actions)
        ordered = sorted(
            (ResourceChange(address, action) for address, action in resources.items()),
            key=lambda change: (ACTIONS.index(change.action), change.address),
        )
        return cls(added, changed, destroyed, outputs_changed, tuple(ordered))


def from_plan_document(document: Mapping[str, Any]) -> tuple[ResourceChange, ...]:
    """The resource changes of `terraform show -json <planfile>` (its `resource_changes`)."""
    found = []
    for item in document.get("resource_changes") or []:
        actions = list((item.get("change") or {}).get("actions") or [])
        if sorted(actions) == ["create", "delete"]:
            action = "replace"
        elif len(actions) == 1 and actions[0] in _COUNTED:
            action = actions[0]
        else:
            continue  # no-op, read
        found.append(ResourceChange(str(item.get("address", "")), action))
    return tuple(sorted(found, key=lambda change: (ACTIONS.index(change.action), change.address)))
