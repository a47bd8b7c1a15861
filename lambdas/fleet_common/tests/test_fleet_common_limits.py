"""The limits of fleet_common.limits: the body limit (413 before parsing), the attributes
limits (400 on body.attributes, with the schema's errors), and the schemas agreeing with them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fleet_testing.events import http_event, invoke
from fleet_testing.proptest import AT_THE_LIMITS, attributes_problems

from fleet_common import limits
from fleet_common.api import build_app, json_response, make_handler, parse_json_body
from fleet_common.errors import FieldError, PayloadTooLarge, ValidationFailed
from fleet_common.validation import (
    NAME_SCHEMA,
    SERIAL_SCHEMA,
    attributes_problem,
    json_depth,
    validate,
)

TOO_LARGE = {
    "error": {
        "code": "payload_too_large",
        "message": "the request body is larger than 16384 bytes",
        "details": [{"path": "body", "problem": "must be at most 16384 bytes"}],
    }
}

app = build_app()


@app.post("/things")
def post_thing() -> Any:
    return json_response(201, {"keys": sorted(parse_json_body(app.current_event))})


handler = make_handler(app)


def _post(body: str, *, base64_body: bool = False) -> Any:
    event = http_event("POST", "/things")
    event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    event["isBase64Encoded"] = base64_body
    return invoke(handler, event)


def _padded(size: int, name: str = "n") -> str:
    """A JSON object of exactly ``size`` UTF-8 bytes (trailing whitespace is valid JSON)."""
    text = json.dumps({"name": name}, ensure_ascii=False)
    return text + " " * (size - len(text.encode()))


def test_the_numbers():
    assert limits.MAX_BODY_BYTES == 16384
    assert limits.MAX_BASE64_BODY_LENGTH == 21848  # base64 of 16384 bytes, with padding
    assert len(base64.b64encode(b"x" * limits.MAX_BODY_BYTES)) == limits.MAX_BASE64_BODY_LENGTH
    assert (limits.MAX_ATTRIBUTES_KEYS, limits.MAX_ATTRIBUTE_KEY_LENGTH) == (32, 64)
    assert (limits.MAX_ATTRIBUTES_BYTES, limits.MAX_ATTRIBUTES_DEPTH) == (4096, 4)
    assert limits.MAX_PAGE_BYTES * 3 < limits.LAMBDA_RESPONSE_LIMIT_BYTES


def test_the_schemas_use_the_limits():
    assert NAME_SCHEMA["maxLength"] == limits.MAX_NAME_LENGTH == 100
    assert SERIAL_SCHEMA["maxLength"] == limits.MAX_SERIAL_LENGTH == 100
    assert SERIAL_SCHEMA["type"] == ["string", "null"]


# ---- the body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("base64_body", [False, True])
def test_a_body_of_16_kib_is_read_one_byte_more_is_413(base64_body):
    assert _post(_padded(16384), base64_body=base64_body).status == 201
    result = _post(_padded(16385), base64_body=base64_body)
    assert result.status == 413
    assert result.json == TOO_LARGE
    assert result.headers["content-type"] == "application/json"


def test_the_limit_counts_utf8_bytes_not_characters():
    body = _padded(16384, name="é")  # 16383 characters, 16384 bytes
    assert len(body) == 16383 and _post(body).status == 201
    body = _padded(16385, name="é")  # 16384 characters, 16385 bytes
    assert len(body) == 16384 and _post(body).json == TOO_LARGE
    assert _post(_padded(16386, name="🛰")).json == TOO_LARGE


@pytest.mark.parametrize(
    "body",
    [
        "{not json" + " " * 20_000,  # not JSON: still 413, it is not parsed
        "[" * 20_000,
        '{"a": ' + "9" * 20_000 + "}",
        "x" * 1_000_000,
    ],
)
def test_the_size_is_checked_before_parsing(body):
    assert _post(body).json == TOO_LARGE


def test_base64_bodies_count_their_decoded_bytes():
    # Too long to be 16 KiB of anything: 413 undecoded, valid base64 or not.
    assert _post("!" * 21_849, base64_body=False).json == TOO_LARGE
    event = http_event("POST", "/things")
    event["body"], event["isBase64Encoded"] = "!" * 21_849, True
    assert invoke(handler, event).json == TOO_LARGE
    # Short enough: decoded first (not base64: 400), then measured.
    event["body"] = "!" * 100
    assert invoke(handler, event).status == 400
    event["body"] = base64.b64encode(b"\xff" * 16_385).decode()  # 21848 characters, 16385 bytes
    assert len(event["body"]) == 21_848 and invoke(handler, event).json == TOO_LARGE
    event["body"] = base64.b64encode(b"\xff" * 16_384).decode()  # not UTF-8: 400
    assert invoke(handler, event).status == 400


def test_parse_json_body_raises_payload_too_large():
    with pytest.raises(PayloadTooLarge) as caught:
        parse_json_body({"body": _padded(16385), "isBase64Encoded": False})
    assert caught.value.status == 413 and caught.value.body() == TOO_LARGE


# ---- attributes -------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": NAME_SCHEMA, "attributes": {"type": "object"}},
    "required": ["name"],
    "additionalProperties": False,
}
CHECKS = {"attributes": attributes_problem}

KEYS = "must not have an object with more than 32 keys"
KEY = "has a key that is empty or longer than 64 characters"
DEEP = "must not nest more than 4 levels deep"
BIG = "must be at most 4096 bytes as JSON"


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({}, None),
        ({f"k{i}": i for i in range(32)}, None),
        ({f"k{i}": i for i in range(33)}, KEYS),
        ({"a": {f"k{i}": i for i in range(33)}}, KEYS),
        ({"a": [[{f"k{i}": i for i in range(40)}]]}, KEYS),
        ({"k" * 64: 1}, None),
        ({"é" * 64: 1}, None),
        ({"k" * 65: 1}, KEY),
        ({"🛰" * 65: 1}, KEY),
        ({"": 1}, KEY),
        ({"a": [{"": 1}]}, KEY),
        ({"a": {"b": {"k" * 65: 1}}}, KEY),
        ({"a": {"b": {"c": {"d": 1}}}}, None),
        ({"a": {"b": {"c": {"d": {}}}}}, DEEP),
        ({"a": {"b": {"c": [[]]}}}, DEEP),
        ({"a": [[[1]]]}, None),
        ({"a": [[[[1]]]]}, DEEP),
        ({"pad": "x" * 4086}, None),  # exactly 4096 bytes
        ({"pad": "x" * 4087}, BIG),
        ({"pad": "é" * 2043}, None),
        ({"pad": "é" * 2044}, BIG),
        ({"pad": "\u0001" * 681}, None),  # escaped: 6 bytes each
        ({"pad": "\u0001" * 682}, BIG),
        ({f"k{i:02d}": "v" * 120 for i in range(32)}, BIG),
        # Numbers count as jsonb stores them, in plain decimal: 1e308 is 309 digits.
        ({"l": [1e308] * 13}, None),
        ({"l": [1e308] * 14}, BIG),
        ({"l": [5e-324] * 12}, None),
        ({"l": [5e-324] * 13}, BIG),
        ({"l": [10**300] * 13}, None),
        ({"l": [10**300] * 14}, BIG),
        # Several limits: the first in the documented order is the one reported.
        ({"": {"a": {"b": {"c": {"d": 1}}}}, **{f"k{i}": i for i in range(40)}}, KEYS),
        ({"": {"a": {"b": {"c": {"d": "x" * 5000}}}}}, KEY),
        ({"a": {"b": {"c": {"d": {"e": "x" * 5000}}}}}, DEEP),
    ],
)
def test_attributes_limits(attributes, problem):
    assert attributes_problem(attributes) == problem
    assert attributes_problems(attributes) == ({problem} if problem else set())
    body = {"name": "d", "attributes": attributes}
    if problem is None:
        assert validate(body, SCHEMA, checks=CHECKS) == body
    else:
        with pytest.raises(ValidationFailed) as caught:
            validate(body, SCHEMA, checks=CHECKS)
        assert caught.value.details == [FieldError("body.attributes", problem)]


def test_the_boundary_examples_are_accepted():
    for value in AT_THE_LIMITS:
        assert attributes_problem(value) is None, value
    assert json_depth(AT_THE_LIMITS[2]) == 4


def test_json_depth():
    assert [json_depth(v) for v in (1, "x", None, [], {}, [[]], {"a": [1]})] == [
        0,
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert json_depth(deep) == 5000  # no recursion
    assert attributes_problem({"a": deep}) == DEEP


def test_checks_are_reported_with_the_schema_errors():
    body = {"name": "", "extra": 1, "attributes": {"k" * 65: 1}}
    with pytest.raises(ValidationFailed) as caught:
        validate(body, SCHEMA, checks=CHECKS)
    assert [d.to_json() for d in caught.value.details] == [
        {"path": "body.extra", "problem": "is not allowed"},
        {"path": "body.name", "problem": "must not be empty"},
        {"path": "body.attributes", "problem": KEY},
    ]
    assert caught.value.message == "invalid request: body.extra, body.name, body.attributes"


def test_a_check_does_not_run_on_a_value_the_schema_rejected():
    seen = []
    checks = {"attributes": lambda value: seen.append(value) or "never"}
    with pytest.raises(ValidationFailed) as caught:
        validate({"name": "d", "attributes": [1]}, SCHEMA, checks=checks)
    assert caught.value.details == [FieldError("body.attributes", "must be an object")]
    assert seen == []
    assert validate({"name": "d"}, SCHEMA, checks=checks) == {"name": "d"}  # absent: not run
