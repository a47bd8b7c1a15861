"""The optional tables of stack.toml that say how stackrun treats a stack: [lambdas] (its
functions, invoke_on_deploy), [lambdas.canary] and [policy.skip]."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackrun.config.checks import Collector, Key, describe, is_file, quote
from stackrun.config.keys import (
    CANARY_FUNCTION_SETTINGS,
    CANARY_SETTINGS,
    CHECK_ID_PATTERN,
    FUNCTION_NAME_PATTERN,
    LAMBDAS_TABLE,
    duration_seconds,
)
from stackrun.config.model import Canary


def check_policy(table: Any, collector: Collector) -> dict[str, str]:
    """`[policy.skip]`: CHECK_ID = "reason" pairs; every skip needs its reason."""
    if not isinstance(table, dict):
        return {}
    skips: dict[str, str] = {}
    for key in table:
        if key != "skip":
            collector.add(f"policy.{key}", 'unknown key; expected [policy.skip] CHECK_ID = "why"')
    skip = table.get("skip", {})
    if not isinstance(skip, dict):
        collector.add("policy.skip", f'expected a table of CHECK_ID = "why", got {describe(skip)}')
        return {}
    for check_id, reason in skip.items():
        if not CHECK_ID_PATTERN.fullmatch(check_id):
            collector.add(f"policy.skip.{check_id}", "expected a checkov check id like CKV_AWS_293")
        elif not isinstance(reason, str) or len(reason.strip()) < 10:
            collector.add(
                f"policy.skip.{check_id}",
                "expected the reason the check does not apply here (a sentence, not empty)",
            )
        else:
            skips[check_id] = reason.strip()
    return skips


def check_canary(table: Any, functions: list[str], collector: Collector) -> dict[str, Canary]:
    """`[lambdas.canary]` (every function's settings, all four required) and its optional
    `[lambdas.canary.functions.<name>]` overrides (or `enabled = false`)."""
    prefix = "lambdas.canary."
    if not isinstance(table, dict):
        return {}
    before = len(collector.issues)
    defaults = {key: value for key, value in table.items() if key != "functions"}
    schema = {key: Key(spec.check, spec.expected, True) for key, spec in CANARY_SETTINGS.items()}
    collector.check_table(defaults, schema, prefix)
    overrides = table.get("functions", {})
    if not isinstance(overrides, dict):
        collector.add(f"{prefix}functions", "expected a table of function name -> settings")
        overrides = {}
    for name, settings in overrides.items():
        key = f"{prefix}functions.{name}"
        if name not in functions:
            collector.add(
                key,
                f"not a function that takes traffic in this stack ({', '.join(functions)}; "
                "functions of invoke_on_deploy have no canary)",
            )
        elif not isinstance(settings, dict):
            collector.add(key, f"expected a table of settings, got {describe(settings)}")
        else:
            collector.check_table(settings, CANARY_FUNCTION_SETTINGS, f"{key}.")
    if len(collector.issues) != before:
        return {}
    canary = {}
    for name in functions:
        settings = {**defaults, **overrides.get(name, {})}
        if settings.pop("enabled", True):
            canary[name] = Canary(
                share=float(settings["share"]),
                seconds=duration_seconds(settings["duration"]),
                max_error_rate=float(settings["max_error_rate"]),
                max_errors=int(settings["max_errors"]),
            )
    return canary


def check_invoke(
    table: Mapping[str, Any],
    inputs: Mapping[str, Any],
    lambdas_input: str | None,
    collector: Collector,
) -> tuple[str, ...]:
    """`invoke_on_deploy`: names among the functions this stack deploys."""
    names = table.get("invoke_on_deploy", [])
    if not isinstance(names, list) or lambdas_input is None:
        return ()
    functions = inputs.get(lambdas_input) or {}
    unknown = [name for name in names if name not in functions]
    if unknown:
        collector.add(
            "lambdas.invoke_on_deploy",
            f"{', '.join(map(repr, unknown))} not among the functions of inputs.{lambdas_input} "
            f"({', '.join(sorted(functions))})",
        )
        return ()
    return tuple(names)


def check_lambdas(
    root: Path, table: Mapping[str, Any], inputs: Mapping[str, Any], collector: Collector
) -> str | None:
    """Validate `[lambdas]`: the named input is a table of functions that exist in lambdas/."""
    before = len(collector.issues)
    collector.check_table(table, LAMBDAS_TABLE, prefix="lambdas.")
    name = table.get("input")
    if not isinstance(name, str):
        return None
    functions = inputs.get(name)
    if not isinstance(functions, dict) or not functions:
        collector.add(
            "lambdas.input",
            f"input {name!r} must be a table with one entry per function, e.g. "
            f"[inputs.{name}.create_project]",
        )
        return None
    for function, settings in functions.items():
        key = f"inputs.{name}.{function}"
        if not FUNCTION_NAME_PATTERN.fullmatch(function):
            collector.add(
                key,
                "expected a function name: the name of a folder under lambdas/ (1 to 64 "
                f"letters, digits, '_' or '-', starting with a letter or digit), got "
                f"{quote(function)}",
            )
        elif not is_file(root / "lambdas" / function / "pyproject.toml"):
            collector.add(key, f"no function package lambdas/{function}/ (with pyproject.toml)")
        if not isinstance(settings, dict):
            collector.add(key, f"expected a table of settings, got {describe(settings)}")
            continue
        for filled in ("zip_path", "source_code_hash", "handler"):
            if filled in settings:
                collector.add(f"{key}.{filled}", "set by stackrun from the build; remove it")
        if "live_version" in settings:
            collector.add(
                f"{key}.live_version",
                "set by stackrun while `stackrun rollback` pins the function; remove it (to "
                "hold a function on a version: stackrun rollback <env> <function> --to N)",
            )
    return name if len(collector.issues) == before else None
