"""stackrun.deploy.saved_plan's checks, without terraform: why a saved plan may not be applied."""

from __future__ import annotations

from pathlib import Path

from stackrun.deploy.saved_plan import Current, Manifest, check, inputs_hash

STATE = {"lineage": "a1b2c3d4-lineage", "serial": 7}


def _manifest(tmp_path: Path) -> tuple[Manifest, dict]:
    plan = tmp_path / "020_x.tfplan"
    plan.write_bytes(b"plan")
    import hashlib

    entry = {
        "name": "020_x",
        "status": "changes",
        "state": {"lineage": STATE["lineage"], "serial": 7},
        "inputs_sha256": inputs_hash({"a": "1"}),
        "artifacts": {"list_devices": "a" * 64},
        "fingerprint": "f" * 64,
        "plan_file": plan.name,
        "plan_sha256": hashlib.sha256(b"plan").hexdigest(),
    }
    return Manifest(tmp_path, {"format": 1, "stacks": [entry]}), entry


def _current(**changes) -> Current:
    values = {
        "state": dict(STATE),
        "variables": {"a": "1"},
        "artifacts": {"list_devices": "a" * 64},
        "fingerprint": "f" * 64,
    }
    values.update(changes)
    return Current(**values)


def test_a_matching_stack_may_be_applied(tmp_path):
    manifest, entry = _manifest(tmp_path)
    assert check(manifest, entry, _current()) is None


def test_each_difference_is_named(tmp_path):
    manifest, entry = _manifest(tmp_path)
    state = {"lineage": STATE["lineage"], "serial": 8}
    assert "state changed since the plan" in check(manifest, entry, _current(state=state))
    reason = check(manifest, entry, _current(artifacts={"list_devices": "b" * 64}))
    assert reason == (
        f"function list_devices's zip differs from the one planned (sha256 {'a' * 12} in the "
        f"plan, {'b' * 12} now)"
    )
    assert "values it takes from upstream" in check(manifest, entry, _current(variables={"a": "2"}))
    assert "configuration differs" in check(manifest, entry, _current(fingerprint="0" * 64))
    (tmp_path / "020_x.tfplan").write_bytes(b"other")
    assert "was altered" in check(manifest, entry, _current())
    pending = {"name": "030_y", "status": "pending", "note": "upstream not applied yet: 020_x.a"}
    assert "it was not planned (upstream not applied yet" in check(manifest, pending, _current())
