"""Pins: functions held on one version by `stackrun rollback` until `stackrun unpin`.

The record is one JSON object in the environment's state bucket, beside the states
(Environment.record_key("pins")): {function: {version, previous, at, by}}. Every
render of a stack passes a pinned function's version to the module as `live_version`
(modules/lambda-api), so plan and deploy agree with the rollback: the alias stays where it was
put, terraform sees no drift, and a new zip is published but takes no traffic until the pin is
released. A deploy says which functions are pinned and how to release them.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import asdict, dataclass
from typing import Any

from stackrun.errors import StackrunError
from stackrun.release import records

RECORD = "pins"


@dataclass(frozen=True)
class Pin:
    version: str  # the version the live alias is held on
    previous: str  # the version it pointed at before the rollback
    at: str  # when (ISO 8601, UTC)
    by: str  # who: the CI actor, or the local user

    def notice(self, environment: str, function: str) -> str:
        return (
            f"{function} is pinned to version {self.version} (rolled back from "
            f"{self.previous} at {self.at} by {self.by}): its live alias stays there and a new "
            f"version takes no traffic. Release the pin with `stackrun unpin {environment} "
            f"{function}` (nox -s unpin -- {environment} {function}); the next deploy then "
            "moves live to the newest version"
        )


def actor() -> str:
    """Who acts: GitHub's actor in a workflow, else the local user."""
    github = os.environ.get("GITHUB_ACTOR")
    return f"github:{github}" if github else getpass.getuser()


def read(environment: Any, s3: Any) -> dict[str, Pin]:
    """The environment's pins ({} when none was ever recorded, or no backend exists yet)."""
    document = records.read(environment, s3, RECORD)
    try:
        return {name: Pin(**fields) for name, fields in document.get("pins", {}).items()}
    except (AttributeError, TypeError) as error:
        bucket, key = records.location(environment, RECORD)
        raise StackrunError(
            f"s3://{bucket}/{key} is not a pin record ({error}); fix or delete it"
        ) from error


def write(environment: Any, s3: Any, pins: dict[str, Pin]) -> None:
    records.write(
        environment, s3, RECORD, {"pins": {name: asdict(pin) for name, pin in pins.items()}}
    )
