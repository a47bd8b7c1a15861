"""Properties of GET /projects/{project}/devices over generated requests (hypothesis), through
the real handler and a real PostgreSQL database holding a few projects and devices.

The answer is exactly the documented one, decided from the request and the seeded rows:

- a project name PostgreSQL cannot store (NUL, lone surrogates): 400 ``validation_error`` on
  ``path.project``;
- ``limit`` other than 1 to 4 ASCII digits worth 1..100 (repeated, signed, decimal, exponent,
  padded, fullwidth or Arabic digits, huge, injection, ...): 400 on ``query.limit``;
- ``cursor`` other than the exact form ``encode_cursor`` writes (garbage, traversal and
  injection strings, other base64 alphabets, padding, other time zones, naive times, ids out
  of range or not integers, too long, ...): 400 on ``query.cursor``;
- an unknown project (injection and traversal names, encoded variants, unicode, huge names):
  404 ``not_found``;
- else 200 with exactly the devices after the cursor, oldest first, ``limit`` of them (each
  with its ``created_by``), and a ``next_cursor`` exactly when more follow;
- without a verified caller: 401, whatever else is wrong;

and no request changes any row. Following ``next_cursor`` from the first page lists every
device of the project once, in order, whatever the limit; and whatever sizes the stored rows
have (written around the API), every page stays within 1 MiB, is never empty before the last,
and lists attributes in full unless PostgreSQL's text of them is over 64 KiB (then null).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_common.limits import MAX_LISTED_ATTRIBUTES_BYTES, MAX_PAGE_BYTES
from fleet_common.pagination import encode_cursor
from fleet_testing.events import DEFAULT_CLAIMS, http_event, invoke
from fleet_testing.proptest import (
    INJECTIONS,
    TRAVERSALS,
    assert_error,
    cursor_datetimes,
    cursor_position,
    database_rows,
    empty_tables,
    forged_cursors,
    limit_value,
    nasty_text,
    property_settings,
    same_json,
    seed_projects,
    text_problems,
)
from hypothesis import example, given
from hypothesis import strategies as st

from list_devices.handler import handler

ROUTE = "GET /projects/{project}/devices"
INJECTION, TRAVERSAL = INJECTIONS[0], TRAVERSALS[0]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

PROJECTS = {"cams": "platform", INJECTION: "platform", "a/b": TRAVERSAL, "empty": "x"}
# (id, project, name, serial, attributes, created_at): ids do not follow created_at (a later
# transaction can commit an earlier now()), and created_at repeats (the id breaks ties).
DEVICES = [
    (
        100 + (i * 7) % 31,
        "cams",
        f"d{i:02d}" if i % 5 else [INJECTION, TRAVERSAL, "Café 🛰️", "\u202eevil", "x" * 100][i // 5],
        None if i % 3 else f"SN-{i}",
        {"i": i, "tags": ["a", i / 3]} if i % 2 else {},
        T0 + timedelta(seconds=i // 3, microseconds=i % 2),
    )
    for i in range(25)
] + [
    (200, INJECTION, INJECTION, TRAVERSAL, {INJECTION: TRAVERSAL}, T0),
    (201, INJECTION, "second", None, {}, T0 + timedelta(days=400)),
    (202, "a/b", "only", None, {"n": 1e308}, T0 - timedelta(days=1)),
]
POSITIONS = [(created_at, device_id) for device_id, *_, created_at in DEVICES]

PROJECT_NAMES = st.one_of(
    st.sampled_from([*PROJECTS, "CAMS", "cams ", "ghost", "a%2Fb", INJECTIONS[1]]),
    nasty_text(),
)
VALID_LIMITS = st.one_of(
    st.integers(1, 100).map(str),
    st.sampled_from(["1", "100", "007", "0100", "20"]),
)
BAD_LIMITS = st.one_of(
    st.sampled_from(
        [
            "0",
            "101",
            "-1",
            "+5",
            "1.5",
            "1e1",
            "0x10",
            " 5",
            "5 ",
            "5\n",
            "",
            "00000",
            "00001",
            "99999",
            "9" * 5000,
            "٣",
            "\uff11\uff10",  # fullwidth 10
            "5\x00",
            "NaN",
            "null",
        ]
    ),
    st.integers(101, 10**30).map(str),
    st.integers(max_value=0).map(str),
    st.lists(VALID_LIMITS, min_size=2, max_size=3),  # repeated: arrives comma-joined
    nasty_text(),
)
DATETIMES = st.one_of(
    cursor_datetimes(),
    st.sampled_from(POSITIONS).flatmap(
        lambda p: st.sampled_from([p[0] + timedelta(microseconds=d) for d in (-1, 0, 1)])
    ),
)
IDS = st.one_of(
    st.integers(1, 2**63 - 1),
    st.sampled_from(sorted({d for _, d in POSITIONS} | {d + 1 for _, d in POSITIONS} | {1})),
)
VALID_CURSORS = st.one_of(st.sampled_from(POSITIONS), st.tuples(DATETIMES, IDS)).map(
    lambda position: encode_cursor(*position)
)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    query: dict[str, Any] = {}
    limit = draw(st.sampled_from(["absent", "valid", "bad"]))
    if limit != "absent":
        query["limit"] = draw(VALID_LIMITS if limit == "valid" else BAD_LIMITS)
    cursor = draw(st.sampled_from(["absent", "valid", "forged"]))
    if cursor != "absent":
        query["cursor"] = draw(
            VALID_CURSORS if cursor == "valid" else forged_cursors(DATETIMES, IDS)
        )
    if draw(st.integers(0, 3)) == 0:
        extra = st.sampled_from(["offset", "page", "../x", "'; --", "name"])
        query.update(draw(st.dictionaries(extra, st.sampled_from(INJECTIONS + TRAVERSALS))))
    return query


# ---- the oracle -------------------------------------------------------------------------------


def _query_text(value: Any) -> str:
    return value if isinstance(value, str) else ",".join(value)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _check_answer(project: str, query: dict[str, Any], result: Any) -> int:
    if project == "":  # /projects//devices: no route (and no project has an empty name)
        assert_error(result, 404, "not_found")
        return 404
    bad_path = text_problems(project, "path.project")
    if bad_path:
        error = assert_error(result, 400, "validation_error")
        assert [(d["path"], d["problem"]) for d in error["details"]] == bad_path
        return 400
    limit = 20
    if "limit" in query:
        value = limit_value(_query_text(query["limit"]))
        if value is None:
            error = assert_error(result, 400, "validation_error")
            problem = "must be an integer between 1 and 100"
            assert error["details"] == [{"path": "query.limit", "problem": problem}]
            return 400
        limit = value
    after = None
    if "cursor" in query:
        after = cursor_position(_query_text(query["cursor"]))
        if after is None:
            error = assert_error(result, 400, "validation_error")
            problem = "is not a valid cursor"
            assert error["details"] == [{"path": "query.cursor", "problem": problem}]
            return 400
    if project not in PROJECTS:
        error = assert_error(result, 404, "not_found")
        assert error["details"] == [] and project in error["message"]
        return 404
    rows = sorted((d for d in DEVICES if d[1] == project), key=lambda d: (d[5], d[0]))
    if after is not None:
        rows = [d for d in rows if (d[5], d[0]) > after]
    page, more = rows[:limit], len(rows) > limit
    assert result.status == 200, result.body[:500]
    body = result.json
    assert set(body) == {"devices", "next_cursor"}
    got = body["devices"]
    assert [d["id"] for d in got] == [d[0] for d in page]
    for device, (device_id, _, name, serial, attributes, created_at) in zip(got, page, strict=True):
        assert set(device) == {"id", "name", "serial", "attributes", "created_by", "created_at"}
        assert (device["name"], device["serial"]) == (name, serial)
        assert device["created_by"] == _creator(device_id)
        assert same_json(device["attributes"], attributes)
        assert device["created_at"] == _stamp(created_at)
    last = page[-1] if page else None
    assert body["next_cursor"] == (encode_cursor(last[5], last[0]) if more and last else None)
    return 200


# ---- the properties ---------------------------------------------------------------------------


def _creator(device_id: int) -> str:
    """Who created a seeded device: several callers, nasty subs among them."""
    return ["seed-creator", "unknown", INJECTION, "é" * 256][device_id % 4]


def _insert_devices(conn: Any, devices: list[tuple]) -> None:
    for device_id, project, name, serial, attributes, created_at in devices:
        conn.run(
            "INSERT INTO device (id, project_id, name, serial, attributes, created_at, "
            "created_by) OVERRIDING SYSTEM VALUE SELECT :id, id, :name, :serial, "
            "CAST(:attributes AS jsonb), :created_at, :by FROM project WHERE name = :project",
            id=device_id,
            project=project,
            name=name,
            serial=serial,
            attributes=json.dumps(attributes, ensure_ascii=False),
            created_at=created_at,
            by=_creator(device_id),
        )


def _seed(fleet_api_env) -> Any:
    conn = fleet_api_env.connect()
    empty_tables(conn)
    seed_projects(conn, PROJECTS)
    _insert_devices(conn, DEVICES)
    return conn


def _get(project: str, query: dict[str, Any] | None, claims: Any = DEFAULT_CLAIMS) -> Any:
    event = http_event(
        "GET",
        f"/projects/{project}/devices",
        ROUTE,
        {"project": project},
        query=query or None,
        claims=claims,
    )
    return invoke(handler, event)


def test_any_request_gets_its_documented_answer(fleet_api_env):
    conn = _seed(fleet_api_env)
    statuses: dict[int, int] = {}
    try:
        rows = database_rows(conn)

        @property_settings(max_examples=300)
        @given(project=PROJECT_NAMES, query=queries())
        def check(project: str, query: dict[str, Any]) -> None:
            status = _check_answer(project, query, _get(project, query))
            statuses[status] = statuses.get(status, 0) + 1
            assert database_rows(conn) == rows, "a listing changed the database"

        check()
    finally:
        conn.close()
    assert {200, 400, 404} <= set(statuses), statuses  # else the property proves little


def test_valid_requests_get_exactly_their_page(fleet_api_env):
    _seed(fleet_api_env).close()

    @property_settings(max_examples=150)
    @given(
        project=st.sampled_from(list(PROJECTS)),
        limit=st.none() | VALID_LIMITS,
        cursor=st.none() | VALID_CURSORS,
    )
    def check(project: str, limit: str | None, cursor: str | None) -> None:
        query = {k: v for k, v in (("limit", limit), ("cursor", cursor)) if v is not None}
        assert _check_answer(project, query, _get(project, query)) == 200

    check()


def test_following_next_cursor_lists_every_device_once_in_order(fleet_api_env):
    _seed(fleet_api_env).close()

    @property_settings(max_examples=50)
    @given(project=st.sampled_from(list(PROJECTS)), limit=st.integers(1, 30))
    def check(project: str, limit: int) -> None:
        seen: list[int] = []
        query: dict[str, str] = {"limit": str(limit)}
        for _ in range(len(DEVICES) + 1):
            result = _get(project, query)
            assert result.status == 200, result.body[:500]
            seen += [d["id"] for d in result.json["devices"]]
            if result.json["next_cursor"] is None:
                break
            assert len(result.json["devices"]) == limit  # no short page before the last
            query["cursor"] = result.json["next_cursor"]
        expected = sorted((d for d in DEVICES if d[1] == project), key=lambda d: (d[5], d[0]))
        assert seen == [d[0] for d in expected]

    check()


def test_any_request_without_a_verified_caller_is_401(fleet_api_env):
    _seed(fleet_api_env).close()

    @property_settings(max_examples=100)
    @given(project=PROJECT_NAMES, query=queries())
    def check(project: str, query: dict[str, Any]) -> None:
        result = _get(project, query, claims=None)
        assert_error(result, 401, "unauthorized")

    check()


# Sizes in characters of a stored attribute string, and characters of 1, 2 and 4 UTF-8 bytes:
# from tiny to well over the 64 KiB listing cap (PostgreSQL's text of {"b": "<s>"} is the UTF-8
# size of s plus 9 bytes), around the cap too.
_CAP_EDGE = MAX_LISTED_ATTRIBUTES_BYTES - len('{"b": ""}')
BLOB_SIZES = st.sampled_from(  # in bytes; big ones often, to fill pages
    [0, 10, 2_000, 40_000, 60_000, 60_000, _CAP_EDGE, _CAP_EDGE, _CAP_EDGE + 1, 200_000]
)
BLOB_CHARS = st.sampled_from(["x", "é", "🛰"])


@st.composite
def stored_devices(draw: st.DrawFn) -> list[tuple]:
    """Devices of any size, as rows stored before the limits (or written around the API)."""
    count = draw(st.one_of(st.integers(1, 60), st.integers(30, 60)))
    devices = []
    for i in range(count):
        char, size = draw(BLOB_CHARS), draw(BLOB_SIZES)
        size = size // len(char.encode())  # as many characters as fit the bytes
        created_at = T0 + timedelta(seconds=draw(st.integers(0, 5)), microseconds=i)
        devices.append((1000 + i, "cams", f"b{i:02d}", None, {"b": char * size}, created_at))
    return devices


def _pg_text_bytes(attributes: dict[str, str]) -> int:
    """octet_length(attributes::text) of a one-string object (PostgreSQL writes non-ASCII as
    is, with a space after the colon)."""
    ((key, value),) = attributes.items()
    return len(f'{{"{key}": "{value}"}}'.encode())


def test_any_stored_sizes_give_pages_within_1_mib_that_list_every_device(fleet_api_env):
    conn = _seed(fleet_api_env)
    cut_by_bytes: list[int] = []  # pages cut short by their size
    try:

        @property_settings(max_examples=25)
        @given(
            devices=stored_devices(),
            limit=st.one_of(st.just(100), st.integers(16, 100), st.integers(1, 100)),
        )
        @example(  # 40 devices just under the attributes cap: 16 to a page
            devices=[
                (2000 + i, "cams", f"e{i:02d}", None, {"b": "x" * _CAP_EDGE}, T0) for i in range(40)
            ],
            limit=100,
        )
        def check(devices: list[tuple], limit: int) -> None:
            conn.run("DELETE FROM device")
            _insert_devices(conn, devices)
            seen: list[dict[str, Any]] = []
            query: dict[str, str] = {"limit": str(limit)}
            for _ in range(len(devices) + 1):
                result = _get("cams", query)
                assert result.status == 200, result.body[:300]
                assert len(result.body.encode("utf-8")) <= MAX_PAGE_BYTES
                page = result.json
                assert len(page["devices"]) <= limit
                seen += page["devices"]
                if page["next_cursor"] is None:
                    break
                assert page["devices"], "an empty page before the last"
                if len(page["devices"]) < limit:
                    cut_by_bytes.append(len(page["devices"]))
                query["cursor"] = page["next_cursor"]
            expected = sorted(devices, key=lambda d: (d[5], d[0]))
            assert [d["id"] for d in seen] == [d[0] for d in expected]
            for device, (_, _, _, _, attributes, _) in zip(seen, expected, strict=True):
                if _pg_text_bytes(attributes) > MAX_LISTED_ATTRIBUTES_BYTES:
                    assert device["attributes"] is None
                else:
                    assert device["attributes"] == attributes

        check()
    finally:
        conn.close()
    assert cut_by_bytes, "no page was cut by its size: the property proves little"
