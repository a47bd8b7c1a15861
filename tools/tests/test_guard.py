"""The environment guard's expiry, renewal and takeover (DynamoDB calls, in-process moto)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stackrun.deploy.guard import environment_guard, read_guard
from stackrun.errors import GuardLost, LockHeld

TABLE = "locks"


@pytest.fixture
def dynamodb(monkeypatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _left_by_a_killed_run(dynamodb: Any, expires: float) -> None:
    info = {"ID": "old-id", "Operation": "deploy", "Who": "ci@runner-7", "PID": "4242"}
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "LockID": {"S": "stackrun-guard/dev"},
            "Info": {"S": json.dumps(info)},
            "Expires": {"N": str(int(expires))},
        },
    )


def test_the_guard_names_its_holder_and_ci_run_and_is_released(dynamodb, monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/fleet-infra")
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    with environment_guard(dynamodb, TABLE, "dev", "deploy", timeout_seconds=0) as guard:
        held = read_guard(dynamodb, TABLE, "dev")
        assert held["ID"] == guard.info["ID"]
        assert held["Run"] == "https://github.com/acme/fleet-infra/actions/runs/99"
        assert "@" in held["Who"] and held["PID"].isdigit()
        assert held["Expires"] > held["Created"]
    assert read_guard(dynamodb, TABLE, "dev") == {}


def test_a_live_guard_is_not_taken_over(dynamodb):
    _left_by_a_killed_run(dynamodb, expires=time.time() + 60)
    with (
        pytest.raises(LockHeld, match=r"held by: deploy by ci@runner-7 \(pid 4242\)"),
        environment_guard(dynamodb, TABLE, "dev", "deploy", timeout_seconds=0),
    ):
        pass
    assert read_guard(dynamodb, TABLE, "dev")["ID"] == "old-id"


def test_an_expired_guard_is_taken_over_with_a_warning(dynamodb, capsys):
    _left_by_a_killed_run(dynamodb, expires=time.time() - 5)
    with environment_guard(dynamodb, TABLE, "dev", "deploy", timeout_seconds=0) as guard:
        assert read_guard(dynamodb, TABLE, "dev")["ID"] == guard.info["ID"]
    warning = capsys.readouterr().err
    assert "took over the expired guard of environment 'dev'" in warning
    assert "guard id old-id" in warning


def test_a_live_run_renews_its_guard(dynamodb):
    with environment_guard(
        dynamodb, TABLE, "dev", "deploy", timeout_seconds=0, ttl_seconds=2, renew_seconds=0.2
    ):
        first = read_guard(dynamodb, TABLE, "dev")["Expires"]
        time.sleep(3)  # longer than the time to live: only renewal keeps it
        assert read_guard(dynamodb, TABLE, "dev")["Expires"] > first
        with (
            pytest.raises(LockHeld),
            environment_guard(dynamodb, TABLE, "dev", "deploy", timeout_seconds=0),
        ):
            pass


def test_a_run_whose_guard_was_taken_over_stops_before_its_next_step(dynamodb, capsys):
    with environment_guard(
        dynamodb, TABLE, "dev", "deploy", timeout_seconds=0, ttl_seconds=2, renew_seconds=0.2
    ) as guard:
        guard.check("the first stack")  # still ours
        _left_by_a_killed_run(dynamodb, expires=time.time() + 60)  # another run took it
        deadline = time.monotonic() + 10
        while not guard.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(GuardLost, match=r"no longer this run's.*stopped before 020_app"):
            guard.check("020_app")
    assert read_guard(dynamodb, TABLE, "dev")["ID"] == "old-id"  # the other run's, untouched
    assert "the run stops before its next step" in capsys.readouterr().err
