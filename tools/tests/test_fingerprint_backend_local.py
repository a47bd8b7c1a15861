"""Applied records in the backend: a fresh clone skips exactly what a warm one would.

The record of a stack's last apply (fingerprint, state lineage and serial) is a JSON object
beside its state in the state bucket (deploy/fingerprint.py). The matching rules are tested
against moto's S3; the rest runs the real stackrun CLI and terraform against the shared test
emulator, from two clones of one repository at different paths.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from stackrun.aws.target import Target
from stackrun.config import load_environment
from stackrun.deploy import fingerprint
from stackrun.terraform.workspace import Workspace

STATE = {"lineage": "lineage-1", "serial": 4}
STACKS = ("000_bootstrap", "010_producer", "020_consumer")


def test_the_record_matches_only_its_fingerprint_lineage_and_serial(repo) -> None:
    """Recorded, forgotten and compared through S3; any of the three differing means apply."""
    repo.standard()
    environment = load_environment(repo.root, "dev")
    workspace = Workspace(environment, Target())
    stack = environment.stack("010_net")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=environment.backend.bucket,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        assert not fingerprint.applied(workspace, stack, STATE, "f1", s3)  # no record yet
        fingerprint.record(workspace, stack, STATE, "f1", s3)
        stored = s3.get_object(
            Bucket=environment.backend.bucket, Key="dev/010_net/stackrun-applied.json"
        )
        assert json.loads(stored["Body"].read()) == {
            "fingerprint": "f1",
            "lineage": "lineage-1",
            "serial": 4,
        }
        assert fingerprint.applied(workspace, stack, STATE, "f1", s3)
        assert not fingerprint.applied(workspace, stack, STATE, "f2", s3)
        assert not fingerprint.applied(workspace, stack, {**STATE, "serial": 5}, "f1", s3)
        assert not fingerprint.applied(workspace, stack, {**STATE, "lineage": "other"}, "f1", s3)
        assert not fingerprint.applied(workspace, stack, None, "f1", s3)  # state lost
        # another stack's record never answers for this one
        assert not fingerprint.applied(workspace, environment.stack("020_app"), STATE, "f1", s3)
        fingerprint.forget(workspace, stack, s3)
        assert not fingerprint.applied(workspace, stack, STATE, "f1", s3)
        fingerprint.forget(workspace, stack, s3)  # forgetting twice is fine


def test_matching_needs_a_record_and_a_state_with_a_lineage() -> None:
    assert not fingerprint.matches({}, STATE, "f1")
    assert not fingerprint.matches({"fingerprint": "f1"}, {}, "f1")
    assert fingerprint.matches({"fingerprint": "f1", **STATE}, STATE, "f1")


def _status(run, stack: str) -> str:
    assert run.returncode == 0, run.text
    summary = run.stdout[run.stdout.rindex(": summary") :]
    line = next(line for line in summary.splitlines() if line.strip().startswith(stack))
    return line.split()[1]


def _clone(local_repo, name: str, value: str):
    """Another clone of the test repository at another path, with its own empty .stackrun/,
    on the same emulator and backend."""
    from emulated_repo import LocalRepo

    clone = LocalRepo(local_repo.root.parent / name, local_repo.emulator_dir, local_repo.port)
    clone.env("fpr", "294000000001")
    clone.producer_consumer("fpr", value=value)
    return clone


@pytest.mark.terraform
def test_a_fresh_clone_skips_what_another_clone_applied_and_never_what_it_changed(
    local_repo,
) -> None:
    first = local_repo
    first.env("fpr", "294000000001")
    first.producer_consumer("fpr")
    deployed = first.run("deploy", "fpr", "--local")
    assert [_status(deployed, s) for s in STACKS[1:]] == ["applied", "applied"]
    s3 = first.client("fpr", "s3")
    bucket = load_environment(first.root, "fpr").backend.bucket
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"fpr/{stack}/stackrun-applied.json" for stack in STACKS} <= keys

    # (1) a second clone at another path, nothing in its .stackrun/: every stack skipped
    second = _clone(first, "clone-b", "v1")
    assert not (second.root / ".stackrun").exists()
    fresh = second.run("deploy", "fpr", "--local")
    assert [_status(fresh, s) for s in STACKS] == ["skipped"] * 3
    assert "unchanged since its last apply" in fresh.stdout

    # (2) the second clone changes an input and deploys it ...
    second.producer_consumer("fpr", value="v2")
    changed = second.run("deploy", "fpr", "--local")
    assert [_status(changed, s) for s in STACKS] == ["skipped", "applied", "applied"]
    # ... so the first clone (warm, its own config) skips no stack the second one changed
    again = first.run("deploy", "fpr", "--local")
    assert [_status(again, s) for s in STACKS] == ["skipped", "applied", "applied"]
    assert first.outputs("fpr")["020_consumer"]["copied"].startswith("v1|")

    # the second clone (warm now) does not skip either: the first one changed its stacks since
    back = second.run("deploy", "fpr", "--local")
    assert [_status(back, s) for s in STACKS] == ["skipped", "applied", "applied"]
    # a third, fresh clone with the config now deployed skips everything
    third = _clone(first, "clone-c", "v2")
    assert [_status(third.run("deploy", "fpr", "--local"), s) for s in STACKS] == ["skipped"] * 3

    # destroy removes the records of the stacks it destroyed (the backend's stays)
    destroyed = third.run("destroy", "fpr", "--local")
    assert destroyed.returncode == 0, destroyed.text
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k for k in keys if k.endswith("stackrun-applied.json")} == {
        "fpr/000_bootstrap/stackrun-applied.json"
    }
