"""Terraform's JSON UI read by stackrun.terraform.tfjson: messages, changes, errors (no
terraform)."""

from __future__ import annotations

import json

from stackrun.terraform import Result, tfjson


def _event(kind: str, message: str, **fields) -> dict:
    return {"@level": "info", "@message": message, "type": kind, **fields}


def _resource(address: str) -> dict:
    return {"resource": {"addr": address}}


def _change(kind: str, address: str, action: str) -> dict:
    message = f"{address}: Plan to {action}"
    return _event(kind, message, change={**_resource(address), "action": action})


PLAN = [
    _event("version", "Terraform 1.11.4"),
    _change("resource_drift", "a.x", "update"),
    _change("planned_change", "a.b", "replace"),
    _change("planned_change", "a.a", "update"),
    _change("planned_change", "a.c", "delete"),
    _change("planned_change", "data.x", "read"),
    _event("change_summary", "Plan: 1 to add, 1 to change, 2 to destroy.",
           changes={"add": 1, "change": 1, "remove": 2, "operation": "plan"}),
    _event("outputs", "Outputs: 1", outputs={"o": {"sensitive": False, "action": "update"}}),
]  # fmt: skip


def test_plan_changes_counts_and_outputs():
    changes = tfjson.Changes.from_events(PLAN)
    assert (changes.added, changes.changed, changes.destroyed) == (1, 1, 2)
    assert changes.outputs_changed
    assert [(c.address, c.action) for c in changes.resources] == [
        ("a.c", "delete"),
        ("a.b", "replace"),
        ("a.a", "update"),
    ]


def test_saved_plan_apply_changes_from_hooks():
    def hook(address: str, action: str) -> dict:
        return _event("apply_complete", "done", hook={**_resource(address), "action": action})

    events = [hook("a.b", "delete"), hook("a.a", "update"), hook("a.b", "create")]
    events.append(_event("outputs", "Outputs: 1", outputs={"o": {"sensitive": False, "value": 1}}))
    changes = tfjson.Changes.from_events(events)
    assert [(c.address, c.action) for c in changes.resources] == [
        ("a.b", "replace"),
        ("a.a", "update"),
    ]
    assert not changes.outputs_changed


def test_errors_and_rendering():
    diagnostic = _event(
        "diagnostic",
        "Error: bad thing",
        diagnostic={"severity": "error", "summary": "bad thing", "detail": "because\nof it",
                    "address": "a.b", "range": {"filename": "main.tf", "start": {"line": 3}}},
    )  # fmt: skip
    warning = _event(
        "diagnostic", "Warning: meh", diagnostic={"severity": "warning", "summary": "meh"}
    )
    assert [e.summary for e in tfjson.errors([warning, diagnostic])] == ["bad thing"]
    text = tfjson.render(diagnostic)
    assert text.splitlines()[:3] == ["Error: bad thing", "  with a.b", "  on main.tf line 3"]
    assert "  because" in text
    result = Result(1, text, (warning, diagnostic))
    assert result.error_summary.splitlines()[0] == "    Error: bad thing"
    # an output's value is never part of the human line
    outputs = _event("outputs", "Outputs: 1", outputs={"t": {"sensitive": True, "value": "s3cret"}})
    assert "s3cret" not in tfjson.render(outputs)
    assert tfjson.parse_line(json.dumps(outputs) + "\n") == outputs
    assert tfjson.parse_line("Initializing the backend...") is None


def test_show_json_resource_changes():
    document = {
        "resource_changes": [
            {"address": "a.b", "change": {"actions": ["delete", "create"]}},
            {"address": "a.a", "change": {"actions": ["no-op"]}},
            {"address": "a.c", "change": {"actions": ["create"]}},
        ]
    }
    assert [(c.address, c.action) for c in tfjson.from_plan_document(document)] == [
        ("a.b", "replace"),
        ("a.c", "create"),
    ]
