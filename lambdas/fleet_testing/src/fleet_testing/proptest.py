"""Property-based test helpers (hypothesis) for the API functions: strategies for malformed and
valid requests, oracles that say what the answer must be, and a snapshot of the database.

Part of fleet-testing, like :mod:`fleet_testing.pytest_plugin`: a test dependency of the
packages, never shipped in a function zip nor imported at run time.

- :func:`property_settings`: reproducible settings (``derandomize=True``, no example database,
  no deadline); ``FLEET_PROPERTY_EXAMPLES`` overrides the number of examples for a longer run.
- :data:`INJECTIONS`, :data:`TRAVERSALS`, :data:`UNICODE_SPECIALS` and :func:`nasty_text`:
  strings that break naive code (SQL injection, path traversal with encoded variants, RTL,
  emoji, combining marks, NUL, lone surrogates, huge strings).
- :func:`json_values`: any JSON value, with huge numbers, nasty strings and deep nesting.
- :func:`sent_bodies`: how a body reaches a function (plain, base64, missing, truncated, not
  JSON, invalid base64 or UTF-8, ...), each with the object the function must see or
  :data:`REJECTED` when the answer must be a 400 ``bad_request``; :attr:`Sent.too_large` says
  when it must be a 413 ``payload_too_large`` instead (over 16 KiB, checked first).
- :func:`bounded_attributes` and :func:`oversized_attributes`: device attributes within every
  limit of :mod:`fleet_common.limits`, and just over one of them; :func:`attributes_problems`
  is their oracle.
- :func:`subs` and :func:`caller_claims`: verified callers (the events of
  :func:`fleet_testing.events.http_event` carry the default one unless told otherwise).
- :func:`forged_cursors`: pagination cursors written by hand (other shapes, time zones,
  alphabets, padding; garbage).
- Oracles, written from the documentation rather than from the code: :func:`text_problems`,
  :func:`string_problems`, :func:`expected_field_details`, :func:`same_json` (jsonb
  equality), :func:`cursor_position`, :func:`limit_value`; :func:`assert_error` checks the
  documented error shape.
- :func:`database_rows`: every row of every table, to prove a request changed nothing;
  :func:`empty_tables` and :func:`seed_projects` to start each example from the same rows
  (written by :data:`SEED_CREATOR`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fleet_common.limits import (
    MAX_ATTRIBUTE_KEY_LENGTH,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_ATTRIBUTES_KEYS,
    MAX_BASE64_BODY_LENGTH,
    MAX_BODY_BYTES,
    MAX_SUB_LENGTH,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .events import jwt_claims
from .pytest_plugin import TABLES

__all__ = [
    "INJECTIONS",
    "REJECTED",
    "SEED_CREATOR",
    "TRAVERSALS",
    "UNICODE_SPECIALS",
    "Sent",
    "assert_error",
    "assert_field_details",
    "attributes_problems",
    "body_too_large",
    "bounded_attributes",
    "caller_claims",
    "cursor_datetimes",
    "cursor_position",
    "database_rows",
    "empty_tables",
    "expected_field_details",
    "forged_cursors",
    "huge_text",
    "json_bodies",
    "json_objects",
    "json_values",
    "limit_value",
    "nasty_text",
    "object_problems",
    "oversized_attributes",
    "property_settings",
    "same_json",
    "seed_projects",
    "sent_bodies",
    "string_problems",
    "subs",
    "text_problems",
    "valid_names",
]


def property_settings(max_examples: int = 200) -> settings:
    """Settings for a property over the real handler: reproducible (``derandomize``: the same
    examples on every run, no example database), no per-example deadline (database round
    trips), and no health checks about slow or large data (huge strings are the point)."""
    examples = int(os.environ.get("FLEET_PROPERTY_EXAMPLES") or max_examples)
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        # No "explain" phase: its line tracing overflows the stack on the deeply nested values.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


# ---- nasty strings ----------------------------------------------------------------------------

INJECTIONS = (
    "'; DROP TABLE devices;--",
    "x'; drop table device; --",
    "' OR '1'='1",
    "' OR 1=1 --",
    '"; DELETE FROM project; --',
    "1; TRUNCATE team CASCADE",
    "1' UNION SELECT NULL, NULL--",
    "$$; DROP TABLE device; $$",
    "\\'; DROP TABLE project; --",
    ":name",
    "%s",
    "$1",
    "{name}",
    "${jndi:ldap://example.invalid/a}",
    "<script>alert(1)</script>",
)
TRAVERSALS = (
    "../../etc/passwd",
    "..",
    ".",
    "/",
    "//",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%c0%af..%c0%afetc%c0%afpasswd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "..;/",
    "/etc/passwd",
    "file:///etc/passwd",
    "a/../../b",
    "%00",
    "?x=1#y",
)
UNICODE_SPECIALS = (
    "Café 🛰️",
    "\u202eevil\u202c",  # right-to-left override
    "مرحبا بالعالم",  # Arabic (RTL)
    "עברית",  # Hebrew (RTL)
    "👩‍👩‍👧‍👦",  # emoji with zero-width joiners
    "e\u0301",  # combining accent
    "\ufeffbom",
    "\u200b",  # zero-width space: not whitespace
    "\U0001d57f\U0001d58a\U0001d598\U0001d599",  # mathematical fraktur "Test"
    "\U0010ffff",
    "\uffff",
    "\x7f\x1b[31m",
    "Ω≈ç√∫",
    "\u00a0padded\u00a0",  # no-break spaces: whitespace
    "x\u3000",
    "\u2028",
    "a\x00b",  # NUL
    "\x00",
    "\ud800",  # lone surrogates
    "x\udfff",
    "\ud83d",
    "\udc00\ud800",
)


@functools.cache  # built once: building strategies is not free
def huge_text() -> st.SearchStrategy[str]:
    """Strings from 101 characters to 1 MB (one repeated character, cheap to generate)."""
    return st.builds(
        lambda char, size: char * size,
        st.sampled_from(["x", "é", "🛰", " ", "'", "\x00"]),
        st.sampled_from([101, 129, 4_097, 65_536, 1_000_000]),
    )


@functools.cache
def nasty_text(max_size: int = 30) -> st.SearchStrategy[str]:
    """Injection and traversal strings, unicode specials (NUL and lone surrogates included),
    combinations of them, arbitrary code points and huge strings."""
    specials = st.sampled_from(INJECTIONS + TRAVERSALS + UNICODE_SPECIALS)
    any_chars = st.text(
        st.characters(codec=None) | st.characters(categories=["Cs"]), max_size=max_size
    )
    return st.one_of(
        specials,
        st.lists(specials, min_size=2, max_size=3).map("".join),
        any_chars,
        huge_text(),
    )


@functools.cache
def valid_names(max_length: int = 100) -> st.SearchStrategy[str]:
    """Strings a name field accepts: 1..max_length characters, no whitespace at either end,
    no NUL, no surrogates; often nasty (injection, traversal, RTL, emoji)."""
    specials = st.sampled_from(INJECTIONS + TRAVERSALS + UNICODE_SPECIALS)
    return st.one_of(
        specials,
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
        st.just("n" * max_length),
    ).filter(lambda s: not string_problems(s, max_length) and not _bad_text(s))


@functools.cache
def _plain_scalars() -> st.SearchStrategy[Any]:
    """null, booleans, integers past 64 bits and finite floats: the JSON scalars that are
    neither strings nor chosen edge cases."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
    )


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        _plain_scalars(),
        st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64]),
        st.builds(
            pow, st.sampled_from([10, -10]), st.sampled_from([400, 4001])
        ),  # huge, <4300 digits
        st.sampled_from([1e308, -1.7976931348623157e308, 5e-324, -0.0, 1e-300, 0.1]),
        nasty_text(),
    )


@functools.cache
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (as Python): scalars with huge numbers and nasty strings, arrays, objects
    with nasty keys, and now and then a deep (50..1000 levels) nesting."""
    tree = st.recursive(
        json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(nasty_text(max_size=10), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )
    return st.one_of(tree, deep_values())


@functools.cache
def json_objects(max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """Any JSON object: nasty keys, any values (see :func:`json_values`)."""
    return st.dictionaries(nasty_text(max_size=10), json_values(max_leaves), max_size=4)


@functools.cache
def deep_values() -> st.SearchStrategy[Any]:
    """Arrays or objects nested 50..1000 levels deep (JSON parsers must accept these)."""

    def nest(depth: int, as_object: bool) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = {"a": value} if as_object else [value]
        return value

    return st.builds(nest, st.sampled_from([50, 300, 1000]), st.booleans())


# ---- bodies as sent ---------------------------------------------------------------------------


class _Rejected:
    def __repr__(self) -> str:
        return "REJECTED"


#: The body must be answered with 400 ``bad_request`` (not JSON, not an object, not text, ...).
REJECTED: Any = _Rejected()


@dataclass(frozen=True)
class Sent:
    """One request body as API Gateway hands it over: ``body`` (``None``: no body key),
    ``base64`` (``isBase64Encoded``), and ``value``: the JSON object the function must see,
    or :data:`REJECTED`. ``kind`` says how it was made (for failure reports)."""

    kind: str
    body: str | None
    base64: bool
    value: Any

    def __repr__(self) -> str:
        body = (
            self.body
            if self.body is None or len(self.body) <= 300
            else (f"{self.body[:200]!r}... ({len(self.body)} chars)")
        )
        return f"Sent(kind={self.kind!r}, base64={self.base64}, body={body!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis' report: short, whatever the body holds

    @property
    def too_large(self) -> bool:
        """Whether the answer must be 413 ``payload_too_large`` (see :func:`body_too_large`)."""
        return body_too_large(self.body, self.base64)

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """Put this body into an HTTP API event (in place) and return the event."""
        event.pop("body", None)
        if self.body is not None:
            event["body"] = self.body
        event["isBase64Encoded"] = self.base64
        return event


def body_too_large(body: str | None, is_base64: bool) -> bool:
    """The documented body limit: more than 16 KiB of UTF-8 text, or for a base64 body more
    than 16 KiB once decoded (a base64 text longer than 21,848 characters, the most 16 KiB can
    take, is too large whatever it holds; shorter text that is not base64 is a 400)."""
    if body is None:
        return False
    if is_base64:
        if len(body) > MAX_BASE64_BODY_LENGTH:
            return True
        try:
            return len(base64.b64decode(body, validate=True)) > MAX_BODY_BYTES
        except ValueError:  # binascii.Error included
            return False
    return len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


@st.composite
def _json_text(draw: st.DrawFn, value: Any) -> Sent:
    """``value`` as JSON text, written in one of several equivalent ways, maybe base64."""
    ensure_ascii = draw(st.booleans())
    style = draw(st.sampled_from(["compact", "spaced", "indented", "padded"]))
    if style == "compact":
        text = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":"))
    elif style == "indented":
        text = json.dumps(value, ensure_ascii=ensure_ascii, indent=2, sort_keys=draw(st.booleans()))
    else:
        text = json.dumps(value, ensure_ascii=ensure_ascii)
    if style == "padded":
        text = f" \n\t{text}\r\n "
    # What the function decodes: JSON escapes of surrogate pairs become one character.
    expected = json.loads(text)
    expected = expected if isinstance(expected, dict) else REJECTED
    if draw(st.booleans()):
        # base64 of the UTF-8 bytes; a raw surrogate cannot be UTF-8 (surrogatepass writes
        # CESU-8 bytes), so such a body is not text and must be rejected.
        data = text.encode("utf-8", "surrogatepass")
        return Sent(
            "json-base64",
            _b64(data),
            True,
            REJECTED if _has_surrogates(text) else expected,
        )
    return Sent(f"json-{style}", text, False, expected)


_NOT_JSON = (
    "{not json",
    "{'name': 'x', 'team': 't'}",
    '{"name": "x",}',
    '{"name": "x" "team": "t"}',
    '{name: "x"}',
    '{"a": 1}{"b": 2}',
    '{"a": 1} trailing',
    '{"a": 1 /* comment */}',
    "\ufeff{}",
    "NaN",
    '{"name": NaN}',
    '{"name": "x", "team": Infinity}',
    '{"a": -Infinity}',
    '{"a": 1e400}',
    '{"a": -1e999}',
    '{"a": ' + "9" * 5000 + "}",
    '{"a": [' + "1" * 4301 + "]}",
    "[" * 100_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    "[" * 20_000 + "]" * 20_000,
    "<xml/>",
    "name=x&team=y",
    "undefined",
    "\x00",
    '{"name": "a\x01b", "team": "t"}',
    '{"name": "a\nb"}',
    '{"name": "x\\q"}',
    '{"name": "x\\u12"}',
    "{" + '"k": 1, ' * 10 + "",
    "",
)


@st.composite
def _not_json(draw: st.DrawFn) -> Sent:
    """Text that is not JSON at all: known cases, proper prefixes of JSON objects, and text
    that starts with a character no JSON value starts with."""
    kind = draw(st.sampled_from(["known", "truncated", "garbage"]))
    if kind == "known":
        text = draw(st.sampled_from(_NOT_JSON))
    elif kind == "truncated":
        whole = json.dumps(draw(st.dictionaries(nasty_text(8), json_scalars(), min_size=1)))
        text = whole[: draw(st.integers(min_value=1, max_value=len(whole) - 1))]
    else:
        text = draw(st.sampled_from("x<'#=@-+.Zq")) + draw(st.text(max_size=50))
    if draw(st.booleans()) and not _has_surrogates(text):
        return Sent(f"not-json-{kind}-base64", _b64(text.encode("utf-8")), True, REJECTED)
    return Sent(f"not-json-{kind}", text, False, REJECTED)


@st.composite
def _not_text(draw: st.DrawFn, value: Any) -> Sent:
    """``isBase64Encoded`` bodies that are not base64, or not UTF-8 once decoded."""
    text = json.dumps(value)
    kind = draw(st.sampled_from(["plain-json", "bad-char", "bad-length", "bad-utf8", "binary"]))
    encoded = _b64(text.encode("utf-8"))
    if kind == "plain-json":  # the client claims base64 but sends JSON ('{' is not base64)
        body = text
    elif kind == "bad-char":
        at = draw(st.integers(min_value=0, max_value=len(encoded)))
        body = encoded[:at] + draw(st.sampled_from("!*-_ \n.é\x00")) + encoded[at:]
    elif kind == "bad-length":  # 4k+1 data characters is never base64
        body = "A" * (4 * draw(st.integers(min_value=0, max_value=5)) + 1)
    elif kind == "bad-utf8":
        data = text.encode("utf-8")
        at = draw(st.integers(min_value=0, max_value=len(data)))
        body = _b64(
            data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
        )
    else:
        body = _b64(b"\xff" + draw(st.binary(max_size=64)))
    return Sent(f"not-text-{kind}", body, True, REJECTED)


def json_bodies(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[Sent]:
    """``objects`` as JSON text written in one of several equivalent ways (compact, spaced,
    indented, padded with whitespace, escaped or raw non-ASCII), maybe base64-encoded."""
    return objects.flatmap(_json_text)


def sent_bodies(objects: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Sent]:
    """Bodies as sent: ``objects`` as JSON (the function must see the object), other JSON
    values (rejected: not an object), no or empty body, text that is not JSON, and base64
    bodies that are not base64 or not UTF-8 (all rejected)."""
    non_objects = json_values().filter(lambda v: not isinstance(v, dict))
    return st.one_of(
        json_bodies(objects),
        json_bodies(objects),  # weight: the objects are what the schema is about
        json_bodies(non_objects),
        st.sampled_from(
            [
                Sent("no-body", None, False, REJECTED),
                Sent("empty", "", False, REJECTED),
                Sent("empty-base64", "", True, REJECTED),
            ]
        ),
        _not_json(),
        objects.flatmap(_not_text),
    )


# ---- pagination cursors -----------------------------------------------------------------------


@functools.cache
def cursor_datetimes() -> st.SearchStrategy[datetime]:
    """Any UTC time a cursor can hold (years 1 to 9999, microseconds)."""
    return st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
        timezones=st.just(UTC),
    )


def _b64url(raw: str | bytes, *, standard: bool = False, pad: bool = False) -> str:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    text = (base64.b64encode if standard else base64.urlsafe_b64encode)(data).decode("ascii")
    return text if pad else text.rstrip("=")


@st.composite
def forged_cursors(
    draw: st.DrawFn,
    datetimes: st.SearchStrategy[datetime] | None = None,
    ids: st.SearchStrategy[int] | None = None,
) -> str:
    """Cursors written by hand: JSON near the real shape (other time zones, no microseconds,
    naive or "Z" times, ids out of range or not integers, items missing or extra, an object,
    times out of range once in UTC), other base64 alphabets and padding, real cursors
    truncated, extended, doubled or case-swapped, non-UTF-8 bytes, and plain garbage. Most are
    invalid; :func:`cursor_position` says which."""
    from fleet_common.pagination import encode_cursor

    when = draw(cursor_datetimes() if datetimes is None else datetimes)
    position_id = draw(st.integers(1, 2**63 - 1) if ids is None else ids)
    stamp = when.isoformat(timespec="microseconds")
    real = encode_cursor(when, position_id)
    kind = draw(st.sampled_from(["shape", "real", "garbage"]))
    if kind == "real":
        return draw(
            st.sampled_from(
                [
                    real + "=",
                    real + "==",
                    real[:-1],
                    real + "A",
                    real * 2,
                    real.swapcase(),
                    " " + real,
                    real + "\x00",
                    real.replace("_", "/").replace("-", "+"),
                    "A" * 201,
                ]
            )
        )
    if kind == "garbage":
        return draw(
            st.one_of(
                nasty_text(),
                st.sampled_from(INJECTIONS + TRAVERSALS),
                st.binary(max_size=60).map(_b64url),
                st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            )
        )
    shape = draw(st.integers(0, 12))
    if shape == 0:
        offset = timezone(timedelta(minutes=draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))))
        try:
            value: Any = [when.astimezone(offset).isoformat(timespec="microseconds"), position_id]
        except OverflowError:
            value = [when.replace(tzinfo=offset).isoformat(), position_id]
    elif shape == 1:
        value = [when.isoformat(timespec="seconds"), position_id]
    elif shape == 2:
        value = [when.replace(tzinfo=None).isoformat(timespec="microseconds"), position_id]
    elif shape == 3:
        value = [stamp.replace("+00:00", "Z"), position_id]
    elif shape == 4:
        value = [stamp, draw(st.sampled_from([0, -1, 2**63, 2**64, 1.0, True, "1", None]))]
    elif shape == 5:
        value = [stamp, position_id, 0]
    elif shape == 6:
        value = [stamp]
    elif shape == 7:
        value = {"created_at": stamp, "id": position_id}
    elif shape == 8:
        value = [draw(nasty_text(20)), position_id]
    elif shape == 9:
        value = ["0001-01-01T00:00:00+01:00", position_id]  # before year 1 once in UTC
    elif shape == 10:
        value = ["9999-12-31T23:59:59.999999-01:00", position_id]  # after 9999 once in UTC
    elif shape == 11:
        value = [stamp[:-6] + draw(st.sampled_from(["+00:00:00", "+0000", "-00:00"])), 1]
    else:
        value = [stamp, position_id]  # the real JSON, but written with spaces
        return _b64url(json.dumps(value))
    text = json.dumps(value, separators=(",", ":"))
    how = draw(st.sampled_from(["plain", "padded", "standard", "not-utf8"]))
    if how == "not-utf8":
        return _b64url(text.encode("utf-8", "surrogatepass") + b"\xff")
    return _b64url(text, standard=how == "standard", pad=how == "padded")


# ---- oracles ----------------------------------------------------------------------------------


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    if _has_surrogates(text):
        return "must not contain unpaired surrogates"
    return None


def _join(path: str, part: str | int) -> str:
    return f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"


def text_problems(value: Any, path: str = "body") -> list[tuple[str, str]]:
    """``(path, problem)`` for every string PostgreSQL cannot store (NUL, surrogates), keys
    included (reported on the object; its value is then not looked into), sorted."""
    found: list[tuple[str, str]] = []
    pending: list[tuple[Any, str]] = [(value, path)]  # no recursion: values nest 1000 deep
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            problem = _bad_text(item)
            if problem:
                found.append((where, problem))
        elif isinstance(item, dict):
            for key, sub in item.items():
                problem = _bad_text(key)
                if problem:
                    found.append((where, f"has a key that {problem}"))
                else:
                    pending.append((sub, _join(where, key)))
        elif isinstance(item, list):
            pending.extend((sub, _join(where, i)) for i, sub in enumerate(item))
    return sorted(found)


def string_problems(value: Any, max_length: int = 100, *, nullable: bool = False) -> set[str]:
    """The problems (any of which may be the one reported) of ``value`` for a
    ``string_schema(max_length, nullable=...)`` field; empty when it is valid."""
    if value is None and nullable:
        return set()
    if not isinstance(value, str):
        return {"must be a string or null" if nullable else "must be a string"}
    problems = set()
    if not value:
        problems.add("must not be empty")
    if len(value) > max_length:
        problems.add(f"must be at most {max_length} characters")
    if value and (value[0].isspace() or value[-1].isspace()):
        problems.add("must not start or end with whitespace")
    return problems


def object_problems(value: Any) -> set[str]:
    return set() if isinstance(value, dict) else {"must be an object"}


def expected_field_details(
    body: Mapping[str, Any],
    fields: Mapping[str, Callable[[Any], set[str]]],
    required: tuple[str, ...],
) -> dict[str, set[str]]:
    """For a body object against a flat object schema (``additionalProperties: false``):
    ``{path: problems that may be reported there}``; empty when the body is valid."""
    details: dict[str, set[str]] = {}
    for key in body:
        if key not in fields:
            details[_join("body", key)] = {"is not allowed"}
    for key in required:
        if key not in body:
            details[_join("body", key)] = {"is required"}
    for key, check in fields.items():
        if key in body:
            problems = check(body[key])
            if problems:
                details[_join("body", key)] = problems
    return details


class _Key(str):
    """An object key in :func:`_tokens` (apart from a string value)."""


def _tokens(value: Any) -> list[tuple[str, Any]]:
    """A JSON value as jsonb compares it, flattened (prefix order, with sizes): numbers by
    value (1 == 1.0, spelling ignored), booleans apart from numbers, object keys sorted. No
    recursion: values nest 1000 deep."""
    out: list[tuple[str, Any]] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Key):
            out.append(("key", str(item)))
        elif item is None or isinstance(item, bool | str):
            out.append((type(item).__name__, item))
        elif isinstance(item, int):
            out.append(("number", Decimal(item)))
        elif isinstance(item, float):
            out.append(("number", Decimal(repr(item))))
        elif isinstance(item, list):
            out.append(("array", len(item)))
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            out.append(("object", len(item)))
            for key in sorted(item, reverse=True):
                pending.extend([item[key], _Key(key)])
        else:
            raise TypeError(f"not a JSON value: {type(item).__name__}")
    return out


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as ``jsonb`` (``attributes = CAST(... AS jsonb)``)."""
    return _tokens(a) == _tokens(b)


_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", re.ASCII)


def cursor_position(text: str) -> tuple[datetime, int] | None:
    """The position a cursor encodes when it is exactly what ``encode_cursor`` writes for
    some UTC time and id 1..2^63-1 (URL-safe base64 without padding of the compact JSON
    ``["<ISO 8601, microseconds, +00:00>", <id>]``, 200 characters at most), else ``None``."""
    if not _CURSOR_ALPHABET.fullmatch(text):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError included
        return None
    if not (isinstance(value, list) and len(value) == 2):
        return None
    stamp, position_id = value
    if not (isinstance(stamp, str) and _CANONICAL_TIME.fullmatch(stamp)):
        return None
    if type(position_id) is not int or not 1 <= position_id < 2**63:
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:  # 2025-02-30 and the like
        return None
    raw = json.dumps([stamp, position_id], separators=(",", ":")).encode("ascii")
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != text:
        return None
    return when, position_id


def limit_value(text: str) -> int | None:
    """The page size a ``limit`` parameter asks for: 1 to 4 ASCII digits worth 1..100."""
    if text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= 100:
        return int(text)
    return None


def assert_error(result: Any, status: int, code: str) -> dict[str, Any]:
    """``result`` (a :class:`fleet_testing.events.HttpResult`) is ``status`` with the
    documented error body ``{"error": {"code", "message", "details": [{"path", "problem"}]}}``;
    returns the ``error`` object."""
    assert result.status == status, (
        f"expected {status} {code}, got {result.status}: {result.body[:500]}"
    )
    assert result.headers.get("content-type") == "application/json", result.headers
    body = json.loads(result.body)
    assert isinstance(body, dict) and list(body) == ["error"], result.body[:500]
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    for detail in error["details"]:
        assert isinstance(detail, dict) and set(detail) == {"path", "problem"}, detail
        assert isinstance(detail["path"], str) and isinstance(detail["problem"], str), detail
    assert "Traceback" not in result.body
    return error


def assert_field_details(error: Mapping[str, Any], expected: Mapping[str, set[str]]) -> None:
    """One detail per expected path, each with one of the problems allowed there."""
    got = [(d["path"], d["problem"]) for d in error["details"]]
    paths = [path for path, _ in got]
    assert len(paths) == len(set(paths)), f"a path reported twice: {got}"
    assert set(paths) == set(expected), f"expected paths {sorted(expected)}, got {got}"
    for path, problem in got:
        assert problem in expected[path], f"{path}: {problem!r} not in {expected[path]}"


# ---- device attributes ------------------------------------------------------------------------


def _objects_in(value: Any) -> list[dict[str, Any]]:
    found, pending = [], [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _depth(value: Any) -> int:
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            members = item.values() if isinstance(item, dict) else item
            pending.extend((member, depth + 1) for member in members)
    return deepest


# Marks a number written as a string, whose quotes are then dropped (no generated text holds it).
_PLAIN_QUOTE = "\ue000\U0010fffd-plain-number-\U0010fffd\ue000"


def _plain_numbers(value: Any) -> Any:
    """``value`` with every float as the plain decimal digits PostgreSQL's numeric writes,
    held in a marked string (whose quotes the caller drops)."""
    if isinstance(value, float):
        digits = f"{Decimal(repr(value)):f}"
        return f"{_PLAIN_QUOTE}{digits}{_PLAIN_QUOTE}"
    if isinstance(value, dict):
        return {key: _plain_numbers(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(member) for member in value]
    return value


def attributes_problems(value: Any) -> set[str]:
    """The problem a device's ``attributes`` must be reported with (docs/api.md): not an
    object; else the first of: an object (at any depth) with more than 32 keys, a key (at any
    depth) empty or over 64 characters, nesting over 4 levels, over 4096 bytes of compact
    UTF-8 JSON with numbers in plain decimal (as jsonb stores them). Empty when accepted."""
    if not isinstance(value, dict):
        return {"must be an object"}
    objects = _objects_in(value)
    if any(len(obj) > MAX_ATTRIBUTES_KEYS for obj in objects):
        return {f"must not have an object with more than {MAX_ATTRIBUTES_KEYS} keys"}
    if any(not 1 <= len(key) <= MAX_ATTRIBUTE_KEY_LENGTH for obj in objects for key in obj):
        return {f"has a key that is empty or longer than {MAX_ATTRIBUTE_KEY_LENGTH} characters"}
    if _depth(value) > MAX_ATTRIBUTES_DEPTH:
        return {f"must not nest more than {MAX_ATTRIBUTES_DEPTH} levels deep"}
    text = json.dumps(_plain_numbers(value), separators=(",", ":"), ensure_ascii=False)
    text = text.replace(f'"{_PLAIN_QUOTE}', "").replace(f'{_PLAIN_QUOTE}"', "")
    if len(text.encode("utf-8")) > MAX_ATTRIBUTES_BYTES:
        return {f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"}
    return set()


_STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")


@functools.cache
def _attribute_keys() -> st.SearchStrategy[str]:
    specials = [s for s in INJECTIONS + TRAVERSALS + UNICODE_SPECIALS if s and not _bad_text(s)]
    return st.one_of(
        st.sampled_from(specials),
        st.text(_STORABLE, min_size=1, max_size=MAX_ATTRIBUTE_KEY_LENGTH),
        st.just("k" * MAX_ATTRIBUTE_KEY_LENGTH),
    )


@functools.cache
def _attribute_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        _plain_scalars(),
        st.text(_STORABLE, max_size=24),
        st.sampled_from([s for s in INJECTIONS + UNICODE_SPECIALS if not _bad_text(s)]),
    )


def _nested(depth: int) -> st.SearchStrategy[Any]:
    """Values nesting at most ``depth`` levels."""
    if depth == 0:
        return _attribute_scalars()
    child = _nested(depth - 1)
    return st.one_of(
        _attribute_scalars(),
        st.lists(child, max_size=3),
        st.dictionaries(_attribute_keys(), child, max_size=3),
    )


def _nest(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth - 1):
        value = {"n": value} if level % 2 else [value]
    return {"n": value}


#: Attributes exactly at a limit (all accepted).
AT_THE_LIMITS: tuple[dict[str, Any], ...] = (
    {f"k{i}": i for i in range(MAX_ATTRIBUTES_KEYS)},
    {"k" * MAX_ATTRIBUTE_KEY_LENGTH: {"é" * MAX_ATTRIBUTE_KEY_LENGTH: "🛰" * 3}},
    _nest(MAX_ATTRIBUTES_DEPTH),
    {"pad": "x" * (MAX_ATTRIBUTES_BYTES - len('{"pad":""}'))},
    {"pad": "é" * ((MAX_ATTRIBUTES_BYTES - len('{"pad":""}')) // 2)},
    {"a": {f"k{i}": [] for i in range(MAX_ATTRIBUTES_KEYS)}},
)


@functools.cache
def bounded_attributes() -> st.SearchStrategy[dict[str, Any]]:
    """Attributes within every limit (storable text; nasty keys and values, boundaries)."""
    return st.one_of(
        st.sampled_from(AT_THE_LIMITS),
        st.dictionaries(_attribute_keys(), _nested(MAX_ATTRIBUTES_DEPTH - 1), max_size=6),
    ).filter(lambda value: not attributes_problems(value))


@st.composite
def oversized_attributes(draw: st.DrawFn) -> dict[str, Any]:
    """Attributes just over one limit (and small enough for the body limit): an object with
    33+ keys (at the top or nested), an empty or 65+ character key (at any depth), 5+ levels
    of objects or arrays, or 4097+ bytes of JSON (also through multi-byte characters)."""
    base = draw(bounded_attributes().filter(lambda v: len(json.dumps(v)) < 2000))
    kind = draw(st.sampled_from(["keys", "key", "depth", "bytes"]))
    if kind == "keys":
        count = draw(st.integers(MAX_ATTRIBUTES_KEYS + 1, MAX_ATTRIBUTES_KEYS + 8))
        crowded = {f"k{i}": i for i in range(count)}
        bad: Any = crowded if draw(st.booleans()) else {"nested": [crowded]}
    elif kind == "key":
        key = draw(st.sampled_from(["", "k" * (MAX_ATTRIBUTE_KEY_LENGTH + 1), "é" * 100, "🛰" * 65]))
        bad = {key: 1} if draw(st.booleans()) else {"a": [{"b": {key: None}}]}
    elif kind == "depth":
        depth = draw(st.integers(MAX_ATTRIBUTES_DEPTH + 1, MAX_ATTRIBUTES_DEPTH + 4))
        bad = _nest(depth, draw(st.sampled_from([1, None, "x", [], {}])))
    else:
        char = draw(st.sampled_from(["x", "é", "🛰", "\u0001"]))
        room = MAX_ATTRIBUTES_BYTES - len('{"pad":""}')
        width = len(json.dumps(char, ensure_ascii=False).encode("utf-8")) - 2
        count = room // width + 1 + draw(st.integers(0, 40))
        bad = {"pad": char * count}
    value = {**base, **bad} if draw(st.booleans()) else bad
    assert attributes_problems(value), value
    return value


# ---- callers ----------------------------------------------------------------------------------


@functools.cache
def subs() -> st.SearchStrategy[str]:
    """``sub`` claims a caller may have: Cognito client ids and user UUIDs, e-mail-like and
    URL-like subjects of other issuers, nasty but storable text, 1..256 characters."""
    return st.one_of(
        st.from_regex(r"[a-z0-9]{26}", fullmatch=True),
        st.uuids().map(str),
        st.sampled_from(
            [
                "unknown-but-not-the-sentinel",
                "auth0|5f7c8ec7c33c6c004bbafe82",
                "https://issuer.example/users/42",
                "s" * MAX_SUB_LENGTH,
                "é" * MAX_SUB_LENGTH,
                " padded ",
                INJECTIONS[0],
                TRAVERSALS[0],
            ]
        ),
        st.text(_STORABLE, min_size=1, max_size=MAX_SUB_LENGTH),
    )


@st.composite
def caller_claims(draw: st.DrawFn) -> dict[str, str]:
    """Verified claims of some caller (for ``http_event(claims=...)``): a Cognito
    client-credentials token (``client_id`` = ``sub``) or another issuer's (``aud``, maybe
    ``azp``, no ``client_id``)."""
    sub = draw(subs())
    if draw(st.booleans()):
        return jwt_claims(sub)
    claims = jwt_claims(sub, aud="fleet-api", iss="https://issuer.example/")
    del claims["client_id"]
    if draw(st.booleans()):
        claims["azp"] = draw(st.from_regex(r"[A-Za-z0-9_-]{8,40}", fullmatch=True))
    return claims


# ---- the database -----------------------------------------------------------------------------


def empty_tables(conn: Any) -> None:
    """Delete every row (children first): each example starts from the same database, so a
    failure replays the same way while hypothesis shrinks it."""
    conn.run("; ".join(f"DELETE FROM {table}" for table in TABLES))


#: The ``created_by`` of rows that :func:`seed_projects` and the tests' seeds write.
SEED_CREATOR = "seed-creator"


def seed_projects(conn: Any, projects: Mapping[str, str], created_by: str = SEED_CREATOR) -> None:
    """Create ``{project: team}`` (teams on first use), created by ``created_by``."""
    for project, team in projects.items():
        conn.run("INSERT INTO team (name) VALUES (:t) ON CONFLICT DO NOTHING", t=team)
        conn.run(
            "INSERT INTO project (team_id, name, created_by) "
            "SELECT id, :p, :by FROM team WHERE name = :t",
            p=project,
            t=team,
            by=created_by,
        )


_SNAPSHOT = "SELECT json_build_object({})::text".format(
    ", ".join(
        f"'{t}', (SELECT coalesce(json_agg(r ORDER BY r.id), '[]'::json) FROM {t} r)"
        for t in TABLES
    )
)


def database_rows(conn: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the fleet schema (ordered by id), in one query: equal
    before and after a request that must change nothing."""
    ((text,),) = conn.run(_SNAPSHOT)
    rows: dict[str, list[dict[str, Any]]] = json.loads(text)
    return rows
