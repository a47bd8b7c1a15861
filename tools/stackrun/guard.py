"""The environment guard: one deploy or destroy of an environment at a time.

Terraform's own locks protect one state at a time; two deploys of one environment could still
interleave stacks (A applies 010, B applies 010 then 020 with outputs A is about to change).
The guard is an item in the environment's DynamoDB lock table, written with a conditional put,
so it works for every user and CI runner of the account, not just this machine.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from stackrun.errors import LockHeld

GUARD_PREFIX = "stackrun-guard"


def guard_id(environment: str) -> str:
    return f"{GUARD_PREFIX}/{environment}"


def _holder_info(operation: str) -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "ID": str(uuid.uuid4()),
        "Operation": operation,
        "Who": f"{user}@{socket.gethostname()}",
        "PID": str(os.getpid()),
        "Created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@contextmanager
def environment_guard(
    dynamodb: Any,
    table: str,
    environment: str,
    operation: str,
    timeout_seconds: float,
    poll_seconds: float = 2.0,
    local: bool = False,
) -> Iterator[dict[str, str]]:
    """Hold the guard of `environment` for the duration of the block.

    Waits up to `timeout_seconds` for another holder to finish, then raises LockHeld naming
    the holder and how to release a guard left by a killed run (`local`: the command to do it
    carries --local).
    """
    info = _holder_info(operation)
    lock_id = guard_id(environment)
    deadline = time.monotonic() + timeout_seconds
    announced = False
    while True:
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}},
                ConditionExpression="attribute_not_exists(LockID)",
            )
            break
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        holder = read_guard(dynamodb, table, environment)
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"environment {environment!r} is being changed by another run and the wait of "
                f"{timeout_seconds:.0f}s is over.\n"
                f"  held by: {_describe_holder(holder)}\n"
                "  If that run is still going, wait for it. If it was killed, release the guard "
                f"with: nox -s unlock -- {environment} --guard {holder.get('ID', '<id>')}"
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
    try:
        yield info
    finally:
        try:
            dynamodb.delete_item(
                TableName=table,
                Key={"LockID": {"S": lock_id}},
                ConditionExpression="contains(Info, :id)",
                ExpressionAttributeValues={":id": {"S": info["ID"]}},
            )
        except ClientError as error:
            print(f"warning: could not release the environment guard: {error}", file=sys.stderr)


def read_guard(dynamodb: Any, table: str, environment: str) -> dict[str, str]:
    item = dynamodb.get_item(
        TableName=table, Key={"LockID": {"S": guard_id(environment)}}, ConsistentRead=True
    ).get("Item")
    if not item:
        return {}
    try:
        return json.loads(item["Info"]["S"])
    except (KeyError, ValueError):
        return {"ID": "unreadable"}


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


def _describe_holder(holder: dict[str, str]) -> str:
    if not holder:
        return "(released meanwhile)"
    return (
        f"{holder.get('Operation', '?')} by {holder.get('Who', '?')} "
        f"(pid {holder.get('PID', '?')}) "
        f"since {holder.get('Created', '?')}, guard id {holder.get('ID', '?')}"
    )
