"""GET /projects/{project}/devices through the real handler: HTTP API v2.0 events, moto's
Secrets Manager and a real PostgreSQL database (FLEET_TEST_DATABASE_URL)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from fleet_common.limits import (
    LAMBDA_RESPONSE_LIMIT_BYTES,
    MAX_CURSOR_LENGTH,
    MAX_LISTED_ATTRIBUTES_BYTES,
    MAX_PAGE_BYTES,
)
from fleet_common.pagination import encode_cursor
from fleet_testing.events import TEST_TOKEN, http_event, invoke, jwt_claims

from list_devices.handler import _NEXT_PAGE, handler

INJECTION = "x'; drop table device; --"
TRAVERSAL = "../../etc"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def get(project, claims=None, **query):
    """GET the listing; ``claims``: the caller's (default: the default caller; ``{}``: an
    event without verified claims)."""
    extra = {} if claims is None else {"claims": claims or None}
    event = http_event(
        "GET",
        f"/projects/{project}/devices",
        "GET /projects/{project}/devices",
        {"project": project},
        query={k: str(v) for k, v in query.items()} or None,
        **extra,
    )
    return invoke(handler, event)


def error_of(result, status, code):
    assert result.status == status, result.body
    body = result.json
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def seed(env, project, devices, team="platform", created_by="seed-creator"):
    """Create ``project`` and its ``devices`` [(name, created_at, serial, attributes)], all
    created by ``created_by``; written directly, around the API and its limits."""
    conn = env.connect()
    try:
        conn.run("INSERT INTO team (name) VALUES (:t) ON CONFLICT DO NOTHING", t=team)
        ((project_id,),) = conn.run(
            "INSERT INTO project (team_id, name, created_by) SELECT id, :p, :by FROM team "
            "WHERE name = :t RETURNING id",
            p=project,
            t=team,
            by=created_by,
        )
        for name, created_at, serial, attributes in devices:
            conn.run(
                "INSERT INTO device (project_id, name, serial, attributes, created_at, created_by)"
                " VALUES (:pid, :name, :serial, CAST(:attrs AS jsonb), :created_at, :by)",
                pid=project_id,
                name=name,
                serial=serial,
                attrs=json.dumps(attributes, ensure_ascii=False),
                created_at=created_at,
                by=created_by,
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
        "created_by": "seed-creator",
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
                max_attributes_bytes=MAX_LISTED_ATTRIBUTES_BYTES,
            )
        )
    finally:
        conn.close()
    assert "device_project_id_created_at_id_idx" in plan
    assert "Sort" not in plan


# ---- the caller -------------------------------------------------------------------------------


def test_each_device_carries_its_creator(fleet_api_env):
    seed(fleet_api_env, "cams", five_devices()[:2], created_by="client-a")
    conn = fleet_api_env.connect()
    try:
        conn.run("UPDATE device SET created_by = 'client-b' WHERE name = 'd2'")
    finally:
        conn.close()
    devices = get("cams", claims=jwt_claims("a-reader")).json["devices"]
    assert [(d["name"], d["created_by"]) for d in devices] == [
        ("d1", "client-a"),
        ("d2", "client-b"),
    ]


def test_without_verified_claims_the_answer_is_401(fleet_api_env, monkeypatch, fleet_logs):
    seed(fleet_api_env, "cams", five_devices())
    result = get("cams", claims={})
    assert result.status == 401
    assert result.json == {
        "error": {
            "code": "unauthorized",
            "message": "the request carries no verified identity",
            "details": [],
        }
    }
    assert result.headers["www-authenticate"] == "Bearer"
    monkeypatch.setenv("DB_PORT", str(_closed_port()))  # no database work before the 401
    assert get("cams", claims={}, limit="bad").status == 401
    assert "connecting to the database" not in fleet_logs.text()


def test_the_log_names_the_caller_and_never_the_token(fleet_api_env, fleet_logs):
    seed(fleet_api_env, "cams", five_devices())
    assert get("cams", claims=jwt_claims("list-sub", client_id="list-client")).status == 200
    get("cams", claims={})
    handled = [r for r in fleet_logs.records() if r.get("message") == "request handled"]
    assert (handled[0]["caller_sub"], handled[0]["caller_client_id"]) == (
        "list-sub",
        "list-client",
    )
    text = fleet_logs.text()
    for piece in (TEST_TOKEN, *TEST_TOKEN.split(".")):
        assert piece not in text


# ---- the page cap -----------------------------------------------------------------------------


def _walk(project, **query):
    """Every page of a listing (following next_cursor), checking each against the caps."""
    pages, cursor = [], None
    while True:
        result = get(project, **query, **({"cursor": cursor} if cursor else {}))
        assert result.status == 200, result.body[:300]
        assert len(result.body.encode("utf-8")) <= MAX_PAGE_BYTES
        assert len(json.dumps(result.raw)) < LAMBDA_RESPONSE_LIMIT_BYTES / 2
        body = result.json
        pages.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert body["devices"], "a page before the last is never empty"
        last = body["devices"][-1]
        when = datetime.fromisoformat(last["created_at"].replace("Z", "+00:00"))
        assert cursor == encode_cursor(when, last["id"])  # continues after the last returned


def test_a_page_stops_before_1_mib_and_the_cursor_continues(fleet_api_env):
    # Rows stored before the limits: 60 KB of attributes each, 40 of them (2.4 MB).
    blob = {"blob": "x" * 60_000}
    seed(
        fleet_api_env,
        "big",
        [(f"d{i:02d}", T0 + timedelta(seconds=i), None, blob) for i in range(40)],
    )
    pages = _walk("big", limit=100)
    names = [d["name"] for page in pages for d in page["devices"]]
    assert names == [f"d{i:02d}" for i in range(40)]
    assert all(d["attributes"] == blob for page in pages for d in page["devices"])
    first = pages[0]
    device_bytes = len(json.dumps(first["devices"][0], separators=(",", ":")))
    body_bytes = len(json.dumps(first, separators=(",", ":")))
    assert 1 < len(first["devices"]) < 40
    # Full: one device more would have passed the cap (with room kept for the cursor).
    assert body_bytes + 1 + device_bytes > MAX_PAGE_BYTES - MAX_CURSOR_LENGTH
    # The count limit still applies when it is the smaller.
    assert [len(p["devices"]) for p in _walk("big", limit=7)] == [7] * 5 + [5]


def test_attributes_too_large_to_list_are_null(fleet_api_env):
    at = MAX_LISTED_ATTRIBUTES_BYTES - len('{"blob": ""}')  # as PostgreSQL writes the jsonb
    devices = [
        ("small", {"a": 1}),
        ("at-the-cap", {"blob": "x" * at}),
        ("one-over", {"blob": "x" * (at + 1)}),
        ("multibyte-over", {"blob": "é" * (at // 2 + 1)}),
        ("huge", {"blob": "x" * 5_000_000}),
        ("after", {}),
    ]
    seed(
        fleet_api_env,
        "mixed",
        [(name, T0 + timedelta(seconds=i), None, a) for i, (name, a) in enumerate(devices)],
    )
    pages = _walk("mixed")
    listed = {d["name"]: d["attributes"] for page in pages for d in page["devices"]}
    assert list(listed) == [name for name, _ in devices]
    assert listed == {
        "small": {"a": 1},
        "at-the-cap": {"blob": "x" * at},
        "one-over": None,
        "multibyte-over": None,
        "huge": None,
        "after": {},
    }
    sizes = fleet_api_env.query(
        "SELECT name, octet_length(attributes::text) FROM device ORDER BY created_at"
    )
    assert [size > MAX_LISTED_ATTRIBUTES_BYTES for _, size in sizes] == [
        False,
        False,
        True,
        True,
        True,
        False,
    ]


def test_the_worst_case_page_is_far_below_lambdas_response_limit(fleet_api_env):
    # 4-byte characters just under the listing cap: JSON-escaped into the Lambda response as
    # 12 bytes each, the page's envelope is still about 3 MiB at most.
    blob = {"b": "🛰" * ((MAX_LISTED_ATTRIBUTES_BYTES - 9) // 4)}
    seed(
        fleet_api_env,
        "worst",
        [(f"w{i:02d}", T0 + timedelta(seconds=i), None, blob) for i in range(30)],
    )
    result = get("worst", limit=100)
    assert result.status == 200 and 10 < len(result.json["devices"]) < 30
    assert len(result.body.encode("utf-8")) <= MAX_PAGE_BYTES
    envelope = len(json.dumps(result.raw))  # ensure_ascii, as the Lambda runtime writes it
    assert 2 * MAX_PAGE_BYTES < envelope < LAMBDA_RESPONSE_LIMIT_BYTES * 0.6
