"""Canary settings, the decision, and the metric query (CloudWatch in-process with moto). The
canary itself, through the local API with real traffic, is in test_database_local.py's dev
journey."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from stackrun.config import Canary, load_environment
from stackrun.errors import ConfigError
from stackrun.release.canary import Candidate, _metrics

SETTINGS = Canary(share=0.25, seconds=60, max_error_rate=0.1, max_errors=3)


def _candidate(invocations: int, errors: int) -> Candidate:
    return Candidate("list_devices", "fleet-dev-list_devices", "live", "2", "3", SETTINGS,
                     invocations, errors)  # fmt: skip


@pytest.mark.parametrize(
    ("invocations", "errors", "why"),
    [
        (0, 0, ""),
        (40, 3, ""),  # 3 errors is max_errors, 7.5% under the rate
        (40, 4, "4 errors > max_errors 3"),
        (10, 2, "error rate 20% (2/10) > max_error_rate 10%"),
    ],
)
def test_a_new_version_goes_back_on_too_many_errors_or_too_high_a_rate(invocations, errors, why):
    assert _candidate(invocations, errors).breached() == why


def _api_stack(repo, canary: str) -> None:
    repo.functions_stack(
        "dev", {"list_devices": "", "migrations": ""}, 'invoke_on_deploy = ["migrations"]\n'
    )
    stack = repo.root / "live/dev/030_api/stack.toml"
    stack.write_text(stack.read_text() + textwrap.dedent(canary))


def test_canary_settings_apply_to_every_function_that_takes_traffic(repo):
    _api_stack(
        repo,
        """
        [lambdas.canary]
        share = 0.25
        duration = "2m"
        max_error_rate = 0.05
        max_errors = 3
        """,
    )
    stack = load_environment(repo.root, "dev").stack("030_api")
    # the migrations function is invoked by the deploy, not by traffic: no canary
    assert dict(stack.canary) == {"list_devices": Canary(0.25, 120, 0.05, 3)}


def test_a_function_can_change_or_switch_off_its_canary(repo):
    base = """
        [lambdas.canary]
        share = 0.25
        duration = "2m"
        max_error_rate = 0.05
        max_errors = 3
        [lambdas.canary.functions.list_devices]
        """
    _api_stack(repo, base + "share = 0.1\n")
    assert load_environment(repo.root, "dev").stack("030_api").canary["list_devices"].share == 0.1
    _api_stack(repo, base + "enabled = false\n")
    assert not load_environment(repo.root, "dev").stack("030_api").canary


def test_bad_canary_settings_name_the_key_and_what_is_expected(repo):
    _api_stack(
        repo,
        """
        [lambdas.canary]
        share = 1.5
        duration = "soon"
        max_errors = -1
        [lambdas.canary.functions.migrations]
        share = 0.1
        """,
    )
    with pytest.raises(ConfigError) as error:
        load_environment(repo.root, "dev")
    text = str(error.value)
    assert "lambdas.canary.share': expected the share of the alias's traffic" in text
    assert "lambdas.canary.duration': expected how long the new version is watched" in text
    assert "lambdas.canary.max_error_rate': missing" in text
    assert "lambdas.canary.max_errors': expected the most errors" in text
    assert "lambdas.canary.functions.migrations': not a function that takes traffic" in text


def test_the_new_versions_metrics_are_read_through_its_alias_and_version(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        since = datetime.now(UTC)

        def put(version: str, metric: str, value: float) -> None:
            cloudwatch.put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [
                            {"Name": "FunctionName", "Value": "fleet-dev-list_devices"},
                            {"Name": "Resource", "Value": "fleet-dev-list_devices:live"},
                            {"Name": "ExecutedVersion", "Value": version},
                        ],
                        "Value": value,
                        "Unit": "Count",
                    }
                ],
            )

        for _ in range(5):
            put("3", "Invocations", 1)
        put("3", "Errors", 1)
        put("3", "Errors", 1)
        put("2", "Invocations", 1)  # the old version's traffic is not the canary's
        put("2", "Errors", 1)
        assert _metrics(cloudwatch, _candidate(0, 0), since) == (5, 2)
