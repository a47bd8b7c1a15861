"""GET /projects/{project}/devices through the real handler: HTTP API v2.0 events, moto's
Secrets Manager and a real PostgreSQL database (FLEET_TEST_DATABASE_URL)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from fleet_common.pagination import encode_cursor
from fleet_common.testing import http_event, invoke

from list_devices.handler import _NEXT_PAGE, handler

INJECTION = "x'; drop table device; --"
TRAVERSAL = "../../etc"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def get(project, **query):
    event = http_event(
        "GET",
        f"/projects/{project}/devices",
        "GET /projects/{project}/devices",
        {"project": project},
        query={k: str(v) for k, v in query.items()} or None,
    )
    return invoke(handler, event)


def error_of(result, status, code):
    assert result.status == status, result.body
    body = result.json
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def seed(env, project, devices, team="platform"):
    """Create ``project`` and its ``devices`` [(name, created_at, serial, attributes)]."""
    conn = env.connect()
    try:
        conn.run("INSERT INTO team (name) VALUES (:t) ON CONFLICT DO NOTHING", t=team)
        ((project_id,),) = conn.run(
            "INSERT INTO project (team_id, name) SELECT id, :p FROM team WHERE name = :t "
            "RETURNING id",
            p=project,
            t=team,
        )
        for name, created_at, serial, attributes in devices:
            conn.run(
                "INSERT INTO device (project_id, name, serial, attributes, created_at) "
                "VALUES (:pid, :name, :serial, CAST(:attrs AS jsonb), :created_at)",
                pid=project_id,
                name=name,
                serial=serial,
                attrs=json.dumps(attributes),
                created_at=created_at,
            )
    finally:
        conn.close()
    return project_id


def five_devices():
    # Two pairs share a created_at: the id breaks the tie.
    return [
        ("d1", T0, "SN-1", {"rack": 1}),
        ("d2", T0, None, {}),
        ("d3", T0 + timedelta(seconds=1), "SN-3", {"tags": ["a", "b"]}),
        ("d4", T0 + timedelta(seconds=1), None, {"nested": {"x": 1.5}}),
        ("d5", T0 + timedelta(microseconds=1_000_001), "SN-5", {}),
    ]


def test_three_pages_of_two(fleet_api_env):
    seed(fleet_api_env, "cams", five_devices())
    seed(fleet_api_env, "other", [("d1", T0, None, {})])  # never listed under "cams"
    pages, cursor = [], None
    for _ in range(3):
        result = get("cams", limit=2, **({"cursor": cursor} if cursor else {}))
        assert result.status == 200, result.body
        body = result.json
        assert set(body) == {"devices", "next_cursor"}
        pages.append([d["name"] for d in body["devices"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    assert cursor is None


def test_device_fields(fleet_api_env):
    seed(fleet_api_env, "cams", five_devices()[:3])
    devices = get("cams").json["devices"]
    assert devices[0] == {
        "id": devices[0]["id"],
        "name": "d1",
        "serial": "SN-1",
        "attributes": {"rack": 1},
        "created_at": "2025-03-01T12:00:00.123456Z",
    }
    assert devices[1]["serial"] is None and devices[1]["attributes"] == {}
    assert devices[2]["attributes"] == {"tags": ["a", "b"]}
    assert isinstance(devices[0]["id"], int)


def test_default_limit_is_20_and_max_is_100(fleet_api_env):
    seed(
        fleet_api_env,
        "big",
        [(f"d{i:03d}", T0 + timedelta(seconds=i), None, {}) for i in range(105)],
    )
    first = get("big").json
    assert len(first["devices"]) == 20 and first["next_cursor"]
    page = get("big", limit=100).json
    assert len(page["devices"]) == 100
    rest = get("big", limit=100, cursor=page["next_cursor"]).json
    assert [d["name"] for d in rest["devices"]] == [f"d{i:03d}" for i in range(100, 105)]
    assert rest["next_cursor"] is None
    ((d099_id,),) = fleet_api_env.query("SELECT id FROM device WHERE name = 'd099'")
    exact = get("big", limit=5, cursor=encode_cursor(T0 + timedelta(seconds=99), d099_id)).json
    assert [d["name"] for d in exact["devices"]] == [f"d{i:03d}" for i in range(100, 105)]
    assert exact["next_cursor"] is None  # exactly `limit` left: no empty extra page


def test_empty_project(fleet_api_env):
    seed(fleet_api_env, "empty", [])
    assert get("empty").json == {"devices": [], "next_cursor": None}


def test_unknown_project_is_404(fleet_api_env):
    error = error_of(get("nope"), 404, "not_found")
    assert error["message"] == 'project "nope" does not exist'


@pytest.mark.parametrize(
    "limit", ["0", "101", "-1", "abc", "", "2.5", "1e1", " 2", INJECTION, ["1", "2"]]
)
def test_bad_limits_are_400(fleet_api_env, limit):
    seed(fleet_api_env, "cams", five_devices())
    event = http_event(
        "GET",
        "/projects/cams/devices",
        "GET /projects/{project}/devices",
        {"project": "cams"},
        query={"limit": limit},
    )
    error = error_of(invoke(handler, event), 400, "validation_error")
    assert error["details"] == [
        {"path": "query.limit", "problem": "must be an integer between 1 and 100"}
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "e30",
        "WzEsMl0",
        INJECTION,
        TRAVERSAL,
        "A" * 500,
        encode_cursor(T0, 1) + "==",
    ],
)
def test_malformed_cursors_are_400(fleet_api_env, cursor):
    seed(fleet_api_env, "cams", five_devices())
    error = error_of(get("cams", cursor=cursor), 400, "validation_error")
    assert error["details"] == [{"path": "query.cursor", "problem": "is not a valid cursor"}]


def test_bad_limit_and_cursor_before_project_lookup(fleet_api_env):
    # Query errors are reported for unknown projects too (no database access needed).
    error_of(get("nope", limit=0), 400, "validation_error")


def test_injection_strings_are_matched_literally(fleet_api_env):
    for name in (INJECTION, TRAVERSAL, "x' OR '1'='1"):
        error_of(get(name), 404, "not_found")
    seed(fleet_api_env, "cams", five_devices())
    seed(fleet_api_env, INJECTION, [(INJECTION, T0, TRAVERSAL, {INJECTION: TRAVERSAL})])
    body = get(INJECTION).json
    assert [(d["name"], d["serial"], d["attributes"]) for d in body["devices"]] == [
        (INJECTION, TRAVERSAL, {INJECTION: TRAVERSAL})
    ]
    error_of(get("x' OR '1'='1"), 404, "not_found")
    error_of(get("cams' --"), 404, "not_found")
    assert fleet_api_env.query("SELECT to_regclass('device') IS NOT NULL") == [[True]]
    assert fleet_api_env.query("SELECT count(*) FROM device") == [[6]]


def test_project_names_with_slashes_and_unicode(fleet_api_env):
    seed(fleet_api_env, "a/b c?d#é", [("d1", T0, None, {})])
    assert [d["name"] for d in get("a/b c?d#é").json["devices"]] == ["d1"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_is_a_json_500_without_traceback(
    fleet_api_env, monkeypatch, fleet_logs
):
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(_closed_port()))
    result = get("cams")
    error = error_of(result, 500, "internal_error")
    assert error == {"code": "internal_error", "message": "internal server error", "details": []}
    assert "Traceback" not in result.body
    assert any(r.get("level") == "ERROR" and "correlation_id" in r for r in fleet_logs.records())


def test_logs_carry_the_correlation_id_and_never_the_password(fleet_api_env, fleet_logs):
    seed(fleet_api_env, "cams", five_devices())
    event = http_event(
        "GET",
        "/projects/cams/devices",
        "GET /projects/{project}/devices",
        {"project": "cams"},
        request_id="List-Corr-77=",
    )
    assert invoke(handler, event).status == 200
    handled = [r for r in fleet_logs.records() if r.get("message") == "request handled"]
    assert handled[0]["correlation_id"] == "List-Corr-77="
    assert fleet_api_env.password not in fleet_logs.text()


def test_the_listing_uses_the_keyset_index(fleet_api_env):
    project_id = seed(
        fleet_api_env, "cams", [(f"d{i}", T0 + timedelta(seconds=i), None, {}) for i in range(50)]
    )
    conn = fleet_api_env.connect()
    try:
        conn.run("ANALYZE device")
        conn.run("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.run(
                "EXPLAIN " + _NEXT_PAGE,
                project_id=project_id,
                after_created_at=T0,
                after_id=1,
                fetch=3,
            )
        )
    finally:
        conn.close()
    assert "device_project_id_created_at_id_idx" in plan
    assert "Sort" not in plan
