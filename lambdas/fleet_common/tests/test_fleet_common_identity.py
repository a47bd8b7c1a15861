"""The verified caller: the Caller accessor, the 401 without verified claims (before any route
runs), the caller in every log line, and the token in none."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from fleet_testing.events import (
    DEFAULT_CLAIMS,
    TEST_CLIENT_ID,
    TEST_SUB,
    TEST_TOKEN,
    http_event,
    invoke,
    jwt_claims,
)

from fleet_common.api import build_app, json_response, make_handler, parse_json_body, path_param
from fleet_common.errors import NotFound
from fleet_common.identity import Caller, caller, caller_from_event, identify

UNAUTHORIZED_NO_IDENTITY = {
    "error": {
        "code": "unauthorized",
        "message": "the request carries no verified identity",
        "details": [],
    }
}
UNAUTHORIZED_BAD_SUB = {
    "error": {
        "code": "unauthorized",
        "message": "the verified identity has no usable sub claim",
        "details": [],
    }
}

app = build_app()
CALLS: list[str] = []


@app.get("/whoami")
def whoami() -> Any:
    CALLS.append("whoami")
    who = caller(app)
    return json_response(
        200, {"sub": who.sub, "client_id": who.client_id, "scopes": list(who.scopes)}
    )


handler = make_handler(app)


def _whoami(**kwargs: Any) -> dict[str, Any]:
    return http_event("GET", "/whoami", **kwargs)


# ---- the accessor -----------------------------------------------------------------------------


def test_the_default_test_event_carries_a_cognito_client_credentials_caller():
    event = http_event("GET", "/whoami")
    jwt = event["requestContext"]["authorizer"]["jwt"]
    assert jwt["claims"] == dict(DEFAULT_CLAIMS)
    assert jwt["claims"]["sub"] == jwt["claims"]["client_id"] == TEST_CLIENT_ID
    assert jwt["scopes"] == ["fleet/read", "fleet/write"]
    assert all(isinstance(v, str) for v in jwt["claims"].values())
    assert event["headers"]["authorization"] == f"Bearer {TEST_TOKEN}"
    assert identify(event) == Caller(TEST_SUB, TEST_CLIENT_ID, ("fleet/read", "fleet/write"))


def test_an_event_without_claims_has_no_authorizer_and_no_token():
    event = http_event("GET", "/whoami", claims=None)
    assert "authorizer" not in event["requestContext"]
    assert "authorization" not in event["headers"]
    assert caller_from_event(event) is None


def test_scopes_come_from_the_authorizer_else_from_the_scope_claim():
    event = _whoami(claims=jwt_claims("c1", scopes=["fleet/read"]))
    assert identify(event).scopes == ("fleet/read",)
    assert identify(event).has_scope("fleet/read") and not identify(event).has_scope("x")
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = None
    assert identify(event).scopes == ("fleet/read",)
    event = _whoami(claims=jwt_claims("c1", scopes=["a", "b", "a"]), scopes=["z"])
    assert identify(event).scopes == ("z",)
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = []
    assert identify(event).scopes == ("a", "b")


def test_another_issuers_caller_uses_azp_as_client_id():
    claims = {"sub": "user|42", "aud": "fleet-api", "azp": "web-app", "iss": "https://i.example"}
    assert identify(_whoami(claims=claims)) == Caller("user|42", "web-app", ())
    del claims["azp"]
    assert identify(_whoami(claims=claims)).client_id is None
    too_long = jwt_claims("c1", client_id="c" * 257)
    assert identify(_whoami(claims=too_long)).client_id is None
    assert Caller("s", None, ()).log_keys() == {"caller_sub": "s", "caller_client_id": None}


def test_routes_read_the_caller():
    claims = jwt_claims("7abc", client_id="7abc", scopes=["fleet/read"])
    result = invoke(handler, _whoami(claims=claims))
    assert result.status == 200
    assert result.json == {"sub": "7abc", "client_id": "7abc", "scopes": ["fleet/read"]}
    longest = "s" * 256
    assert invoke(handler, _whoami(claims=jwt_claims(longest))).json["sub"] == longest


# ---- the 401 ----------------------------------------------------------------------------------


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    event = _whoami()
    node = event
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return event


def _with_claims(claims: Any) -> dict[str, Any]:
    event = _whoami()
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return event


@pytest.mark.parametrize(
    ("event", "body"),
    [
        (http_event("GET", "/whoami", claims=None), UNAUTHORIZED_NO_IDENTITY),
        (_without(("requestContext", "authorizer")), UNAUTHORIZED_NO_IDENTITY),
        (_without(("requestContext", "authorizer", "jwt")), UNAUTHORIZED_NO_IDENTITY),
        (_without(("requestContext",)), UNAUTHORIZED_NO_IDENTITY),
        (_with_claims({}), UNAUTHORIZED_NO_IDENTITY),
        (_with_claims(None), UNAUTHORIZED_NO_IDENTITY),
        (_with_claims("sub=x"), UNAUTHORIZED_NO_IDENTITY),
        (_with_claims({"client_id": "c"}), UNAUTHORIZED_BAD_SUB),
        (_with_claims({"sub": ""}), UNAUTHORIZED_BAD_SUB),
        (_with_claims({"sub": 42}), UNAUTHORIZED_BAD_SUB),
        (_with_claims({"sub": "s" * 257}), UNAUTHORIZED_BAD_SUB),
        (_with_claims({"sub": "a\x00b"}), UNAUTHORIZED_BAD_SUB),
        (_with_claims({"sub": "\ud800"}), UNAUTHORIZED_BAD_SUB),
        # A Lambda authorizer's context is not a verified JWT.
        (
            {
                **_whoami(claims=None),
                "requestContext": {
                    **_whoami(claims=None)["requestContext"],
                    "authorizer": {"lambda": {"sub": "me"}},
                },
            },
            UNAUTHORIZED_NO_IDENTITY,
        ),
    ],
)
def test_without_a_verified_caller_the_answer_is_401_and_no_route_runs(event, body):
    CALLS.clear()
    result = invoke(handler, event)
    assert result.status == 401
    assert result.json == body
    assert result.headers["www-authenticate"] == "Bearer"
    assert result.headers["content-type"] == "application/json"
    assert CALLS == []


def test_the_401_comes_before_routing_and_body_parsing():
    # Unknown route, oversized and malformed bodies: all 401 without a caller.
    for event in (
        http_event("DELETE", "/nowhere", claims=None),
        http_event("POST", "/whoami", body="x" * 100_000, claims=None),
        http_event("POST", "/whoami", body="{not json", claims=None),
    ):
        assert invoke(handler, event).json == UNAUTHORIZED_NO_IDENTITY


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_401_does_no_database_work(monkeypatch, fleet_logs):
    from fleet_common import db

    db_app = build_app()

    @db_app.get("/count")
    def count() -> Any:
        with db.transaction() as conn:
            return json_response(200, {"n": conn.run("SELECT 1")[0][0]})

    db_handler = make_handler(db_app)
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    monkeypatch.setenv("DB_NAME", "fleet")
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x")
    db.reset_caches()
    try:
        result = invoke(db_handler, http_event("GET", "/count", claims=None))
    finally:
        db.reset_caches()
    assert result.status == 401
    assert "connecting to the database" not in fleet_logs.text()


def test_a_route_reading_the_caller_without_make_handler_gets_401():
    bare = build_app()

    @bare.get("/whoami")
    def bare_whoami() -> Any:
        return json_response(200, {"sub": caller(bare).sub})

    response = bare.resolve(http_event("GET", "/whoami", claims=None), None)
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == UNAUTHORIZED_NO_IDENTITY


# ---- logs -------------------------------------------------------------------------------------


def test_every_log_line_of_a_request_names_the_caller(fleet_logs):
    claims = jwt_claims("sub-1234", client_id="client-5678")
    invoke(handler, _whoami(claims=claims, request_id="Who-1="))
    lines = [r for r in fleet_logs.records() if r.get("correlation_id") == "Who-1="]
    handled = [r for r in lines if r.get("message") == "request handled"]
    assert len(handled) == 1 and handled[0]["status"] == 200
    assert all(
        (r["caller_sub"], r["caller_client_id"]) == ("sub-1234", "client-5678") for r in lines
    )
    # The next invocation starts clean: no caller of the previous one.
    invoke(handler, http_event("GET", "/whoami", claims=None, request_id="Who-2="))
    (second,) = [
        r
        for r in fleet_logs.records()
        if r.get("correlation_id") == "Who-2=" and r.get("message") == "request handled"
    ]
    assert second["status"] == 401
    assert "caller_sub" not in second and "caller_client_id" not in second


SECRET_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldCJ9."
    "eyJzdWIiOiJ0b2tlbi1tdXN0LW5ldmVyLWJlLWxvZ2dlZCJ9."
    "U0VDUkVULVNJR05BVFVSRS1NQVJLRVItOTk5"
)
SECRET_PIECES = (SECRET_TOKEN, *SECRET_TOKEN.split("."), "SESSION-COOKIE-MARKER")


def test_the_token_and_the_headers_are_never_logged(monkeypatch, fleet_logs, caplog):
    """Whatever the outcome, and even with every powertools switch that would print or log
    the event turned on."""
    for var in ("POWERTOOLS_DEV", "POWERTOOLS_EVENT_HANDLER_DEBUG", "POWERTOOLS_LOGGER_LOG_EVENT"):
        monkeypatch.setenv(var, "true")
    caplog.set_level(logging.DEBUG)
    debug_app = build_app()  # built now: the switches are read at construction

    @debug_app.post("/things")
    def post_thing() -> Any:
        body = parse_json_body(debug_app.current_event)
        return json_response(201, {"thing": body})

    @debug_app.get("/things/<thing>")
    def get_thing(**_: str) -> Any:
        name = path_param(debug_app, "thing")
        if name == "boom":
            raise RuntimeError("unexpected")
        raise NotFound(f'thing "{name}" does not exist')

    debug_handler = make_handler(debug_app)
    headers = {"authorization": f"Bearer {SECRET_TOKEN}", "cookie": "s=SESSION-COOKIE-MARKER"}
    thing = "GET /things/{thing}"
    events = [
        http_event("POST", "/things", body={"a": 1}, token=SECRET_TOKEN),  # 201
        http_event("POST", "/things", body="{nope", token=SECRET_TOKEN),  # 400
        http_event("POST", "/things", body="x" * 20_000, token=SECRET_TOKEN),  # 413
        http_event("GET", "/things/a", thing, {"thing": "a"}, token=SECRET_TOKEN),  # 404
        http_event("GET", "/things/boom", thing, {"thing": "boom"}, token=SECRET_TOKEN),  # 500
        http_event("GET", "/nowhere", token=SECRET_TOKEN),  # 404 no route
        http_event("GET", "/things/a", thing, {"thing": "a"}, claims=None, headers=headers),  # 401
    ]
    statuses = []
    for event in events:
        event["headers"].update(headers)
        statuses.append(invoke(debug_handler, event).status)
    assert statuses == [201, 400, 413, 404, 500, 404, 401]
    logged = fleet_logs.text() + caplog.text
    assert "request handled" in logged and TEST_SUB in logged  # the log was captured
    for piece in SECRET_PIECES:
        assert piece not in logged
    for record in fleet_logs.records():
        assert not {"event", "headers", "authorization"} & set(record), record
