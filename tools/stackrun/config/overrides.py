"""--set NNN_stack.input=VALUE: one run's override of a stack input."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.checks import check_input_value, quote
from stackrun.config.model import EXTERNAL_ISSUER_INPUT, Environment, Stack
from stackrun.errors import ConfigError, ConfigIssue


def apply_overrides(environment: Environment, overrides: list[str]) -> Environment:
    """`environment` with `--set NNN_stack.input=VALUE` overrides (VALUE is a TOML value).

    Checked like the files: the stack must exist, the input must be a variable of its module
    and neither a dependency nor the `[lambdas]` input, and the value must be one TOML value
    that terraform can take. Every malformed override is reported (file "--set", key: the
    override as given).
    """
    if not overrides:
        return environment
    issues: list[ConfigIssue] = []
    stacks = {stack.name: stack for stack in environment.stacks}
    changed: dict[str, dict[str, Any]] = {}
    for text in overrides:
        parsed = _parse(text, environment.name, stacks)
        if isinstance(parsed, str):
            issues.append(ConfigIssue(Path("--set"), text, parsed))
            continue
        stack, input_name, value = parsed
        changed.setdefault(stack.name, dict(stack.inputs))[input_name] = value
    if issues:
        raise ConfigError(issues)
    return replace(
        environment,
        stacks=tuple(
            replace(stack, inputs=MappingProxyType(changed[stack.name]))
            if stack.name in changed
            else stack
            for stack in environment.stacks
        ),
    )


def _parse(text: str, env_name: str, stacks: Mapping[str, Stack]) -> tuple[Stack, str, Any] | str:
    """One override as (stack, input, value), or what is wrong with it."""
    target, equals, raw = text.partition("=")
    stack_name, dot, input_name = target.strip().partition(".")
    if not equals or not dot or not input_name:
        return f"expected NNN_stack.input=VALUE, got {quote(text)}"
    stack = stacks.get(stack_name)
    if stack is None:
        return f"no stack {quote(stack_name)} in {env_name} ({', '.join(stacks) or 'none'})"
    problem = _refused_input(stack, input_name)
    if problem:
        return problem
    try:
        document = tomllib.loads(f"value = {raw.strip()}")
    except (tomllib.TOMLDecodeError, RecursionError):
        document = {}
    if set(document) != {"value"}:  # not TOML, or more than one value ("1\nx = 2")
        return f'expected a TOML value (true, 3, "text"), got {quote(raw)}'
    return check_input_value(document["value"]) or (stack, input_name, document["value"])


def _refused_input(stack: Stack, input_name: str) -> str | None:
    """Why `input_name` of `stack` cannot be set with --set, or None."""
    if input_name not in stack.module.variables:
        return f"module {stack.module.name!r} of {stack.name} has no input {quote(input_name)}"
    if any(dep.input_name == input_name for dep in stack.dependencies):
        return f"{input_name!r} comes from [dependencies] of {stack.name}"
    if input_name == EXTERNAL_ISSUER_INPUT:
        return f"{input_name!r} comes from env.toml's [identity] table"
    if input_name == stack.lambdas_input:  # its function names are checked in the file
        return (
            f"{input_name!r} lists the functions of {stack.name} ([lambdas] input); "
            "change it in its stack.toml"
        )
    return None
