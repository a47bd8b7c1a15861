"""After a database stack (`[database]` in stack.toml): the local data plane, then migrations.

With --local, the emulated RDS instance is only an API record. A real PostgreSQL server (from
the machine's binaries, on loopback, data under .stackrun/local/<env>/postgres/) is started
behind it, holding the database with the name, master user and password that the emulated RDS
and Secrets Manager report. Then the migrations package runs against it, exactly as the
deployed migration function does in AWS: it reads the master secret from Secrets Manager at run
time, so the password never passes through stackrun's arguments, files or output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun import localdb
from stackrun.build import source_roots
from stackrun.config import Stack
from stackrun.emulator.ca import certificate_paths
from stackrun.errors import StackFailed
from stackrun.terraform import extract_errors
from stackrun.workspace import Workspace

MIGRATIONS_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where clients of the environment's database connect (the local server, with --local)."""

    host: str
    port: int
    db_name: str
    secret_arn: str


def local_data_dir(workspace: Workspace) -> Path:
    return workspace.cache_dir / "postgres"


def endpoint_file(workspace: Workspace) -> Path:
    return workspace.cache_dir / "database.json"


def server_tls(workspace: Workspace) -> localdb.ServerTLS:
    """The emulated RDS instance's TLS: the emulator's own loopback certificate, issued by the
    emulator's CA (as RDS's certificate is issued by the RDS CA), which clients verify."""
    assert workspace.target.ca_bundle is not None, "the local target has the emulator's CA"
    paths = certificate_paths(workspace.target.ca_bundle.parent)
    return localdb.ServerTLS(cert=paths.server_cert, key=paths.server_key)


@contextmanager
def server_started_meanwhile(workspace: Workspace, stack: Stack) -> Iterator[None]:
    """With --local, start the stack's local PostgreSQL server while the block (its apply) runs.

    Creating and starting a cluster takes seconds and needs nothing from the apply, which for
    a database stack mostly waits on the provider's polling. Failures are left to after_apply,
    which ensures the server again and reports them with the stack's name.
    """
    if stack.database is None or not workspace.target.local:
        yield
        return

    def start() -> None:
        with suppress(Exception):
            localdb.ensure_server(local_data_dir(workspace), tls=server_tls(workspace))

    thread = threading.Thread(target=start, name=f"postgres-{stack.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def after_apply(
    workspace: Workspace,
    stack: Stack,
    outputs: Mapping[str, Mapping[str, Any]],
    skipped: bool = False,
) -> None:
    """Run the database steps of `stack`; raise StackFailed naming the step on failure.

    For a stack skipped by its fingerprint (which covers the migrations package), the local
    server is only made sure to run: the migrations ran after its last apply.
    """
    assert stack.database is not None
    values = {name: item["value"] for name, item in outputs.items()}
    console = workspace.console
    if not workspace.target.local:
        # In AWS the database is reachable only inside the VPC: the deployed migration function
        # runs the migrations there, invoked by the stack that deploys it
        # (`[lambdas] invoke_after_apply`). Nothing runs from here.
        invokers = [
            other.name
            for other in workspace.environment.stacks
            if other.invoke_after_apply and other.number > stack.number
        ]
        where = ", ".join(invokers) if invokers else "no stack ([lambdas] invoke_after_apply)"
        print(
            f"    {stack.name}: migrations run inside the VPC, by the migration function "
            f"invoked after {where}",
            file=console,
            flush=True,
        )
        return
    endpoint = _local_data_plane(workspace, stack, values)
    if skipped:
        return
    print(
        f"    {stack.name}: running migrations of {stack.database.migrations.name}",
        file=console,
        flush=True,
    )
    applied = run_migrations(workspace, stack, endpoint)
    summary = ", ".join(applied) if applied else "none (schema up to date)"
    print(f"    {stack.name}: migrations applied: {summary}", file=console, flush=True)


def _local_data_plane(
    workspace: Workspace, stack: Stack, values: Mapping[str, Any]
) -> DatabaseEndpoint:
    environment = workspace.environment
    secrets = workspace.target.client(environment, "secretsmanager")
    secret = json.loads(
        secrets.get_secret_value(SecretId=values["master_user_secret_arn"])["SecretString"]
    )
    try:
        server = localdb.ensure_server(local_data_dir(workspace), tls=server_tls(workspace))
        localdb.ensure_database(server, values["db_name"], secret["username"], secret["password"])
    except localdb.LocalDatabaseError as error:
        raise StackFailed(
            stack.name, "local database", f"    {error}", None, terraform=False
        ) from error
    endpoint = DatabaseEndpoint(
        host=server.host,
        port=server.port,
        db_name=values["db_name"],
        secret_arn=values["master_user_secret_arn"],
    )
    # Where the emulated instance's clients really connect (no secret in here).
    endpoint_file(workspace).write_text(
        json.dumps(
            {
                "emulated_address": values["address"],
                "emulated_port": values["port"],
                "host": endpoint.host,
                "port": endpoint.port,
                "db_name": endpoint.db_name,
                "secret_arn": endpoint.secret_arn,
                # the CA of the certificate the server serves (clients verify-full against it)
                "ca_bundle": str(workspace.target.ca_bundle),
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"    {stack.name}: local PostgreSQL for {values['address']} on "
        f"{server.host}:{server.port}, database {values['db_name']!r}, "
        f"user {secret['username']!r} (password from Secrets Manager)",
        file=workspace.console,
        flush=True,
    )
    return endpoint


def run_migrations(workspace: Workspace, stack: Stack, endpoint: DatabaseEndpoint) -> list[str]:
    """Run the migrations package as a process, as the migration function runs in AWS."""
    assert stack.database is not None
    environment = workspace.environment
    credentials = workspace.target.session(environment).get_credentials().get_frozen_credentials()
    env = workspace.target.subprocess_env()
    env.update(
        PYTHONPATH=os.pathsep.join(
            [str(path) for path in source_roots(stack.database.migrations)]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        ),
        AWS_ACCESS_KEY_ID=credentials.access_key,
        AWS_SECRET_ACCESS_KEY=credentials.secret_key,
        AWS_SESSION_TOKEN=credentials.token or "",
        AWS_DEFAULT_REGION=environment.region,
        AWS_REGION=environment.region,
        DB_HOST=endpoint.host,
        DB_PORT=str(endpoint.port),
        DB_NAME=endpoint.db_name,
        DB_SECRET_ARN=endpoint.secret_arn,
        # verify-full, as the deployed function: the local server's certificate is issued by the
        # emulator's CA (server_tls), as RDS's by the RDS CA shipped in the function code.
        DB_SSLMODE="verify-full",
        DB_CA_BUNDLE=str(workspace.target.ca_bundle),
        POWERTOOLS_SERVICE_NAME="fleet-migrations",
    )
    if workspace.target.local:
        env["AWS_ENDPOINT_URL"] = str(workspace.target.endpoint)
    log_file = workspace.log_file(stack.name)
    result = subprocess.run(
        [sys.executable, "-m", stack.database.module],
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATIONS_TIMEOUT_SECONDS,
        check=False,
    )
    with log_file.open("a", encoding="utf-8") as log:
        log.write(f"\n$ python -m {stack.database.module}\n{result.stderr}{result.stdout}")
        log.write(f"[exit {result.returncode}]\n")
    if result.returncode != 0:
        detail = _failure_detail(result.stdout, result.stderr)
        raise StackFailed(stack.name, "migrations", detail, log_file, terraform=False)
    document = _last_json(result.stdout)
    return list(document.get("applied", []))


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _failure_detail(stdout: str, stderr: str) -> str:
    # The migrations module ends a failed run with one plain `error: ...` line on stderr. Its
    # JSON log lines say what it was doing, not what went wrong, so without that line (a crash)
    # the last lines of its output are shown, traceback included.
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if errors:
        return f"    {errors[-1]}"
    return extract_errors(stderr or stdout)
