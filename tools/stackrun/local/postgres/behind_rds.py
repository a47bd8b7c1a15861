"""After a database stack (`[database]` in stack.toml), with --local: the local data plane.

The emulated RDS instance is only an API record. A real PostgreSQL server (from the machine's
binaries, on loopback, data under .stackrun/local/<env>/postgres/) is started behind it, holding
the database with the name, master user and password that the emulated RDS and Secrets Manager
report, and serving TLS with a certificate of the emulator's CA. The deployed functions (the
migrations function first) reach it through the local runtime, which maps the emulated address
to this server (database.json).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.config import Stack
from stackrun.errors import StackFailed
from stackrun.local import postgres
from stackrun.local.emulator.ca import certificate_paths
from stackrun.paths import postgres_data_dir
from stackrun.terraform.workspace import Workspace


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where clients of the environment's database connect (the local server, with --local)."""

    host: str
    port: int
    db_name: str
    secret_arn: str


def local_data_dir(workspace: Workspace) -> Path:
    return postgres_data_dir(workspace.cache_dir)


# Where the emulated instance's clients really connect (in the environment's cache directory;
# read by the local runtime in `serve` and in the emulator's Lambda Invoke).
ENDPOINT_FILE = "database.json"


def endpoint_file(workspace: Workspace) -> Path:
    return workspace.cache_dir / ENDPOINT_FILE


def server_tls(workspace: Workspace) -> postgres.ServerTLS:
    """The emulated RDS instance's TLS: the emulator's own loopback certificate, issued by the
    emulator's CA (as RDS's certificate is issued by the RDS CA), which clients verify."""
    assert workspace.target.ca_bundle is not None, "the local target has the emulator's CA"
    paths = certificate_paths(workspace.target.ca_bundle.parent)
    return postgres.ServerTLS(cert=paths.server_cert, key=paths.server_key)


@contextmanager
def server_started_meanwhile(workspace: Workspace, stack: Stack) -> Iterator[None]:
    """With --local, start the stack's local PostgreSQL server while the block (its apply) runs.

    Creating and starting a cluster takes seconds and needs nothing from the apply, which for
    a database stack mostly waits on the provider's polling. Failures are left to after_apply,
    which ensures the server again and reports them with the stack's name.
    """
    if not stack.database or not workspace.target.local:
        yield
        return

    def start() -> None:
        with suppress(Exception):
            postgres.ensure_server(local_data_dir(workspace), tls=server_tls(workspace))

    thread = threading.Thread(target=start, name=f"postgres-{stack.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def after_apply(
    workspace: Workspace, stack: Stack, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    """With --local, make sure the local PostgreSQL behind the stack's emulated instance runs
    and holds its database; raise StackFailed naming the step on failure.

    The schema is not this step's: the migrations function (`[lambdas] invoke_on_deploy` of a
    later stack) applies it on every deploy, in AWS and locally alike.
    """
    assert stack.database
    if workspace.target.local:
        _local_data_plane(workspace, stack, {name: item["value"] for name, item in outputs.items()})


def _local_data_plane(
    workspace: Workspace, stack: Stack, values: Mapping[str, Any]
) -> DatabaseEndpoint:
    environment = workspace.environment
    secrets = workspace.target.client(environment, "secretsmanager")
    secret = json.loads(
        secrets.get_secret_value(SecretId=values["master_user_secret_arn"])["SecretString"]
    )
    try:
        server = postgres.ensure_server(local_data_dir(workspace), tls=server_tls(workspace))
        postgres.ensure_database(server, values["db_name"], secret["username"], secret["password"])
    except postgres.LocalDatabaseError as error:
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
