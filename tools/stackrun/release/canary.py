"""Canary releases: a new function version takes a share of its live alias's traffic first.

For a stack with `[lambdas.canary]`, every render holds each canary function's alias on the
version it points at now (`held_versions`, read from the stack's state), so an apply publishes
the new version without moving traffic. After the apply, `release` takes each function whose
newest published version differs from its alias:

    the alias routes `share` of its invocations to the new version (one UpdateAlias with
      RoutingConfig; Lambda picks the version per invocation, as the local API does)
    every POLL_SECONDS the new version's Errors and Invocations are read from CloudWatch
      (AWS/Lambda; FunctionName, Resource=<function>:<alias>, ExecutedVersion=<new>) and a
      progress line printed
    more than max_errors errors, or an error rate above max_error_rate: the alias goes back to
      the old version at once (routing cleared) and the version is recorded as rolled back
    the window over without that: promoted, the alias moves to it fully (routing cleared);
      the runner renders the stack with the new version and applies it again, so terraform's
      state and outputs agree (the module leaves routing weights to this tooling)

A rolled-back version is recorded (<env>/_stackrun/canary.json) and not tried again: the alias
stays on the old version (terraform's view too, so the next plan is clean) until a newer
version is deployed. An interrupted window puts the alias back on the old version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from stackrun.config import Canary, Stack
from stackrun.release import aliases, records
from stackrun.terraform.workspace import Workspace

RECORD = "canary"
POLL_SECONDS = 5.0


class Outcome(StrEnum):
    """What became of a candidate: still watched, then promoted or rolled back."""

    WATCHED = ""
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"


@dataclass
class Candidate:
    """One function's new version under watch."""

    key: str  # the function's name in live/
    name: str  # the Lambda function's name
    alias: str
    stable: str  # the version live pointed at before
    new: str
    settings: Canary
    invocations: int = 0
    errors: int = 0
    outcome: Outcome = Outcome.WATCHED

    @property
    def error_rate(self) -> float:
        return self.errors / self.invocations if self.invocations else 0.0

    def breached(self) -> str:
        """Why the new version must go back ("" while it may stay)."""
        if self.errors > self.settings.max_errors:
            return f"{self.errors} errors > max_errors {self.settings.max_errors}"
        if self.invocations and self.error_rate > self.settings.max_error_rate:
            return (
                f"error rate {self.error_rate:.0%} ({self.errors}/{self.invocations}) > "
                f"max_error_rate {self.settings.max_error_rate:.0%}"
            )
        return ""

    def counts(self) -> str:
        return f"{self.invocations} invocations, {self.errors} errors"


def _functions(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return (outputs.get("functions") or {}).get("value") or {}


def held_versions(stack: Stack, outputs: Mapping[str, Any]) -> dict[str, str]:
    """The version each canary function's alias points at now (none before its first apply)."""
    functions = _functions(outputs)
    return {
        key: str(functions[key]["version"])
        for key in stack.canary
        if functions.get(key, {}).get("version")
    }


def rolled_back(workspace: Workspace) -> dict[str, Any]:
    environment = workspace.environment
    s3 = workspace.target.client(environment, "s3")
    rolled: dict[str, Any] = records.read(environment, s3, RECORD).get("rolled_back", {})
    return rolled


def candidates(
    workspace: Workspace, stack: Stack, outputs: Mapping[str, Any], held: Mapping[str, str]
) -> list[Candidate]:
    """Functions of `stack` whose newest version is not live yet and may be tried now."""
    functions = _functions(outputs)
    pinned = workspace.pins()
    rejected = rolled_back(workspace) if held else {}
    found = []
    for key, stable in sorted(held.items()):
        new = str(functions.get(key, {}).get("published_version") or "")
        if not new or new == stable or key in pinned:
            continue
        if rejected.get(key, {}).get("version") == new:
            when = rejected[key].get("at", "?")
            _say(
                workspace,
                f"    note: {key} version {new} was rolled back by its canary at {when}; live "
                f"stays on {stable} until a newer version is deployed",
            )
            continue
        found.append(
            Candidate(
                key,
                functions[key]["function_name"],
                functions[key]["alias_name"],
                stable,
                new,
                stack.canary[key],
            )
        )
    return found


def release(
    workspace: Workspace,
    watched: list[Candidate],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Route each candidate's share to its new version, watch its window, then decide."""
    if not watched:
        return
    environment = workspace.environment
    lambda_client = workspace.target.client(environment, "lambda")
    cloudwatch = workspace.target.client(environment, "cloudwatch")
    started_at = datetime.now(UTC)
    started = clock()
    try:
        for candidate in watched:
            _start(workspace, lambda_client, candidate)
        while any(c.outcome == Outcome.WATCHED for c in watched):
            sleep(POLL_SECONDS)
            elapsed = clock() - started
            for candidate in (c for c in watched if c.outcome == Outcome.WATCHED):
                candidate.invocations, candidate.errors = _metrics(
                    cloudwatch, candidate, started_at
                )
                _decide(workspace, lambda_client, candidate, elapsed)
    finally:
        # interrupted (or failed) mid-window: nothing half-released stays behind
        for candidate in (c for c in watched if c.outcome == Outcome.WATCHED):
            _route_all(
                workspace,
                lambda_client,
                candidate,
                candidate.stable,
                f"stopped; {candidate.alias} is back on {candidate.stable} (the next deploy "
                f"tries version {candidate.new} again)",
            )


def _start(workspace: Workspace, lambda_client: Any, candidate: Candidate) -> None:
    """Route the candidate's share of its alias to its new version."""
    aliases.route(
        lambda_client,
        candidate.name,
        candidate.alias,
        candidate.stable,
        {candidate.new: candidate.settings.share},
    )
    _say(
        workspace,
        f"    canary {candidate.key}: version {candidate.new} gets "
        f"{candidate.settings.share:.0%} of {candidate.alias}'s traffic for "
        f"{candidate.settings.seconds}s (version {candidate.stable} the rest)",
    )


def _decide(workspace: Workspace, lambda_client: Any, candidate: Candidate, elapsed: float) -> None:
    """Roll back a breaching candidate, promote one whose window is over, else report."""
    why = candidate.breached()
    if why:
        _route_all(
            workspace,
            lambda_client,
            candidate,
            candidate.stable,
            f"version {candidate.new} rolled back after {elapsed:.0f}s ({why}); "
            f"{candidate.alias} is back on {candidate.stable}",
        )
        candidate.outcome = Outcome.ROLLED_BACK
        _record_rollback(workspace, candidate)
    elif elapsed >= candidate.settings.seconds:
        _route_all(
            workspace,
            lambda_client,
            candidate,
            candidate.new,
            f"version {candidate.new} healthy for {candidate.settings.seconds}s "
            f"({candidate.counts()}): promoted to all of {candidate.alias}'s traffic",
        )
        candidate.outcome = Outcome.PROMOTED
    else:
        _say(
            workspace,
            f"    canary {candidate.key}: version {candidate.new}: "
            f"{candidate.counts()}, {elapsed:.0f}s of {candidate.settings.seconds}s",
        )


def _metrics(cloudwatch: Any, candidate: Candidate, since: datetime) -> tuple[int, int]:
    """(Invocations, Errors) of the candidate's new version through its alias since `since`."""
    dimensions = [
        {"Name": "FunctionName", "Value": candidate.name},
        {"Name": "Resource", "Value": f"{candidate.name}:{candidate.alias}"},
        {"Name": "ExecutedVersion", "Value": candidate.new},
    ]

    def total(metric: str) -> int:
        reply = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=since - timedelta(minutes=1),
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )
        return int(sum(point["Sum"] for point in reply["Datapoints"]))

    return total("Invocations"), total("Errors")


def _route_all(
    workspace: Workspace, lambda_client: Any, candidate: Candidate, version: str, news: str
) -> None:
    """All of the candidate's alias's traffic to `version`; `news` says why."""
    aliases.route(lambda_client, candidate.name, candidate.alias, version)
    _say(workspace, f"    canary {candidate.key}: {news}")


def _record_rollback(workspace: Workspace, candidate: Candidate) -> None:
    environment = workspace.environment
    s3 = workspace.target.client(environment, "s3")
    document = records.read(environment, s3, RECORD)
    document.setdefault("rolled_back", {})[candidate.key] = {
        "version": candidate.new,
        "stable": candidate.stable,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "invocations": candidate.invocations,
        "errors": candidate.errors,
    }
    records.write(environment, s3, RECORD, document)


def _say(workspace: Workspace, line: str) -> None:
    print(line, file=workspace.console, flush=True)
