"""The app builder, the handler wrapper, body parsing and the test event factory."""

from __future__ import annotations

import base64
import json

import pg8000.exceptions
import pytest
from fleet_testing.events import LambdaContext, http_event, invoke

from fleet_common.api import (
    build_app,
    json_response,
    make_handler,
    parse_json_body,
    path_param,
    timestamp,
)
from fleet_common.errors import BadRequest, Conflict, FieldError, NotFound, ValidationFailed
from fleet_common.validation import NAME_SCHEMA, validate

SCHEMA = {
    "type": "object",
    "properties": {"name": NAME_SCHEMA},
    "required": ["name"],
    "additionalProperties": False,
}

app = build_app()


@app.post("/things")
def post_thing():
    body = validate(parse_json_body(app.current_event), SCHEMA)
    return json_response(201, {"thing": body}, headers={"Location": "/things/x"})


@app.get("/things/<thing>")
def get_thing(**_):
    name = path_param(app, "thing")
    if name == "missing":
        raise NotFound(f'thing "{name}" does not exist')
    if name == "taken":
        raise Conflict("taken", [FieldError("path.thing", "is taken")])
    if name == "boom":
        raise RuntimeError("secret internals: password=hunter2")
    if name == "toolong":
        raise pg8000.exceptions.DatabaseError(
            {"S": "ERROR", "C": "22001", "M": "value too long for type character varying(5)"}
        )
    return json_response(200, {"thing": name})


handler = make_handler(app)


def _thing(name: str):
    return http_event("GET", f"/things/{name}", "GET /things/{thing}", {"thing": name})


def _error(result, status: int, code: str):
    assert result.status == status
    assert result.headers["content-type"] == "application/json"
    body = result.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    return body["error"]


def test_http_event_has_the_v2_shape():
    event = http_event(
        "post",
        "/projects/a b/devices",
        "POST /projects/{project}/devices",
        {"project": "a b"},
        {"name": "x"},
        {"limit": "2", "tag": ["a", "b c"]},
        request_id="abc=",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /projects/{project}/devices"
    assert event["rawPath"] == "/projects/a b/devices"
    assert event["rawQueryString"] == "limit=2&tag=a&tag=b+c"
    assert event["queryStringParameters"] == {"limit": "2", "tag": "a,b c"}
    assert event["pathParameters"] == {"project": "a b"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/projects/a b/devices"
    assert event["requestContext"]["requestId"] == "abc="
    assert event["requestContext"]["routeKey"] == event["routeKey"]
    assert event["requestContext"]["stage"] == "$default"
    assert json.loads(event["body"]) == {"name": "x"}
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    get = http_event("GET", "/things")
    assert "body" not in get and "queryStringParameters" not in get
    assert "pathParameters" not in get and get["rawQueryString"] == ""


def test_success_response():
    result = invoke(handler, http_event("POST", "/things", body={"name": "n"}))
    assert result.status == 201
    assert result.json == {"thing": {"name": "n"}}
    assert result.headers["location"] == "/things/x"
    assert result.headers["cache-control"] == "no-store"


def test_base64_encoded_body():
    result = invoke(handler, http_event("POST", "/things", body={"name": "n"}, base64_body=True))
    assert result.status == 201


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "is required"),
        ("", "is required"),
        ("{", "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "must be an object"),
        ("null", "must be an object"),
        ('"name"', "must be an object"),
        ("42", "must be an object"),
        ('{"name": NaN}', "NaN is not valid JSON"),
        ('{"name": Infinity}', "Infinity is not valid JSON"),
        ('{"name": 1e999}', "has a number out of range"),
        ('{"name": ' + "1" * 5000 + "}", "has a number out of range"),
        ("[" * 5000 + "]" * 5000, "is nested too deeply"),
    ],
)
def test_malformed_bodies_are_400_bad_request(body, problem):
    event = http_event("POST", "/things")
    if body is not None:
        event["body"] = body
    error = _error(invoke(handler, event), 400, "bad_request")
    assert error["details"] == [{"path": "body", "problem": problem}]


def test_bad_base64_body_is_400():
    event = http_event("POST", "/things", body={"name": "n"})
    event["body"], event["isBase64Encoded"] = "%%%not base64", True
    _error(invoke(handler, event), 400, "bad_request")
    event["body"] = base64.b64encode(b"\xff\xfe").decode()
    _error(invoke(handler, event), 400, "bad_request")


def test_unstorable_text_is_a_validation_error():
    error = _error(
        invoke(handler, http_event("POST", "/things", body='{"name": "a\\u0000b"}')),
        400,
        "validation_error",
    )
    assert error["details"] == [{"path": "body.name", "problem": "must not contain NUL characters"}]


def test_schema_errors_list_every_field():
    event = http_event("POST", "/things", body={"extra": 1, "more": True})
    error = _error(invoke(handler, event), 400, "validation_error")
    assert error["details"] == [
        {"path": "body.name", "problem": "is required"},
        {"path": "body.extra", "problem": "is not allowed"},
        {"path": "body.more", "problem": "is not allowed"},
    ]


def test_api_errors_render_their_status_and_code():
    error = _error(invoke(handler, _thing("missing")), 404, "not_found")
    assert error == {
        "code": "not_found",
        "message": 'thing "missing" does not exist',
        "details": [],
    }
    error = _error(invoke(handler, _thing("taken")), 409, "conflict")
    assert error["details"] == [{"path": "path.thing", "problem": "is taken"}]


def test_unknown_route_is_a_json_404():
    error = _error(invoke(handler, http_event("DELETE", "/nowhere")), 404, "not_found")
    assert error["message"] == "no route for DELETE /nowhere"


def test_unexpected_exception_is_a_generic_500_and_logged(fleet_logs):
    event = _thing("boom")
    rid = event["requestContext"]["requestId"]
    result = invoke(handler, event)
    error = _error(result, 500, "internal_error")
    assert error == {"code": "internal_error", "message": "internal server error", "details": []}
    assert "Traceback" not in result.body and "hunter2" not in result.body
    records = fleet_logs.records()
    (logged,) = [
        r for r in records if r.get("message") == "unhandled error while handling the request"
    ]
    assert logged["level"] == "ERROR"
    assert logged["correlation_id"] == rid
    assert "RuntimeError" in logged["exception"]


def test_data_the_database_refuses_is_422():
    result = invoke(handler, _thing("toolong"))
    _error(result, 422, "unprocessable")
    assert "character varying" not in result.body


def test_path_parameters_are_taken_decoded_from_api_gateway():
    # HTTP APIs deliver rawPath decoded: "a/b?c#d %" arrives with its slash, question mark...
    name = "a/b?c#d %41 ../../etc"
    result = invoke(handler, _thing(name))
    assert result.status == 200
    assert result.json == {"thing": name}


def test_named_stage_prefix_is_handled():
    event = http_event("GET", "/things/a/b", "GET /things/{thing}", {"thing": "a/b"}, stage="prod")
    assert event["rawPath"] == "/prod/things/a/b"
    assert invoke(handler, event).json == {"thing": "a/b"}


def test_cold_start_and_status_metrics_are_emitted(fleet_logs):
    invoke(handler, _thing("fine"), LambdaContext(function_name="metrics-test"))
    blobs = [r for r in fleet_logs.records() if "_aws" in r]
    namespaces = {m["Namespace"] for b in blobs for m in b["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"FleetRegistry"}
    assert any(b.get("Responses2xx") == [1.0] for b in blobs)


def test_timestamp_is_utc_rfc3339():
    from datetime import UTC, datetime, timedelta, timezone

    value = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(value) == "2025-01-02T01:04:05.000000Z"
    assert timestamp(datetime(2025, 1, 2, tzinfo=UTC)) == "2025-01-02T00:00:00.000000Z"


def test_error_classes():
    assert BadRequest("x").status == 400 and BadRequest("x").code == "bad_request"
    failed = ValidationFailed([FieldError("body.a", "is required"), FieldError("body.a", "x")])
    assert failed.message == "invalid request: body.a"
    assert failed.body()["error"]["details"][0] == {"path": "body.a", "problem": "is required"}


def test_an_event_that_is_not_an_http_api_event_gets_a_json_401_or_500():
    # No verified claims: 401 before anything else looks at it.
    _error(invoke(handler, {"not": "an http event"}), 401, "unauthorized")
    # Claims, but nothing else of an HTTP API event: the generic 500.
    event = {"not": "an http event", "requestContext": {"authorizer": {"jwt": {"claims": {}}}}}
    event["requestContext"]["authorizer"]["jwt"]["claims"] = {"sub": "x"}
    error = _error(invoke(handler, event), 500, "internal_error")
    assert error["message"] == "internal server error"
