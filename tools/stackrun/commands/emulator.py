"""`stackrun emulator start|stop|status`: the local AWS emulator."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command
from stackrun.paths import cache_root, emulated_rds_dir, emulator_dir

COMMAND = Command(
    "emulator",
    help="start, stop or show the local AWS emulator",
    description="""
        The local AWS emulator: a moto server over HTTPS on 127.0.0.1, with a locally generated
        CA, state under .stackrun/emulator/.
    """,
    arguments=(
        Argument("action", choices=("start", "stop", "status")),
        options.EMULATOR_PORT,
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.local.emulator import ensure_running, status

    state_dir = emulator_dir(root)
    port = context.emulator_port(args, root)
    if args.action == "start":
        emulator = ensure_running(state_dir, port=port)
        print(f"local AWS emulator: {emulator.endpoint} (CA bundle {emulator.ca_bundle})")
    elif args.action == "stop":
        _stop(root, state_dir)
    else:
        print(status(state_dir, port=port))
    return 0


def _stop(root: Path, state_dir: Path) -> None:
    """The emulator, the local API servers and the databases behind emulated RDS instances
    (whose data goes with the emulator's memory), then any other local PostgreSQL under
    .stackrun/ (the lambda tests')."""
    from stackrun.local.api import process as api_process
    from stackrun.local.emulator import stop
    from stackrun.local.postgres import stop_all

    for name in api_process.stop_all(root):
        print(f"stopped the local API server of {name}")
    for data_dir in stop_all(emulated_rds_dir(state_dir)):
        print(f"stopped local PostgreSQL {data_dir} (behind an emulated RDS instance)")
    print("stopped the local AWS emulator" if stop(state_dir) else "emulator not running")
    for data_dir in stop_all(cache_root(root)):
        print(f"stopped local PostgreSQL {data_dir}")
