"""JSON-schema validation: one error per field, readable problems, no values echoed."""

from __future__ import annotations

import pytest

from fleet_common.errors import FieldError, ValidationFailed
from fleet_common.validation import NAME_SCHEMA, field_errors, string_schema, text_errors, validate

SCHEMA = {
    "type": "object",
    "properties": {
        "name": NAME_SCHEMA,
        "team": NAME_SCHEMA,
        "serial": string_schema(10, nullable=True),
        "attributes": {"type": "object"},
        "count": {"type": "integer", "minimum": 1},
    },
    "required": ["name", "team"],
    "additionalProperties": False,
}


def _errors(data):
    with pytest.raises(ValidationFailed) as info:
        validate(data, SCHEMA)
    assert info.value.status == 400
    assert info.value.code == "validation_error"
    return {d.path: d.problem for d in info.value.details}


def test_valid_data_is_returned():
    data = {"name": "a", "team": "b", "serial": None, "attributes": {"x": [1]}, "count": 3}
    assert validate(data, SCHEMA) == data
    assert validate({"name": "x" * 100, "team": "with inner  spaces"}, SCHEMA)


def test_every_bad_field_is_listed():
    assert _errors({"name": 5, "extra": 1, "other": 2, "serial": "", "count": 0}) == {
        "body.team": "is required",
        "body.extra": "is not allowed",
        "body.other": "is not allowed",
        "body.name": "must be a string",
        "body.serial": "must not be empty",
        "body.count": "must be at least 1",
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must not be empty"),
        ("x" * 101, "must be at most 100 characters"),
        (" lead", "must not start or end with whitespace"),
        ("trail ", "must not start or end with whitespace"),
        ("new line\n", "must not start or end with whitespace"),
        ("\ttab", "must not start or end with whitespace"),
        (None, "must be a string"),
        (["a"], "must be a string"),
        ({"a": 1}, "must be a string"),
        (True, "must be a string"),
    ],
)
def test_name_problems(value, problem):
    assert _errors({"name": value, "team": "t"}) == {"body.name": problem}


def test_nullable_string_and_object_types():
    assert _errors({"name": "n", "team": "t", "serial": 5}) == {
        "body.serial": "must be a string or null"
    }
    assert _errors({"name": "n", "team": "t", "serial": "x" * 11}) == {
        "body.serial": "must be at most 10 characters"
    }
    assert _errors({"name": "n", "team": "t", "attributes": []}) == {
        "body.attributes": "must be an object"
    }


def test_messages_never_contain_the_value():
    secret_like = "s3cr3t-value-" + "x" * 200
    (detail,) = field_errors({"name": secret_like, "team": "t"}, SCHEMA)
    assert secret_like not in detail.problem
    assert "s3cr3t" not in ValidationFailed([detail]).message


def test_nested_paths():
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}}
    assert field_errors({"a": ["x", 1]}, schema) == [FieldError("body.a[1]", "must be a string")]


def test_text_errors_find_nul_and_lone_surrogates_at_any_depth():
    value = {"ok": "fine", "a": {"b": ["x", "nul\x00"]}, "c\x00": 1, "d": "\ud800"}
    assert [d.to_json() for d in text_errors(value)] == [
        {"path": "body", "problem": "has a key that must not contain NUL characters"},
        {"path": "body.a.b[1]", "problem": "must not contain NUL characters"},
        {"path": "body.d", "problem": "must not contain unpaired surrogates"},
    ]
    assert text_errors({"emoji": "🛰️", "accents": "Café"}) == []
