"""Release locks left behind by killed runs: a stack's terraform state lock, or the env guard.

Both live in the environment's lock table. A state lock is released with terraform's own
`force-unlock` (in the stack's working directory), and only when the id given matches the
lock that is held: an id copied from an old error never releases somebody else's new lock.
When stackrun itself kills terraform (a third signal), it releases that terraform's lock at
once (`release_after_kill`): the run holds the environment guard, so the lock is its own.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stackrun.aws.bootstrap import BOOTSTRAP_STACK, bootstrap_stack
from stackrun.config import Environment, Stack
from stackrun.deploy.guard import who
from stackrun.errors import StackrunError
from stackrun.terraform.workspace import Workspace


def check_stack_name(environment: Environment, name: str) -> None:
    """Raise, listing the stacks, unless `name` is a stack of the environment (or the
    state backend's own, 000_bootstrap)."""
    known = [BOOTSTRAP_STACK, *(stack.name for stack in environment.stacks)]
    if name not in known:
        raise StackrunError(f"no stack {name!r} in {environment.name} (stacks: {', '.join(known)})")


def stack_named(workspace: Workspace, name: str) -> Stack:
    """The stack `name` of the workspace's environment, or the bootstrap's; else an error."""
    check_stack_name(workspace.environment, name)
    if name == BOOTSTRAP_STACK:
        return bootstrap_stack(workspace)
    return workspace.environment.stack(name)


def _lock_key(workspace: Workspace, stack_name: str) -> dict[str, Any]:
    return {"LockID": {"S": workspace.environment.state_lock_id(stack_name)}}


def _lock_item(workspace: Workspace, stack_name: str) -> dict[str, Any] | None:
    environment = workspace.environment
    dynamodb = workspace.target.client(environment, "dynamodb")
    item: dict[str, Any] | None = dynamodb.get_item(
        TableName=environment.backend.lock_table,
        Key=_lock_key(workspace, stack_name),
        ConsistentRead=True,
    ).get("Item")
    return item


def state_lock_info(workspace: Workspace, stack: Stack) -> dict[str, Any] | None:
    """The lock terraform holds on the stack's state (its Lock Info), or None."""
    item = _lock_item(workspace, stack.name)
    if not item:
        return None
    try:
        info: dict[str, Any] = json.loads(item.get("Info", {}).get("S") or "{}")
        return info
    except ValueError:
        return {"ID": "?", "Info": item.get("Info", {}).get("S")}


def _taken_by_us(info: dict[str, Any], since: float) -> bool:
    """Whether terraform's lock info names this user@host and a time after `since`."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", str(info.get("Created", "")))
    if info.get("Who") != who() or not found:
        return False
    created = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC).timestamp()
    return created >= since - 1  # Created is truncated to the second here


def release_after_kill(workspace: Workspace, stack_name: str, since: float) -> None:
    """Release the state lock of `stack_name` held by a terraform stackrun just killed.

    terraform locks a state twice (render.render_backend): an item in the lock table and a
    `<key>.tflock` object beside the state. Each is deleted only when its lock info names this
    user and host (terraform's `Who`) and was created after that terraform started at `since`:
    the run holds the environment guard, so such a lock is the killed terraform's. Never
    raises: it runs while stackrun is stopping; a lock it does not release is named in a
    warning and left for `unlock`.
    """
    released: list[str] = []
    foreign: list[dict[str, Any]] = []
    try:
        _release_ours(workspace, stack_name, since, released, foreign)
    except (BotoCoreError, ClientError, ValueError) as error:
        if not (
            isinstance(error, ClientError)
            and error.response["Error"]["Code"]
            in (
                "ResourceNotFoundException",  # no lock table yet: the backend's own first apply
                "ConditionalCheckFailedException",  # released meanwhile
            )
        ):
            print(
                f"warning: {stack_name}: could not release the killed terraform's state lock "
                f"({error}); `nox -s unlock` releases it",
                file=workspace.console,
                flush=True,
            )
    _report_released(workspace, stack_name, released, foreign)


@dataclass(frozen=True)
class _HeldLock:
    """One of the two locks terraform takes on a state: its lock info, where, how to delete."""

    holder: dict[str, Any]
    where: str
    delete: Callable[[], object]


def _release_ours(
    workspace: Workspace,
    stack_name: str,
    since: float,
    released: list[str],
    foreign: list[dict[str, Any]],
) -> None:
    """Delete each lock of the stack that the killed terraform took; collect the others."""
    for find in (_table_lock, _lockfile):
        lock = find(workspace, stack_name)
        if lock is None:
            continue
        if _taken_by_us(lock.holder, since):
            lock.delete()
            released.append(lock.where)
        else:
            foreign.append(lock.holder)


def _table_lock(workspace: Workspace, stack_name: str) -> _HeldLock | None:
    """The lock table's item of the stack, deleted only while it holds the same lock info."""
    environment = workspace.environment
    table = environment.backend.lock_table
    info = (_lock_item(workspace, stack_name) or {}).get("Info", {}).get("S", "")
    if not info:
        return None
    delete = functools.partial(
        workspace.target.client(environment, "dynamodb").delete_item,
        TableName=table,
        Key=_lock_key(workspace, stack_name),
        ConditionExpression="Info = :info",
        ExpressionAttributeValues={":info": {"S": info}},
    )
    return _HeldLock(json.loads(info), f"dynamodb:{table}", delete)


def _lockfile(workspace: Workspace, stack_name: str) -> _HeldLock | None:
    """The `<key>.tflock` object beside the stack's state."""
    environment = workspace.environment
    bucket = environment.backend.bucket
    key = environment.state_lockfile_key(stack_name)
    s3 = workspace.target.client(environment, "s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("NoSuchKey", "404", "NoSuchBucket"):
            raise
        return None
    delete = functools.partial(s3.delete_object, Bucket=bucket, Key=key)
    return _HeldLock(json.loads(body), f"s3://{bucket}/{key}", delete)


def _report_released(
    workspace: Workspace, stack_name: str, released: list[str], foreign: list[dict[str, Any]]
) -> None:
    for info in foreign:
        print(
            f"warning: {stack_name}: the state lock {info.get('ID', '?')} is held by "
            f"{info.get('Who', '?')} since {info.get('Created', '?')}, not by the terraform "
            "stackrun killed: left in place",
            file=workspace.console,
            flush=True,
        )
    if released:
        print(
            f"{stack_name}: released the state lock of the killed terraform "
            f"({', '.join(released)})",
            file=workspace.console,
            flush=True,
        )


def force_unlock(
    workspace: Workspace, stack_name: str, lock_id: str, confirm: Callable[[str], bool]
) -> bool:
    """Release the state lock `lock_id` of a stack (after `confirm`); True when released."""
    stack = stack_named(workspace, stack_name)
    info = state_lock_info(workspace, stack)
    if info is None:
        print(f"{stack.name}: no state lock is held", file=workspace.console)
        return False
    description = ", ".join(
        f"{key} {info[key]}" for key in ("ID", "Who", "Operation", "Created") if info.get(key)
    )
    print(f"{stack.name}: state locked by {description}", file=workspace.console, flush=True)
    if info.get("ID") != lock_id:
        raise StackrunError(
            f"{stack.name}: the held lock's ID is {info.get('ID')!r}, not {lock_id!r}; nothing "
            "released (pass the ID shown above if that run is really gone)"
        )
    if not confirm(f"release the state lock of {stack.name}? type 'yes': "):
        print("left in place", file=workspace.console)
        return False
    workspace.render(stack)
    tf = workspace.terraform(stack.name)
    init = workspace.ensure_init(stack, tf)
    if init is not None and init.returncode != 0:
        raise StackrunError(f"{stack.name}: terraform init failed:\n{init.error_summary}")
    result = tf.run("force-unlock", "-force", "-no-color", lock_id)
    if result.returncode != 0:
        raise StackrunError(f"{stack.name}: terraform force-unlock failed:\n{result.error_summary}")
    print(f"{stack.name}: state lock {lock_id} released", file=workspace.console)
    return True
