"""The small schema checker every file of live/ goes through: each TOML table is a set of known
keys with an expected type (Key), and a Collector gathers every problem of one file (file, key,
what was expected) so that all of them are reported together."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.errors import ConfigIssue


@dataclass(frozen=True)
class Key:
    """One key of a TOML table: its type check, whether it must be there, and what it means."""

    check: Callable[[Any], bool]
    expected: str
    required: bool = False


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_table(value: Any) -> bool:
    return isinstance(value, dict)


def is_str_table(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


class Collector:
    """Collects ConfigIssues for one file."""

    def __init__(self, file: Path, root: Path):
        try:
            self.file = file.relative_to(root)
        except ValueError:
            self.file = file
        self.issues: list[ConfigIssue] = []

    def add(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, key, message))

    def check_table(
        self, table: Mapping[str, Any], schema: Mapping[str, Key], prefix: str = ""
    ) -> None:
        for key in table:
            if key not in schema:
                known = ", ".join(sorted(schema)) or "none"
                self.add(f"{prefix}{key}", f"unknown key (known keys here: {known})")
        for key, spec in schema.items():
            if key not in table:
                if spec.required:
                    self.add(f"{prefix}{key}", f"missing: expected {spec.expected}")
                continue
            if not spec.check(table[key]):
                self.add(
                    f"{prefix}{key}",
                    f"expected {spec.expected}, got {describe(table[key])}",
                )


def describe(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, dict):
        kind = "table"
    elif isinstance(value, list):
        kind = "array"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


def quote(text: str) -> str:
    """A string of a file for a message: its repr, shortened like describe."""
    quoted = repr(text)
    return quoted if len(quoted) <= 60 else quoted[:57] + "..."


def is_dir(path: Path) -> bool:
    """Path.is_dir, False for a path the system cannot look up (a NUL, a name too long)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """Path.is_file, False for a path the system cannot look up (a NUL, a name too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_toml(path: Path, collector: Collector) -> dict[str, Any] | None:
    if not is_file(path):
        collector.add("", "file not found")
        return None
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        collector.add("", f"not valid TOML: {error}")
    except UnicodeDecodeError:
        collector.add("", "not valid UTF-8 text")
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        collector.add(
            "", "nesting too deep: arrays or tables nested deeper than the TOML reader can follow"
        )
    except OSError as error:
        collector.add("", f"cannot be read: {error.strerror or error}")
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_input_value(value: Any) -> str | None:
    """Terraform takes inputs as JSON: TOML has dates and times, nan and inf that JSON has not.

    The first problem found, depth first, in document order (without recursion: values come
    as deep as the TOML reader goes).
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(reversed(item.values()))
        elif isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, float) and not math.isfinite(item):
            return (
                f"expected a finite number, got {item!r} (inputs go to terraform as JSON, "
                "which has no nan or inf)"
            )
        elif not isinstance(item, str | int | float | bool):
            return (
                f"expected a string, number, bool, array or table, got {type(item).__name__} "
                f"{item!r}"
            )
    return None
