"""The environment guard: one deploy or destroy of an environment at a time.

Terraform's own locks protect one state at a time; two deploys of one environment could still
interleave stacks (A applies 010, B applies 010 then 020 with outputs A is about to change).
The guard is an item in the environment's DynamoDB lock table, written with a conditional put,
so it works for every user and CI runner of the account, not just this machine.

The item names its holder (operation, user@host, pid, the CI run's URL when there is one) and
carries an expiry (`Expires`, epoch seconds) that a thread of the live run pushes forward every
RENEW_SECONDS. A run that was killed outright stops renewing; once its guard has expired, the
next run takes it over with a warning instead of waiting for someone to run `unlock`.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stackrun.errors import GuardLost, LockHeld

GUARD_PREFIX = "stackrun-guard"
TTL_SECONDS = 120
RENEW_SECONDS = 30


def guard_id(environment: str) -> str:
    return f"{GUARD_PREFIX}/{environment}"


def who() -> str:
    """user@host, as terraform writes `Who` in its lock info.

    terraform takes the user from Go's os/user: the uid's passwd entry, else $USER when $USER
    and $HOME are set, else nothing.
    """
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        has_env = os.environ.get("USER") and os.environ.get("HOME")
        user = os.environ["USER"] if has_env else ""
    return f"{user}@{socket.gethostname()}"


def _ci_run_url() -> str:
    server, repository, run = (
        os.environ.get(name, "")
        for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


def _holder_info(operation: str) -> dict[str, str]:
    info = {
        "ID": str(uuid.uuid4()),
        "Operation": operation,
        "Who": who(),
        "PID": str(os.getpid()),
        "Created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if url := _ci_run_url():
        info["Run"] = url
    return info


def _item(lock_id: str, info: dict[str, str], ttl_seconds: float) -> dict[str, Any]:
    return {
        "LockID": {"S": lock_id},
        "Info": {"S": json.dumps(info)},
        "Expires": {"N": str(int(time.time() + ttl_seconds))},
    }


@dataclass
class HeldGuard:
    """The guard a run holds; `lost` is set when it is no longer the run's."""

    environment: str
    info: dict[str, str]
    lost: threading.Event = field(default_factory=threading.Event)

    def check(self, before: str) -> None:
        """Raise GuardLost when the guard is no longer this run's (call before each step)."""
        if self.lost.is_set():
            raise GuardLost(
                f"the environment guard of {self.environment!r} is no longer this run's (taken "
                "over after it expired, or released by `unlock`); stopped before " + before
            )


@contextmanager
def environment_guard(
    dynamodb: Any,
    table: str,
    environment: str,
    operation: str,
    timeout_seconds: float,
    poll_seconds: float = 2.0,
    local: bool = False,
    ttl_seconds: float = TTL_SECONDS,
    renew_seconds: float = RENEW_SECONDS,
) -> Iterator[HeldGuard]:
    """Hold the guard of `environment` for the duration of the block, renewing its expiry.

    Waits up to `timeout_seconds` for a live holder to finish, then raises LockHeld naming the
    holder and how to release a guard left by a killed run (`local`: the command to do it
    carries --local). An expired guard is taken over at once, with a warning.
    """
    info = _holder_info(operation)
    holder = _acquire(
        dynamodb, table, environment, info, timeout_seconds, poll_seconds, local, ttl_seconds
    )
    if _expired(holder):
        print(
            f"warning: took over the expired guard of environment {environment!r}, held by "
            f"{_describe_holder(holder)}: that run stopped renewing it (killed?); its state "
            "locks, if any, are named by terraform when a stack waits for them",
            file=sys.stderr,
            flush=True,
        )
    held = HeldGuard(environment, info)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew,
        args=(dynamodb, table, held, ttl_seconds, renew_seconds, stop),
        name=f"guard-{environment}",
        daemon=True,
    )
    renewer.start()
    try:
        yield held
    finally:
        stop.set()
        renewer.join(timeout=30)
        _release(dynamodb, table, held)


def _acquire(
    dynamodb: Any,
    table: str,
    environment: str,
    info: dict[str, str],
    timeout_seconds: float,
    poll_seconds: float,
    local: bool,
    ttl_seconds: float,
) -> dict[str, str]:
    """Put the guard's item once no live run holds it; returns the holder it replaced."""
    lock_id = guard_id(environment)
    deadline = time.monotonic() + timeout_seconds
    announced = False
    while True:
        holder = read_guard(dynamodb, table, environment)
        try:
            dynamodb.put_item(
                TableName=table,
                Item=_item(lock_id, info, ttl_seconds),
                ConditionExpression="attribute_not_exists(LockID) OR Expires < :now",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
            return holder
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        # `holder` was read just before the attempt: it names who holds the guard now
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"environment {environment!r} is being changed by another run and the wait of "
                f"{timeout_seconds:.0f}s is over.\n"
                f"  held by: {_describe_holder(holder)}\n"
                "  If that run is still going, wait for it. If it was killed, its guard expires "
                "on its own once it is no longer renewed (the time above); to release it now: "
                f"nox -s unlock -- {environment} --guard {holder.get('ID', '<id>')}"
                + (" --local" if local else "")
            )
        if not announced:
            print(
                f"waiting for environment {environment!r}: held by {_describe_holder(holder)} "
                f"(up to {timeout_seconds:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        time.sleep(poll_seconds)


def _release(dynamodb: Any, table: str, held: HeldGuard) -> None:
    """Delete the guard's item, only while it is still this run's."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={"LockID": {"S": guard_id(held.environment)}},
            ConditionExpression="contains(Info, :id)",
            ExpressionAttributeValues={":id": {"S": held.info["ID"]}},
        )
    except (BotoCoreError, ClientError) as error:
        if not held.lost.is_set():  # else it was already reported, and is not ours
            print(f"warning: could not release the environment guard: {error}", file=sys.stderr)


def _renew(
    dynamodb: Any,
    table: str,
    held: HeldGuard,
    ttl_seconds: float,
    renew_seconds: float,
    stop: threading.Event,
) -> None:
    """Push the guard's expiry forward until `stop`; mark it lost when it may not be ours."""
    renewed = time.monotonic()
    while not stop.wait(renew_seconds):
        taken = False
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"LockID": {"S": guard_id(held.environment)}},
                UpdateExpression="SET Expires = :expires",
                ConditionExpression="contains(Info, :id)",
                ExpressionAttributeValues={
                    ":expires": {"N": str(int(time.time() + ttl_seconds))},
                    ":id": {"S": held.info["ID"]},
                },
            )
            renewed = time.monotonic()
            continue
        except ClientError as error:
            taken = error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            if taken:
                reason = "it was taken over after it expired, or released by `unlock`"
            else:
                reason = str(error)
        except BotoCoreError as error:  # a network blip: the next renewal tries again
            reason = str(error)
        if stop.is_set():
            return
        if taken or time.monotonic() - renewed >= ttl_seconds:
            print(
                f"warning: the environment guard is no longer this run's ({reason}): the run "
                "stops before its next step",
                file=sys.stderr,
                flush=True,
            )
            held.lost.set()
            return
        print(f"warning: could not renew the environment guard: {reason}", file=sys.stderr)


def read_guard(dynamodb: Any, table: str, environment: str) -> dict[str, str]:
    item = dynamodb.get_item(
        TableName=table, Key={"LockID": {"S": guard_id(environment)}}, ConsistentRead=True
    ).get("Item")
    if not item:
        return {}
    try:
        holder: dict[str, str] = json.loads(item["Info"]["S"])
    except (KeyError, ValueError):
        return {"ID": "unreadable"}
    if "Expires" in item:
        expires = datetime.fromtimestamp(int(item["Expires"]["N"]), UTC)
        holder["Expires"] = expires.isoformat(timespec="seconds")
    return holder


def release_guard(dynamodb: Any, table: str, environment: str, holder_id: str) -> bool:
    """Force-release the guard when its holder id is exactly `holder_id` (else False)."""
    item = dynamodb.get_item(
        TableName=table, Key={"LockID": {"S": guard_id(environment)}}, ConsistentRead=True
    ).get("Item")
    if not item:
        return False
    info = item.get("Info", {}).get("S", "")
    try:
        held_by = json.loads(info).get("ID")
    except (ValueError, AttributeError):
        held_by = None
    if held_by != holder_id:
        return False
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={"LockID": {"S": guard_id(environment)}},
            # Only this very record: not a newer guard taken since it was read.
            ConditionExpression="Info = :info",
            ExpressionAttributeValues={":info": {"S": info}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _expired(holder: dict[str, str]) -> bool:
    expires = holder.get("Expires")
    return (
        expires is not None
        and bool(expires)
        and datetime.fromisoformat(expires) < datetime.now(UTC)
    )


def _describe_holder(holder: dict[str, str]) -> str:
    if not holder:
        return "(released meanwhile)"
    text = (
        f"{holder.get('Operation', '?')} by {holder.get('Who', '?')} "
        f"(pid {holder.get('PID', '?')}) "
        f"since {holder.get('Created', '?')}, guard id {holder.get('ID', '?')}"
    )
    if holder.get("Run"):
        text += f", CI run {holder['Run']}"
    if holder.get("Expires"):
        text += f", expires {holder['Expires']} unless renewed"
    return text
