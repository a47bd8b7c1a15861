"""`plan --parallelism N` end to end: real terraform and the real stackrun CLI against the local
emulator, in a small environment of fast stacks (SSM parameters) where two stacks consume the
outputs of a third:

    010_producer -> 020_consumer
                 -> 030_second
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stackrun.deploy.report import SCHEMA_PATH

pytestmark = pytest.mark.terraform

ENV = "pplan"
ACCOUNT = "773100000001"
STACKS = ["000_bootstrap", "010_producer", "020_consumer", "030_second"]
PENDING_NOTE = "upstream 010_producer has pending changes: planned with its current outputs"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / SCHEMA_PATH).read_text())


def _environment(repo) -> None:
    repo.env(ENV, ACCOUNT)
    repo.producer_consumer(ENV)  # 010_producer -> 020_consumer
    repo.write(
        f"live/{ENV}/030_second/stack.toml",
        f"""
        module = "consumer"
        [inputs]
        name = "{ENV}-second"
        [dependencies]
        upstream_value = "010_producer.value"
        upstream_names = "010_producer.names"
        upstream_token = "010_producer.token"
        """,
    )


def _plan(repo, *args: str):
    """`plan --parallelism 3 --detailed-exitcode` with a validated run report: (the run, the
    report's stacks by name, the summary printed last)."""
    run, document = repo.run_reported(
        "plan", ENV, "--local", "--parallelism", "3", "--detailed-exitcode", *args
    )
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    # report and summary in directory order, whichever stack finished first
    assert [stack["name"] for stack in document["stacks"]] == STACKS, run.text
    summary = run.stdout[run.stdout.rindex(f"plan {ENV}: summary") :]
    assert [summary.index(name) for name in STACKS] == sorted(
        summary.index(name) for name in STACKS
    )
    return run, {stack["name"]: stack for stack in document["stacks"]}, summary


def test_plan_runs_stacks_side_by_side_and_marks_stacks_behind_changed_outputs(
    local_repo, tmp_path
):
    repo = local_repo
    _environment(repo)
    deployed = repo.run("deploy", ENV, "--local", "--parallelism", "3")
    assert deployed.returncode == 0, deployed.text

    # (a) nothing changed: every stack unchanged, terraform's lines prefixed by stack
    unchanged, stacks, summary = _plan(repo)
    assert unchanged.returncode == 0, unchanged.text
    assert {name: stack["status"] for name, stack in stacks.items()} == dict.fromkeys(
        STACKS, "unchanged"
    )
    for name in STACKS:
        assert f"[{name}] " in unchanged.stdout, name
    assert "pending changes" not in unchanged.stdout

    # (b) a new value of 010_producer changes its `value` output: the stacks consuming it are
    # planned with the current one, and say so
    out = tmp_path / "saved-plan"
    changed, stacks, summary = _plan(repo, "--set", '010_producer.value="v2"', "--out", str(out))
    assert changed.returncode == 2, changed.text
    producer = stacks["010_producer"]
    assert (producer["status"], producer["counts"]["change"]) == ("changes", 1)
    assert producer["outputs_changed"] is True
    for name in ("020_consumer", "030_second"):
        assert stacks[name]["status"] == "unchanged", name
        assert stacks[name]["note"] == PENDING_NOTE, name
        assert f"{name:<24} unchanged" in summary
    assert stacks["000_bootstrap"]["note"] == ""
    assert summary.count(PENDING_NOTE) == 2, summary
    # the saved plan's manifest lists the stacks in directory order too
    manifest = json.loads((out / "manifest.json").read_text())
    assert [stack["name"] for stack in manifest["stacks"]] == STACKS
    assert [stack["name"] for stack in manifest["stacks"] if stack["plan_file"]] == ["010_producer"]
