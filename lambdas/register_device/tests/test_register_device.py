"""POST /projects/{project}/devices through the real handler: HTTP API v2.0 events, moto's
Secrets Manager and a real PostgreSQL database (FLEET_TEST_DATABASE_URL)."""

from __future__ import annotations

import json
import re
import socket

import pytest
from fleet_common.validation import stored_json_bytes
from fleet_testing.events import TEST_SUB, TEST_TOKEN, http_event, invoke, jwt_claims
from fleet_testing.proptest import AT_THE_LIMITS, same_json, seed_projects

from register_device.handler import handler

INJECTION = "x'; drop table device; --"
TRAVERSAL = "../../etc"


def post(project, body, **kwargs):
    event = http_event(
        "POST",
        f"/projects/{project}/devices",
        "POST /projects/{project}/devices",
        {"project": project},
        body,
        **kwargs,
    )
    return invoke(handler, event)


def error_of(result, status, code):
    assert result.status == status, result.body
    body = result.json
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def details_of(result):
    return {d["path"]: d["problem"] for d in error_of(result, 400, "validation_error")["details"]}


def make_project(env, name="cams", team="platform"):
    conn = env.connect()
    try:
        seed_projects(conn, {name: team}, created_by="project-creator")
    finally:
        conn.close()


def devices(env):
    return env.query(
        "SELECT p.name, d.name, d.serial, d.attributes FROM device d "
        "JOIN project p ON p.id = d.project_id ORDER BY d.id"
    )


def test_registers_a_device(fleet_api_env):
    make_project(fleet_api_env)
    body = {"name": "cam-01", "serial": "SN-0001", "attributes": {"fw": "1.2.3", "ports": [1, 2]}}
    result = post("cams", body)
    assert result.status == 201
    device = result.json["device"]
    assert set(device) == {"id", "name", "serial", "attributes", "created_by", "created_at"}
    assert device["name"] == "cam-01" and device["serial"] == "SN-0001"
    assert device["created_by"] == TEST_SUB
    assert device["attributes"] == {"fw": "1.2.3", "ports": [1, 2]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", device["created_at"])
    assert result.headers["location"] == "/projects/cams/devices/cam-01"
    assert devices(fleet_api_env) == [["cams", "cam-01", "SN-0001", body["attributes"]]]


def test_serial_and_attributes_are_optional(fleet_api_env):
    make_project(fleet_api_env)
    device = post("cams", {"name": "bare"}).json["device"]
    assert device["serial"] is None and device["attributes"] == {}
    assert post("cams", {"name": "nulls", "serial": None}).status == 201
    assert devices(fleet_api_env) == [["cams", "bare", None, {}], ["cams", "nulls", None, {}]]


def test_a_repeated_request_returns_the_existing_device_with_200(fleet_api_env):
    make_project(fleet_api_env)
    body = {"name": "cam-01", "serial": "SN-1", "attributes": {"a": 1, "b": {"c": [1, 2]}}}
    first = post("cams", body)
    assert first.status == 201
    again = post("cams", body)
    assert again.status == 200
    assert again.json == first.json
    assert "location" not in again.headers
    # The same content written differently is the same request.
    reordered = {"attributes": {"b": {"c": [1, 2]}, "a": 1.0}, "serial": "SN-1", "name": "cam-01"}
    assert post("cams", reordered).status == 200
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[1]]
    # Omitted serial/attributes equal null/{}.
    assert post("cams", {"name": "bare"}).status == 201
    assert post("cams", {"name": "bare", "serial": None, "attributes": {}}).status == 200
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[2]]


def test_the_same_name_with_other_content_is_a_409(fleet_api_env):
    make_project(fleet_api_env)
    assert post("cams", {"name": "cam-01", "serial": "SN-1", "attributes": {"a": 1}}).status == 201
    error = error_of(
        post("cams", {"name": "cam-01", "serial": "SN-2", "attributes": {"a": 1}}), 409, "conflict"
    )
    assert error["details"] == [
        {"path": "body.serial", "problem": "differs from the registered device"}
    ]
    assert "cam-01" in error["message"] and "cams" in error["message"]
    error = error_of(
        post("cams", {"name": "cam-01", "serial": "SN-1", "attributes": {"a": 2}}), 409, "conflict"
    )
    assert [d["path"] for d in error["details"]] == ["body.attributes"]
    error = error_of(post("cams", {"name": "cam-01"}), 409, "conflict")
    assert [d["path"] for d in error["details"]] == ["body.serial", "body.attributes"]
    assert devices(fleet_api_env) == [["cams", "cam-01", "SN-1", {"a": 1}]]


def test_the_same_name_in_another_project_is_another_device(fleet_api_env):
    make_project(fleet_api_env, "cams")
    make_project(fleet_api_env, "doors")
    assert post("cams", {"name": "dev"}).status == 201
    assert post("doors", {"name": "dev", "serial": "X"}).status == 201
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[2]]


def test_unknown_project_is_404(fleet_api_env):
    error = error_of(post("nope", {"name": "dev"}), 404, "not_found")
    assert error["message"] == 'project "nope" does not exist'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"body.name": "is required"}),
        ({"serial": "S"}, {"body.name": "is required"}),
        (
            {"name": "d", "extra": 1, "project": "p"},
            {"body.extra": "is not allowed", "body.project": "is not allowed"},
        ),
        ({"name": 5}, {"body.name": "must be a string"}),
        ({"name": ""}, {"body.name": "must not be empty"}),
        ({"name": "d" * 101}, {"body.name": "must be at most 100 characters"}),
        ({"name": " d"}, {"body.name": "must not start or end with whitespace"}),
        ({"name": "d", "serial": ""}, {"body.serial": "must not be empty"}),
        ({"name": "d", "serial": "s" * 101}, {"body.serial": "must be at most 100 characters"}),
        ({"name": "d", "serial": 123}, {"body.serial": "must be a string or null"}),
        ({"name": "d", "serial": "s "}, {"body.serial": "must not start or end with whitespace"}),
        ({"name": "d", "attributes": []}, {"body.attributes": "must be an object"}),
        ({"name": "d", "attributes": "x"}, {"body.attributes": "must be an object"}),
        ({"name": "d", "attributes": None}, {"body.attributes": "must be an object"}),
        (
            {"name": "d", "attributes": {"k": "v\x00"}},
            {"body.attributes.k": "must not contain NUL characters"},
        ),
        (
            {"name": None, "serial": [], "attributes": 1, "x": 0},
            {
                "body.name": "must be a string",
                "body.serial": "must be a string or null",
                "body.attributes": "must be an object",
                "body.x": "is not allowed",
            },
        ),
    ],
)
def test_malformed_bodies_are_400_with_field_errors(fleet_api_env, body, expected):
    make_project(fleet_api_env)
    assert details_of(post("cams", body)) == expected
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[0]]


@pytest.mark.parametrize("body", ["{", "[]", "1", "null", ""])
def test_non_object_bodies_are_400(fleet_api_env, body):
    make_project(fleet_api_env)
    event = http_event(
        "POST", "/projects/cams/devices", "POST /projects/{project}/devices", {"project": "cams"}
    )
    event["body"] = body
    error_of(invoke(handler, event), 400, "bad_request")


def test_limits_are_inclusive(fleet_api_env):
    make_project(fleet_api_env)
    assert post("cams", {"name": "n" * 100, "serial": "s" * 100}).status == 201


def test_injection_strings_are_stored_and_matched_literally(fleet_api_env):
    for project in (INJECTION, TRAVERSAL):
        error_of(post(project, {"name": "d"}), 404, "not_found")
    make_project(fleet_api_env, INJECTION, team=TRAVERSAL)
    make_project(fleet_api_env, "a/b")  # a slash in a project name: still routed
    body = {"name": INJECTION, "serial": "' OR '1'='1", "attributes": {INJECTION: TRAVERSAL}}
    result = post(INJECTION, body)
    assert result.status == 201, result.body
    assert result.headers["location"] == (
        "/projects/x%27%3B%20drop%20table%20device%3B%20--/devices/x%27%3B%20drop%20table%20device%3B%20--"
    )
    assert post(INJECTION, body).status == 200  # matched literally on retry
    assert post("a/b", {"name": TRAVERSAL}).status == 201
    assert devices(fleet_api_env) == [
        [INJECTION, INJECTION, "' OR '1'='1", {INJECTION: TRAVERSAL}],
        ["a/b", TRAVERSAL, None, {}],
    ]
    assert fleet_api_env.query("SELECT to_regclass('device') IS NOT NULL") == [[True]]


def test_data_beyond_json_types_is_rejected_not_stored(fleet_api_env):
    make_project(fleet_api_env)
    event = http_event(
        "POST", "/projects/cams/devices", "POST /projects/{project}/devices", {"project": "cams"}
    )
    event["body"] = '{"name": "d", "attributes": {"x": NaN}}'
    error_of(invoke(handler, event), 400, "bad_request")
    event["body"] = '{"name": "d", "attributes": {"x": "\\ud800"}}'
    assert details_of(invoke(handler, event)) == {
        "body.attributes.x": "must not contain unpaired surrogates"
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_is_a_json_500_without_traceback(
    fleet_api_env, monkeypatch, fleet_logs
):
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    result = post("cams", {"name": "d"})
    error = error_of(result, 500, "internal_error")
    assert error == {"code": "internal_error", "message": "internal server error", "details": []}
    assert "Traceback" not in result.body
    assert any(r.get("level") == "ERROR" and "correlation_id" in r for r in fleet_logs.records())


def test_logs_carry_the_correlation_id_and_never_the_password(fleet_api_env, fleet_logs):
    make_project(fleet_api_env)
    result = post("cams", {"name": "d"}, request_id="Reg-Corr-99=")
    assert result.status == 201
    handled = [r for r in fleet_logs.records() if r.get("message") == "request handled"]
    assert handled[0]["correlation_id"] == "Reg-Corr-99="
    assert handled[0]["route"] == "POST /projects/{project}/devices"
    assert fleet_api_env.password not in fleet_logs.text()


def _in_thread(fn):
    import threading

    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()))
    thread.start()
    return thread, box


def _insert_uncommitted(env, sql, **params):
    conn = env.connect()
    conn.run("BEGIN")
    conn.run(sql, **params)
    return conn


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


INSERT_SAME = (
    "INSERT INTO device (project_id, name, serial, attributes, created_by) "
    "SELECT id, 'race', 'SN', '{\"a\": 1}'::jsonb, 'other-caller' FROM project "
    "WHERE name = 'cams'"
)


def test_concurrent_identical_registration_is_a_200_not_a_duplicate(fleet_api_env):
    make_project(fleet_api_env)
    other = _insert_uncommitted(fleet_api_env, INSERT_SAME)  # another request, in flight
    try:
        thread, box = _in_thread(
            lambda: post("cams", {"name": "race", "serial": "SN", "attributes": {"a": 1}})
        )
        _wait_until_blocked(fleet_api_env)  # ON CONFLICT waits for the other transaction
        other.run("COMMIT")
        thread.join(10)
    finally:
        other.close()
    assert box["result"].status == 200
    assert box["result"].json["device"]["created_by"] == "other-caller"
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[1]]


def test_concurrent_different_registration_is_a_409(fleet_api_env):
    make_project(fleet_api_env)
    other = _insert_uncommitted(fleet_api_env, INSERT_SAME)
    try:
        thread, box = _in_thread(lambda: post("cams", {"name": "race", "serial": "OTHER"}))
        _wait_until_blocked(fleet_api_env)
        other.run("COMMIT")
        thread.join(10)
    finally:
        other.close()
    assert box["result"].status == 409


def test_a_concurrent_insert_that_rolls_back_leaves_the_name_free(fleet_api_env):
    make_project(fleet_api_env)
    other = _insert_uncommitted(fleet_api_env, INSERT_SAME)
    try:
        thread, box = _in_thread(lambda: post("cams", {"name": "race", "serial": "MINE"}))
        _wait_until_blocked(fleet_api_env)
        other.run("ROLLBACK")
        thread.join(10)
    finally:
        other.close()
    assert box["result"].status == 201
    assert fleet_api_env.query("SELECT serial FROM device") == [["MINE"]]


# ---- the caller -------------------------------------------------------------------------------


def test_created_by_is_the_callers_sub(fleet_api_env):
    make_project(fleet_api_env)
    result = post("cams", {"name": "d"}, claims=jwt_claims("auth0|42", client_id="c"))
    assert result.status == 201 and result.json["device"]["created_by"] == "auth0|42"
    assert fleet_api_env.query("SELECT created_by FROM device") == [["auth0|42"]]


def test_a_retry_by_another_caller_is_200_and_keeps_the_first_creator(fleet_api_env, fleet_logs):
    make_project(fleet_api_env)
    body = {"name": "cam", "serial": "SN", "attributes": {"a": 1}}
    first = post("cams", body, claims=jwt_claims("first-client"))
    assert first.status == 201
    again = post("cams", body, claims=jwt_claims("second-client"))
    assert again.status == 200
    assert again.json == first.json and again.json["device"]["created_by"] == "first-client"
    (logged,) = [
        r
        for r in fleet_logs.records()
        if r.get("message") == "device registration repeated by another caller"
    ]
    assert logged["created_by"] == "first-client" and logged["caller_sub"] == "second-client"
    # A different device under that name is still a conflict, whoever asks.
    other = post("cams", {**body, "serial": "SN-2"}, claims=jwt_claims("first-client"))
    error_of(other, 409, "conflict")
    assert fleet_api_env.query("SELECT created_by FROM device") == [["first-client"]]


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
    make_project(fleet_api_env)
    result = post("cams", {"name": "d"}, claims=None)
    assert result.status == 401 and result.json == UNAUTHORIZED
    assert result.headers["www-authenticate"] == "Bearer"
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[0]]
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    assert post("nope", {"name": "d"}, claims=None).json == UNAUTHORIZED
    assert "connecting to the database" not in fleet_logs.text()


def test_the_log_names_the_caller_and_never_the_token(fleet_api_env, fleet_logs):
    make_project(fleet_api_env)
    assert post("cams", {"name": "d"}, claims=jwt_claims("log-sub", client_id="log-c")).status
    post("cams", {"name": "d", "attributes": {"": 1}})
    post("cams", {"name": "d"}, claims=None)
    handled = [r for r in fleet_logs.records() if r.get("message") == "request handled"]
    assert (handled[0]["caller_sub"], handled[0]["caller_client_id"]) == ("log-sub", "log-c")
    text = fleet_logs.text()
    for piece in (TEST_TOKEN, *TEST_TOKEN.split(".")):
        assert piece not in text


# ---- the limits -------------------------------------------------------------------------------

KEYS = "must not have an object with more than 32 keys"
KEY = "has a key that is empty or longer than 64 characters"
DEEP = "must not nest more than 4 levels deep"
BIG = "must be at most 4096 bytes as JSON"


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({f"k{i}": i for i in range(33)}, KEYS),
        ({"nested": {f"k{i}": i for i in range(33)}}, KEYS),
        ({"": 1}, KEY),
        ({"k" * 65: 1}, KEY),
        ({"a": [{"k" * 65: 1}]}, KEY),
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, DEEP),
        ({"a": [[[[1]]]]}, DEEP),
        ({"pad": "x" * 4087}, BIG),
        ({"pad": "é" * 2044}, BIG),
        ({"l": [1e308] * 14}, BIG),  # 100 bytes as sent, 4347 as jsonb stores them
    ],
)
def test_attributes_over_a_limit_are_400_and_store_nothing(fleet_api_env, attributes, problem):
    make_project(fleet_api_env)
    result = post("cams", {"name": "d", "serial": "s" * 101, "attributes": attributes})
    assert details_of(result) == {
        "body.serial": "must be at most 100 characters",
        "body.attributes": problem,
    }
    assert details_of(post("cams", {"name": "d", "attributes": attributes})) == {
        "body.attributes": problem
    }
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[0]]


def test_attributes_at_the_limits_are_stored(fleet_api_env):
    make_project(fleet_api_env)
    values = [*AT_THE_LIMITS, {"l": [1e308] * 13}]
    for i, attributes in enumerate(values):
        result = post("cams", {"name": f"d{i}", "attributes": attributes})
        assert result.status == 201, result.body
        assert same_json(result.json["device"]["attributes"], attributes)
    rows = fleet_api_env.query("SELECT attributes FROM device ORDER BY id")
    assert all(same_json(row[0], value) for row, value in zip(rows, values, strict=True))


def test_the_size_limit_counts_what_the_database_stores(fleet_api_env):
    """The 4096 bytes are of the attributes as jsonb keeps them (numbers in plain decimal):
    PostgreSQL's own text of each stored value, without the spaces it adds after ',' and ':',
    has exactly the size the limit measured."""
    make_project(fleet_api_env)
    values = [
        *AT_THE_LIMITS,
        {"l": [1e308] * 13},
        {"f": [0.1, 1.0, 1.5e16, 2.5e-7, -1e-300], "i": [10**300, -(2**63)]},
        {"s": '\u0001\n\t"\\/é🛰\u007f', "n": None, "b": [True, False]},
    ]
    for i, attributes in enumerate(values):
        assert post("cams", {"name": f"d{i}", "attributes": attributes}).status == 201
    rows = fleet_api_env.query("SELECT attributes::text FROM device ORDER BY id")
    for (text,), attributes in zip(rows, values, strict=True):
        compact = text.replace(", ", ",").replace(": ", ":")
        assert len(compact.encode("utf-8")) == stored_json_bytes(attributes), text[:200]


TOO_LARGE = {
    "error": {
        "code": "payload_too_large",
        "message": "the request body is larger than 16384 bytes",
        "details": [{"path": "body", "problem": "must be at most 16384 bytes"}],
    }
}


@pytest.mark.parametrize("base64_body", [False, True])
def test_a_body_over_16_kib_is_413_and_stores_nothing(fleet_api_env, base64_body):
    make_project(fleet_api_env)
    text = json.dumps({"name": "d", "attributes": {"a": 1}})
    exact = text + " " * (16384 - len(text))
    result = post("cams", exact + " ", base64_body=base64_body)
    assert result.status == 413 and result.json == TOO_LARGE
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[0]]
    assert post("cams", exact, base64_body=base64_body).status == 201
