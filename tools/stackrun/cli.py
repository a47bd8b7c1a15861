"""Command line: `stackrun <command> <env> [--local] ...` (the nox sessions call this).

The top-level parser, the registration of the commands (one module each in
stackrun.commands) and the dispatch with its exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from stackrun import terminal
from stackrun.commands import (
    affected,
    baseline,
    bootstrap,
    build,
    completion,
    deploy,
    destroy,
    emulator,
    graph,
    options,
    output,
    plan,
    release,
    rollback,
    serve,
    testdb,
    tf,
    token,
    unlock,
    unpin,
    validate,
)
from stackrun.commands.context import find_repo_root
from stackrun.deploy.interrupts import Interrupted
from stackrun.errors import StackrunError

DESCRIPTION = """\
Deploy the stacks of live/<env>/ in directory-number order on a self-bootstrapping S3 +
DynamoDB state backend, against AWS or (--local) a local AWS emulator.

Every file under live/ is validated before anything runs. Generated terraform working
directories and per-stack logs are kept under .stackrun/<aws|local>/<env>/.
"""

EPILOG = """\
examples:
  stackrun deploy dev --local              deploy dev into the local emulator
  stackrun baseline prod                   apply prod's account baseline (administrator)
  stackrun plan prod --detailed-exitcode   exit 2 when any prod stack has changes
  stackrun plan prod --out plan/ --summary-file plan.md   save prod's plans for review
  stackrun deploy prod --plan plan/        apply exactly those plans (or refuse)
  stackrun rollback prod list_devices      move live back one version, in seconds (pinned)
  stackrun tf dev 030_api --local -- state list
                                           any terraform command in one stack's working dir
  stackrun output stage --local            all stage outputs as one JSON document
  stackrun release stage --tested passed --junit-xml report.xml
                                           record stage's integration-test result
  stackrun deploy prod --promote-from stage
                                           deploy to prod the zips live and tested in stage
  stackrun token dev --local --scope fleet/read   an access token for dev's API
  stackrun serve dev                       serve dev's locally deployed API (foreground)
  stackrun emulator stop                   stop the local emulator
  stackrun -v deploy dev --local           terraform's lines too, above the status block
  stackrun completion bash                 the bash completion script (also: zsh)

environment variables:
  STACKRUN_PROVIDER_MIRROR   unpacked provider mirror terraform installs from (no downloads)
  TF_CLI_CONFIG_FILE         your own terraform CLI config; used as-is when the file exists
  TF_PLUGIN_CACHE_DIR        passed through to terraform
  STACKRUN_LOCAL_PORT        emulator port (default: live/project.toml [local] port, or 4566)
  STACKRUN_CACHE_DIR         where generated files and logs go (default: .stackrun/)
  STACKRUN_EMULATOR_DIR      the emulator's state folder (default: .stackrun/emulator/)
  STACKRUN_RUNTIME_DIR       local Lambda runtimes for serve (default: .stackrun/runtimes/)
  STACKRUN_ROOT              the repository root (default: found from the current folder)
  STACKRUN_TERRAFORM         terraform binary (default: terraform on PATH)
  CI, NO_COLOR               plain lines, as when piped: no colour, no status block

roles (live/<env>/env.toml): plan assumes plan_role (plan --out: deploy_role); deploy,
destroy, bootstrap, output, token, release, rollback, unpin, unlock and tf assume deploy_role;
baseline assumes none (administrator credentials). deploy/plan --promote-from ENV also assume
ENV's plan_role, to read ENV (read-only).

signals (deploy, destroy, bootstrap, baseline):
  Ctrl-C or SIGTERM lets terraform finish what it started, releases locks and exits 128+N.
  A second signal within 10 s (CI's SIGINT-then-SIGTERM) changes nothing; a third kills
  terraform, and stackrun still releases its state lock and the environment guard.
"""


# In the order `stackrun --help` lists them.
COMMANDS = (
    deploy,
    plan,
    destroy,
    output,
    token,
    serve,
    release,
    bootstrap,
    baseline,
    validate,
    graph,
    affected,
    emulator,
    build,
    testdb,
    unlock,
    tf,
    rollback,
    unpin,
    completion,
)


def installed_version() -> str:
    """The installed distribution's version (its metadata)."""
    from importlib.metadata import PackageNotFoundError, version  # 50 ms: only for --version

    try:
        return version("stackrun")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class _PrintVersion(argparse.Action):
    """--version, whose metadata is read only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **_: object):
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"stackrun {installed_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackrun",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_PrintVersion)
    options.add_verbosity(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in COMMANDS:
        subparser = command.COMMAND.add_to(commands)
        if command.COMMAND.verbosity:
            options.add_verbosity(subparser, top=False)
        subparser.set_defaults(handler=command.run)
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = find_repo_root() if args.needs_repo else Path.cwd()
    handler: Callable[[argparse.Namespace, Path], int] = args.handler  # set_defaults above
    with terminal.use(terminal.Terminal.detect(args.verbosity)):
        return handler(args, root)


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except Interrupted as error:
        if error.killed:
            after = (
                "terraform was killed: stackrun released its state lock and the environment "
                "guard (a warning above says if it could not). Resources terraform was creating "
                "may be missing from the state: the next deploy's plan shows what it will do"
            )
        else:
            after = "terraform finished cleanly; state locks and the environment guard released"
        print(f"\n{error}\n{after}", file=sys.stderr)
        code = error.exit_code
    except StackrunError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # `stackrun graph dev | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        code = 141
    sys.exit(code)


def command() -> None:
    """The `stackrun` command: `main`, then the process ends without tearing the interpreter
    down. By then every file is closed and every thread has ended (main waits for them);
    freeing the objects of boto3, rich and the rest one by one took about 0.2 s on every
    command, a sixth of a deploy that changes nothing."""
    try:
        main()
        code: int = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader left, or closed
            stream.flush()
    os._exit(code)
