"""Properties of the shared request handling over generated input (hypothesis): body parsing,
validation, ``limit``, cursors, path parameters, and the handler wrapper, which answers every
event with a JSON response of the documented shape and never lets an exception out.

No database: these are the pieces every function runs before its SQL.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fleet_testing.events import http_event, invoke
from fleet_testing.proptest import (
    INJECTIONS,
    REJECTED,
    TRAVERSALS,
    Sent,
    assert_error,
    assert_field_details,
    attributes_problems,
    bounded_attributes,
    caller_claims,
    cursor_datetimes,
    cursor_position,
    expected_field_details,
    forged_cursors,
    json_objects,
    json_values,
    limit_value,
    nasty_text,
    oversized_attributes,
    property_settings,
    same_json,
    sent_bodies,
    string_problems,
    text_problems,
    valid_names,
)
from hypothesis import example, given
from hypothesis import strategies as st

from fleet_common.api import (
    build_app,
    json_response,
    make_handler,
    parse_json_body,
    path_param,
    query_param,
)
from fleet_common.errors import BadRequest, PayloadTooLarge, ValidationFailed
from fleet_common.identity import caller
from fleet_common.pagination import Cursor, decode_cursor, encode_cursor, parse_limit
from fleet_common.validation import NAME_SCHEMA, attributes_problem, string_schema, validate

SCHEMA = {
    "type": "object",
    "properties": {
        "name": NAME_SCHEMA,
        "serial": string_schema(100, nullable=True),
        "attributes": {"type": "object"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
FIELDS = {
    "name": string_problems,
    "serial": lambda value: string_problems(value, nullable=True),
    "attributes": attributes_problems,
}
CHECKS = {"attributes": attributes_problem}


VALID = {
    "name": valid_names(),
    "serial": st.none() | valid_names(),
    "attributes": json_objects(6) | bounded_attributes() | oversized_attributes(),
}
OTHER = nasty_text() | json_values(4)
EXTRA = st.dictionaries(nasty_text(12), json_values(4), max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Objects near SCHEMA: each field valid, of another kind, or missing; extra keys."""
    body: dict[str, Any] = {}
    for key, strategy in VALID.items():
        choice = draw(st.sampled_from(["valid", "valid", "other", "missing"]))
        if choice == "valid":
            body[key] = draw(strategy)
        elif choice == "other":
            body[key] = draw(OTHER)
    if draw(st.integers(0, 3)) == 0:
        body.update(draw(EXTRA))
    return body


# ---- body parsing and validation ------------------------------------------------------------


@property_settings(max_examples=300)
@given(sent=sent_bodies(bodies()))
def test_parse_json_body_returns_the_object_or_a_400(sent: Sent):
    event = sent.apply({})
    if sent.too_large:
        with pytest.raises(PayloadTooLarge) as caught:
            parse_json_body(event)
        assert [d.to_json() for d in caught.value.details] == [
            {"path": "body", "problem": "must be at most 16384 bytes"}
        ]
        return
    if sent.value is REJECTED:
        with pytest.raises(BadRequest) as caught:
            parse_json_body(event)
        assert [d.path for d in caught.value.details] == ["body"]
        return
    bad_text = text_problems(sent.value)
    if bad_text:
        with pytest.raises(ValidationFailed) as caught:
            parse_json_body(event)
        assert sorted((d.path, d.problem) for d in caught.value.details) == bad_text
        return
    parsed = parse_json_body(event)
    assert same_json(parsed, sent.value)


@property_settings(max_examples=100)
@given(
    body=st.one_of(
        st.integers(), st.binary(), st.lists(st.text()), st.dictionaries(st.text(), st.text())
    )
)
def test_a_body_that_is_not_a_string_is_a_400(body: Any):
    with pytest.raises(BadRequest):
        parse_json_body({"body": body, "isBase64Encoded": False})


@property_settings(max_examples=300)
@given(body=bodies())
def test_validate_reports_exactly_the_bad_fields(body: dict[str, Any]):
    if text_problems(body):
        return  # parse_json_body rejects these first (see the property above)
    expected = expected_field_details(body, FIELDS, required=("name",))
    if not expected:
        assert validate(body, SCHEMA, checks=CHECKS) == body
        return
    with pytest.raises(ValidationFailed) as caught:
        validate(body, SCHEMA, checks=CHECKS)
    error = caught.value.body()["error"]
    assert error["code"] == "validation_error"
    assert_field_details(error, expected)


# ---- limit and cursors ----------------------------------------------------------------------


LIMIT_TEXTS = st.one_of(
    st.integers(-10, 10**6).map(str),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.sampled_from(["", " 5", "5 ", "+5", "1.0", "1e2", "0x10", "\u0663", "\uff15", "5\n"]),
    nasty_text(),
)


@property_settings(max_examples=300)
@given(text=st.none() | LIMIT_TEXTS)
def test_parse_limit_takes_1_to_100_and_nothing_else(text: str | None):
    if text is None:
        assert parse_limit(text) == 20
        return
    expected = limit_value(text)
    if expected is None:
        with pytest.raises(ValidationFailed) as caught:
            parse_limit(text)
        assert [d.to_json() for d in caught.value.details] == [
            {"path": "query.limit", "problem": "must be an integer between 1 and 100"}
        ]
    else:
        assert parse_limit(text) == expected


# Once a 500: a time zone that moves year 1 (or 9999) out of range when turned into UTC.
OVERFLOWING_CURSORS = [
    base64.urlsafe_b64encode(json.dumps([stamp, 1], separators=(",", ":")).encode())
    .decode()
    .rstrip("=")
    for stamp in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999999-01:00")
]


@property_settings(max_examples=300)
@given(text=st.one_of(forged_cursors(), nasty_text()))
@example(text=OVERFLOWING_CURSORS[0])
@example(text=OVERFLOWING_CURSORS[1])
def test_decode_cursor_takes_exactly_what_encode_cursor_writes(text: str):
    position = cursor_position(text)
    if position is None:
        with pytest.raises(ValidationFailed) as caught:
            decode_cursor(text)
        assert [d.to_json() for d in caught.value.details] == [
            {"path": "query.cursor", "problem": "is not a valid cursor"}
        ]
    else:
        assert decode_cursor(text) == Cursor(*position)


@property_settings(max_examples=200)
@given(
    when=cursor_datetimes(),
    offset=st.integers(-23 * 60 - 59, 23 * 60 + 59),
    position_id=st.integers(1, 2**63 - 1),
)
def test_cursors_round_trip_in_any_time_zone(when: datetime, offset: int, position_id: int):
    try:
        local = when.astimezone(timezone(timedelta(minutes=offset)))
    except OverflowError:  # year 1 or 9999 pushed out of range: not a time to encode
        return
    text = encode_cursor(local, position_id)
    assert cursor_position(text) == (when, position_id)
    cursor = decode_cursor(text)
    assert cursor == Cursor(when, position_id) and cursor.created_at.tzinfo == UTC


# ---- the handler wrapper --------------------------------------------------------------------

app = build_app()


@app.get("/things/<thing>")
def get_thing(**_: str) -> Any:
    name = path_param(app, "thing")
    limit = parse_limit(query_param(app, "limit"))
    return json_response(200, {"thing": name, "limit": limit})


@app.post("/things")
def post_thing() -> Any:
    body = validate(parse_json_body(app.current_event), SCHEMA, checks=CHECKS)
    return json_response(201, {"thing": body})


handler = make_handler(app)

PATH_VALUES = nasty_text() | st.sampled_from(INJECTIONS + TRAVERSALS)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "accept", "x-forwarded-for", "cookie", "x-custom", "host"]),
    nasty_text(40).filter(lambda v: not text_problems(v)),
    max_size=3,
)


@property_settings(max_examples=300)
@given(
    thing=PATH_VALUES,
    limit=st.none() | LIMIT_TEXTS,
    extra=st.dictionaries(st.sampled_from(["x", "../y", "'; --"]), PATH_VALUES, max_size=2),
    headers=HEADERS,
)
# Once a 500 (a lone surrogate) and a 422 (NUL) from the database: now 400 on path.thing.
@example(thing="\ud800", limit=None, extra={}, headers={})
@example(thing="a\x00b", limit=None, extra={}, headers={})
def test_get_requests_get_a_200_or_the_documented_400(thing, limit, extra, headers):
    query = {**extra, **({"limit": limit} if limit is not None else {})}
    event = http_event(
        "GET", f"/things/{thing}", "GET /things/{thing}", {"thing": thing}, query=query or None
    )
    event["headers"].update(headers)
    result = invoke(handler, event)
    if thing == "":
        assert_error(result, 404, "not_found")  # /things/: no route
    elif text_problems(thing, "path.thing"):
        error = assert_error(result, 400, "validation_error")
        assert [(d["path"], d["problem"]) for d in error["details"]] == text_problems(
            thing, "path.thing"
        )
    elif limit is not None and limit_value(limit) is None:
        assert_error(result, 400, "validation_error")
    else:
        assert result.status == 200, result.body
        expected_limit = 20 if limit is None else limit_value(limit)
        assert result.json == {"thing": thing, "limit": expected_limit}


@property_settings(max_examples=300)
@given(sent=sent_bodies(bodies()), headers=HEADERS)
def test_post_requests_get_a_201_or_the_documented_400(sent: Sent, headers):
    event = sent.apply(http_event("POST", "/things", headers=headers))
    result = invoke(handler, event)
    if sent.too_large:
        error = assert_error(result, 413, "payload_too_large")
        assert [d["path"] for d in error["details"]] == ["body"]
    elif sent.value is REJECTED:
        error = assert_error(result, 400, "bad_request")
        assert [d["path"] for d in error["details"]] == ["body"]
    elif text_problems(sent.value):
        error = assert_error(result, 400, "validation_error")
        got = sorted((d["path"], d["problem"]) for d in error["details"])
        assert got == text_problems(sent.value)
    elif expected := expected_field_details(sent.value, FIELDS, required=("name",)):
        assert_field_details(assert_error(result, 400, "validation_error"), expected)
    else:
        assert result.status == 201, result.body
        assert same_json(result.json["thing"], sent.value)


def _broken_events() -> st.SearchStrategy[Any]:
    """Events API Gateway never sends: wrong types in every field, missing parts."""
    anything = st.none() | st.booleans() | st.integers() | nasty_text(20) | json_values(4)
    good = http_event("GET", "/things/x", "GET /things/{thing}", {"thing": "x"})
    keys = sorted(good)
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={key: st.one_of(st.just(good[key]), anything) for key in keys},
        ),
        st.builds(lambda key, value: {**good, key: value}, st.sampled_from(keys), anything),
        st.builds(
            lambda value: {**good, "pathParameters": value},
            st.dictionaries(st.sampled_from(["thing", "other"]), anything),
        ),
        st.builds(
            lambda value: {**good, "requestContext": {**good["requestContext"], "http": value}},
            anything,
        ),
    )


@property_settings(max_examples=300)
@given(event=_broken_events())
def test_no_event_makes_the_handler_raise(event: dict[str, Any]):
    """Whatever the event, the handler returns a response; an error is the JSON error body
    (a 500 is fair for an event API Gateway would never send, a traceback is not)."""
    result = invoke(handler, event)
    assert isinstance(result.raw["statusCode"], int)
    if result.status >= 400:
        body = json.loads(result.body)
        assert list(body) == ["error"] and set(body["error"]) == {"code", "message", "details"}
        assert "Traceback" not in result.body
    if result.status >= 500:
        assert body["error"] == {
            "code": "internal_error",
            "message": "internal server error",
            "details": [],
        }


# ---- attributes limits and the caller ----------------------------------------------------------


@property_settings(max_examples=300)
@given(attributes=oversized_attributes(), name=valid_names())
def test_any_attributes_over_a_limit_are_a_validation_error_on_body_attributes(
    attributes: dict[str, Any], name: str
):
    (problem,) = attributes_problems(attributes)
    with pytest.raises(ValidationFailed) as caught:
        validate({"name": name, "attributes": attributes}, SCHEMA, checks=CHECKS)
    assert [d.to_json() for d in caught.value.details] == [
        {"path": "body.attributes", "problem": problem}
    ]


@property_settings(max_examples=300)
@given(attributes=bounded_attributes(), name=valid_names())
def test_any_attributes_within_the_limits_are_accepted(attributes: dict[str, Any], name: str):
    body = {"name": name, "attributes": attributes}
    assert validate(body, SCHEMA, checks=CHECKS) == body


whoami_app = build_app()


@whoami_app.get("/whoami")
def whoami() -> Any:
    who = caller(whoami_app)
    return json_response(200, {"sub": who.sub, "client_id": who.client_id})


whoami_handler = make_handler(whoami_app)


@property_settings(max_examples=200)
@given(claims=caller_claims())
def test_any_verified_caller_is_seen_as_such(claims: dict[str, str]):
    result = invoke(whoami_handler, http_event("GET", "/whoami", claims=claims))
    assert result.status == 200, result.body
    client_id = claims.get("client_id", claims.get("azp"))
    assert result.json == {"sub": claims["sub"], "client_id": client_id}


@property_settings(max_examples=200)
@given(
    claims=st.none()
    | st.dictionaries(
        st.sampled_from(["client_id", "aud", "scope", "iss", "azp"]), nasty_text(20), max_size=4
    )
    | st.builds(
        lambda sub: {"sub": sub},
        st.one_of(
            st.just(""),
            st.text(min_size=257, max_size=300),
            nasty_text().filter(lambda s: text_problems(s)),
        ),
    ),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(["/whoami", "/things/x", "/nowhere"]),
)
def test_any_request_without_a_usable_verified_caller_is_401(claims, method, path):
    event = http_event(method, path, body="{}" if method == "POST" else None, claims=claims)
    if claims == {}:  # an empty claims object is no claims at all
        event["requestContext"]["authorizer"]["jwt"]["claims"] = {}
    result = invoke(handler, event)
    error = assert_error(result, 401, "unauthorized")
    assert error["details"] == []
    assert result.headers["www-authenticate"] == "Bearer"
