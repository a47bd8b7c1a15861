"""--set NNN_stack.input=VALUE: one run's override of a stack input."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.checks import check_input_value, quote
from stackrun.config.model import EXTERNAL_ISSUER_INPUT, Environment
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
        where = Path("--set")
        target, equals, raw = text.partition("=")
        stack_name, dot, input_name = target.strip().partition(".")
        if not equals or not dot or not input_name:
            issues.append(
                ConfigIssue(where, text, f"expected NNN_stack.input=VALUE, got {quote(text)}")
            )
            continue
        stack = stacks.get(stack_name)
        if stack is None:
            known = ", ".join(stacks) or "none"
            issues.append(
                ConfigIssue(
                    where, text, f"no stack {quote(stack_name)} in {environment.name} ({known})"
                )
            )
            continue
        if input_name not in stack.module.variables:
            issues.append(
                ConfigIssue(
                    where,
                    text,
                    f"module {stack.module.name!r} of {stack_name} has no input "
                    f"{quote(input_name)}",
                )
            )
            continue
        if any(dep.input_name == input_name for dep in stack.dependencies):
            issues.append(
                ConfigIssue(
                    where, text, f"{input_name!r} comes from [dependencies] of {stack_name}"
                )
            )
            continue
        if input_name == EXTERNAL_ISSUER_INPUT:
            issues.append(
                ConfigIssue(where, text, f"{input_name!r} comes from env.toml's [identity] table")
            )
            continue
        if input_name == stack.lambdas_input:  # its function names are checked in the file
            issues.append(
                ConfigIssue(
                    where,
                    text,
                    f"{input_name!r} lists the functions of {stack_name} ([lambdas] input); "
                    "change it in its stack.toml",
                )
            )
            continue
        try:
            document = tomllib.loads(f"value = {raw.strip()}")
        except (tomllib.TOMLDecodeError, RecursionError):
            document = {}
        if set(document) != {"value"}:  # not TOML, or more than one value ("1\nx = 2")
            issues.append(
                ConfigIssue(
                    where, text, f'expected a TOML value (true, 3, "text"), got {quote(raw)}'
                )
            )
            continue
        value = document["value"]
        problem = check_input_value(value)
        if problem:
            issues.append(ConfigIssue(where, text, problem))
            continue
        changed.setdefault(stack_name, dict(stack.inputs))[input_name] = value
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
