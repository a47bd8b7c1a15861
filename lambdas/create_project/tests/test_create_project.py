"""POST /projects through the real handler: HTTP API v2.0 events, moto's Secrets Manager and a
real PostgreSQL database (FLEET_TEST_DATABASE_URL)."""

from __future__ import annotations

import re
import socket

import pytest
from fleet_testing.events import TEST_SUB, TEST_TOKEN, http_event, invoke, jwt_claims

from create_project.handler import handler

INJECTION = "x'; drop table device; --"
TRAVERSAL = "../../etc"


def post(body, **kwargs):
    return invoke(handler, http_event("POST", "/projects", body=body, **kwargs))


def error_of(result, status, code):
    assert result.status == status, result.body
    assert result.headers["content-type"] == "application/json"
    body = result.json
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def details_of(result):
    return {d["path"]: d["problem"] for d in error_of(result, 400, "validation_error")["details"]}


def test_creates_the_project_and_its_team(fleet_api_env):
    result = post({"name": "edge-cameras", "team": "platform"})
    assert result.status == 201
    project = result.json["project"]
    assert set(project) == {"id", "name", "team", "created_by", "created_at"}
    assert project["name"] == "edge-cameras" and project["team"] == "platform"
    assert project["created_by"] == TEST_SUB
    assert isinstance(project["id"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", project["created_at"])
    assert result.headers["location"] == "/projects/edge-cameras"
    rows = fleet_api_env.query(
        "SELECT p.id, p.name, t.name, p.created_by FROM project p JOIN team t ON t.id = p.team_id"
    )
    assert rows == [[project["id"], "edge-cameras", "platform", TEST_SUB]]


def test_the_team_is_created_once_and_reused(fleet_api_env):
    assert post({"name": "a", "team": "platform"}).status == 201
    assert post({"name": "b", "team": "platform"}).status == 201
    assert post({"name": "c", "team": "other"}).status == 201
    assert fleet_api_env.query("SELECT name FROM team ORDER BY name") == [["other"], ["platform"]]
    assert fleet_api_env.query(
        "SELECT count(DISTINCT team_id) FROM project WHERE name IN ('a', 'b')"
    ) == [[1]]


def test_an_existing_project_name_is_a_409_and_creates_nothing(fleet_api_env):
    first = post({"name": "dup", "team": "platform"})
    assert first.status == 201
    result = post({"name": "dup", "team": "brand-new-team"})
    error = error_of(result, 409, "conflict")
    assert error["message"] == 'a project named "dup" already exists'
    assert error["details"] == [{"path": "body.name", "problem": "is already taken"}]
    # The whole transaction rolled back: the new team of the failed attempt does not exist.
    assert fleet_api_env.query("SELECT name FROM team") == [["platform"]]
    assert fleet_api_env.query("SELECT count(*) FROM project") == [[1]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"body.name": "is required", "body.team": "is required"}),
        ({"name": "p"}, {"body.team": "is required"}),
        (
            {"name": 1, "team": None},
            {"body.name": "must be a string", "body.team": "must be a string"},
        ),
        (
            {"name": ["p"], "team": {"t": 1}},
            {"body.name": "must be a string", "body.team": "must be a string"},
        ),
        ({"name": "p", "team": "t", "owner": "me"}, {"body.owner": "is not allowed"}),
        ({"name": "", "team": "t"}, {"body.name": "must not be empty"}),
        (
            {"name": "p" * 101, "team": "t" * 101},
            {
                "body.name": "must be at most 100 characters",
                "body.team": "must be at most 100 characters",
            },
        ),
        (
            {"name": " p", "team": "t "},
            {
                "body.name": "must not start or end with whitespace",
                "body.team": "must not start or end with whitespace",
            },
        ),
        ({"name": "   ", "team": "t"}, {"body.name": "must not start or end with whitespace"}),
        ({"name": "p\x00", "team": "t"}, {"body.name": "must not contain NUL characters"}),
    ],
)
def test_malformed_fields_are_400_with_one_error_per_field(fleet_api_env, body, expected):
    result = post(body)
    assert details_of(result) == expected
    assert fleet_api_env.query("SELECT count(*) FROM project") == [[0]]


@pytest.mark.parametrize("body", ["{not json", "[]", '"project"', "null", "", '{"name": NaN}'])
def test_bodies_that_are_not_json_objects_are_400(fleet_api_env, body):
    event = http_event("POST", "/projects")
    event["body"] = body
    error = error_of(invoke(handler, event), 400, "bad_request")
    assert error["details"][0]["path"] == "body"


def test_limits_are_inclusive(fleet_api_env):
    result = post({"name": "n" * 100, "team": "t" * 100})
    assert result.status == 201
    assert post({"name": "x", "team": "with  inner spaces"}).status == 201


def test_base64_encoded_bodies_are_accepted(fleet_api_env):
    result = invoke(
        handler,
        http_event("POST", "/projects", body={"name": "b64", "team": "t"}, base64_body=True),
    )
    assert result.status == 201


def test_injection_strings_are_stored_literally(fleet_api_env):
    result = post({"name": INJECTION, "team": TRAVERSAL})
    assert result.status == 201
    assert result.json["project"]["name"] == INJECTION
    assert result.json["project"]["team"] == TRAVERSAL
    assert result.headers["location"] == "/projects/x%27%3B%20drop%20table%20device%3B%20--"
    assert fleet_api_env.query("SELECT name FROM project") == [[INJECTION]]
    assert fleet_api_env.query("SELECT name FROM team") == [[TRAVERSAL]]
    assert fleet_api_env.query("SELECT to_regclass('device') IS NOT NULL") == [[True]]
    # ... and matched literally: the same name again is a conflict, nothing else.
    error_of(post({"name": INJECTION, "team": TRAVERSAL}), 409, "conflict")
    unicode_name = "Café 🛰️ / ?#%"
    created = post({"name": unicode_name, "team": "t"})
    assert created.json["project"]["name"] == unicode_name
    assert (
        created.headers["location"]
        == "/projects/Caf%C3%A9%20%F0%9F%9B%B0%EF%B8%8F%20%2F%20%3F%23%25"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_is_a_json_500_without_traceback(
    fleet_api_env, monkeypatch, fleet_logs
):
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    event = http_event("POST", "/projects", body={"name": "p", "team": "t"})
    result = invoke(handler, event)
    error = error_of(result, 500, "internal_error")
    assert error == {"code": "internal_error", "message": "internal server error", "details": []}
    assert "Traceback" not in result.body and "pg8000" not in result.body
    logged = [r for r in fleet_logs.records() if r.get("level") == "ERROR"]
    assert logged and logged[0]["correlation_id"] == event["requestContext"]["requestId"]
    assert "Traceback" in logged[0]["exception"]


def test_logs_carry_the_correlation_id_and_never_the_password(fleet_api_env, fleet_logs):
    event = http_event(
        "POST", "/projects", body={"name": "logged", "team": "t"}, request_id="Corr-ID-4242="
    )
    assert invoke(handler, event).status == 201
    records = fleet_logs.records()
    handled = [r for r in records if r.get("message") == "request handled"]
    assert handled and handled[0]["correlation_id"] == "Corr-ID-4242="
    assert handled[0]["status"] == 201 and handled[0]["route"] == "POST /projects"
    connecting = [r for r in records if r.get("message") == "connecting to the database"]
    assert connecting and connecting[0]["correlation_id"] == "Corr-ID-4242="
    text = fleet_logs.text()
    assert "Corr-ID-4242=" in text
    assert fleet_api_env.password not in text


def test_the_connection_is_reused_across_invocations(fleet_api_env, fleet_logs):
    for i in range(3):
        assert post({"name": f"p{i}", "team": "t"}).status == 201
    assert fleet_logs.text().count('"connecting to the database"') == 1


def _wait_until_blocked(env, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = env.query(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'fleet-registry-api' AND wait_event_type = 'Lock'"
        )
        if rows[0][0]:
            return
        time.sleep(0.02)
    raise AssertionError("the handler never waited for the concurrent insert")


@pytest.mark.parametrize("outcome", ["COMMIT", "ROLLBACK"])
def test_a_team_created_concurrently_is_waited_for_and_reused(fleet_api_env, outcome):
    import threading

    other = fleet_api_env.connect()  # another request creating the same team, in flight
    other.run("BEGIN")
    other.run("INSERT INTO team (name) VALUES ('new-team')")
    box = {}
    try:
        thread = threading.Thread(
            target=lambda: box.setdefault("r", post({"name": "p", "team": "new-team"}))
        )
        thread.start()
        _wait_until_blocked(fleet_api_env)
        other.run(outcome)
        thread.join(10)
    finally:
        other.close()
    assert box["r"].status == 201
    assert fleet_api_env.query("SELECT name FROM team") == [["new-team"]]


# ---- the caller and the limits ----------------------------------------------------------------


def test_created_by_is_the_callers_sub(fleet_api_env):
    for sub in ("7c0ffee0client0id000000000", "auth0|user-42", "é" * 256):
        claims = jwt_claims(sub, client_id="some-client")
        result = post({"name": f"p-{len(sub)}-{sub[:3]}", "team": "t"}, claims=claims)
        assert result.status == 201, result.body
        assert result.json["project"]["created_by"] == sub
    assert fleet_api_env.query("SELECT created_by FROM project ORDER BY id") == [
        ["7c0ffee0client0id000000000"],
        ["auth0|user-42"],
        ["é" * 256],
    ]


def test_a_conflict_leaves_the_first_creator(fleet_api_env):
    assert post({"name": "dup", "team": "t"}, claims=jwt_claims("first")).status == 201
    error_of(post({"name": "dup", "team": "t"}, claims=jwt_claims("second")), 409, "conflict")
    assert fleet_api_env.query("SELECT created_by FROM project") == [["first"]]


UNAUTHORIZED = {
    "error": {
        "code": "unauthorized",
        "message": "the request carries no verified identity",
        "details": [],
    }
}


def test_without_verified_claims_the_answer_is_401_and_nothing_is_stored(
    fleet_api_env, monkeypatch, fleet_logs
):
    result = post({"name": "p", "team": "t"}, claims=None)
    assert result.status == 401 and result.json == UNAUTHORIZED
    assert result.headers["www-authenticate"] == "Bearer"
    assert fleet_api_env.query("SELECT count(*) FROM project") == [[0]]
    assert fleet_api_env.query("SELECT count(*) FROM team") == [[0]]
    # Before any database work: an unreachable database makes no difference.
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    assert post({"name": "p", "team": "t"}, claims=None).json == UNAUTHORIZED
    assert "connecting to the database" not in fleet_logs.text()


TOO_LARGE = {
    "error": {
        "code": "payload_too_large",
        "message": "the request body is larger than 16384 bytes",
        "details": [{"path": "body", "problem": "must be at most 16384 bytes"}],
    }
}


@pytest.mark.parametrize("base64_body", [False, True])
def test_a_body_over_16_kib_is_413_and_stores_nothing(fleet_api_env, base64_body):
    text = '{"name": "p", "team": "t"}'
    exact = text + " " * (16384 - len(text))
    result = post(exact + " ", base64_body=base64_body)
    assert result.status == 413 and result.json == TOO_LARGE
    assert fleet_api_env.query("SELECT count(*) FROM project") == [[0]]
    assert fleet_api_env.query("SELECT count(*) FROM team") == [[0]]
    assert post(exact, base64_body=base64_body).status == 201


def test_the_log_names_the_caller_and_never_the_token(fleet_api_env, fleet_logs):
    claims = jwt_claims("logged-sub", client_id="logged-client")
    event = http_event(
        "POST", "/projects", body={"name": "p", "team": "t"}, claims=claims, request_id="Cp-1="
    )
    assert invoke(handler, event).status == 201
    handled = [r for r in fleet_logs.records() if r.get("message") == "request handled"]
    assert handled[0]["caller_sub"] == "logged-sub"
    assert handled[0]["caller_client_id"] == "logged-client"
    error_of(post({"name": "p", "team": "t"}), 409, "conflict")
    post({"name": " bad"})
    post({"name": "p2", "team": "t"}, claims=None)
    text = fleet_logs.text()
    for piece in (TEST_TOKEN, *TEST_TOKEN.split(".")):
        assert piece not in text
