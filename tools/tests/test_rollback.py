"""rollback's choices and the pin record (S3 calls in-process with moto). The command itself,
against a deployed environment and the local API, is in test_database_local.py's dev journey."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stackrun.config import BackendSettings, Environment, load_environment
from stackrun.errors import StackrunError
from stackrun.release import pins
from stackrun.release.rollback import stack_of, version_before
from stackrun.terraform.render import artifact_inputs


@pytest.mark.parametrize(
    ("published", "current", "expected"),
    [
        (["$LATEST", "1", "2", "3"], "3", "2"),
        (["$LATEST", "1", "2", "10"], "10", "2"),  # numbers, not strings
        (["$LATEST", "1", "2", "3"], "2", "1"),  # from a pinned version further back
        (["$LATEST", "1"], "1", None),
    ],
)
def test_the_version_before_is_the_newest_older_published_one(published, current, expected):
    assert version_before(published, current) == expected


def test_an_unknown_function_names_the_environments_functions(repo):
    repo.functions_stack("dev", {"list_devices": ""})
    environment = load_environment(repo.root, "dev")
    assert stack_of(environment, "list_devices").name == "030_api"
    with pytest.raises(StackrunError, match=r"'nope' is not a function of dev.*list_devices"):
        stack_of(environment, "nope")


@pytest.fixture
def s3(monkeypatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket="state", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def _environment(bucket: str) -> Environment:
    """Environment "dev" whose state bucket is `bucket` (nothing else of it is read here)."""
    return Environment(
        project=None,  # type: ignore[arg-type]
        name="dev",
        account_id="111111111111",
        region="eu-west-1",
        deploy_role_arn="",
        tags={},
        protected=False,
        backend=BackendSettings(bucket, "locks", "eu-west-1", deletion_protection=False),
        stacks=(),
        path=Path("live/dev"),
    )


ENVIRONMENT = _environment("state")


def test_pins_are_kept_beside_the_states_and_read_back(s3):
    assert pins.read(ENVIRONMENT, s3) == {}
    pin = pins.Pin(version="4", previous="5", at="2026-12-07T05:00:00+00:00", by="ops")
    pins.write(ENVIRONMENT, s3, {"list_devices": pin})
    assert pins.read(ENVIRONMENT, s3) == {"list_devices": pin}
    assert s3.list_objects_v2(Bucket="state")["Contents"][0]["Key"] == "dev/_stackrun/pins.json"
    notice = pin.notice("dev", "list_devices")
    assert "pinned to version 4 (rolled back from 5" in notice
    assert "stackrun unpin dev list_devices" in notice


def test_without_a_backend_there_are_no_pins(s3):
    other = _environment("none")
    assert pins.read(other, s3) == {}


def test_a_damaged_record_is_a_clear_error(s3):
    s3.put_object(Bucket="state", Key="dev/_stackrun/pins.json", Body=b'{"pins": {"a": 1}}')
    with pytest.raises(StackrunError, match=r"dev/_stackrun/pins\.json is not a pin record"):
        pins.read(ENVIRONMENT, s3)


def test_a_pinned_function_is_rendered_with_its_live_version(tmp_path: Path):
    stack = SimpleNamespace(
        lambdas_input="functions",
        inputs={"functions": {"list_devices": {}, "register_device": {}}},
    )
    manifest = {"base64_sha256": "h", "handler": "m.handler", "architecture": "arm64"}
    functions = artifact_inputs(
        stack,  # type: ignore[arg-type]
        tmp_path / "work",
        {"list_devices": manifest, "register_device": manifest},
        tmp_path / "dist",
        {"list_devices": "4"},
    )
    assert functions["list_devices"]["live_version"] == "4"
    assert "live_version" not in functions["register_device"]


def test_live_version_is_not_a_setting_of_live(repo):
    repo.functions_stack("dev", {"list_devices": 'live_version = "3"\n'})
    with pytest.raises(StackrunError, match=r"functions.list_devices.live_version.*rollback"):
        load_environment(repo.root, "dev")
