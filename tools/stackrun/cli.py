"""Command line: `stackrun <command> <env> [--local] ...` (the nox sessions call this)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from stackrun.aws.target import Target
from stackrun.config import (
    Environment,
    apply_overrides,
    list_environments,
    load_environment,
    load_project,
)
from stackrun.deploy import interrupts, runner
from stackrun.deploy.interrupts import Interrupted
from stackrun.deploy.report import RunReport
from stackrun.errors import StackrunError
from stackrun.paths import artifact_dir, cache_root
from stackrun.terraform.workspace import Workspace

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
  stackrun output stage --local            all stage outputs as one JSON document
  stackrun release stage --tested passed --junit-xml report.xml
                                           record stage's integration-test result
  stackrun deploy prod --promote-from stage
                                           deploy to prod the zips live and tested in stage
  stackrun token dev --local --scope fleet/read   an access token for dev's API
  stackrun serve dev                       serve dev's locally deployed API (foreground)
  stackrun emulator stop                   stop the local emulator

environment variables:
  STACKRUN_PROVIDER_MIRROR   unpacked provider mirror terraform installs from (no downloads)
  TF_CLI_CONFIG_FILE         your own terraform CLI config; used as-is when the file exists
  TF_PLUGIN_CACHE_DIR        passed through to terraform
  STACKRUN_LOCAL_PORT        emulator port (default: live/project.toml [local] port, or 4566)
  STACKRUN_CACHE_DIR         where generated files and logs go (default: .stackrun/)
  STACKRUN_EMULATOR_DIR      the emulator's state folder (default: .stackrun/local/emulator/)
  STACKRUN_RUNTIME_DIR       local Lambda runtimes for serve (default: .stackrun/runtimes/)
  STACKRUN_ROOT              the repository root (default: found from the current folder)
  STACKRUN_TERRAFORM         terraform binary (default: terraform on PATH)

roles (live/<env>/env.toml): plan assumes plan_role (plan --out: deploy_role); deploy,
destroy, bootstrap, output, token, release, rollback, unpin and unlock assume deploy_role;
baseline assumes none (administrator credentials). deploy/plan --promote-from ENV also assume
ENV's plan_role, to read ENV (read-only).

signals (deploy, destroy, bootstrap, baseline):
  Ctrl-C or SIGTERM lets terraform finish what it started, releases locks and exits 128+N.
  A second signal within 10 s (CI's SIGINT-then-SIGTERM) changes nothing; a third kills
  terraform, and stackrun still releases its state lock and the environment guard.
"""


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


def _add_env_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", help="environment: a folder of live/ holding env.toml")
    parser.add_argument(
        "--local",
        action="store_true",
        help="target the local AWS emulator (started on 127.0.0.1 when not running)",
    )
    parser.add_argument("--port", type=int, help="emulator port (with --local)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STACK.INPUT=VALUE",
        help="override one stack input for this run, VALUE in TOML syntax (repeatable), e.g. "
        "--set 020_postgres.deletion_protection=false",
    )
    parser.add_argument(
        "--lock-timeout",
        metavar="DURATION",
        help="how long to wait for a held state lock or environment guard, e.g. 30s, 5m "
        "(default: terraform.lock_timeout in live/project.toml)",
    )


def _add_report_files(parser: argparse.ArgumentParser) -> None:
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


def _add_promote_from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote-from",
        metavar="ENV",
        help="no build: exactly the function zips live in ENV (e.g. stage), whose integration "
        "tests passed there (ENV's release record, `stackrun release ENV`); refuses before "
        "anything changes when ENV's tests did not pass for what is live, when a live zip's "
        "sha256 differs from ENV's record or when the set of functions differs, naming the "
        "function and both hashes. Reads ENV as ENV's plan role",
    )


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes",
        action="store_true",
        help="do not ask for the typed confirmation that protected environments "
        "(protected = true in env.toml) require",
    )


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackrun",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    deploy = commands.add_parser(
        "deploy",
        help="ensure the state backend, then plan and apply every stack in order",
        description="Ensure the state backend exists, then for each stack in directory-number "
        "order: render, compare its fingerprint (configuration, module files, upstream outputs, "
        "artifact hashes, terraform and provider versions, the state's serial) with the one "
        "of its last apply and skip it when equal; otherwise init (when needed) and one "
        "`terraform apply`. Outputs are read from the state object in the backend. Then, "
        "applied or skipped, the stack's `[lambdas] invoke_on_deploy` functions are invoked "
        "through their alias (the migrations: on every deploy, before any stack that lists "
        "it in `after` starts). Stops at the first failing stack or invocation; later stacks "
        "are left untouched. Acts as the environment's deploy role (env.toml deploy_role). "
        "With --local, the account baseline (000_baseline: OIDC provider, deploy and plan "
        "roles; see `stackrun baseline --help`) is applied into the emulated account first, "
        "when missing or changed and live/project.toml has [github].",
    )
    _add_env_arguments(deploy)
    _add_yes(deploy)
    deploy.add_argument(
        "--all",
        action="store_true",
        help="plan every stack, also those whose fingerprint says nothing changed since their "
        "last apply (the default skips them, and says so)",
    )
    deploy.add_argument(
        "--parallelism",
        type=int,
        default=1,
        metavar="N",
        help="run up to N stacks side by side when no dependency path links them (default 1); "
        "terraform's output lines are then prefixed with the stack's name",
    )
    _add_report_files(deploy)
    deploy.add_argument(
        "--plan",
        metavar="DIR",
        help="apply exactly the plans `plan <env> --out DIR` saved (terraform apply <planfile> "
        "per stack with changes; stacks planned without changes are skipped). Refuses before "
        "applying anything when the plan is of another environment or account, a stack was "
        "pending, a stack's state changed since (serial/lineage), a plan file was altered, a "
        "function zip, a stack's inputs or configuration differ; stops, naming the stack that "
        "needs a new plan, when an upstream apply gives other outputs than the plan was made with",
    )
    _add_promote_from(deploy)
    deploy.add_argument(
        "--no-serve",
        action="store_true",
        help="with --local: do not start the local API server and its smoke call at the end",
    )

    plan = commands.add_parser(
        "plan",
        help="plan every stack and print a one-line-per-stack summary",
        description="Plan every stack (the state backend included) against refreshed state "
        "and print a summary line per stack (to add / to change / to destroy). A plan writes no "
        "state: it takes neither the environment guard nor state locks, so it never waits for "
        "a deploy. Terraform and stackrun act as the environment's plan role (env.toml "
        "plan_role, default fleet-plan: read-only), never its deploy role; except with --out, "
        "whose saved plans are made as the deploy role that `deploy --plan` applies them with.",
    )
    _add_env_arguments(plan)
    _add_report_files(plan)
    plan.add_argument(
        "--out",
        metavar="DIR",
        help="save each stack's plan file into DIR with manifest.json (environment, account, "
        "commit; per stack: state serial and lineage, sha256 of the upstream values and of the "
        "function zips, fingerprint, plan file sha256) for `deploy <env> --plan DIR`. A saved "
        "plan carries the provider and backend settings it is applied with, so `plan --out` "
        "acts as the deploy role (env.toml deploy_role), not the plan role",
    )
    _add_promote_from(plan)
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when any stack has changes (or is not deployed yet), 0 when none has",
    )

    destroy = commands.add_parser(
        "destroy",
        help="destroy every stack in reverse order (the state backend is kept)",
        description="Destroy every stack in reverse directory-number order. The state bucket "
        "and lock table are kept, so state history survives.",
    )
    _add_env_arguments(destroy)
    _add_yes(destroy)
    _add_report_files(destroy)
    destroy.add_argument(
        "--lift-deletion-protection",
        action="store_true",
        help="when resources have deletion protection on, first deploy their stacks with "
        "deletion_protection = false, then destroy (without it, destroy refuses)",
    )

    output = commands.add_parser(
        "output",
        help="print all stacks' outputs as one JSON document",
        description="Print {stack: {output: value}} for every stack as JSON on stdout, plus "
        '"target": the account, region, deploy role, AWS endpoint (the emulator with --local) '
        "and the URL to call each API stack on (with --local: the local API server's, when it "
        'runs). Sensitive values are shown as "<sensitive>" unless --show-sensitive is given.',
    )
    _add_env_arguments(output)
    output.add_argument("--show-sensitive", action="store_true", help="print sensitive values")
    output.add_argument(
        "--output-file", metavar="PATH", help="write the document to PATH instead of stdout"
    )

    token = commands.add_parser(
        "token",
        help="print an access token for the environment's API (last line of stdout)",
        description="Get an OAuth2 access token for <env>'s API with the client credentials "
        "grant of one app client of its identity stack: the client's secret is read from "
        "Secrets Manager, the token endpoint of the environment's Cognito user pool is called "
        "(with --local: both in the emulator). The token is the only line on stdout; use it "
        "as `authorization: Bearer <token>`. Tokens expire (the client's "
        "access_token_validity_minutes, 60 by default); get a new one then.",
        epilog='example:\n  curl -H "authorization: Bearer $(stackrun token dev --local '
        '--scope fleet/read)" "$URL/projects/demo/devices"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_env_arguments(token)
    token.add_argument(
        "--client",
        metavar="NAME",
        help="the app client ([inputs.clients.<NAME>] of the identity stack); default: the "
        "first by name that may request every --scope",
    )
    token.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="a scope to request, e.g. fleet/read (repeatable); default: all of the client's",
    )

    serve = commands.add_parser(
        "serve",
        help="serve a locally deployed environment's HTTP API on 127.0.0.1",
        description="Serve the HTTP APIs that the emulated API Gateway of <env> holds, on "
        "127.0.0.1 (one port per API). Each request is routed by the API's routes, turned into "
        "a payload format 2.0 event and run by the deployed code of the function version the "
        "route's alias points to, in its own awslambdaric runtime process with the version's "
        "environment variables, timeout and memory size. Function logs are printed and written "
        "to the emulated CloudWatch Logs. `deploy --local` starts a detached server itself.",
    )
    serve.add_argument("env", help="environment: a folder of live/ holding env.toml")
    serve.add_argument(
        "--api-port", type=int, help="port of the (first) API (default: the last one, or any free)"
    )
    serve.add_argument("--port", type=int, help="emulator port")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument(
        "--background", action="store_true", help="start (or keep) a detached server; print URLs"
    )
    mode.add_argument("--stop", action="store_true", help="stop the detached server")

    release = commands.add_parser(
        "release",
        help="print the environment's release record, or record its integration-test result",
        description="Every successful deploy writes the environment's release record into "
        "its state bucket (<env>/_stackrun/release.json): the commit, and per function the "
        "Lambda version its `live` alias serves and the sha256 of that version's zip, read "
        "from Lambda. Without --tested: print the record as JSON. With --tested: record the "
        "integration-test result of the release that is live now (the nox integration and "
        "e2e sessions do this after pytest); refused when the record no longer matches what "
        "is live. `deploy <env> --promote-from <this env>` promotes only a passed release.",
    )
    _add_env_arguments(release)
    release.add_argument(
        "--tested",
        choices=("passed", "failed"),
        help="record this integration-test result for the release live now",
    )
    release.add_argument(
        "--junit-xml",
        metavar="PATH",
        help="with --tested: pytest's --junitxml report, for the passed/failed/skipped counts",
    )

    bootstrap = commands.add_parser(
        "bootstrap",
        help="create (or re-apply) the state bucket and lock table only",
        description="Create the environment's state backend with modules/tfstate-bootstrap "
        "when missing (local state first, then migrated into the bucket), or re-apply it.",
    )
    _add_env_arguments(bootstrap)

    baseline = commands.add_parser(
        "baseline",
        help="apply the account baseline (OIDC provider, deploy and plan roles): administrator",
        description="Apply modules/account-baseline to <env>'s account as the stack "
        "000_baseline, with the caller's own credentials (an administrator of the account; no "
        "role is assumed, the roles do not exist before): GitHub's OIDC identity provider, "
        "the deploy role (trusted by repo:<owner>/<repo>:environment:<env> only, with a "
        "permissions boundary that denies changing the baseline) and the plan role (trusted "
        "by the repository's pull-request tokens only; read-only plus the state lock). The "
        "repository comes from live/project.toml [github], the role names from env.toml. "
        "Creates the state backend first when missing; the baseline's state is "
        "<env>/000_baseline/terraform.tfstate in it. Run it once per account, and again after "
        "a change to the module or those settings. `deploy --local` applies it into the "
        "emulated account by itself.",
    )
    baseline.add_argument("env", help="environment: a folder of live/ holding env.toml")
    baseline.add_argument(
        "--local", action="store_true", help="apply it into the local emulator's account"
    )
    baseline.add_argument("--port", type=int, help="emulator port (with --local)")
    baseline.add_argument(
        "--lock-timeout",
        metavar="DURATION",
        help="how long to wait for a held state lock or environment guard, e.g. 30s, 5m",
    )
    _add_yes(baseline)

    validate = commands.add_parser(
        "validate",
        help="validate live/ (every environment, or one) without running anything",
        description="Validate live/ (every environment, or one) without running anything: "
        "project.toml, env.toml, and each stack's settings: live/_defaults/<stack>.toml (what "
        "every environment shares) with live/<env>/<stack>/stack.toml merged over it (tables "
        "merge key by key, the environment's values win, arrays are replaced).",
    )
    validate.add_argument("env", nargs="?", help="one environment (default: all)")
    validate.add_argument(
        "stack", nargs="?", help="with --explain: one stack of <env> (default: all of them)"
    )
    validate.add_argument(
        "--explain",
        action="store_true",
        help="with <env> [<stack>]: print each stack's merged settings (module, inputs, "
        "dependencies, lambdas, ...) one value a line, `key = value  # file`, the file being "
        "live/_defaults/<stack>.toml or live/<env>/<stack>/stack.toml (or env.toml for what "
        "stackrun adds from it)",
    )
    validate.add_argument(
        "--write-inputs",
        metavar="DIR",
        help="also write every stack's inputs to DIR/<env>.<stack>.tfvars.json and print "
        "'<module dir> <var file> <skipped check ids>' per stack (for checkov --var-file)",
    )
    validate.add_argument(
        "--role",
        choices=("plan", "deploy"),
        help="with <env>: print the ARN of its plan or deploy role (env.toml plan_role, "
        "deploy_role) as the last line, e.g. for CI's role-to-assume",
    )

    emulator = commands.add_parser(
        "emulator",
        help="start, stop or show the local AWS emulator",
        description="The local AWS emulator: a moto server over HTTPS on 127.0.0.1, with a "
        "locally generated CA, state under .stackrun/local/emulator/.",
    )
    emulator.add_argument("action", choices=("start", "stop", "status"))
    emulator.add_argument("--port", type=int, help="emulator port")

    build = commands.add_parser(
        "build",
        help="build dist/lambdas/<name>.zip for every function in lambdas/",
        description="Build one deterministic zip per function package (lambdas/<name> whose "
        "pyproject.toml has [tool.fleet] lambda = true): its code, its local libraries and its "
        "locked third-party dependencies for the target runtime, without boto3/botocore, tests "
        "or caches. Skipped when the inputs have not changed. A manifest (<name>.json) beside "
        "each zip records its sha256 and size.",
    )
    build.add_argument("names", nargs="*", help="only these functions (default: all)")
    build.add_argument(
        "--arch",
        choices=("arm64", "x86_64"),
        default="arm64",
        help="target architecture (default: arm64)",
    )
    build.add_argument("--force", action="store_true", help="rebuild even when unchanged")
    build.add_argument(
        "--relock",
        action="store_true",
        help="resolve third-party dependencies afresh (rewrites requirements.lock)",
    )

    commands.add_parser(
        "testdb",
        help="start the local PostgreSQL that lambda tests use and print its URL",
        description="Start (or reuse) a local PostgreSQL under .stackrun/local/testdb/ with a test "
        "role that may create databases, and print postgresql://... for "
        "FLEET_TEST_DATABASE_URL. The password is generated once and kept in "
        ".stackrun/local/testdb/url (mode 0600).",
    )

    unlock = commands.add_parser(
        "unlock",
        help="release a stack's state lock or the environment guard left by a killed run",
        description="Release a lock left behind by a run that was killed. With <stack> <id>: "
        "the terraform state lock of that stack (terraform force-unlock; the id is the `ID` of "
        "the Lock Info in the error of the waiting run, and must match the held lock). With "
        "--guard <id>: the environment guard that keeps two deploys of one environment apart. "
        "Asks for confirmation unless --yes.",
    )
    _add_env_arguments(unlock)
    unlock.add_argument("stack", nargs="?", help="the stack whose state lock to release")
    unlock.add_argument("lock_id", nargs="?", metavar="id", help="the state lock's ID")
    unlock.add_argument("--guard", metavar="ID", help="release the environment guard ID instead")
    unlock.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    rollback = commands.add_parser(
        "rollback",
        help="move a function's live alias back to its previous version, in seconds, and pin it",
        description="Move <function>'s `live` alias (what the HTTP API invokes) back to the "
        "newest published version older than the one it points at, or to --to VERSION, with "
        "one Lambda UpdateAlias call (canary routing, if any, is cleared); no terraform runs. "
        "The function is then pinned: the pin is recorded in the environment's state bucket "
        "(<env>/_stackrun/pins.json), every deploy and plan keeps the alias on that version "
        "(terraform sees no drift) and says so, and a newly deployed version is published but "
        "takes no traffic. Release the pin with `stackrun unpin <env> <function>`; the next "
        "deploy then moves live to the newest version. Acts as the deploy role, under the "
        "environment guard (it waits for a running deploy).",
        epilog="examples:\n"
        "  stackrun rollback prod list_devices          back to the version before live's\n"
        "  stackrun rollback dev list_devices --to 3    to version 3\n"
        "  stackrun unpin prod list_devices             release; the next deploy moves live",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_env_arguments(rollback)
    rollback.add_argument("function", help="a function of the environment (a folder of lambdas/)")
    rollback.add_argument(
        "--to",
        metavar="VERSION",
        help="the published version to move live to (default: the one before live's)",
    )
    _add_yes(rollback)

    unpin = commands.add_parser(
        "unpin",
        help="release a function's rollback pin (the next deploy moves live to the newest)",
        description="Release the pin `stackrun rollback` put on <function>. Nothing moves "
        "now: the next deploy moves the function's live alias to its newest published version.",
    )
    _add_env_arguments(unpin)
    unpin.add_argument("function", help="a function of the environment (a folder of lambdas/)")
    return parser


def emulator_dir(root: Path) -> Path:
    """The emulator's state (TLS files, pid, log): STACKRUN_EMULATOR_DIR or .stackrun/emulator."""
    override = os.environ.get("STACKRUN_EMULATOR_DIR")
    return Path(override).resolve() if override else cache_root(root) / "emulator"


def _port(args: argparse.Namespace, root: Path) -> int:
    if getattr(args, "port", None):
        return args.port
    if os.environ.get("STACKRUN_LOCAL_PORT"):
        return int(os.environ["STACKRUN_LOCAL_PORT"])
    return load_project(root).local_port


# The role each command acts as (config.ROLES); every other command acts as the deploy role.
COMMAND_ROLES = {"plan": "plan", "baseline": "admin"}


def _target(args: argparse.Namespace, root: Path) -> Target:
    role = COMMAND_ROLES.get(args.command, "deploy")
    if args.command == "plan" and getattr(args, "out", None):
        role = "deploy"  # the saved plan's provider settings are those it is applied with
    if not args.local:
        return Target(role=role)
    from stackrun.local.emulator import ensure_running

    emulator = ensure_running(emulator_dir(root), port=_port(args, root))
    return Target(endpoint=emulator.endpoint, ca_bundle=emulator.ca_bundle, role=role)


def _environment(args: argparse.Namespace, root: Path) -> Environment:
    return apply_overrides(load_environment(root, args.env), getattr(args, "set", []))


def _workspace(
    args: argparse.Namespace, root: Path, console=None, environment: Environment | None = None
) -> Workspace:
    environment = environment or _environment(args, root)
    target = _target(args, root)
    print(
        f"stackrun {args.command} {environment.name} -> "
        + (f"local emulator {target.endpoint}" if target.local else "AWS")
        + f", account {environment.account_id}, {environment.region}",
        file=console or sys.stdout,
        flush=True,
    )
    return Workspace(
        environment, target, console=console or sys.stdout, lock_timeout=args.lock_timeout
    )


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = find_repo_root()
    if args.command in ("deploy", "destroy", "plan", "bootstrap", "baseline", "output", "unlock"):
        interrupts.install()

    if args.command == "validate":
        if args.role and not args.env:
            raise StackrunError("validate --role needs an environment: validate <env> --role ...")
        if args.explain and not args.env:
            raise StackrunError("validate --explain needs an environment: validate --explain <env>")
        if args.stack and not args.explain:
            raise StackrunError(
                f"validate takes a stack with --explain: validate --explain {args.env} {args.stack}"
            )
        names = [args.env] if args.env else list_environments(root)
        for name in names:
            environment = load_environment(root, name)
            print(
                f"{name}: ok ({len(environment.stacks)} stacks, account {environment.account_id})"
            )
        if args.explain:  # `environment`: the one named (checked above)
            _explain(environment, args.stack)
        if args.role:
            print(load_environment(root, args.env).role_arn(args.role))
        if args.write_inputs:
            from stackrun.terraform.policy import write_stack_inputs

            for module_dir, var_file, skips in write_stack_inputs(root, Path(args.write_inputs)):
                print(f"{module_dir} {var_file} {skips or '-'}")
        return 0

    if args.command == "emulator":
        from stackrun.local.emulator import ensure_running, status, stop

        state_dir = emulator_dir(root)
        port = _port(args, root)
        if args.action == "start":
            emulator = ensure_running(state_dir, port=port)
            print(f"local AWS emulator: {emulator.endpoint} (CA bundle {emulator.ca_bundle})")
        elif args.action == "stop":
            from stackrun.local.api import process as api_process

            for name in api_process.stop_all(root):
                print(f"stopped the local API server of {name}")
            print("stopped the local AWS emulator" if stop(state_dir) else "emulator not running")
            # The databases behind the emulated RDS instances go with the emulator.
            from stackrun.local.postgres import stop_all

            for data_dir in stop_all(cache_root(root)):
                print(f"stopped local PostgreSQL {data_dir}")
        else:
            print(status(state_dir, port=port))
        return 0

    if args.command == "build":
        from stackrun.build import build_all

        artifacts = build_all(
            root,
            out_dir=artifact_dir(root, args.arch),
            architecture=args.arch,
            force=args.force,
            relock=args.relock,
            only=args.names or None,
        )
        rebuilt = sum(artifact.rebuilt for artifact in artifacts)
        print(
            f"{len(artifacts)} function(s), {rebuilt} rebuilt, in {artifact_dir(root, args.arch)}"
        )
        return 0

    if args.command == "testdb":
        from stackrun.local.postgres.for_tests import test_database_url

        print(test_database_url(cache_root(root) / "testdb"))
        return 0

    if args.command == "output":
        workspace = _workspace(args, root, console=sys.stderr)
        outputs = runner.collect_outputs(workspace)
        document = runner.outputs_document(outputs, args.show_sensitive)
        document["target"] = _target_document(workspace, outputs)
        text = json.dumps(document, indent=2, sort_keys=True)
        if args.output_file:
            Path(args.output_file).write_text(text + "\n")
        else:
            print(text)
        return 0

    if args.command == "serve":
        return _serve(args, root)

    if args.command == "token":
        from stackrun.aws.identity import fetch_token

        workspace = _workspace(args, root, console=sys.stderr)
        outputs = runner.collect_outputs(workspace, announce=False)
        client, token = fetch_token(workspace, outputs, args.client, args.scope)
        scopes = " ".join(args.scope) or "all of its scopes"
        print(f"access token of client {client!r} ({scopes}):", file=sys.stderr, flush=True)
        print(token, flush=True)
        return 0

    if args.command == "unlock" and not args.guard and not (args.stack and args.lock_id):
        raise StackrunError("unlock needs <stack> <id> (a state lock) or --guard <id>")
    if args.command in ("deploy", "destroy", "plan"):
        return _run_reported(args, root)
    environment = _environment(args, root)
    if args.command in ("baseline", "rollback"):
        confirm_protected(environment, args.command, args.yes)
    console = sys.stderr if args.command == "release" else None  # stdout: the record only
    workspace = _workspace(args, root, console=console, environment=environment)
    if args.command == "release":
        return _release(workspace, args.tested, args.junit_xml)
    elif args.command == "bootstrap":
        runner.bootstrap(workspace)
    elif args.command == "baseline":
        from stackrun.aws import baseline

        baseline.run(workspace)
    elif args.command == "rollback":
        from stackrun.release.rollback import rollback

        rollback(workspace, args.function, args.to)
    elif args.command == "unpin":
        from stackrun.release.rollback import unpin

        unpin(workspace, args.function)
    elif args.command == "unlock":
        if args.guard:
            return _unlock(workspace, args.guard, args.yes)
        from stackrun.deploy.unlock import force_unlock

        def confirm(question: str) -> bool:
            return args.yes or input(question).strip() == "yes"

        return 0 if force_unlock(workspace, args.stack, args.lock_id, confirm) else 1
    return 0


def _explain(environment: Environment, stack: str | None) -> None:
    """validate --explain: the merged settings of one stack (or every one), value by value."""
    from stackrun.config.defaults import explain

    names = [s.name for s in environment.stacks]
    if stack is not None and stack not in names:
        raise StackrunError(
            f"no stack {stack!r} in {environment.name}; its stacks: {', '.join(names)}"
        )
    explained = [explain(environment, name) for name in ([stack] if stack else names)]
    print("\n\n".join("\n".join(lines) for lines in explained))


def _run_reported(args: argparse.Namespace, root: Path) -> int:
    """deploy, destroy or plan, with the run report written (--report-file, --summary-file)
    whatever happens: after a failure it holds the failed stack, the rest and the error."""
    report = RunReport(args.command, args.env)
    try:
        environment = _environment(args, root)
        report.account_id = environment.account_id
        report.target = "local" if args.local else "aws"
        if args.command in ("deploy", "destroy"):
            confirm_protected(environment, args.command, args.yes)
        workspace = _workspace(args, root, environment=environment)
        return _run_command(args, workspace, report)
    except (StackrunError, Interrupted) as error:
        report.error = str(error)
        raise
    finally:
        report.write(args.report_file, args.summary_file)


def _run_command(args: argparse.Namespace, workspace: Workspace, report: RunReport) -> int:
    promotion = None
    if getattr(args, "promote_from", None):
        from dataclasses import replace

        from stackrun.release import promote

        promotion = promote.prepare(workspace, args.promote_from)
        workspace = replace(workspace, promotion=promotion)
    if args.command == "deploy":
        if args.parallelism < 1:
            raise StackrunError(f"--parallelism must be at least 1, got {args.parallelism}")
        if args.plan:
            if args.all or args.parallelism != 1:
                raise StackrunError(
                    "deploy --plan applies the saved plan as it is: no --all, no --parallelism"
                )
            runner.deploy_saved(workspace, Path(args.plan), report=report)
        else:
            runner.deploy(workspace, force=args.all, parallelism=args.parallelism, report=report)
        if promotion is not None:
            from stackrun.release import promote

            promote.verify(workspace, promotion)
            print(
                f"promoted: {workspace.environment.name} runs the zips live in {promotion.source}"
            )
        if workspace.target.local and not args.no_serve:
            _serve_after_deploy(workspace)
    elif args.command == "destroy":
        if args.lift_deletion_protection:
            workspace = _lift_deletion_protection(workspace)
        runner.destroy(workspace, report=report)
        if workspace.target.local:
            from stackrun.local.api import process as api_process

            api_process.stop_background(workspace)
    elif args.command == "plan":
        runner.plan(workspace, report=report, out=Path(args.out) if args.out else None)
        if args.detailed_exitcode and report.has_changes:
            return 2
    return 0


def _lift_deletion_protection(workspace: Workspace) -> Workspace:
    """Deploy the protected stacks with deletion_protection = false; the workspace to destroy."""
    from dataclasses import replace

    blocked = runner.deletion_protected_stacks(workspace)
    if not blocked:
        return workspace
    environment = workspace.environment
    overrides = []
    for name in blocked:
        if "deletion_protection" not in environment.stack(name).module.variables:
            raise StackrunError(
                f"{name}: deletion protection is on, and its module has no deletion_protection "
                "input to turn it off with; turn it off in the module's configuration first"
            )
        overrides.append(f"{name}.deletion_protection=false")
    print(
        f"lifting deletion protection first: deploy {', '.join(blocked)} "
        f"with --set {' --set '.join(overrides)}"
    )
    lifted = replace(workspace, environment=apply_overrides(environment, overrides))
    runner.deploy(lifted, only=list(blocked))
    return lifted


def _serve_after_deploy(workspace: Workspace) -> None:
    """Serve the deployed API locally and call it once, so the deploy ends with proof."""
    from stackrun.local.api import process as api_process

    urls = api_process.ensure_background(workspace)
    if not urls:
        return
    name = workspace.environment.name
    print(f"\nlocal API (detached; `nox -s serve -- {name}` runs it in the foreground):")
    for api_id, url in sorted(urls.items()):
        print(f"  {api_id}: {url}")
    api_process.smoke(workspace, urls)


def _serve(args: argparse.Namespace, root: Path) -> int:
    from stackrun.local.api import process as api_process
    from stackrun.local.emulator import running_pid

    if running_pid(emulator_dir(root)) is None:
        raise StackrunError(
            "the local AWS emulator is not running, so nothing is deployed locally: "
            f"deploy first with `nox -s deploy -- {args.env} --local`"
        )
    args.local, args.lock_timeout = True, None
    console = sys.stderr if args.background else sys.stdout
    workspace = _workspace(args, root, console=console)
    if args.stop:
        stopped = api_process.stop_background(workspace)
        print("stopped the local API server" if stopped else "no local API server running")
        return 0
    if args.background:
        urls = api_process.ensure_background(workspace)
        if not urls:
            raise StackrunError(f"no HTTP API is deployed in {args.env} locally")
        for api_id, url in sorted(urls.items()):
            print(f"{api_id} {url}")
        return 0
    return api_process.serve_foreground(workspace, args.api_port)


def _target_document(workspace: Workspace, outputs: dict[str, Any]) -> dict[str, Any]:
    """Where the environment is: account, endpoint and the URL to call each API stack on."""
    environment, target = workspace.environment, workspace.target
    served: dict[str, str] = {}
    if target.local:
        from stackrun.local.api import process as api_process

        served = api_process.running_urls(workspace)
    api_urls = {}
    for stack, stack_outputs in outputs.items():
        api_id = (stack_outputs.get("api_id") or {}).get("value")
        if api_id and "api_endpoint" in stack_outputs:  # a functions-only stack has no API
            url = served.get(api_id) if target.local else stack_outputs["api_endpoint"]["value"]
            if url:
                api_urls[stack] = url
    from stackrun.aws import baseline
    from stackrun.aws.identity import find_identity

    identity = find_identity(outputs)
    return {
        "environment": environment.name,
        "account_id": environment.account_id,
        "region": environment.region,
        "deploy_role_arn": environment.deploy_role_arn,
        "plan_role_arn": environment.plan_role_arn,
        "baseline": baseline.describe(environment),
        "aws_endpoint_url": target.endpoint,
        "ca_bundle": str(target.ca_bundle) if target.ca_bundle else None,
        "api_urls": api_urls,
        "identity": identity.document() if identity else None,
    }


def _release(workspace: Workspace, tested: str | None, junit_xml: str | None) -> int:
    from stackrun.release import releases

    environment = workspace.environment
    if tested is None:
        if junit_xml:
            raise StackrunError("--junit-xml goes with --tested passed|failed")
        release = releases.read(workspace.target, environment)
        if release is None:
            print(f"{environment.name} has no release record (not deployed yet)", file=sys.stderr)
            return 1
        print(json.dumps(release.document(), indent=2, sort_keys=True))
        return 0
    counts = releases.junit_counts(Path(junit_xml)) if junit_xml else None
    release = releases.record_tested(workspace.target, environment, tested, counts)
    print(
        f"release of {environment.name} (commit {release.commit[:12]}, deployed "
        f"{release.deployed_at}): integration tests {tested}"
        + (f" ({', '.join(f'{k} {v}' for k, v in counts.items())})" if counts else "")
    )
    return 0


def _unlock(workspace: Workspace, guard_id: str, yes: bool) -> int:
    from stackrun.deploy.guard import read_guard, release_guard

    environment = workspace.environment
    dynamodb = workspace.target.client(environment, "dynamodb")
    holder = read_guard(dynamodb, environment.backend.lock_table, environment.name)
    if not holder:
        print(f"environment {environment.name!r} holds no guard")
        return 0
    print(f"guard of {environment.name!r}: {holder}")
    if not yes and input("release it? type 'yes': ").strip() != "yes":
        print("left in place")
        return 1
    if release_guard(dynamodb, environment.backend.lock_table, environment.name, guard_id):
        print("released")
        return 0
    print(f"the guard's id is not {guard_id!r}; nothing released", file=sys.stderr)
    return 1


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
    sys.exit(code)
