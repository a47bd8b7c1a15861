"""Release locks left behind by killed runs: a stack's terraform state lock, or the env guard.

Both live in the environment's lock table. A state lock is released with terraform's own
`force-unlock` (in the stack's working directory), and only when the id given matches the
lock that is held: an id copied from an old error never releases somebody else's new lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stackrun.bootstrap import BOOTSTRAP_STACK, bootstrap_stack
from stackrun.config import Stack
from stackrun.errors import StackrunError
from stackrun.workspace import Workspace


def _stack(workspace: Workspace, name: str) -> Stack:
    if name == BOOTSTRAP_STACK:
        return bootstrap_stack(workspace)
    try:
        return workspace.environment.stack(name)
    except KeyError:
        known = ", ".join(stack.name for stack in workspace.environment.stacks)
        raise StackrunError(
            f"no stack {name!r} in {workspace.environment.name} (stacks: {known})"
        ) from None


def state_lock_info(workspace: Workspace, stack: Stack) -> dict[str, Any] | None:
    """The lock terraform holds on the stack's state (its Lock Info), or None."""
    environment = workspace.environment
    backend = environment.backend
    dynamodb = workspace.target.client(environment, "dynamodb")
    lock_key = f"{backend.bucket}/{backend.state_key(environment.name, stack.name)}"
    item = dynamodb.get_item(
        TableName=backend.lock_table, Key={"LockID": {"S": lock_key}}, ConsistentRead=True
    ).get("Item")
    if not item:
        return None
    try:
        return json.loads(item.get("Info", {}).get("S") or "{}")
    except ValueError:
        return {"ID": "?", "Info": item.get("Info", {}).get("S")}


def force_unlock(
    workspace: Workspace, stack_name: str, lock_id: str, confirm: Callable[[str], bool]
) -> bool:
    """Release the state lock `lock_id` of a stack (after `confirm`); True when released."""
    stack = _stack(workspace, stack_name)
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
