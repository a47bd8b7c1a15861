"""Lambda's Invoke API in the emulator: the invoked version runs in the local runtime.

moto runs Invoke in Docker, which the machines this runs on lack. Patched here, the version
invoked (an alias is resolved to its version, by its routing weights, as Lambda does) runs as the
local API runs functions (stackrun.local.api): its deployed zip, its environment variables with
the environment's local PostgreSQL behind the emulated RDS address, its execution role's
credentials, its log group. So a client of the emulator (stackrun's deploy, the AWS SDK, the
AWS CLI) invokes functions exactly as it would in AWS, through the same code path, which also
publishes each invocation's metrics to the emulated CloudWatch (api/metrics.py).

What an invocation needs is the emulator's own, as in Lambda, whichever clone deployed or
invokes: the extracted code of each version (paths.emulated_lambda_dir) and where the PostgreSQL
behind the account's RDS instance listens (database.json beside its data, behind_rds.py). Only
the local runtimes (one venv per python3.X, made once per machine) come from the clients: a
registry beside the emulator's CA certificate (what every client of this emulator knows, and
trusts), written by stackrun for each local workspace (`register`).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.paths import emulated_lambda_dir, emulated_rds_endpoint_file, emulator_state_of

REGISTRY_DIR = "targets"
# The qualifier the client invoked (an alias, a version, or None), recorded by the patched
# Invoke handler (LambdaResponse.invoke, server.py): moto hands `_invoke_lambda` only the
# version it resolved.
invoked_qualifier: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stackrun_invoked_qualifier", default=None
)
# What a failure of the local runtime itself (not of the function) reports as errorType.
RUNTIME_ERROR_TYPE = "Stackrun.LocalRuntimeError"


def registry_file(tls_dir: Path, account_id: str) -> Path:
    return tls_dir / REGISTRY_DIR / f"{account_id}.json"


def register(ca_bundle: Path, account_id: str, runtimes_dir: Path) -> None:
    """Tell the emulator whose CA is `ca_bundle` where the local runtimes of the clients of
    `account_id` are (idempotent)."""
    path = registry_file(ca_bundle.parent, account_id)
    text = json.dumps({"runtimes_dir": str(runtimes_dir)}) + "\n"
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(text)
    partial.replace(path)


@dataclass(frozen=True)
class EmulatorEndpoint:
    """This emulator as its own clients reach it."""

    tls_dir: Path  # its CA and server certificate, and the registry
    endpoint: str
    ca_bundle: Path


class LocalInvoker:
    """One warm local context (execution environments, log shipping) per account and region."""

    def __init__(self, emulator: EmulatorEndpoint) -> None:
        self.emulator = emulator
        self.lock = threading.Lock()
        self.contexts: dict[tuple[str, str, str], Any] = {}

    def invoke(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """moto's `LambdaFunction._invoke_lambda` contract: (payload, errored, log tail)."""
        from stackrun.errors import StackrunError
        from stackrun.local.api.functions import resolve

        try:
            context = self._context(function.account_id, function.region, function.role)
            version = resolve(context.lambda_, _invoked_reference(function))
            outcome = context.invoke(version, _event(event))
        except (StackrunError, OSError) as error:
            document = {"errorType": RUNTIME_ERROR_TYPE, "errorMessage": str(error)}
            return json.dumps(document), True, ""
        if outcome.error is not None:
            return json.dumps(outcome.error), True, ""
        return (outcome.payload or b"null").decode("utf-8", "replace"), False, ""

    def close(self) -> None:
        with self.lock:
            for context in self.contexts.values():
                context.close()
            self.contexts.clear()

    def _context(self, account_id: str, region: str, role_arn: str) -> Any:
        from stackrun.errors import StackrunError

        path = registry_file(self.emulator.tls_dir, account_id)
        try:
            registered = json.loads(path.read_text())
        except (OSError, ValueError):
            raise StackrunError(
                f"no local environment is registered for account {account_id} ({path}): "
                "deploy it with `stackrun deploy <env> --local` first"
            ) from None
        runtimes_dir = Path(registered["runtimes_dir"])
        key = (account_id, region, str(runtimes_dir))
        with self.lock:
            context = self.contexts.get(key)
            if context is None:
                context = self._new_context(account_id, region, role_arn, runtimes_dir)
                self.contexts[key] = context
        # The local database may have been (re)started since: read where it is on each call.
        context.database = _database(self._state, account_id)
        return context

    @property
    def _state(self) -> Path:
        return emulator_state_of(self.emulator.tls_dir)

    def _new_context(self, account_id: str, region: str, role_arn: str, runtimes_dir: Path) -> Any:
        import boto3

        from stackrun.aws.target import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY
        from stackrun.local.api.http_server import LocalContext

        client_args: dict[str, Any] = {
            "endpoint_url": self.emulator.endpoint,
            "verify": str(self.emulator.ca_bundle),
        }
        base = boto3.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY,
            aws_secret_access_key=LOCAL_SECRET_KEY,
            region_name=region,
        )
        # Lambda's own identity in the account: the emulated account's credentials come from
        # assuming a role of it (the function's execution role, which exists there).
        credentials = base.client("sts", **client_args).assume_role(
            RoleArn=role_arn, RoleSessionName="stackrun-lambda-service"
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        log = logging_sink()
        return LocalContext(
            environment_name=account_id,
            account_id=account_id,
            region=region,
            endpoint=self.emulator.endpoint,
            ca_bundle=self.emulator.ca_bundle,
            session=session,
            client_args=client_args,
            cache_dir=emulated_lambda_dir(self._state, account_id),
            runtimes_dir=runtimes_dir,
            database=_database(self._state, account_id),
            console=log,
        )


def logging_sink() -> Any:
    """The emulator's log (its stdout): what the local runtime prints about functions."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    return say


def _database(emulator_state: Path, account_id: str) -> dict[str, Any] | None:
    try:
        endpoint = emulated_rds_endpoint_file(emulator_state, account_id)
        database: dict[str, Any] = json.loads(endpoint.read_text())
        return database
    except (OSError, ValueError):
        return None


def _invoked_reference(function: Any) -> str:
    """The ARN the client invoked: an alias ARN is resolved again, by its routing weights, as
    Lambda does per invocation (moto resolves aliases to their primary version only); an
    unqualified invocation stays unqualified ($LATEST), so its metrics are the function's."""
    unqualified = _unqualified(function.function_arn)
    qualifier = invoked_qualifier.get()
    if qualifier is None and function.version != "$LATEST":
        qualifier = function.version  # not invoked through the patched API (moto in-process)
    return f"{unqualified}:{qualifier}" if qualifier else unqualified


def _unqualified(arn: str) -> str:
    parts = arn.split(":")
    return ":".join(parts[:7])


def _event(event: Any) -> dict[str, Any]:
    if isinstance(event, str | bytes):
        document: dict[str, Any] = json.loads(event or "{}")
        return document
    return event if event is not None else {}
