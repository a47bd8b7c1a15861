"""After a database stack (`[database]` in stack.toml), with --local: the local data plane.

The emulated RDS instance is only an API record. A real PostgreSQL server (from the machine's
binaries, on loopback) is started behind it, holding
the database with the name, master user and password that the emulated RDS and Secrets Manager
report, and serving TLS with a certificate of the emulator's CA. The deployed functions (the
migrations function first) reach it through the local runtime, which maps the emulated address
to this server (database.json).

The server's data belongs to the instance, so it lives with the emulator's state
(paths.emulated_rds_account_dir, by the instance's DbiResourceId), not with the clone that
deployed it: another clone (a CI runner, a colleague's checkout) deploying against the same
emulator finds the same database, as in AWS, and an instance deleted and created again starts
empty. The servers stop, and their data goes, with the emulator (emulator.process).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from stackrun.config import Stack
from stackrun.errors import StackFailed
from stackrun.local import postgres
from stackrun.local.emulator.ca import certificate_paths
from stackrun.paths import (
    emulated_rds_account_dir,
    emulated_rds_endpoint_file,
    emulator_state_of,
    postgres_data_dir,
)
from stackrun.terraform.workspace import Workspace


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where clients of the environment's database connect (the local server, with --local)."""

    host: str
    port: int
    db_name: str
    secret_arn: str


def local_data_dir(workspace: Workspace, address: str) -> Path:
    """The data folder of the server behind the emulated instance at ``address``."""
    rds = workspace.target.client(workspace.environment, "rds")
    identifier = address.split(".")[0]  # RDS addresses start with the instance identifier
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except (ClientError, IndexError) as error:
        raise postgres.LocalDatabaseError(
            f"the emulator has no RDS instance {identifier!r} (output address {address!r}): {error}"
        ) from error
    return postgres_data_dir(_instances_of(workspace) / instance["DbiResourceId"])


def endpoint_file(workspace: Workspace) -> Path:
    return emulated_rds_endpoint_file(*_account_of(workspace))


def server_tls(workspace: Workspace) -> postgres.ServerTLS:
    """The emulated RDS instance's TLS: the emulator's own loopback certificate, issued by the
    emulator's CA (as RDS's certificate is issued by the RDS CA), which clients verify."""
    assert workspace.target.ca_bundle is not None, "the local target has the emulator's CA"
    paths = certificate_paths(workspace.target.ca_bundle.parent)
    return postgres.ServerTLS(cert=paths.server_cert, key=paths.server_key)


@contextmanager
def cluster_made_meanwhile(workspace: Workspace, stack: Stack, new: bool) -> Iterator[None]:
    """With --local, while the block (the first apply of a database stack, ``new``) runs, make
    the cluster the instance's server will use (initdb: a second or so of CPU).

    Its folder is named by the instance's resource id, which only the apply tells: the cluster
    is made under a spare name, and after_apply moves it to the instance's folder. Failures
    are left to after_apply, which makes the cluster itself and reports them with the stack's
    name.
    """
    if not stack.database or not workspace.target.local or not new:
        yield
        return

    def make() -> None:
        with suppress(Exception):
            postgres.ensure_cluster(_spare_cluster(workspace, stack))

    thread = threading.Thread(target=make, name=f"initdb-{stack.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _spare_cluster(workspace: Workspace, stack: Stack) -> Path:
    """Where cluster_made_meanwhile makes a cluster before the instance's folder is known."""
    return postgres_data_dir(
        _instances_of(workspace) / f"spare-{workspace.environment.name}-{stack.name}"
    )


def _instances_of(workspace: Workspace) -> Path:
    """The folder of the environment's account's emulated RDS instances."""
    return emulated_rds_account_dir(*_account_of(workspace))


def _account_of(workspace: Workspace) -> tuple[Path, str]:
    """The emulator's state folder and the environment's account."""
    ca_bundle = workspace.target.ca_bundle
    assert ca_bundle is not None, "the local target has the emulator's CA"
    return emulator_state_of(ca_bundle.parent), workspace.environment.account_id


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
        data_dir = local_data_dir(workspace, values["address"])
        spare = _spare_cluster(workspace, stack)
        if not data_dir.parent.exists() and (spare / "PG_VERSION").exists():
            spare.parent.rename(data_dir.parent)  # the cluster made while the instance was created
        server = postgres.ensure_server(data_dir, tls=server_tls(workspace))
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
    # Where the emulated instance's clients really connect (no secret in here), replaced whole:
    # the emulator's Invoke and local API servers read it at any time
    text = json.dumps(
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
    path = endpoint_file(workspace)
    if not path.is_file() or path.read_text() != text + "\n":
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(text + "\n")
        partial.replace(path)
    print(
        f"    {stack.name}: local PostgreSQL for {values['address']} on "
        f"{server.host}:{server.port}, database {values['db_name']!r}, "
        f"user {secret['username']!r} (password from Secrets Manager)",
        file=workspace.console,
        flush=True,
    )
    return endpoint
