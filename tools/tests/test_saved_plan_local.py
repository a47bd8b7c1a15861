"""Saved plans end to end: `plan --out DIR`, then `deploy --plan DIR` applies exactly them, or
refuses before any terraform apply. Real terraform against the local emulator; one environment
(producer -> consumer fixture modules) deployed once for the module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_report_local import PARAMETER, stack, validated

pytestmark = pytest.mark.terraform

ENV = "golf"


def consumer(repo, name: str) -> None:
    repo.write(
        f"live/{ENV}/020_consumer/stack.toml",
        f"""
        module = "consumer"
        [inputs]
        name = "{name}"
        [dependencies]
        upstream_value = "010_producer.value"
        upstream_names = "010_producer.names"
        upstream_token = "010_producer.token"
        """,
    )


def serials(repo) -> dict[str, int]:
    """Each stack's state serial, straight from the bucket."""
    from stackrun.config import load_environment

    environment = load_environment(repo.root, ENV)
    s3 = repo.client(ENV, "s3")
    found = {}
    for name in ("000_bootstrap", "010_producer", "020_consumer"):
        key = environment.state_key(name)
        body = s3.get_object(Bucket=environment.backend.bucket, Key=key)["Body"]
        found[name] = json.loads(body.read())["serial"]
    return found


def refused(repo, folder: Path, *words: str) -> str:
    before = serials(repo)
    run = repo.run("deploy", ENV, "--local", "--no-serve", "--plan", str(folder))
    assert run.returncode == 1, run.text
    assert "nothing was applied" in run.stderr.lower(), run.text
    for word in words:
        assert word in run.stderr, run.text
    assert "applying the saved plan of" not in run.stdout
    assert serials(repo) == before  # no terraform apply of any stack ran
    return run.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory, emulator):
    from emulated_repo import LocalRepo
    from stackrun.local.postgres import stop_all

    state_dir, port = emulator
    repo = LocalRepo(tmp_path_factory.mktemp("saved") / "repo", state_dir, port)
    repo.env(ENV, "210000000042")
    repo.producer_consumer(ENV)
    run = repo.run("deploy", ENV, "--local", "--no-serve")
    assert run.returncode == 0, run.text
    yield repo
    stop_all(repo.root / ".stackrun")


def test_saved_plan_applied_exactly_or_refused(repo, tmp_path):
    folder = tmp_path / "plan"
    consumer(repo, f"{ENV}-consumer-2")  # name is ForceNew: the consumer's parameter is replaced
    run = repo.run(
        "plan", ENV, "--local", "--out", str(folder),
        "--report-file", str(tmp_path / "plan.json"), "--summary-file", str(tmp_path / "plan.md"),
    )  # fmt: skip
    assert run.returncode == 0, run.text
    planned = validated(tmp_path / "plan.json")
    assert planned["saved_plan"] == str(folder)
    assert stack(planned, "020_consumer")["resources"] == [
        {"address": PARAMETER, "action": "replace"}
    ]
    assert stack(planned, "010_producer")["status"] == "unchanged"
    assert "replaced (destroyed and created)" in (tmp_path / "plan.md").read_text()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["environment"] == ENV and manifest["account_id"] == "210000000042"
    assert manifest["commit"] == "unknown"  # the test repository is no git checkout
    entry = next(item for item in manifest["stacks"] if item["name"] == "020_consumer")
    assert entry["plan_file"] == "020_consumer.tfplan" and len(entry["plan_sha256"]) == 64
    assert entry["state"]["serial"] >= 1 and entry["state"]["lineage"]
    assert len(entry["inputs_sha256"]) == 64
    assert "token-v1" not in (folder / "manifest.json").read_text()  # a hash, not the values

    # any input changed after the plan: refused, naming the stack and the reason
    consumer(repo, f"{ENV}-consumer-3")
    refused(repo, folder, "020_consumer: its configuration differs")
    consumer(repo, f"{ENV}-consumer-2")

    # an altered plan file
    altered = tmp_path / "altered"
    shutil.copytree(folder, altered)
    with (altered / "020_consumer.tfplan").open("ab") as handle:
        handle.write(b"\0")
    refused(repo, altered, "020_consumer: its plan file 020_consumer.tfplan was altered")

    # the manifest of another environment
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    document = json.loads((other / "manifest.json").read_text())
    document["environment"], document["account_id"] = "prod", "999999999999"
    (other / "manifest.json").write_text(json.dumps(document))
    refused(repo, other, "made for prod (account 999999999999)")

    # applied exactly: the same resource changes the plan reported, unchanged stacks skipped
    run = repo.run(
        "deploy", ENV, "--local", "--no-serve", "--plan", str(folder),
        "--report-file", str(tmp_path / "deploy.json"),
        "--summary-file", str(tmp_path / "deploy.md"),
    )  # fmt: skip
    assert run.returncode == 0, run.text
    deployed = validated(tmp_path / "deploy.json")
    assert deployed["saved_plan"] == str(folder) and deployed["result"] == "succeeded"
    applied = stack(deployed, "020_consumer")
    assert applied["status"] == "applied"
    assert applied["resources"] == stack(planned, "020_consumer")["resources"]
    assert applied["counts"] == stack(planned, "020_consumer")["counts"]
    assert stack(deployed, "010_producer")["status"] == "unchanged"
    assert f"**replace** `{PARAMETER}`" in (tmp_path / "deploy.md").read_text()
    assert repo.outputs(ENV)["020_consumer"]["copied"].startswith("v1|")
    # applied once: the same plan again is stale
    refused(repo, folder, "020_consumer: its state changed since the plan")


def test_deploy_in_between_and_new_upstream_outputs(repo, tmp_path):
    # a deploy between plan and apply: the state moved on
    consumer(repo, f"{ENV}-consumer-4")
    folder = tmp_path / "plan"
    assert repo.run("plan", ENV, "--local", "--out", str(folder)).returncode == 0
    assert repo.run("deploy", ENV, "--local", "--no-serve").returncode == 0
    refused(repo, folder, "020_consumer: its state changed since the plan")

    # the producer's apply changes outputs the consumer's plan was made with: stop there
    repo.producer_consumer(ENV, value="v2")
    consumer(repo, f"{ENV}-consumer-4")
    assert repo.run("plan", ENV, "--local", "--out", str(folder)).returncode == 0
    report = tmp_path / "deploy.json"
    run = repo.run(
        "deploy", ENV, "--local", "--no-serve", "--plan", str(folder), "--report-file", str(report)
    )
    assert run.returncode == 1, run.text
    assert "020_consumer needs a new plan: the outputs of 010_producer" in run.stderr, run.text
    document = validated(report)
    assert stack(document, "010_producer")["status"] == "applied"
    assert stack(document, "020_consumer")["status"] == "failed"
    assert repo.outputs(ENV)["020_consumer"]["copied"].startswith("v1|")  # not applied


def test_plan_of_pending_stacks_is_refused(repo, tmp_path):
    repo.env("hotel", "210000000043")
    repo.producer_consumer("hotel")
    folder = tmp_path / "plan"
    run = repo.run("plan", "hotel", "--local", "--out", str(folder))
    assert run.returncode == 0, run.text
    run = repo.run("deploy", "hotel", "--local", "--no-serve", "--plan", str(folder))
    assert run.returncode == 1, run.text
    assert "were not planned" in run.stderr and "010_producer" in run.stderr, run.text
    assert "deploy it without --plan first" in run.stderr
