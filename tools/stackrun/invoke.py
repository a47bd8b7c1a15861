"""Functions a stack invokes after each apply (`[lambdas] invoke_after_apply = ["migrations"]`).

The deployed function is invoked through its alias, synchronously, with an empty event: in AWS
with Lambda's Invoke API (the function runs inside the VPC, where the database is); with
--local through the local runtime (the deployed zip, run by awslambdaric, as `serve` runs it).
A function error stops the deploy at this stack, naming the function and its error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from botocore.config import Config

from stackrun.config import Stack
from stackrun.errors import StackFailed, StackrunError
from stackrun.interrupts import Interrupted
from stackrun.workspace import Workspace

INVOKE_TIMEOUT_SECONDS = 900  # Lambda's longest function timeout


def after_apply(
    workspace: Workspace,
    stack: Stack,
    outputs: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> None:
    """Invoke each function of `stack.invoke_after_apply` whose published version changed
    with this apply (or that is new); raise StackFailed on an error."""
    functions = (outputs.get("functions") or {}).get("value") or {}
    before = ((previous or {}).get("functions") or {}).get("value") or {}
    for key in stack.invoke_after_apply:
        alias_arn = (functions.get(key) or {}).get("alias_arn")
        step = f"invoke {key}"
        version = (functions.get(key) or {}).get("version")
        if version is not None and version == (before.get(key) or {}).get("version"):
            _say(workspace, f"    {stack.name}: {key} still at version {version}: not invoked")
            continue
        if not alias_arn:
            raise StackFailed(
                stack.name,
                step,
                f"    the stack's `functions` output has no alias_arn for {key!r}",
                None,
                terraform=False,
            )
        _say(workspace, f"    {stack.name}: invoking {key} ({alias_arn})")
        try:
            if workspace.target.local:
                payload, error, tail = _invoke_local(workspace, alias_arn)
            else:
                payload, error, tail = _invoke_aws(workspace, alias_arn)
        except Interrupted:
            raise
        except StackrunError as failure:  # the local runtime could not be set up
            raise StackFailed(stack.name, step, f"    {failure}", None, terraform=False) from None
        if error is not None:
            detail = f"    {error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
            if tail:
                detail += "\n    last log lines:\n" + "\n".join(f"      {line}" for line in tail)
            raise StackFailed(stack.name, step, detail, None, terraform=False)
        _say(workspace, f"    {stack.name}: {key} answered {_short(payload)}")


def _invoke_aws(workspace: Workspace, alias_arn: str) -> tuple[bytes, dict | None, list[str]]:
    environment = workspace.environment
    session = workspace.target.session(environment)
    client = session.client(
        "lambda",
        config=Config(read_timeout=INVOKE_TIMEOUT_SECONDS, retries={"max_attempts": 1}),
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


def _invoke_local(workspace: Workspace, alias_arn: str) -> tuple[bytes, dict | None, list[str]]:
    from stackrun.localapi.functions import resolve
    from stackrun.localapi.serve import make_context

    context = make_context(workspace)
    try:
        outcome = context.invoke(resolve(context.lambda_, alias_arn), {})
    finally:
        context.close()
    return outcome.payload or b"", outcome.error, []


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
