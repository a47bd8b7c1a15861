"""Properties of POST /projects over generated requests (hypothesis), through the real handler
and a real PostgreSQL database.

For every request the answer is exactly the documented one, decided from the request and the
database before it (never "anything but a 500"):

- no verified caller: 401 ``unauthorized``, whatever the body;
- a body over 16 KiB (decoded, for base64): 413 ``payload_too_large`` on ``body``;
- body missing, not JSON (also NaN, numbers out of range, nesting beyond the parser), not an
  object, or base64 that is not base64 or not UTF-8: 400 ``bad_request`` on ``body``;
- strings PostgreSQL cannot store (NUL, lone surrogates) anywhere, keys included: 400
  ``validation_error`` with exactly those paths;
- an object failing the schema: 400 ``validation_error`` with one detail per bad field;
- a valid body: 201 and the project (and its team when new) stored as sent, with
  ``created_by`` the caller's ``sub``, or 409 when the name is taken;

and a rejected request changes no row of any table. Query strings and headers play no part.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fleet_testing.events import DEFAULT_CLAIMS, http_event, invoke
from fleet_testing.proptest import (
    INJECTIONS,
    REJECTED,
    TRAVERSALS,
    Sent,
    assert_error,
    assert_field_details,
    caller_claims,
    database_rows,
    empty_tables,
    expected_field_details,
    json_bodies,
    json_values,
    nasty_text,
    property_settings,
    seed_projects,
    sent_bodies,
    string_problems,
    text_problems,
    valid_names,
)
from hypothesis import given
from hypothesis import strategies as st

from create_project.handler import handler

FIELDS = {"name": string_problems, "team": string_problems}

# What the database holds before each request: {project: team}.
SEEDED = {"dup": "platform", INJECTIONS[0]: "platform", "Café 🛰️": TRAVERSALS[0]}
# Names that are seeded or not, teams that exist or not: 201, 409 and team reuse all happen.
POOL = st.sampled_from([*SEEDED, "platform", TRAVERSALS[0], "edge-cameras", "n" * 100])
NAMES = st.one_of(POOL, valid_names())
FIELD_VALUES = st.one_of(NAMES, nasty_text(), json_values(max_leaves=4))

EXTRA = st.dictionaries(nasty_text(12), json_values(max_leaves=4), max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Objects near the schema: each field valid, wrong or missing, sometimes extra keys."""
    body: dict[str, Any] = {}
    for key in ("name", "team"):
        choice = draw(st.sampled_from(["valid", "valid", "other", "missing"]))
        if choice == "valid":
            body[key] = draw(NAMES)
        elif choice == "other":
            body[key] = draw(FIELD_VALUES)
    if draw(st.integers(0, 4)) == 0:
        body.update(draw(EXTRA))
    return body


QUERIES = st.dictionaries(
    st.sampled_from(["name", "team", "limit", "cursor", "../x", "'; --"]),
    st.sampled_from(INJECTIONS + TRAVERSALS + ("", "1")),
    max_size=2,
)
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", "application/x-www-form-urlencoded", ""]
)


def _event(
    sent: Sent, query: dict[str, str], content_type: str | None, claims: Any
) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type is not None else None
    event = http_event("POST", "/projects", query=query or None, headers=headers, claims=claims)
    return sent.apply(event)


def _run(fleet_api_env, sents, max_examples: int, claims=None) -> dict[int, int]:
    """Send generated requests (by the callers of ``claims``, default: the default caller);
    check each answer and the database after it. Returns how many requests got each
    status."""
    conn = fleet_api_env.connect()
    statuses: dict[int, int] = {}
    callers = st.just(DEFAULT_CLAIMS) if claims is None else claims
    try:

        @property_settings(max_examples=max_examples)
        @given(sent=sents, query=QUERIES, content_type=CONTENT_TYPES, claims=callers)
        def check(sent: Sent, query: dict[str, str], content_type: str | None, claims) -> None:
            empty_tables(conn)
            seed_projects(conn, SEEDED)
            before = database_rows(conn)
            result = invoke(handler, _event(sent, query, content_type, claims))
            status = _check_answer(sent, result, before, claims)
            statuses[status] = statuses.get(status, 0) + 1
            after = database_rows(conn)
            if status == 201:
                _check_created(result.json["project"], sent.value, before, after, claims["sub"])
            else:
                assert after == before, "a rejected request changed the database"

        check()
    finally:
        conn.close()
    return statuses


def test_any_request_gets_its_documented_answer(fleet_api_env):
    """Mostly malformed requests: every kind of broken body, bodies near the schema."""
    statuses = _run(fleet_api_env, sent_bodies(bodies()), max_examples=300)
    assert {201, 400, 409} <= set(statuses), statuses  # else the property proves little


def test_valid_requests_create_the_project_or_conflict(fleet_api_env):
    """Valid bodies (nasty but storable names, written in any JSON way): 201 and stored as
    sent, or 409 for a taken name and nothing stored."""
    valid = st.fixed_dictionaries({"name": NAMES, "team": NAMES})
    statuses = _run(fleet_api_env, json_bodies(valid), max_examples=150)
    assert set(statuses) == {201, 409}, statuses


def test_any_accepted_body_round_trips_with_created_by_the_callers_sub(fleet_api_env):
    """Valid bodies from any verified caller (Cognito clients, other issuers, nasty subs up
    to 256 characters): the project answered and stored has ``created_by`` = that ``sub``."""
    valid = st.fixed_dictionaries({"name": NAMES, "team": NAMES})
    statuses = _run(fleet_api_env, json_bodies(valid), max_examples=150, claims=caller_claims())
    assert statuses.get(201), statuses


def test_any_request_without_a_verified_caller_is_401_and_changes_nothing(fleet_api_env):
    statuses = _run(fleet_api_env, sent_bodies(bodies()), max_examples=100, claims=st.just(None))
    assert set(statuses) == {401}, statuses


def _check_answer(
    sent: Sent, result: Any, before: dict[str, list[dict[str, Any]]], claims: Any
) -> int:
    value = sent.value
    if claims is None:
        error = assert_error(result, 401, "unauthorized")
        assert error["details"] == []
        return 401
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
    expected = expected_field_details(value, FIELDS, required=("name", "team"))
    if expected:
        assert_field_details(assert_error(result, 400, "validation_error"), expected)
        return 400
    if any(p["name"] == value["name"] for p in before["project"]):
        error = assert_error(result, 409, "conflict")
        assert error["details"] == [{"path": "body.name", "problem": "is already taken"}]
        return 409
    assert result.status == 201, result.body[:500]
    assert result.headers["location"] == "/projects/" + quote(value["name"], safe="")
    return 201


def _check_created(project: dict[str, Any], value: dict[str, Any], before, after, sub: str) -> None:
    assert project["name"] == value["name"] and project["team"] == value["team"]
    assert project["created_by"] == sub
    new_projects = [p for p in after["project"] if p not in before["project"]]
    assert [(p["id"], p["name"], p["created_by"]) for p in new_projects] == [
        (project["id"], value["name"], sub)
    ]
    teams = {t["id"]: t["name"] for t in after["team"]}
    assert teams[new_projects[0]["team_id"]] == value["team"]
    known = {t["name"] for t in before["team"]}
    new_teams = [t["name"] for t in after["team"] if t not in before["team"]]
    assert new_teams == ([] if value["team"] in known else [value["team"]])
    for table in ("app_user", "device", "model", "app"):
        assert after[table] == before[table]
