"""Options several commands share, each defined once (name, metavar, help), as data for
the commands' `arguments` (see `spec`)."""

from __future__ import annotations

import argparse

from stackrun.commands.spec import Argument, flag

LOCK_TIMEOUT_HELP = "how long to wait for a held state lock or environment guard, e.g. 30s, 5m"

ENV = Argument("env", help="environment: a folder of live/ holding env.toml")
LOCAL = flag("--local", "target the local AWS emulator (started on 127.0.0.1 when not running)")
EMULATOR_PORT = Argument("--port", type=int, help="emulator port")
PORT = EMULATOR_PORT.but(help="emulator port (with --local)")
LOCK_TIMEOUT = Argument("--lock-timeout", metavar="DURATION", help=LOCK_TIMEOUT_HELP)
SET = Argument(
    "--set",
    action="append",
    default=[],
    metavar="STACK.INPUT=VALUE",
    help="override one stack input for this run, VALUE in TOML syntax (repeatable), e.g. "
    "--set 020_postgres.deletion_protection=false",
)
# <env> and where to run it.
ENV_ARGUMENTS = (
    ENV,
    LOCAL,
    PORT,
    SET,
    LOCK_TIMEOUT.but(
        help=LOCK_TIMEOUT_HELP + " (default: terraform.lock_timeout in live/project.toml)"
    ),
)
REPORT_FILES = (
    Argument(
        "--report-file",
        metavar="PATH",
        help="write the run report as JSON to PATH (per stack: status, counts, resources "
        "[address, action], seconds, fingerprint, artifact sha256s; schema: "
        "schemas/run-report.schema.json), also when the run fails",
    ),
    Argument(
        "--summary-file",
        metavar="PATH",
        help="write a Markdown summary to PATH (a table of the stacks, each stack's resource "
        "changes in a collapsible list, replacements and destroys called out; for a CI job "
        "summary or PR comment), also when the run fails",
    ),
)
PROMOTE_FROM = Argument(
    "--promote-from",
    metavar="ENV",
    help="""
        no build: exactly the function zips live in ENV (e.g. stage), whose integration tests passed
        there (ENV's release record, `stackrun release ENV`); refuses before anything changes when
        ENV's tests did not pass for what is live, when a live zip's sha256 differs from ENV's
        record or when the set of functions differs, naming the function and both hashes. Reads ENV
        as ENV's plan role
    """,
)
YES = flag(
    "--yes",
    "do not ask for the typed confirmation that protected environments "
    "(protected = true in env.toml) require",
)
FUNCTION = Argument("function", help="a function of the environment (a folder of lambdas/)")


def _stack_count(text: str) -> int:
    """--parallelism's value: a whole number of at least 1 (argparse names the flag)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 1, got {text!r}"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {count}")
    return count


PARALLELISM = Argument(
    "--parallelism",
    type=_stack_count,
    metavar="N",
    help="""
        run up to N stacks side by side (default %(default)s): in a deploy, a stack starts once
        the stacks it depends on ([dependencies], after) are done; in a plan, at once (every
        plan takes its upstream values from the states read before any plan starts).
        terraform's output lines are then prefixed with the stack's name
    """,
)


def add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-q/-v, before the command (`top`) or after it (then only when given: the top's stays)."""
    from stackrun.terminal import Verbosity

    default = Verbosity.NORMAL if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=Verbosity.QUIET,
        default=default,
        help="no terraform output and no line per stack started: results, summary and errors",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=Verbosity.VERBOSE,
        default=default,
        help="terraform's own output also on a terminal, above the status block (plain output "
        "has it always; every stack's log file too)",
    )


def stack_selection(verb: str) -> tuple[Argument, Argument]:
    """--stack and --exclude: which stacks the command runs (stackrun.deploy.selection)."""
    return (
        Argument(
            "--stack",
            dest="stack_patterns",  # not `stack`: tf and unlock take a stack name as `stack`
            action="append",
            default=[],
            metavar="NAME",
            help=f"{verb} only this stack (repeatable); NAME+ adds every stack downstream of it, "
            "+NAME every stack upstream of it ([dependencies] and after). The outputs of the "
            "stacks not run are read from their state. An unknown name is an error listing the "
            "environment's stacks, before anything runs",
        ),
        Argument(
            "--exclude",
            dest="exclude_patterns",
            action="append",
            default=[],
            metavar="NAME",
            help=f"do not {verb} this stack (repeatable; NAME+ / +NAME as for --stack), also when "
            "--stack selected it through NAME+ or +NAME",
        ),
    )
