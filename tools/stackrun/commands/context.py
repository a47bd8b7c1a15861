"""The common start of a command's run: the repository, the environment (with --set), the
typed confirmation of protected environments, the target (the emulator started with --local)
and the Workspace that holds them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

from stackrun import terminal
from stackrun.aws.target import Target
from stackrun.config import Environment, apply_overrides, load_environment, load_project
from stackrun.deploy.selection import Selection, select
from stackrun.errors import StackrunError
from stackrun.paths import emulator_dir
from stackrun.terraform.workspace import Workspace

# The role each command acts as (config.ROLES); every other command acts as the deploy role.
COMMAND_ROLES = {"plan": "plan", "baseline": "admin"}


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder, from `start` upwards, that has live/project.toml."""
    override = os.environ.get("STACKRUN_ROOT")
    if override:
        return Path(override).resolve()
    current = (start or Path.cwd()).resolve()
    for folder in (current, *current.parents):
        if (folder / "live" / "project.toml").is_file():
            return folder
    raise StackrunError(
        f"no live/project.toml found in {current} or its parents (run from the repository, "
        "or set STACKRUN_ROOT)"
    )


def emulator_port(args: argparse.Namespace, root: Path) -> int:
    """--port, else STACKRUN_LOCAL_PORT, else live/project.toml [local] port."""
    if getattr(args, "port", None):
        port: int = args.port
        return port
    if os.environ.get("STACKRUN_LOCAL_PORT"):
        return int(os.environ["STACKRUN_LOCAL_PORT"])
    return load_project(root).local_port


def target(args: argparse.Namespace, root: Path) -> Target:
    """AWS, or (--local) the emulator, started when not running; as the command's role."""
    role = COMMAND_ROLES.get(args.command, "deploy")
    if args.command == "plan" and getattr(args, "out", None):
        role = "deploy"  # the saved plan's provider settings are those it is applied with
    if not args.local:
        return Target(role=role)
    from stackrun.local.emulator import ensure_running

    emulator = ensure_running(emulator_dir(root), port=emulator_port(args, root))
    return Target(endpoint=emulator.endpoint, ca_bundle=emulator.ca_bundle, role=role)


def environment(args: argparse.Namespace, root: Path) -> Environment:
    """<env>, loaded and validated, with this run's --set overrides; --stack and --exclude
    checked against its stacks."""
    loaded = apply_overrides(load_environment(root, args.env), getattr(args, "set", []))
    selected(args, loaded)
    return loaded


def selected(args: argparse.Namespace, loaded: Environment) -> Selection | None:
    """The stacks --stack/--exclude select (None without them: every stack); an unknown name
    is an error naming the flag and listing the environment's stacks."""
    # commands without --stack/--exclude (tf, token, ...) select every stack
    patterns = getattr(args, "stack_patterns", []), getattr(args, "exclude_patterns", [])
    return select(loaded, *patterns)


def confirm_protected(environment: Environment, command: str, yes: bool) -> None:
    """Protected environments need the environment's name typed, or --yes."""
    if not environment.protected or yes:
        return
    if not sys.stdin.isatty():
        raise StackrunError(
            f"{environment.name} is protected (live/{environment.name}/env.toml): {command} "
            "needs a typed confirmation; pass --yes when running without a terminal"
        )
    answer = input(
        f"{environment.name} is protected. Type its name to {command} "
        f"account {environment.account_id}: "
    )
    if answer.strip() != environment.name:
        raise StackrunError(f"{command} of {environment.name} not confirmed; nothing was changed")


def start(
    args: argparse.Namespace,
    root: Path,
    *,
    console: IO[str] | None = None,
    loaded: Environment | None = None,
    confirm: bool = False,
) -> Workspace:
    """The Workspace a command runs in (announced on `console`); `confirm`: ask for the typed
    confirmation first when the environment is protected (--yes skips it)."""
    loaded = loaded or environment(args, root)
    if confirm:
        confirm_protected(loaded, args.command, args.yes)
    run_target = target(args, root)
    console = console or terminal.current().stream()
    print(
        f"stackrun {args.command} {loaded.name} -> "
        + (f"local emulator {run_target.endpoint}" if run_target.local else "AWS")
        + f", account {loaded.account_id}, {loaded.region}",
        file=console,
        flush=True,
    )
    return Workspace(loaded, run_target, console=console, lock_timeout=args.lock_timeout)
