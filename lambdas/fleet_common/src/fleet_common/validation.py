"""Request validation against JSON schemas (fastjsonschema, which powertools' ``validate`` uses
underneath), reporting one :class:`~fleet_common.errors.FieldError` per bad field.

fastjsonschema stops at the first error. To list every bad field, a failed object is walked
here: each missing required property, each property not allowed by
``additionalProperties: false`` and each present property that fails its own subschema gives
one error. Schemas are compiled once (on first use, not at import) and cached.

A subschema may carry ``"errorMessage": {"<rule>": "<problem>"}`` (the ajv-errors convention)
to word the problem of a rule, e.g. for ``not``/``pattern`` rules.

What a schema cannot say (the size and shape limits of ``attributes``) is checked by functions
passed to :func:`validate` as ``checks``: their problems are reported with the schema's, in the
same ``validation_error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .errors import FieldError, ValidationFailed
from .limits import (
    MAX_ATTRIBUTE_KEY_LENGTH,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_ATTRIBUTES_KEYS,
    MAX_NAME_LENGTH,
    MAX_SERIAL_LENGTH,
)

__all__ = [
    "BAD_KEY",
    "NAME_SCHEMA",
    "SERIAL_SCHEMA",
    "TOO_BIG",
    "TOO_DEEP",
    "TOO_MANY_KEYS",
    "attributes_problem",
    "compact_json",
    "field_errors",
    "json_depth",
    "stored_json_bytes",
    "string_schema",
    "text_errors",
    "validate",
]

_TYPE_NAMES = {
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}

_compiled: dict[str, Callable[[Any], Any]] = {}


def string_schema(
    max_length: int = 100, *, min_length: int = 1, nullable: bool = False
) -> dict[str, Any]:
    """A string of ``min_length``..``max_length`` characters without leading or trailing
    whitespace (the database's ``name = btrim(name)`` rule, stricter: any whitespace);
    ``nullable`` also accepts ``null``."""
    return {
        "type": ["string", "null"] if nullable else "string",
        "minLength": min_length,
        "maxLength": max_length,
        "not": {"type": "string", "pattern": r"^\s|\s$"},
        "errorMessage": {"not": "must not start or end with whitespace"},
    }


#: Names of teams, projects and devices: 1-100 characters, no surrounding whitespace.
NAME_SCHEMA = string_schema(MAX_NAME_LENGTH)
#: A device serial: like a name (1-100 characters), or null.
SERIAL_SCHEMA = string_schema(MAX_SERIAL_LENGTH, nullable=True)

#: The problems of :func:`attributes_problem`, in the order they are looked for.
TOO_MANY_KEYS = f"must not have an object with more than {MAX_ATTRIBUTES_KEYS} keys"
BAD_KEY = f"has a key that is empty or longer than {MAX_ATTRIBUTE_KEY_LENGTH} characters"
TOO_DEEP = f"must not nest more than {MAX_ATTRIBUTES_DEPTH} levels deep"
TOO_BIG = f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"


def compact_json(value: Any) -> str:
    """``value`` as compact JSON (no whitespace, non-ASCII as is): the form whose UTF-8 size
    the limits count."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def stored_json_bytes(value: Any) -> int:
    """UTF-8 size of ``value`` as compact JSON with every number in plain decimal notation, the
    way PostgreSQL's ``jsonb`` keeps numbers (``numeric``: ``1e308`` is stored, and read back,
    as 309 digits). What the ``attributes`` size limit counts, so that a value within it stays
    within it once stored and listed."""
    size = len(compact_json(value).encode("utf-8"))
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            size += len(format(Decimal(repr(item)), "f")) - len(repr(item))
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return size


def json_depth(value: Any) -> int:
    """Nesting depth: 0 for a scalar, 1 + the deepest member for an object or array (no
    recursion: a parsed body may nest a thousand levels)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            members = item.values() if isinstance(item, dict) else item
            pending.extend((member, depth) for member in members)
    return deepest


def attributes_problem(value: Any) -> str | None:
    """The problem of a device's ``attributes`` object with the limits of
    :mod:`fleet_common.limits`, the first found in this order: an object (at any depth) with
    more than 32 keys; a key (at any depth) empty or longer than 64 characters; nesting deeper
    than 4 levels; more than 4 KiB as compact JSON with numbers in plain decimal
    (:func:`stored_json_bytes`). ``None`` when within every limit."""
    too_many = bad_key = False
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            too_many = too_many or len(item) > MAX_ATTRIBUTES_KEYS
            bad_key = bad_key or any(not 1 <= len(key) <= MAX_ATTRIBUTE_KEY_LENGTH for key in item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    if too_many:
        return TOO_MANY_KEYS
    if bad_key:
        return BAD_KEY
    if json_depth(value) > MAX_ATTRIBUTES_DEPTH:
        return TOO_DEEP
    if stored_json_bytes(value) > MAX_ATTRIBUTES_BYTES:
        return TOO_BIG
    return None


def _validator(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    key = json.dumps(schema, sort_keys=True)
    validator = _compiled.get(key)
    if validator is None:
        import fastjsonschema

        validator = fastjsonschema.compile(dict(schema))
        _compiled[key] = validator
    return validator


def _join(path: str, part: str | int) -> str:
    return f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"


def _type_text(type_def: Any) -> str:
    types = [type_def] if isinstance(type_def, str) else list(type_def or ())
    names = [_TYPE_NAMES.get(t, t) for t in types]
    return " or ".join(names) if names else "of another type"


def _problem(exc: Any) -> str:
    definition = exc.definition if isinstance(exc.definition, Mapping) else {}
    custom = definition.get("errorMessage")
    if isinstance(custom, Mapping) and isinstance(custom.get(exc.rule), str):
        message: str = custom[exc.rule]
        return message
    rule, value = exc.rule, exc.rule_definition
    if rule == "type":
        return f"must be {_type_text(value)}"
    if rule == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if rule == "maxLength":
        return f"must be at most {value} characters"
    if rule == "minimum":
        return f"must be at least {value}"
    if rule == "maximum":
        return f"must be at most {value}"
    if rule == "enum":
        return "must be one of " + ", ".join(json.dumps(v) for v in value)
    if rule == "required":
        return "must contain " + ", ".join(str(v) for v in value)
    if rule == "additionalProperties":
        return "has fields that are not allowed"
    # fastjsonschema's own wording, without the leading "data.x " (never the value itself).
    message = str(exc.message)
    if exc.name and message.startswith(str(exc.name)):
        message = message[len(str(exc.name)) :].strip()
    return message or "is invalid"


def field_errors(data: Any, schema: Mapping[str, Any], path: str = "body") -> list[FieldError]:
    """Every problem of ``data`` against ``schema`` that can be told apart per field
    (``[]`` when ``data`` is valid)."""
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(data, dict) and isinstance(properties, dict):
        errors: list[FieldError] = []
        for key in schema.get("required", ()):
            if key not in data:
                errors.append(FieldError(_join(path, key), "is required"))
        if schema.get("additionalProperties") is False:
            for key in data:
                if key not in properties:
                    errors.append(FieldError(_join(path, key), "is not allowed"))
        for key, subschema in properties.items():
            if key in data:
                errors.extend(field_errors(data[key], subschema, _join(path, key)))
        if errors:
            return errors
    import fastjsonschema

    try:
        _validator(schema)(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        name = str(exc.name or "data")  # "data.a[1]": "data" is the validated value itself
        where = path + name[4:] if name.startswith("data") else path
        return [FieldError(where, _problem(exc))]
    return []


def validate(
    data: Any,
    schema: Mapping[str, Any],
    *,
    path: str = "body",
    checks: Mapping[str, Callable[[Any], str | None]] | None = None,
) -> Any:
    """Return ``data`` when it matches ``schema`` and passes ``checks``; raise
    :class:`~fleet_common.errors.ValidationFailed` with every field error otherwise.

    ``checks`` maps a top-level property of an object ``data`` to a function that returns the
    problem of its value (or ``None``); it runs when the property is present and passed the
    schema, and its problem is reported on ``<path>.<property>`` after the schema's errors."""
    import fastjsonschema

    errors: list[FieldError] = []
    try:
        result = _validator(schema)(data)
    except fastjsonschema.JsonSchemaValueException:
        errors = field_errors(data, schema, path)
        if not errors:  # pragma: no cover - field_errors re-validates, so it finds the error
            errors = [FieldError(path, "is invalid")]
        result = data
    if checks and isinstance(data, dict):
        for key, check in checks.items():
            where = _join(path, key)
            failed = any(
                e.path == where or e.path.startswith((where + ".", where + "[")) for e in errors
            )
            if key in data and not failed:
                problem = check(data[key])
                if problem:
                    errors.append(FieldError(where, problem))
    if errors:
        raise ValidationFailed(errors) from None
    return result


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain unpaired surrogates"
    return None


def text_errors(value: Any, path: str = "body") -> list[FieldError]:
    """Problems with strings (values and keys, at any depth) that PostgreSQL cannot store:
    NUL characters and unpaired UTF-16 surrogates (both can be written as JSON escapes)."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = _bad_text(item)
            if problem:
                errors.append(FieldError(where, problem))
        elif isinstance(item, dict):
            for key, sub in item.items():
                key_problem = _bad_text(key)
                if key_problem:
                    errors.append(FieldError(where, f"has a key that {key_problem}"))
                    continue
                stack.append((sub, _join(where, key)))
        elif isinstance(item, list):
            stack.extend((sub, _join(where, i)) for i, sub in enumerate(item))
    return sorted(errors, key=lambda e: e.path)
