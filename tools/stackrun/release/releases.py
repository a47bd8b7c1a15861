"""The release record of an environment: what is live there, and whether it passed its tests.

One JSON object per environment in its state bucket, at `Environment.record_key(
"release")` (`<env>/_stackrun/release.json`), written by every successful deploy and completed
by `stackrun release <env> --tested passed|failed` after the integration tests:

    {
      "format": 1,
      "environment": "stage",
      "commit": "<git rev-parse HEAD of the deploying checkout, or unknown>",
      "deployed_at": "2026-12-07T05:01:02Z",
      "promoted_from": null | {"environment": "stage", "commit": "...", "deployed_at": "..."},
      "functions": {
        "<stack>/<function>": {"function_name": "fleet-stage-list_devices",
                               "version": "3", "sha256": "<hex sha256 of the zip bytes>"}
      },
      "tested": null | {"result": "passed" | "failed", "at": "...",
                        "passed": 12, "failed": 0, "errors": 0, "skipped": 1}
    }

`functions` comes from Lambda itself, not from the build: per function of every `[lambdas]`
stack, the version its `live` alias points at and that version's CodeSha256. So the record
says which bytes run, also for stacks the deploy skipped. A test result is recorded only while
the record still matches what is live (`live_mismatches`); promotion (`stackrun.release.promote`)
reads it.
"""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stackrun.aws.at_once import at_once, in_background
from stackrun.aws.target import Target
from stackrun.config import Environment
from stackrun.errors import StackrunError
from stackrun.provenance import git_commit
from stackrun.release import records

RECORD = "release"
FORMAT = 1
ALIAS = "live"  # modules/lambda-api: the alias every route and invocation goes through
RESULTS = ("passed", "failed")


class ReleaseError(StackrunError):
    """A release record is missing, unreadable or does not match what is live."""


@dataclass(frozen=True)
class LiveFunction:
    """One function as its `live` alias serves it now."""

    function_name: str
    version: str
    sha256: str  # hex

    def document(self) -> dict[str, str]:
        return {"function_name": self.function_name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class Release:
    environment: str
    commit: str
    deployed_at: str
    functions: Mapping[str, LiveFunction]  # "<stack>/<function>" -> live function
    promoted_from: Mapping[str, str] | None = None
    tested: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.tested and self.tested.get("result") == "passed")

    def document(self) -> dict[str, Any]:
        return {
            **self.extra,
            "format": FORMAT,
            "environment": self.environment,
            "commit": self.commit,
            "deployed_at": self.deployed_at,
            "promoted_from": dict(self.promoted_from) if self.promoted_from else None,
            "functions": {key: self.functions[key].document() for key in sorted(self.functions)},
            "tested": dict(self.tested) if self.tested else None,
        }

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> Release:
        if document.get("format") != FORMAT:
            raise ReleaseError(
                f"release record format {document.get('format')!r} is not {FORMAT}: "
                "written by another stackrun version"
            )
        known = {"format", "environment", "commit", "deployed_at", "promoted_from", "functions"}
        return cls(
            environment=str(document["environment"]),
            commit=str(document["commit"]),
            deployed_at=str(document["deployed_at"]),
            functions={
                key: LiveFunction(str(f["function_name"]), str(f["version"]), str(f["sha256"]))
                for key, f in document["functions"].items()
            },
            promoted_from=document.get("promoted_from"),
            tested=document.get("tested"),
            extra={k: v for k, v in document.items() if k not in known | {"tested"}},
        )


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hex_digest(base64_sha256: str) -> str:
    """Lambda's CodeSha256 (base64) as the hex digest manifests and records use."""
    return base64.b64decode(base64_sha256).hex() if base64_sha256 else ""


# ---- where records live ----------------------------------------------------------------------


def read(target: Target, environment: Environment) -> Release | None:
    """The environment's release record (None when none was written yet)."""
    document = records.read(environment, target.client(environment, "s3"), RECORD)
    if not document:
        return None
    try:
        return Release.parse(document)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        bucket, key = records.location(environment, RECORD)
        raise ReleaseError(
            f"the release record of {environment.name} (s3://{bucket}/{key}) cannot be read: "
            f"{error!r}"
        ) from error


def write(target: Target, environment: Environment, release: Release) -> None:
    records.write(environment, target.client(environment, "s3"), RECORD, release.document())


# ---- what is live ----------------------------------------------------------------------------


def function_keys(environment: Environment) -> set[str]:
    """Keys "<stack>/<function>" of every function a `[lambdas]` stack deploys."""
    return {f"{stack.name}/{name}" for stack in environment.stacks for name in stack.functions}


def live_version(lambda_client: Any, function_name: str) -> Any:
    """The version (stackrun.local.api.functions.FunctionVersion) the live alias serves."""
    from stackrun.local.api.functions import LocalApiError, resolve

    try:
        return resolve(lambda_client, f"{function_name}:{ALIAS}")
    except LocalApiError as error:
        raise ReleaseError(str(error)) from error


def live_functions(
    target: Target, environment: Environment, function_names: Mapping[str, str]
) -> dict[str, LiveFunction]:
    """For each "<stack>/<function>" -> Lambda function name: what its live alias serves."""
    client = target.client(environment, "lambda")
    keys = sorted(function_names)
    versions = at_once(lambda key: live_version(client, function_names[key]), keys)
    return {
        key: LiveFunction(function_names[key], version.version, hex_digest(version.code_sha256))
        for key, version in zip(keys, versions, strict=True)
    }


def deployed_function_names(
    environment: Environment,
    outputs: Mapping[str, Mapping[str, Any]],
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Keys "<stack>/<function>" -> Lambda function name, from the `functions` output of each
    `[lambdas]` stack (modules/lambda-api). A function it does not name is left out, with a
    warning (promotion then refuses: the sets differ)."""
    names = {}
    for stack in environment.stacks:
        if not stack.functions:
            continue
        value = (outputs.get(stack.name, {}).get("functions") or {}).get("value") or {}
        for name in stack.functions:
            entry = value.get(name) if isinstance(value, dict) else None
            if not isinstance(entry, dict) or not entry.get("function_name"):
                log(
                    f"warning: {stack.name}/{name} left out of the release record: the stack's "
                    "`functions` output names no Lambda function for it (functions.<name>."
                    "function_name, as modules/lambda-api outputs)"
                )
                continue
            names[f"{stack.name}/{name}"] = str(entry["function_name"])
    return names


def live_mismatches(release: Release, live: Mapping[str, LiveFunction]) -> list[str]:
    """How the record differs from what is live (empty: it matches), one line per function."""
    lines = []
    for key in sorted(set(release.functions) | set(live)):
        recorded, now_live = release.functions.get(key), live.get(key)
        if recorded is None:
            lines.append(f"{key}: live, but not in the release record")
        elif now_live is None:
            lines.append(f"{key}: in the release record, but not deployed")
        elif recorded.sha256 != now_live.sha256:
            lines.append(
                f"{key} ({now_live.function_name}): live version {now_live.version} has sha256 "
                f"{now_live.sha256}, the release record has {recorded.sha256}"
            )
    return lines


# ---- commands --------------------------------------------------------------------------------


def record_deploy(
    target: Target,
    environment: Environment,
    outputs: Mapping[str, Mapping[str, Any]],
    promoted_from: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> Release | None:
    """After a successful deploy: record what is live now (a new, untested release; the test
    result is kept when commit and every function are exactly those of the previous record).
    An environment that deploys no function gets no record (None)."""
    if not function_keys(environment):
        return None
    names = deployed_function_names(environment, outputs, log)
    with in_background(lambda: read(target, environment)) as previous_record:
        live = live_functions(target, environment, names)
        previous = previous_record.result()
    release = Release(
        environment=environment.name,
        commit=git_commit(environment.project.root),
        deployed_at=now(),
        functions=live,
        promoted_from=promoted_from,
    )
    if (
        previous is not None
        and previous.tested
        and release.commit != "unknown"
        and previous.commit == release.commit
        and previous.functions == release.functions
        and previous.promoted_from == release.promoted_from
    ):
        release = replace(release, tested=previous.tested)
    write(target, environment, release)
    state = f"tests {release.tested['result']}" if release.tested else "not tested yet"
    log(
        f"release record of {environment.name}: commit {release.commit[:12]}, "
        f"{len(live)} function(s), {state} "
        f"(s3://{environment.backend.bucket}/"
        f"{environment.record_key(RECORD)})"
    )
    return release


def junit_counts(path: Path) -> dict[str, int]:
    """passed/failed/errors/skipped of a pytest --junitxml report."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ReleaseError(f"cannot read the JUnit XML report {path}: {error}") from error
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for name in counts:
            counts[name] += int(suite.get(name) or 0)
    return {
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        "failed": counts["failures"],
        "errors": counts["errors"],
        "skipped": counts["skipped"],
    }


def record_tested(
    target: Target, environment: Environment, result: str, counts: Mapping[str, int] | None
) -> Release:
    """Record the integration-test result into the release whose functions are live now."""
    if result not in RESULTS:
        raise ReleaseError(f"test result must be one of {', '.join(RESULTS)}, not {result!r}")
    release = read(target, environment)
    if release is None:
        raise ReleaseError(
            f"{environment.name} has no release record: deploy it first (stackrun deploy "
            f"{environment.name}), then record its test result"
        )
    live = live_functions(
        target, environment, {key: f.function_name for key, f in release.functions.items()}
    )
    mismatches = live_mismatches(release, live) + [
        f"{key}: deployed by the configuration, but not in the release record"
        for key in sorted(function_keys(environment) - set(release.functions))
    ]
    if mismatches:
        raise ReleaseError(
            f"the release record of {environment.name} no longer matches what is live, so the "
            "tests did not test that release; nothing recorded:\n  "
            + "\n  ".join(mismatches)
            + f"\n  deploy {environment.name} again, then run its integration tests"
        )
    tested = {"result": result, "at": now(), **(counts or {})}
    updated = replace(release, tested=tested)
    write(target, environment, updated)
    return updated
