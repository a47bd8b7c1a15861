"""The local API's pieces: API Gateway routing and events, and the awslambdaric runtime.

The runtime tests start the real runtime interface client (awslambdaric, in the local
python3.12 runtime environment) against the local Runtime API; nothing is imported in-process.
"""

from __future__ import annotations

import base64
import json
import os
import textwrap
from pathlib import Path

import pytest

from stackrun.localapi import gateway
from stackrun.localapi.functions import runtime_python, split_function_arn
from stackrun.localapi.runtime import FunctionProcess, ProcessSpec, clean_environment

ROUTES = [
    gateway.Route("GET /projects/{project}/devices", "integrations/list"),
    gateway.Route("POST /projects/{project}/devices", "integrations/register"),
    gateway.Route("GET /projects/special/devices", "integrations/special"),
    gateway.Route("ANY /files/{path+}", "integrations/files"),
    gateway.Route("$default", "integrations/default"),
]


@pytest.mark.parametrize(
    ("method", "path", "target", "parameters"),
    [
        ("GET", "/projects/p1/devices", "integrations/list", {"project": "p1"}),
        ("POST", "/projects/p1/devices", "integrations/register", {"project": "p1"}),
        ("GET", "/projects/special/devices", "integrations/special", {}),
        ("GET", "/projects/a%2Fb/devices", "integrations/list", {"project": "a/b"}),
        ("DELETE", "/files/a/b/c.txt", "integrations/files", {"path": "a/b/c.txt"}),
        ("PUT", "/projects/p1/devices", "integrations/default", {}),
        ("GET", "/nothing/here", "integrations/default", {}),
    ],
)
def test_routes_are_selected_like_api_gateway(method, path, target, parameters):
    route, bound = gateway.match_route(ROUTES, method, path)
    assert (route.target, bound) == (target, parameters)


def test_without_a_default_route_an_unmatched_request_has_no_route():
    routes = [route for route in ROUTES if route.key != "$default"]
    assert gateway.match_route(routes, "GET", "/projects") is None
    assert gateway.match_route(routes, "GET", "/projects/p1/devices/extra") is None


def test_the_event_is_payload_format_2():
    request = gateway.HttpRequest(
        method="POST",
        raw_path="/projects/p1/devices",
        raw_query="limit=5&tag=a&tag=b",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "a=1; b=2"),
        ],
        body=b'{"name": "d"}',
        source_ip="127.0.0.1",
    )
    route = ROUTES[1]
    event = gateway.build_event(
        request,
        route,
        {"project": "p1"},
        api_id="abc",
        stage="$default",
        account_id="111111111111",
        domain="abc.execute-api.eu-west-1.amazonaws.com",
        request_id="rid",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /projects/{project}/devices"
    assert event["headers"]["x-multi"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"limit": "5", "tag": "a,b"}
    assert event["pathParameters"] == {"project": "p1"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"name": "d"}', False)
    context = event["requestContext"]
    assert (context["requestId"], context["accountId"], context["apiId"]) == (
        "rid",
        "111111111111",
        "abc",
    )
    assert context["http"]["method"] == "POST"

    binary = gateway.HttpRequest(
        "POST", "/x", "", [("content-type", "image/png")], b"\x89PNG", "127.0.0.1"
    )
    event = gateway.build_event(
        binary, route, {}, api_id="a", stage="$default", account_id="1", domain="d", request_id="r"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"


def test_function_answers_become_http_responses():
    answer = {"statusCode": 201, "headers": {"Location": "/x"}, "body": '{"ok": true}'}
    assert gateway.http_response(json.dumps(answer).encode()) == (
        201,
        {"location": "/x"},
        b'{"ok": true}',
    )
    encoded = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert gateway.http_response(json.dumps(encoded).encode())[2] == b"\x00\x01"
    # anything without statusCode is the JSON body of a 200
    assert gateway.http_response(b'{"a": 1}') == (200, gateway.JSON, b'{"a": 1}')
    assert gateway.http_response(b"not json")[0] == 500
    assert gateway.http_response(b'{"statusCode": "x"}')[0] == 500


def test_integration_uris_name_the_function():
    arn = "arn:aws:lambda:eu-west-1:111111111111:function:fleet-dev-x:live"
    uri = f"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    assert gateway.function_of_integration(uri) == arn
    assert gateway.function_of_integration(arn) == arn
    assert split_function_arn(arn) == ("fleet-dev-x", "live")
    assert split_function_arn("fleet-dev-x") == ("fleet-dev-x", None)


# ---- the runtime: awslambdaric against the local Runtime API ----------------------------------

HANDLERS = """
import os
import time


def echo(event, context):
    return {
        "event": event,
        "function": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "region": os.environ.get("AWS_REGION"),
    }


def slow(event, context):
    print("going to sleep")
    time.sleep(30)


def greedy(event, context):
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(8)]  # 512 MB
    return len(blocks)


def fails(event, context):
    raise ValueError("bad input " + str(event.get("n")))
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    directory = os.environ.get("STACKRUN_RUNTIME_DIR") or str(tmp_path_factory.mktemp("rt"))
    return runtime_python("python3.12", Path(directory))


def _process(runtime: Path, tmp_path: Path, handler: str, timeout: int = 3, memory: int = 128):
    (tmp_path / "app.py").write_text(textwrap.dedent(HANDLERS))
    lines: list[str] = []
    spec = ProcessSpec(
        name="fn",
        version="7",
        function_arn="arn:aws:lambda:eu-west-1:111111111111:function:fn:live",
        python=runtime,
        task_root=tmp_path,
        handler=handler,
        timeout_seconds=timeout,
        memory_mb=memory,
        environment=clean_environment(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "fn",
                "AWS_LAMBDA_FUNCTION_VERSION": "7",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_REGION": "eu-west-1",
                "PYTHONPATH": str(tmp_path),
            }
        ),
    )
    return FunctionProcess(spec, lines.append), lines


def test_the_runtime_client_runs_the_handler_warm_with_a_lambda_context(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.echo", timeout=3)
    try:
        first = process.invoke(b'{"n": 1}')
        second = process.invoke(b'{"n": 2}')
    finally:
        process.stop()
    assert not first.failed, first.error
    result = json.loads(first.payload)
    assert result["event"] == {"n": 1}
    assert result["function"] == "fn"
    assert result["request_id"] == first.request_id
    assert 0 < result["remaining_ms"] <= 3000
    assert result["memory"] == "128"
    assert result["region"] == "eu-west-1"
    assert first.init_ms is not None and second.init_ms is None  # one cold start, then warm
    assert json.loads(second.payload)["event"] == {"n": 2}
    assert any(line.startswith(f"START RequestId: {first.request_id} Version: 7") for line in lines)
    assert any(line.startswith(f"REPORT RequestId: {second.request_id}") for line in lines)


def test_a_handler_error_is_reported_like_lambda(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.fails")
    try:
        outcome = process.invoke(b'{"n": 3}')
    finally:
        process.stop()
    assert outcome.error["errorType"] == "ValueError"
    assert outcome.error["errorMessage"] == "bad input 3"
    assert any("bad input 3" in line for line in lines)


def test_an_unknown_handler_fails_init_with_the_cause(runtime, tmp_path):
    process, _ = _process(runtime, tmp_path, "nope.handler")
    try:
        outcome = process.invoke(b"{}")
    finally:
        process.stop()
    assert outcome.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'nope'" in outcome.error["errorMessage"]


def test_the_timeout_kills_the_environment_and_the_next_call_starts_fresh(runtime, tmp_path):
    process, lines = _process(runtime, tmp_path, "app.slow", timeout=1)
    try:
        outcome = process.invoke(b"{}")
        assert outcome.error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in outcome.error["errorMessage"]
        assert "going to sleep" in lines
        again = process.invoke(b"{}")
        assert again.init_ms is not None  # a new environment
    finally:
        process.stop()


def test_the_memory_size_bounds_the_function(runtime, tmp_path):
    small, _ = _process(runtime, tmp_path, "app.greedy", memory=128)
    large, _ = _process(runtime, tmp_path, "app.greedy", memory=1024)
    try:
        refused = small.invoke(b"{}")
        allowed = large.invoke(b"{}")
    finally:
        small.stop()
        large.stop()
    assert refused.failed and refused.error["errorType"] in ("MemoryError", "Runtime.ExitError")
    assert not allowed.failed, allowed.error
    assert json.loads(allowed.payload) == 8
