"""Properties of POST /projects/{project}/devices over generated requests (hypothesis), through
the real handler and a real PostgreSQL database.

Each example starts from the same database (a few projects, a few devices) and the answer is
exactly the documented one, decided from the request and that database:

- a project name PostgreSQL cannot store (NUL, lone surrogates): 400 ``validation_error`` on
  ``path.project``;
- no verified caller: 401 ``unauthorized``;
- a body over 16 KiB (decoded, for base64): 413 ``payload_too_large`` on ``body``;
- body missing, not JSON (also NaN, numbers out of range, nesting beyond the parser), not an
  object, or base64 that is not base64 or not UTF-8: 400 ``bad_request`` on ``body``;
- NUL or lone surrogates in any string of the body, keys included: 400 ``validation_error``
  with exactly those paths;
- an object failing the schema or the attributes limits (every object in it at most 32 keys
  of 1-64 characters, at most 4 levels deep, at most 4096 bytes of compact JSON): 400
  ``validation_error`` with one detail per bad field;
- a valid body for an unknown project (injection and traversal names, encoded variants,
  unicode, huge names): 404 ``not_found``;
- a new device name: 201 and the device stored as sent, ``created_by`` the caller's ``sub``;
  the name of a device with the same serial and attributes (as jsonb compares them): 200 and
  that device, ``created_by`` still its creator whoever asks; else 409 naming the fields that
  differ;

and nothing but a 201 changes any row of any table. Query strings and headers play no part.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fleet_testing.events import DEFAULT_CLAIMS, http_event, invoke
from fleet_testing.proptest import (
    INJECTIONS,
    REJECTED,
    SEED_CREATOR,
    TRAVERSALS,
    Sent,
    assert_error,
    assert_field_details,
    attributes_problems,
    bounded_attributes,
    caller_claims,
    database_rows,
    empty_tables,
    expected_field_details,
    json_bodies,
    json_objects,
    json_values,
    nasty_text,
    oversized_attributes,
    property_settings,
    same_json,
    seed_projects,
    sent_bodies,
    string_problems,
    text_problems,
    valid_names,
)
from hypothesis import given
from hypothesis import strategies as st

from register_device.handler import handler

ROUTE = "POST /projects/{project}/devices"
FIELDS = {
    "name": string_problems,
    "serial": lambda value: string_problems(value, nullable=True),
    "attributes": attributes_problems,
}
INJECTION, TRAVERSAL = INJECTIONS[0], TRAVERSALS[0]

# What the database holds before each request.
PROJECTS = {"cams": "platform", INJECTION: "platform", "a/b": TRAVERSAL, "Café 🛰️": "x"}
ATTRIBUTES = ({"a": 1, "b": [1, 2.5]}, {}, {INJECTION: TRAVERSAL, "n": {"deep": [None, True]}})
DEVICES = [  # (project, name, serial, attributes)
    ("cams", "cam-01", "SN-1", ATTRIBUTES[0]),
    ("cams", "bare", None, {}),
    ("cams", INJECTION, "' OR '1'='1", ATTRIBUTES[2]),
    (INJECTION, "cam-01", None, {"x": 1}),
    ("a/b", TRAVERSAL, "SN-1", {}),
]

PROJECT_NAMES = st.one_of(
    st.sampled_from([*PROJECTS, "CAMS", "cams ", "ghost", INJECTIONS[1], "a%2Fb"]),
    nasty_text(),
)
DEVICE_NAMES = st.one_of(
    st.sampled_from(sorted({name for _, name, _, _ in DEVICES} | {"new-1", "a/b"})),
    valid_names(),
)
SERIALS = st.one_of(st.none(), st.sampled_from(["SN-1", "SN-2", "' OR '1'='1"]), valid_names())
ATTRIBUTE_OBJECTS = st.one_of(
    st.sampled_from(
        [*ATTRIBUTES, {"b": [1.0, 2.5], "a": 1.0}, {"a": True, "b": [1, 2.5]}, {"x": 1}]
    ),
    json_objects(),
    bounded_attributes(),
    oversized_attributes(),
)
# Within every limit (json_objects are often deep, or have empty keys: not these).
STORABLE_ATTRIBUTES = st.one_of(
    st.sampled_from(
        [*ATTRIBUTES, {"b": [1.0, 2.5], "a": 1.0}, {"a": True, "b": [1, 2.5]}, {"x": 1}]
    ),
    bounded_attributes(),
)
WRONG = st.one_of(nasty_text(), json_values(max_leaves=4))

EXTRA = st.dictionaries(nasty_text(12), json_values(max_leaves=4), max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Objects near the schema: each field valid, wrong or missing, sometimes extra keys."""
    valid = {"name": DEVICE_NAMES, "serial": SERIALS, "attributes": ATTRIBUTE_OBJECTS}
    body: dict[str, Any] = {}
    for key, strategy in valid.items():
        choice = draw(st.sampled_from(["valid", "valid", "other", "missing"]))
        if choice == "valid":
            body[key] = draw(strategy)
        elif choice == "other":
            body[key] = draw(WRONG)
    if draw(st.integers(0, 4)) == 0:
        body.update(draw(EXTRA))
    return body


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = {"name": draw(DEVICE_NAMES)}
    if draw(st.booleans()):
        body["serial"] = draw(SERIALS)
    if draw(st.booleans()):
        body["attributes"] = draw(STORABLE_ATTRIBUTES)
    return body


def _respelled(value: Any) -> Any:
    """The same JSON as jsonb sees it, written differently: keys reversed, integers as floats."""
    if isinstance(value, dict):
        return {k: _respelled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_respelled(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@st.composite
def retries(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A registered device sent again (``null`` serial and ``{}`` attributes maybe omitted,
    attributes maybe respelled), sometimes with the serial or attributes changed."""
    project, name, serial, attributes = draw(st.sampled_from(DEVICES))
    body: dict[str, Any] = {"name": name}
    if serial is not None or draw(st.booleans()):
        body["serial"] = serial
    if attributes or draw(st.booleans()):
        body["attributes"] = _respelled(attributes) if draw(st.booleans()) else attributes
    change = draw(st.sampled_from(["none", "none", "serial", "attributes"]))
    if change == "serial":
        body["serial"] = draw(SERIALS)
    elif change == "attributes":
        body["attributes"] = draw(STORABLE_ATTRIBUTES)
    return project, body


QUERIES = st.dictionaries(
    st.sampled_from(["name", "project", "limit", "../x", "'; --"]),
    st.sampled_from(INJECTIONS + TRAVERSALS + ("", "1")),
    max_size=2,
)


def _seed(conn: Any) -> None:
    empty_tables(conn)
    seed_projects(conn, PROJECTS)
    for project, name, serial, attributes in DEVICES:
        conn.run(
            "INSERT INTO device (project_id, name, serial, attributes, created_by) "
            "SELECT id, :name, :serial, CAST(:attributes AS jsonb), :by FROM project "
            "WHERE name = :p",
            p=project,
            name=name,
            serial=serial,
            attributes=json.dumps(attributes),
            by=SEED_CREATOR,
        )


def _run(fleet_api_env, requests, max_examples: int, claims=None) -> dict[int, int]:
    """Send generated ``(project, body as sent)`` requests (by the callers of ``claims``,
    default: the default caller); check each answer and the database after it. Returns how
    many requests got each status."""
    conn = fleet_api_env.connect()
    statuses: dict[int, int] = {}
    callers = st.just(DEFAULT_CLAIMS) if claims is None else claims
    try:

        @property_settings(max_examples=max_examples)
        @given(request=requests, query=QUERIES, claims=callers)
        def check(request: tuple[str, Sent], query: dict[str, str], claims: Any) -> None:
            project, sent = request
            _seed(conn)
            before = database_rows(conn)
            event = http_event(
                "POST",
                f"/projects/{project}/devices",
                ROUTE,
                {"project": project},
                query=query,
                claims=claims,
            )
            result = invoke(handler, sent.apply(event))
            status = _check_answer(project, sent, result, before, claims)
            statuses[status] = statuses.get(status, 0) + 1
            after = database_rows(conn)
            if status == 201:
                device = result.json["device"]
                _check_created(project, device, sent.value, before, after, claims["sub"])
            else:
                assert after == before, "a request that created nothing changed the database"

        check()
    finally:
        conn.close()
    return statuses


def test_any_request_gets_its_documented_answer(fleet_api_env):
    """Mostly malformed requests: nasty project names, every kind of broken body."""
    requests = st.tuples(PROJECT_NAMES, sent_bodies(bodies()))
    statuses = _run(fleet_api_env, requests, max_examples=300)
    assert {201, 400, 404} <= set(statuses), statuses  # else the property proves little


def test_valid_requests_register_retry_or_conflict(fleet_api_env):
    """Valid bodies for existing projects, new devices and registered ones sent again: 201
    (new), 200 (the same device), 409 (another serial or attributes), exactly as the database
    before the request says."""
    new = st.tuples(st.sampled_from(list(PROJECTS)), valid_bodies())
    requests = st.one_of(new, retries()).flatmap(
        lambda request: st.tuples(st.just(request[0]), json_bodies(st.just(request[1])))
    )
    statuses = _run(fleet_api_env, requests, max_examples=200)
    assert set(statuses) == {200, 201, 409}, statuses


def test_any_attributes_over_a_limit_are_rejected_and_leave_the_devices_unchanged(
    fleet_api_env,
):
    """Otherwise valid bodies whose attributes break one limit (keys per object, key length,
    depth, bytes; at the top or nested), for existing projects and device names old and new:
    400 ``validation_error`` on ``body.attributes`` with the documented problem (413 when the
    body itself is over 16 KiB), and not a row changed."""

    @st.composite
    def over(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
        project = draw(st.sampled_from(list(PROJECTS)))
        body = draw(valid_bodies())
        body["attributes"] = draw(oversized_attributes())
        return project, body

    requests = over().flatmap(lambda r: st.tuples(st.just(r[0]), json_bodies(st.just(r[1]))))
    statuses = _run(fleet_api_env, requests, max_examples=200, claims=caller_claims())
    assert 400 in statuses and set(statuses) <= {400, 413}, statuses


def test_any_accepted_body_round_trips_with_created_by_the_callers_sub(fleet_api_env):
    """Valid bodies from any verified caller: a new device is answered and stored with
    ``created_by`` = the caller's ``sub``; a retry (200) keeps its creator, whoever sends it."""
    new = st.tuples(st.sampled_from(list(PROJECTS)), valid_bodies())
    requests = st.one_of(new, retries()).flatmap(
        lambda request: st.tuples(st.just(request[0]), json_bodies(st.just(request[1])))
    )
    statuses = _run(fleet_api_env, requests, max_examples=200, claims=caller_claims())
    assert {200, 201} <= set(statuses), statuses


def test_any_request_without_a_verified_caller_is_401_and_changes_nothing(fleet_api_env):
    requests = st.tuples(PROJECT_NAMES, sent_bodies(bodies()))
    statuses = _run(fleet_api_env, requests, max_examples=100, claims=st.just(None))
    assert set(statuses) == {401}, statuses


def _project_id(before: dict[str, list[dict[str, Any]]], project: str) -> int | None:
    ids = [p["id"] for p in before["project"] if p["name"] == project]
    return ids[0] if ids else None


def _check_answer(project: str, sent: Sent, result: Any, before, claims: Any) -> int:
    value = sent.value
    if claims is None:
        assert_error(result, 401, "unauthorized")
        return 401
    bad_path = text_problems(project, "path.project")
    if bad_path:
        error = assert_error(result, 400, "validation_error")
        assert [(d["path"], d["problem"]) for d in error["details"]] == bad_path
        return 400
    if project == "":  # /projects//devices: no route (and no project has an empty name)
        assert_error(result, 404, "not_found")
        return 404
    if sent.too_large:
        error = assert_error(result, 413, "payload_too_large")
        assert [d["path"] for d in error["details"]] == ["body"], error
        return 413
    if value is REJECTED:
        error = assert_error(result, 400, "bad_request")
        assert [d["path"] for d in error["details"]] == ["body"], error
        return 400
    bad_text = text_problems(value)
    if bad_text:
        error = assert_error(result, 400, "validation_error")
        assert sorted((d["path"], d["problem"]) for d in error["details"]) == bad_text
        return 400
    expected = expected_field_details(value, FIELDS, required=("name",))
    if expected:
        assert_field_details(assert_error(result, 400, "validation_error"), expected)
        return 400
    project_id = _project_id(before, project)
    if project_id is None:
        error = assert_error(result, 404, "not_found")
        assert error["details"] == [] and project in error["message"]
        return 404
    serial, attributes = value.get("serial"), value.get("attributes", {})
    existing = [
        d for d in before["device"] if d["project_id"] == project_id and d["name"] == value["name"]
    ]
    if not existing:
        assert result.status == 201, result.body[:500]
        assert result.headers["location"] == (
            f"/projects/{quote(project, safe='')}/devices/{quote(value['name'], safe='')}"
        )
        return 201
    (row,) = existing
    differs = [
        f"body.{field}"
        for field, same in (
            ("serial", row["serial"] == serial),
            ("attributes", same_json(row["attributes"], attributes)),
        )
        if not same
    ]
    if differs:
        error = assert_error(result, 409, "conflict")
        assert [d["path"] for d in error["details"]] == differs, error
        assert {d["problem"] for d in error["details"]} == {"differs from the registered device"}
        return 409
    assert result.status == 200, result.body[:500]
    device = result.json["device"]
    assert (device["id"], device["name"], device["serial"]) == (row["id"], row["name"], serial)
    assert device["created_by"] == row["created_by"] == SEED_CREATOR
    assert same_json(device["attributes"], row["attributes"])
    assert "location" not in result.headers
    return 200


def _check_created(
    project: str, device: dict[str, Any], value: dict[str, Any], before, after, sub: str
):
    serial, attributes = value.get("serial"), value.get("attributes", {})
    assert (device["name"], device["serial"]) == (value["name"], serial)
    assert device["created_by"] == sub
    assert same_json(device["attributes"], attributes)
    new = [d for d in after["device"] if d not in before["device"]]
    assert len(new) == 1 and len(after["device"]) == len(before["device"]) + 1
    (row,) = new
    assert row["id"] == device["id"] and row["project_id"] == _project_id(before, project)
    assert (row["name"], row["serial"], row["created_by"]) == (value["name"], serial, sub)
    assert same_json(row["attributes"], attributes)
    for table in ("team", "app_user", "project", "model", "app"):
        assert after[table] == before[table]
