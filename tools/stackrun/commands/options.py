"""Options several commands share, each defined once (name, metavar, help)."""

from __future__ import annotations

import argparse
from typing import TypeAlias

# What each command module's add_parser(commands) adds its subcommand to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

ENV_HELP = "environment: a folder of live/ holding env.toml"
LOCAL_HELP = "target the local AWS emulator (started on 127.0.0.1 when not running)"
PORT_HELP = "emulator port"
LOCK_TIMEOUT_HELP = "how long to wait for a held state lock or environment guard, e.g. 30s, 5m"
YES_HELP = (
    "do not ask for the typed confirmation that protected environments "
    "(protected = true in env.toml) require"
)


def add_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", help=ENV_HELP)


def add_local(parser: argparse.ArgumentParser, help: str = LOCAL_HELP) -> None:
    parser.add_argument("--local", action="store_true", help=help)


def add_port(parser: argparse.ArgumentParser, *, with_local: bool = True) -> None:
    parser.add_argument(
        "--port", type=int, help=f"{PORT_HELP} (with --local)" if with_local else PORT_HELP
    )


def add_lock_timeout(parser: argparse.ArgumentParser, *, default_note: bool = True) -> None:
    note = " (default: terraform.lock_timeout in live/project.toml)" if default_note else ""
    parser.add_argument("--lock-timeout", metavar="DURATION", help=LOCK_TIMEOUT_HELP + note)


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """<env> and where to run it: --local, --port, --set, --lock-timeout."""
    add_env(parser)
    add_local(parser)
    add_port(parser)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STACK.INPUT=VALUE",
        help="override one stack input for this run, VALUE in TOML syntax (repeatable), e.g. "
        "--set 020_postgres.deletion_protection=false",
    )
    add_lock_timeout(parser)


def add_report_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-file",
        metavar="PATH",
        help="write the run report as JSON to PATH (per stack: status, counts, resources "
        "[address, action], seconds, fingerprint, artifact sha256s; schema: "
        "schemas/run-report.schema.json), also when the run fails",
    )
    parser.add_argument(
        "--summary-file",
        metavar="PATH",
        help="write a Markdown summary to PATH (a table of the stacks, each stack's resource "
        "changes in a collapsible list, replacements and destroys called out; for a CI job "
        "summary or PR comment), also when the run fails",
    )


def add_promote_from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote-from",
        metavar="ENV",
        help="no build: exactly the function zips live in ENV (e.g. stage), whose integration "
        "tests passed there (ENV's release record, `stackrun release ENV`); refuses before "
        "anything changes when ENV's tests did not pass for what is live, when a live zip's "
        "sha256 differs from ENV's record or when the set of functions differs, naming the "
        "function and both hashes. Reads ENV as ENV's plan role",
    )


def add_yes(parser: argparse.ArgumentParser, help: str = YES_HELP) -> None:
    parser.add_argument("--yes", action="store_true", help=help)


def add_function(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("function", help="a function of the environment (a folder of lambdas/)")


def add_stack_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    """--stack and --exclude: which stacks the command runs (stackrun.deploy.selection)."""
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="NAME",
        help=f"{verb} only this stack (repeatable); NAME+ adds every stack downstream of it, "
        "+NAME every stack upstream of it ([dependencies] and after). The outputs of the "
        "stacks not run are read from their state. An unknown name is an error listing the "
        "environment's stacks, before anything runs",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NAME",
        help=f"do not {verb} this stack (repeatable; NAME+ / +NAME as for --stack), also when "
        "--stack selected it through NAME+ or +NAME",
    )
