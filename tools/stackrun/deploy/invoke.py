"""Functions a stack invokes on every deploy (`[lambdas] invoke_on_deploy = ["migrations"]`).

After the stack is applied, or found unchanged, the deployed function is invoked through its
alias, synchronously, with an empty event, through Lambda's Invoke API on both targets: in AWS
the function runs inside the VPC, where the database is; in the emulator it runs in the local
runtime (the deployed zip, run by awslambdaric, as `serve` runs it; emulator/invoke.py). A
function error stops the deploy at this stack, naming the function and its error; stacks that
wait for it (`after`) do not start, and the next deploy invokes it again.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stackrun import terminal
from stackrun.config import Stack
from stackrun.deploy.interrupts import Interrupted
from stackrun.errors import StackFailed
from stackrun.terraform.workspace import Workspace

INVOKE_TIMEOUT_SECONDS = 900  # Lambda's longest function timeout


def on_deploy(workspace: Workspace, stack: Stack, outputs: Mapping[str, Any]) -> None:
    """Invoke each function of `stack.invoke_on_deploy` through its alias; raise StackFailed
    on an error (the deploy stops at this stack, and the next deploy invokes it again)."""
    functions = (outputs.get("functions") or {}).get("value") or {}
    for key in stack.invoke_on_deploy:
        function = functions.get(key) or {}
        alias_arn = function.get("alias_arn")
        step = f"invoke {key}"
        if not alias_arn:
            raise StackFailed(
                stack.name,
                step,
                f"    the stack's `functions` output has no alias_arn for {key!r}",
                None,
                terraform=False,
            )
        terminal.current().phase(stack.name, step)
        _say(workspace, f"    {stack.name}: invoking {key} ({alias_arn})")
        started = time.monotonic()
        try:
            payload, error, tail = _invoke(workspace, alias_arn)
        except Interrupted:
            raise
        except (BotoCoreError, ClientError) as failure:
            raise StackFailed(stack.name, step, f"    {failure}", None, terraform=False) from None
        if error is not None:
            detail = f"    {error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
            if tail:
                detail += "\n    last log lines:\n" + "\n".join(f"      {line}" for line in tail)
            raise StackFailed(stack.name, step, detail, None, terraform=False)
        seconds = time.monotonic() - started
        _say(
            workspace,
            f"    {stack.name}: {key} (version {function.get('version')}) answered in "
            f"{seconds:.1f}s: {_short(payload)}",
        )


def _invoke(workspace: Workspace, alias_arn: str) -> tuple[bytes, dict[str, Any] | None, list[str]]:
    # no retry: a retried Invoke would run the function twice
    client = workspace.target.client(
        workspace.environment,
        "lambda",
        read_timeout=INVOKE_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1},
    )
    reply = client.invoke(
        FunctionName=alias_arn, InvocationType="RequestResponse", LogType="Tail", Payload=b"{}"
    )
    payload = reply["Payload"].read()
    tail = base64.b64decode(reply.get("LogResult") or b"").decode("utf-8", "replace")
    lines = tail.strip().splitlines()[-15:]
    if reply.get("FunctionError"):
        return payload, _error_document(payload), lines
    return payload, None, lines


def _error_document(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        return {"errorMessage": payload.decode("utf-8", "replace")[:500]}
    return document if isinstance(document, dict) else {"errorMessage": str(document)}


def _short(payload: bytes) -> str:
    text = payload.decode("utf-8", "replace")
    return text if len(text) <= 300 else text[:300] + "..."


def _say(workspace: Workspace, line: str) -> None:
    print(line, file=workspace.console, flush=True)
