"""Cursors and limits: round trips, and strict rejection of anything else (400)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleet_common.errors import ValidationFailed
from fleet_common.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    Cursor,
    decode_cursor,
    encode_cursor,
    parse_limit,
)

WHEN = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_cursor_round_trip_is_opaque_url_safe_text():
    text = encode_cursor(WHEN, 42)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(text) == Cursor(created_at=WHEN, id=42)
    assert json.loads(base64.urlsafe_b64decode(text + "==")) == [
        "2025-01-02T03:04:05.123456+00:00",
        42,
    ]


def test_cursor_keeps_microseconds_and_normalises_to_utc():
    other_zone = WHEN.astimezone(timezone(timedelta(hours=5, minutes=30)))
    cursor = decode_cursor(encode_cursor(other_zone, 7))
    assert cursor.created_at == WHEN
    assert cursor.created_at.tzinfo == UTC
    whole_second = WHEN.replace(microsecond=0)
    assert decode_cursor(encode_cursor(whole_second, 1)).created_at == whole_second


def test_encode_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="timezone"):
        encode_cursor(datetime(2025, 1, 1), 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor",
        "abc$",
        "x" * (MAX_CURSOR_LENGTH + 1),
        "AAAA",  # three NUL bytes
        _b64("not json"),
        _b64("{}"),
        _b64("[]"),
        _b64('["2025-01-02T03:04:05.123456+00:00"]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", 1, 2]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", "1"]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", true]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", 1.0]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", 0]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", -5]'),
        _b64('["2025-01-02T03:04:05.123456+00:00", 9223372036854775808]'),
        _b64('["2025-01-02T03:04:05.123456", 1]'),  # no time zone
        _b64('["yesterday", 1]'),
        _b64("[1, 1]"),
        # the same position, but not the form encode_cursor makes
        _b64('["2025-01-02T03:04:05.123456+00:00", 42]'),
        _b64('["2025-01-02T03:04:05.123456Z",42]'),
        encode_cursor(WHEN, 42) + "==",
        "x'; drop table device; --",
        "../../etc",
    ],
)
def test_malformed_cursors_are_validation_errors(text):
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(text)
    assert info.value.status == 400
    assert [d.to_json() for d in info.value.details] == [
        {"path": "query.cursor", "problem": "is not a valid cursor"}
    ]


@pytest.mark.parametrize(("text", "expected"), [(None, DEFAULT_LIMIT), ("1", 1), ("100", 100)])
def test_limit_accepts_1_to_100(text, expected):
    assert parse_limit(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0", "101", "-1", "+5", "1.5", "1e2", "abc", " 5", "5 ", "1,2", "٣", "00000"]
)
def test_limit_rejects_anything_else(text):
    with pytest.raises(ValidationFailed) as info:
        parse_limit(text)
    assert [d.to_json() for d in info.value.details] == [
        {"path": "query.limit", "problem": "must be an integer between 1 and 100"}
    ]
