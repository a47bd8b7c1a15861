"""`rollback <env> <function> [--to VERSION]` and `unpin <env> <function>`.

rollback moves a function's live alias back with one UpdateAlias call (to the newest version
before the one it points at, or to --to; any canary routing is cleared) and pins the function
there (pins.py), so that the next deploy keeps it, says so, and shows no drift. No terraform
runs: it takes seconds. unpin releases the pin; the next deploy moves live to the newest
published version. Both act as the deploy role, under the environment guard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackrun.config import Environment, Stack
from stackrun.deploy.backend import guard_of
from stackrun.errors import StackrunError
from stackrun.release import aliases, pins
from stackrun.terraform.workspace import Workspace


@dataclass(frozen=True)
class DeployedFunction:
    key: str  # the function's name in live/ (a folder of lambdas/)
    stack: Stack
    name: str  # the Lambda function's name
    alias: str


def stack_of(environment: Environment, function: str) -> Stack:
    """The stack that deploys `function`; a clear error naming the choices otherwise."""
    for stack in environment.stacks:
        if function in stack.functions:
            return stack
    known = sorted(name for stack in environment.stacks for name in stack.functions)
    raise StackrunError(
        f"{function!r} is not a function of {environment.name} (live/{environment.name}/*/"
        f"stack.toml [lambdas]); its functions are: {', '.join(known) or 'none'}"
    )


def deployed(workspace: Workspace, function: str) -> DeployedFunction:
    """Name and alias of `function` as its stack's state says it is deployed."""
    from stackrun.terraform.state import outputs_of, read_state

    environment = workspace.environment
    stack = stack_of(environment, function)
    outputs = outputs_of(read_state(workspace, stack), stack.module)
    described = (outputs.get("functions") or {}).get("value", {}).get(function)
    if not described:
        raise StackrunError(
            f"{function} is not deployed in {environment.name} (stack {stack.name} has no "
            "state for it): nothing to roll back"
        )
    return DeployedFunction(function, stack, described["function_name"], described["alias_name"])


def version_before(published: list[str], current: str) -> str | None:
    """The newest published version older than `current` (None: there is none)."""
    older = [int(v) for v in published if v.isdigit() and int(v) < int(current)]
    return str(max(older)) if older else None


def _published_versions(lambda_client: Any, name: str) -> list[str]:
    pages = lambda_client.get_paginator("list_versions_by_function").paginate(FunctionName=name)
    return [entry["Version"] for page in pages for entry in page["Versions"]]


def _choose(function: DeployedFunction, published: list[str], current: str, to: str | None) -> str:
    if to is None:
        chosen = version_before(published, current)
        if chosen is None:
            raise StackrunError(
                f"{function.name}: live points at version {current} and no older version is "
                "published: nothing to roll back to"
            )
        return chosen
    if to not in published or not to.isdigit():
        numbers = ", ".join(v for v in published if v.isdigit())
        raise StackrunError(
            f"--to {to}: {function.name} has no published version {to} (published: {numbers})"
        )
    if to == current:
        raise StackrunError(f"{function.name}: live already points at version {to}")
    return to


def rollback(workspace: Workspace, function: str, to: str | None = None) -> pins.Pin:
    """Move `function`'s live alias back and pin it there. Returns the pin."""
    environment = workspace.environment
    stack_of(environment, function)  # a wrong name fails before anything is contacted
    started = time.monotonic()
    s3 = workspace.target.client(environment, "s3")
    lambda_client = workspace.target.client(environment, "lambda")
    with guard_of(workspace, "rollback"):
        target = deployed(workspace, function)
        alias = lambda_client.get_alias(FunctionName=target.name, Name=target.alias)
        current = alias["FunctionVersion"]
        chosen = _choose(target, _published_versions(lambda_client, target.name), current, to)
        recorded = pins.read(environment, s3)
        pin = pins.Pin(
            version=chosen,
            previous=current,
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            by=pins.actor(),
        )
        # The pin first: should moving the alias fail, the next deploy still moves it there.
        pins.write(environment, s3, {**recorded, function: pin})
        try:
            aliases.route(lambda_client, target.name, target.alias, chosen)
        except Exception:
            pins.write(environment, s3, recorded)
            raise
    seconds = time.monotonic() - started
    print(
        f"{target.name}: {target.alias} moved from version {current} to {chosen} in {seconds:.1f}s",
        file=workspace.console,
        flush=True,
    )
    print(pin.notice(environment.name, function), file=workspace.console, flush=True)
    return pin


def unpin(workspace: Workspace, function: str) -> pins.Pin | None:
    """Release `function`'s pin. Returns the released pin (None: it was not pinned)."""
    environment = workspace.environment
    stack_of(environment, function)
    s3 = workspace.target.client(environment, "s3")
    with guard_of(workspace, "unpin"):
        recorded = pins.read(environment, s3)
        released = recorded.pop(function, None)
        if released is not None:
            pins.write(environment, s3, recorded)
    if released is None:
        print(f"{function} is not pinned in {environment.name}", file=workspace.console)
    else:
        print(
            f"{function}: pin on version {released.version} released; the next deploy moves "
            f"its live alias to the newest published version (nox -s deploy -- "
            f"{environment.name})",
            file=workspace.console,
            flush=True,
        )
    return released
