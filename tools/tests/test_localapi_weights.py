"""Canaries in the local API: alias routing weights, and Lambda's metrics in CloudWatch.

The unit tests check the weighted choice (with an injected random source) and the dimension
sets. The others run the real HTTP server (serve_api) against functions deployed to the
session's emulator: two published versions of a real zip behind a `live` alias, run by
awslambdaric in the local runtime, their metrics read back from the emulated CloudWatch.
"""

from __future__ import annotations

import json
import os
import random
import textwrap
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulated_api import function_with_two_versions, http_api, local_context
from emulated_repo import emulated_session
from stackrun.local.api.http_server import LocalContext, serve_api
from stackrun.local.api.metrics import (
    InvocationRecord,
    MetricPublisher,
    dimension_sets,
    metric_data,
)
from stackrun.local.api.routing import AliasRouting
from stackrun.local.emulator.invoke import register
from stackrun.paths import emulated_lambda_dir, emulator_state_of

REGION = "eu-west-1"
ACCOUNT = "135792468024"  # an account of its own in the shared emulator
# Requests through the weighted alias (four at a time): 80 at 25 % fall within the asserted
# 10-45 % with any seed (more than 3 standard deviations either side).
REQUESTS = 80


# ---- the weighted choice ------------------------------------------------------------------


def test_a_draw_below_the_additional_weight_picks_that_version_else_the_primary():
    routing = AliasRouting.from_alias(
        {"FunctionVersion": "6", "RoutingConfig": {"AdditionalVersionWeights": {"7": 0.25}}}
    )
    draws = iter([0.0, 0.2499, 0.25, 0.9999])
    picked = [routing.choose_version(lambda: next(draws)) for _ in range(4)]
    assert picked == ["7", "7", "6", "6"]


def test_an_alias_without_weights_never_draws():
    def no_draw() -> float:
        raise AssertionError("drew a random number")

    for alias in (
        {"FunctionVersion": "3"},
        {"FunctionVersion": "3", "RoutingConfig": None},
        {"FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {}}},
    ):
        assert AliasRouting.from_alias(alias).choose_version(no_draw) == "3"


def test_a_seeded_source_splits_by_weight():
    routing = AliasRouting("1", {"2": 0.25})
    source = random.Random(7).random
    counts = Counter(routing.choose_version(source) for _ in range(10_000))
    assert 0.23 < counts["2"] / 10_000 < 0.27


# ---- the dimension sets ------------------------------------------------------------------------


def _record(qualifier: str | None, failed: bool = False) -> InvocationRecord:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return InvocationRecord("fn", qualifier, "7", started, 12.345, failed)


def _names(dimensions: list[dict[str, str]]) -> dict[str, str]:
    return {item["Name"]: item["Value"] for item in dimensions}


def test_an_alias_invocation_is_published_by_function_alias_and_executed_version():
    assert [_names(item) for item in dimension_sets(_record("live"))] == [
        {"FunctionName": "fn"},
        {"FunctionName": "fn", "Resource": "fn:live"},
        {"FunctionName": "fn", "Resource": "fn:live", "ExecutedVersion": "7"},
    ]
    assert [_names(item) for item in dimension_sets(_record("7"))] == [
        {"FunctionName": "fn"},
        {"FunctionName": "fn", "Resource": "fn:7"},
    ]
    assert [_names(item) for item in dimension_sets(_record(None))] == [{"FunctionName": "fn"}]
    values = {
        (item["MetricName"], item["Unit"]): item["Value"]
        for item in metric_data(_record("live", failed=True))
    }
    assert values == {
        ("Invocations", "Count"): 1.0,
        ("Errors", "Count"): 1.0,
        ("Duration", "Milliseconds"): 12.35,
    }


class _RecordingCloudWatch:
    """Records PutMetricData calls (the emulator's CloudWatch is tested below)."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        assert Namespace == "AWS/Lambda"
        self.calls.append(MetricData)


def test_the_publisher_sends_in_the_background_soon_and_everything_on_close():
    cloudwatch = _RecordingCloudWatch()
    publisher = MetricPublisher(cloudwatch, print)
    publisher.record(_record("live"))
    deadline = time.monotonic() + 2
    while not cloudwatch.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [len(call) for call in cloudwatch.calls] == [9]  # sent without a flush
    for _ in range(5):
        publisher.record(_record("7", failed=True))
    publisher.close()  # what was queued before is sent
    assert sum(len(call) for call in cloudwatch.calls) == 9 + 5 * 6
    assert not publisher.thread.is_alive()


# ---- through the local API, against the emulator ---------------------------------------------

HANDLER = """
import os

MARK = {mark!r}


def handler(event, context):
    if (event.get("queryStringParameters") or {{}}).get("fail"):
        raise RuntimeError("asked to fail")
    return {{"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "pid": os.getpid()}}
"""


def _handler_source(mark: str) -> str:
    return textwrap.dedent(HANDLER.format(mark=mark))


@dataclass
class CanaryApi:
    url: str
    context: LocalContext
    lambda_: Any
    cloudwatch: Any
    lines: list[str]
    function: str
    served: Any

    def call(self, path: str) -> tuple[int, str, dict[str, Any]]:
        """(status, the x-stackrun-function header, the JSON body)."""
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as reply:
                return reply.status, reply.headers["x-stackrun-function"], json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, error.headers["x-stackrun-function"], json.loads(error.read())

    def route(self, weights: dict[str, float], primary: str = "1") -> None:
        self.lambda_.update_alias(
            FunctionName=self.function,
            Name="live",
            FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    def stop(self) -> None:
        """Stop as `serve` does on a clean shutdown: the server, then the context."""
        if self.served is not None:
            self.served.server.shutdown()
            self.served.server.server_close()
            self.context.close()
            self.served = None


def _metric_total(cloudwatch: Any, since: datetime, metric: str, dimensions: dict) -> float:
    """The Sum of an AWS/Lambda metric with exactly these dimensions since `since`."""
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=metric,
        Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in points)


@pytest.fixture
def canary_api(emulator, tmp_path):
    """`<function>:live` -> version 1, 25 % to version 2, behind GET /where, served locally."""
    session, client_args, running = emulated_session(emulator, ACCOUNT, REGION, "localapi-weights")
    apigateway = session.client("apigatewayv2", **client_args)
    name = f"weights-{tmp_path.name[-20:]}".replace("_", "-")
    lambda_ = function_with_two_versions(session, client_args, name, _handler_source)
    alias = lambda_.create_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}},
    )
    api_id, _ = http_api(session, client_args, name, alias["AliasArn"], "GET /where")

    # the local runtimes the session's tests share (conftest's emulator fixture)
    runtimes = Path(os.environ["STACKRUN_RUNTIME_DIR"])
    context, lines = local_context(
        running,
        session,
        client_args,
        ("weights", ACCOUNT, REGION),
        (tmp_path / "cache", runtimes),
        random_source=random.Random(1234).random,
    )
    served = serve_api(context, api_id, name, 0)
    api = CanaryApi(
        served.url,
        context,
        lambda_,
        session.client("cloudwatch", **client_args),
        lines,
        name,
        served,
    )
    try:
        yield api
    finally:
        api.stop()
        apigateway.delete_api(ApiId=api_id)


def test_a_weighted_alias_splits_requests_and_keeps_both_versions_warm(canary_api):
    served: Counter[str] = Counter()
    pids: dict[str, set[int]] = {"1": set(), "2": set()}
    with ThreadPoolExecutor(max_workers=4) as callers:  # as concurrent clients would
        answers = list(callers.map(canary_api.call, ["/where"] * REQUESTS))
    for status, served_by, body in answers:
        assert status == 200, body
        version = body["version"]
        assert served_by == f"{canary_api.function}:{version}"
        served[version] += 1
        pids[version].add(body["pid"])
    assert 0.10 <= served["2"] / REQUESTS <= 0.45, served
    # concurrent requests get execution environments of their own (as in Lambda); each
    # serves one version and is never restarted: one cold start per process
    assert pids["1"] and pids["2"] and not pids["1"] & pids["2"], pids
    starts = [line for line in canary_api.lines if " START RequestId: " in line]
    assert len(starts) == REQUESTS
    assert sum(f"[{canary_api.function}:2] START" in line for line in starts) == served["2"]
    assert sum(" Version: 2" in line for line in starts) == served["2"]
    reports = [line for line in canary_api.lines if "Init Duration" in line]
    assert len(reports) == len(pids["1"]) + len(pids["2"])
    canary_api.context.shipper.flush()
    streams = [stream for _, stream in canary_api.context.shipper.created_streams]
    prefixes = Counter(stream.split("/")[3][:3] for stream in streams)  # one per environment
    assert prefixes == {"[1]": len(pids["1"]), "[2]": len(pids["2"])}, prefixes

    # moving the alias is served by the very next request
    canary_api.route({}, primary="2")
    assert [canary_api.call("/where")[2]["version"] for _ in range(5)] == ["2"] * 5
    canary_api.route({}, primary="1")
    assert canary_api.call("/where")[2]["version"] == "1"


def test_the_invocations_metrics_are_in_cloudwatch_by_executed_version(canary_api):
    since = datetime.now(UTC) - timedelta(minutes=1)
    canary_api.route({"2": 0.5})
    invocations: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for n in range(24):
        failing = n % 3 == 0
        status, served_by, _ = canary_api.call("/where?fail=1" if failing else "/where")
        version = served_by.rsplit(":", 1)[1]
        assert status == (500 if failing else 200)
        invocations[version] += 1
        errors[version] += failing
    assert invocations["1"] and invocations["2"], invocations
    canary_api.stop()  # a clean shutdown sends what the answered requests measured

    def total(metric: str, **dimensions: str) -> float:
        return _metric_total(canary_api.cloudwatch, since, metric, dimensions)

    name = canary_api.function
    for version in ("1", "2"):
        by_version = {"FunctionName": name, "Resource": f"{name}:live", "ExecutedVersion": version}
        assert total("Invocations", **by_version) == invocations[version]
        assert total("Errors", **by_version) == errors[version]
    # the alias and the function: every invocation once (exact dimension sets, patch m)
    assert total("Invocations", FunctionName=name, Resource=f"{name}:live") == 24
    assert total("Invocations", FunctionName=name) == 24
    assert total("Errors", FunctionName=name) == 8

    # GetMetricData reads the same, whatever order the dimensions are listed in
    query = {
        "Id": "errors",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [
                    {"Name": "ExecutedVersion", "Value": "2"},
                    {"Name": "Resource", "Value": f"{name}:live"},
                    {"Name": "FunctionName", "Value": name},
                ],
            },
            "Period": 3600,
            "Stat": "Sum",
        },
    }
    result = canary_api.cloudwatch.get_metric_data(
        MetricDataQueries=[query],
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
    )["MetricDataResults"][0]
    assert sum(result["Values"]) == errors["2"]
    assert total("Duration", FunctionName=name) > 0


def test_lambda_invoke_in_the_emulator_honours_the_weights_and_publishes_metrics(
    canary_api, tmp_path
):
    """The emulator's Invoke runs functions through the same local context as the API.

    All the weight on the additional version makes the choice certain: moto alone would run
    the primary version (or $LATEST, as it ignores the Qualifier parameter).
    """
    register(Path(canary_api.context.ca_bundle), ACCOUNT, Path(os.environ["STACKRUN_RUNTIME_DIR"]))
    since = datetime.now(UTC) - timedelta(minutes=1)
    canary_api.route({"2": 1.0}, primary="1")
    for n in range(12):
        failing = n % 4 == 0
        event = {"queryStringParameters": {"fail": "1"}} if failing else {}
        reply = canary_api.lambda_.invoke(
            FunctionName=canary_api.function, Qualifier="live", Payload=json.dumps(event)
        )
        payload = json.loads(reply["Payload"].read())
        assert ("FunctionError" in reply) == failing, payload
        if failing:
            assert payload["errorMessage"] == "asked to fail"
        else:
            assert payload["version"] == "2"

    # the code it ran is the emulator's own, whichever client registered or invoked
    state = emulator_state_of(Path(canary_api.context.ca_bundle).parent)
    extracted = emulated_lambda_dir(state, ACCOUNT) / "functions" / canary_api.function
    assert [folder.name for folder in extracted.iterdir() if folder.is_dir()], extracted

    name = canary_api.function
    resource = {"FunctionName": name, "Resource": f"{name}:live"}

    def total(metric: str, **dimensions: str) -> float:
        return _metric_total(canary_api.cloudwatch, since, metric, dimensions)

    deadline = time.monotonic() + 10  # published by the emulator's background thread
    while total("Invocations", **resource) < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total("Invocations", **resource) == 12
    assert total("Invocations", **resource, ExecutedVersion="2") == 12
    assert total("Errors", **resource, ExecutedVersion="2") == 3
    assert total("Invocations", **resource, ExecutedVersion="1") == 0
