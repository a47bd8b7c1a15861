"""Keyset pagination: the ``limit`` query parameter and opaque cursors.

A cursor is the position after which the next page starts: the ``(created_at, id)`` of the
last item of the previous page, as URL-safe base64 (no padding) of the JSON
``["2025-01-02T03:04:05.123456+00:00", 42]``. It is opaque to clients but not secret nor
signed: a forged cursor can only move the position inside the same listing. Decoding is strict
(only the exact form :func:`encode_cursor` produces is accepted), and anything else is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import FieldError, ValidationFailed
from .limits import DEFAULT_PAGE_LIMIT, MAX_CURSOR_LENGTH, MAX_PAGE_LIMIT

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR_LENGTH",
    "MAX_LIMIT",
    "Cursor",
    "decode_cursor",
    "encode_cursor",
    "parse_limit",
]

DEFAULT_LIMIT = DEFAULT_PAGE_LIMIT  # the numbers live in fleet_common.limits
MAX_LIMIT = MAX_PAGE_LIMIT
_MAX_ID = 2**63 - 1
_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_LIMIT_CHARS = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class Cursor:
    """The ``(created_at, id)`` of the last item of a page (``created_at`` is aware, UTC)."""

    created_at: datetime
    id: int


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def encode_cursor(created_at: datetime, id: int) -> str:
    """The opaque cursor of the position ``(created_at, id)``."""
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    raw = json.dumps([_iso(created_at), id], separators=(",", ":")).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _invalid_cursor(problem: str = "is not a valid cursor") -> ValidationFailed:
    return ValidationFailed([FieldError("query.cursor", problem)], message="invalid cursor")


def decode_cursor(text: str) -> Cursor:
    """The position encoded in ``text``; :class:`~fleet_common.errors.ValidationFailed` (400)
    when it is not a cursor this module made."""
    if not text or len(text) > MAX_CURSOR_LENGTH or not _CURSOR_CHARS.fullmatch(text):
        raise _invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError):
        raise _invalid_cursor() from None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and type(value[1]) is int
        and 0 < value[1] <= _MAX_ID
    ):
        raise _invalid_cursor()
    try:
        created_at = datetime.fromisoformat(value[0])
    except ValueError:
        raise _invalid_cursor() from None
    if created_at.tzinfo is None:
        raise _invalid_cursor()
    try:
        cursor = Cursor(created_at=created_at.astimezone(UTC), id=value[1])
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise _invalid_cursor() from None
    # Only the canonical form is accepted: no alternative encodings of the same position.
    if encode_cursor(cursor.created_at, cursor.id) != text:
        raise _invalid_cursor()
    return cursor


def parse_limit(text: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The page size from the ``limit`` query parameter: ``default`` when absent, else a
    decimal integer in 1..``maximum`` (anything else: 400)."""
    if text is None:
        return default
    if _LIMIT_CHARS.fullmatch(text) and 1 <= int(text) <= maximum:
        return int(text)
    raise ValidationFailed(
        [FieldError("query.limit", f"must be an integer between 1 and {maximum}")],
        message="invalid limit",
    )
