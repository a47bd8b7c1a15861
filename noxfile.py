"""The one entry point: `nox -l` lists the sessions, `nox -s <session> -- --help` explains one.

Operations (each takes `-- <env> [--local] [options]`, see `nox -s deploy -- --help`):
    deploy, plan, destroy, output, token, release, bootstrap, baseline (administrator, once
    per account), validate, unlock, graph (an environment's stacks and what each consumes),
    affected (the environments and stacks a change touches, as JSON)
Local API:        serve (a locally deployed environment's API on 127.0.0.1), integration
                  (integration-tests/ against a deployed environment, AWS or --local),
                  e2e (deploy + integration + destroy of every environment, locally)
Local emulator:   emulator-start, emulator-stop, emulator-status
Checks:           doctor (the prerequisites; deploy and e2e run it first), lint, test-tools,
                  test-<lambda> per folder of lambdas/ (plain `nox` runs every check), testdb
                  (the PostgreSQL the lambda tests use)
Docs:             docs (the Inputs/Outputs sections of modules/*/README.md, from the modules;
                  dev's stack graph in docs/architecture.md, from `stackrun graph`)
Locks:            lock (rewrites constraints/*.txt and modules/.terraform.lock.hcl)

Every session installs through _install: pinned by a lock file of constraints/, and fails when
its virtualenv holds a distribution that lock does not pin.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nox

ROOT = Path(__file__).parent
MODULES = sorted(p for p in (ROOT / "modules").iterdir() if (p / "versions.tf").is_file())
TOOLS_PYTHON = "3.12"
LAMBDAS = sorted(p.name for p in (ROOT / "lambdas").iterdir() if (p / "pyproject.toml").is_file())
# The module README generator (a dev tool, not part of stackrun).
MODULE_DOCS = ROOT / "tools" / "docs" / "module_docs.py"
# The Python locks (`nox -s lock` writes them with uv pip compile): the tools sessions, the lint
# session's checkers (a virtualenv of their own: _lint_checkers), the lambda test sessions.
CONSTRAINTS = ROOT / "constraints"
TOOLS_LOCK = CONSTRAINTS / "tools.txt"
LINT_LOCK = CONSTRAINTS / "lint.txt"
LAMBDA_TESTS_LOCK = CONSTRAINTS / "lambda-tests.txt"
# nox and uv themselves, as CI and .ci/run install them (from constraints/nox.in)
NOX_LOCK = CONSTRAINTS / "nox.txt"
# The platforms the provider lock holds checksums of, when written from the registry.
PROVIDER_PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_arm64", "darwin_amd64")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "test-tools"]
nox.options.error_on_missing_interpreters = True


def _help(session: nox.Session, text: str) -> bool:
    """Answer `-- --help` for sessions that take no arguments of their own."""
    if "--help" in session.posargs or "-h" in session.posargs:
        print(text.strip())
        return True
    return False


# Installs write the bytecode of what they install, as pip does by default (uv does not).
# Where PYTHONDONTWRITEBYTECODE is set (it is on our CI machines) nothing imported is ever
# cached otherwise, and every stackrun process (the tests start hundreds) compiled boto3,
# botocore and stackrun again: about 0.7 s of CPU each (docs/performance.md).
COMPILED_INSTALL = {"UV_COMPILE_BYTECODE": "1"}


def _install(session: nox.Session, *requirements: str, locks: tuple[Path, ...]) -> None:
    """The one way sessions install: every version from `locks`, and nothing they do not pin."""
    session.install(
        *(arg for lock in locks for arg in ("-c", str(lock))), *requirements, env=COMPILED_INSTALL
    )
    _require_locked(session, "python", locks)


def _require_locked(session: nox.Session, python: str, locks: tuple[Path, ...]) -> None:
    """Fail the session when `python`'s virtualenv holds a distribution `locks` do not pin."""
    listing = session.run(
        python,
        "-c",
        "import importlib.metadata as m; "
        "print(*sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))",
        silent=True,
        external=True,
    )
    pinned = {pin for lock in locks for pin in _pins(lock)}
    local = _local_distributions()
    unpinned = [
        installed
        for installed in str(listing).split()
        if _normalise(installed) not in pinned and _normalise(installed).split("==")[0] not in local
    ]
    if unpinned:
        where = " or ".join(str(lock.relative_to(ROOT)) for lock in locks)
        session.error(
            f"installed but not pinned in {where}: {', '.join(unpinned)} "
            "(add it to pyproject.toml, then `nox -s lock`; or a virtualenv left by an older "
            f"session: `nox --no-reuse-existing-virtualenvs -s {session.name}`)"
        )


def _normalise(requirement: str) -> str:
    """`Name==1.0` as `name==1.0` (PEP 503 names), to compare installed and pinned."""
    import re

    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def _pins(lock: Path) -> set[str]:
    """The `name==version` pins of a constraints file (markers and comments dropped)."""
    lines = (line.split(";")[0].split("#")[0].strip() for line in lock.read_text().splitlines())
    return {_normalise(line) for line in lines if "==" in line}


def _local_distributions() -> set[str]:
    """The repository's own projects (installed from their folders, never from a lock)."""
    import tomllib

    projects = [
        ROOT / "pyproject.toml",
        *(ROOT / "lambdas" / name / "pyproject.toml" for name in LAMBDAS),
    ]
    names = (tomllib.loads(path.read_text())["project"]["name"] for path in projects)
    return {_normalise(name).removesuffix("==") for name in names}


def _install_tools(session: nox.Session, *extras: str, lock: Path = TOOLS_LOCK) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    _install(session, "-e", spec, locks=(lock,))
    # the editable install's own sources, which an install does not compile (COMPILED_INSTALL)
    session.run("python", "-m", "compileall", "-q", _relative(ROOT / "tools" / "stackrun"))


def _stackrun(session: nox.Session, command: str) -> None:
    _install_tools(session)
    session.run("stackrun", command, *session.posargs, external=False)


# ---- prerequisites ---------------------------------------------------------------------------

# A session whose Python (3.12) is not installed gets it downloaded by nox (uv python install)
# when it can be; `doctor` tries that first, and says what to do when it cannot.
# NOX_DOWNLOAD_PYTHON=never turns both off.
nox.options.download_python = "auto"

DOCTOR_HELP = """
nox -s doctor: check what a deploy needs, one line each, OK (with version and path) or MISSING
(with the command that fixes it); fails when a required one is missing. `deploy` and `e2e` run
it first (with their arguments), before any virtualenv is created.
  Python 3.12    the tools' sessions and the functions' runtime: found as nox finds it (PATH,
                 pyenv's active versions, uv's), else downloaded with `uv python install`
                 unless offline or NOX_DOWNLOAD_PYTHON=never
  terraform      the version live/project.toml asks for (`terraform.version`)
  PostgreSQL     initdb, pg_ctl, postgres: the lambda tests' database and --local's RDS (not
                 required for `-- <env> --skip-tests` or `--promote-from` without --local)
  AWS provider   hashicorp/aws at the version of modules/.terraform.lock.hcl: from your
                 TF_CLI_CONFIG_FILE, the provider mirror (STACKRUN_PROVIDER_MIRROR, holding
                 it for this platform), or registry.terraform.io when that can be reached
"""


@nox.session(python=False)
def doctor(session: nox.Session) -> None:
    """Check the prerequisites (Python 3.12, terraform, PostgreSQL, AWS provider): one line each."""
    if _help(session, DOCTOR_HELP):
        return
    sys.path.insert(0, str(ROOT / "tools"))  # stackrun's checks, before any virtualenv exists
    from stackrun.config import load_project
    from stackrun.doctor import missing, run_checks
    from stackrun.errors import StackrunError

    try:
        checks = run_checks(
            load_project(ROOT),
            sorted({TOOLS_PYTHON, LAMBDA_PYTHON}),
            _find_python,
            _python_download(),
            postgres_required="--local" in session.posargs or _runs_lambda_tests(session.posargs),
        )
    except StackrunError as error:
        session.error(str(error))
    for check in checks:
        print(check.line(), flush=True)
    absent = missing(checks)
    if absent:
        names = ", ".join(check.name for check in absent)
        session.error(f"missing: {names} (each MISSING line above says how to get it)")


def _find_python(version: str) -> str | None:
    """The interpreter nox creates a `python=version` session's virtualenv from: nox's own
    lookup (python-discovery: PATH, pyenv's active versions, uv's installs)."""
    from python_discovery import get_interpreter

    found = get_interpreter(version)
    return found.executable if found is not None else None


def _python_download() -> Callable[[str], bool] | None:
    """nox's download of a missing interpreter (`uv python install`), or None when nox would
    not download one (NOX_DOWNLOAD_PYTHON=never, or no uv)."""
    import os

    from nox.virtualenv import HAS_UV, uv_install_python

    setting = os.environ.get("NOX_DOWNLOAD_PYTHON") or nox.options.download_python
    if setting == "never" or not HAS_UV:
        return None

    def download(version: str) -> bool:
        print(f"python{version} not found: `uv python install {version}`, as nox would", flush=True)
        return uv_install_python(f"python{version}")

    return download


def _runs_lambda_tests(arguments: list[str]) -> bool:
    """Whether `deploy -- <arguments>` runs every lambda's tests first (not for --help,
    --skip-tests, or --promote-from, which deploys zips tested elsewhere)."""
    promoted = any(arg.split("=")[0] == "--promote-from" for arg in arguments)
    skipped = {"--help", "-h", "--skip-tests"} & set(arguments)
    return not promoted and not skipped


# ---- operations ------------------------------------------------------------------------------


@nox.session(python=TOOLS_PYTHON, requires=["doctor"])
def deploy(session: nox.Session) -> None:
    """Test the lambdas, then deploy: `nox -s deploy -- <env> [--local] [--skip-tests]
    [--plan DIR] [--promote-from ENV] [--report-file PATH] [--summary-file PATH]` (see
    `stackrun deploy --help`; --plan DIR applies exactly the plans `plan --out DIR` saved, or
    refuses; --promote-from ENV: no build, no lambda tests; ENV's tested zips are deployed).
    `doctor` runs first."""
    arguments = [arg for arg in session.posargs if arg != "--skip-tests"]
    if _runs_lambda_tests(session.posargs):
        # What is deployed was tested first: every lambda's test session (the build happens in
        # stackrun deploy itself, cached by input hash).
        session.run("nox", "-s", *(f"test-{name}" for name in LAMBDAS), external=True)
    _install_tools(session)
    session.run("stackrun", "deploy", *arguments)


@nox.session(python=TOOLS_PYTHON)
def plan(session: nox.Session) -> None:
    """Plan an environment: `nox -s plan -- <env> [--local] [--detailed-exitcode] [--out DIR]
    [--report-file PATH] [--summary-file PATH]` (see `stackrun plan --help`; --out DIR saves
    the plans and their manifest for `deploy --plan DIR`). With --detailed-exitcode the session
    exits 2 when a stack has changes, as stackrun does (nox alone would fold it into 1)."""
    try:
        _stackrun(session, "plan")
    except nox.command.CommandFailed as failed:
        if failed.return_code != 2 or "--detailed-exitcode" not in session.posargs:
            raise
        session.log("stackrun plan exited 2: changes (--detailed-exitcode); so does nox")
        raise SystemExit(2) from None


@nox.session(python=TOOLS_PYTHON)
def destroy(session: nox.Session) -> None:
    """Destroy an environment's stacks in reverse order: `nox -s destroy -- <env> [--local]
    [--report-file PATH] [--summary-file PATH]`."""
    _stackrun(session, "destroy")


@nox.session(python=TOOLS_PYTHON)
def output(session: nox.Session) -> None:
    """Print all stacks' outputs as JSON: `nox -s output -- <env> [--local]`."""
    _stackrun(session, "output")


@nox.session(python=TOOLS_PYTHON)
def release(session: nox.Session) -> None:
    """An environment's release record: `nox -s release -- <env> [--local]`, or record a test
    result: `-- <env> --tested passed|failed [--junit-xml PATH]`."""
    _stackrun(session, "release")


@nox.session(python=TOOLS_PYTHON)
def token(session: nox.Session) -> None:
    """An access token for an environment's API, as the last line of the output:
    `nox -s token -- <env> [--local] [--client NAME] [--scope SCOPE ...]`."""
    _stackrun(session, "token")


@nox.session(python=TOOLS_PYTHON)
def serve(session: nox.Session) -> None:
    """Serve a locally deployed API on 127.0.0.1: `nox -s serve -- <env> [--api-port N]`."""
    _stackrun(session, "serve")


INTEGRATION_HELP = """
nox -s integration -- <env> [--local] [pytest arguments]
Runs integration-tests/ (black-box) against the deployed <env>: the API URL, AWS endpoint and
account come from `stackrun output <env> [--local]`. With --local the environment's local API
server is started first when it does not run. Extra arguments go to pytest (e.g. -k pagination).
Then `stackrun release <env> --tested passed|failed` records the result (with pytest's counts)
in <env>'s release record, for the release live now; `deploy --promote-from <env>` promotes
only a passed one.
"""


@nox.session(python=TOOLS_PYTHON)
def integration(session: nox.Session) -> None:
    """Black-box tests of a deployed environment: `nox -s integration -- <env> [--local]`."""
    if _help(session, INTEGRATION_HELP):
        return
    if not session.posargs:
        session.error("which environment? nox -s integration -- <env> [--local]")
    env, rest = session.posargs[0], list(session.posargs[1:])
    _install_tools(session)
    _run_integration(session, env, "--local" in rest, [arg for arg in rest if arg != "--local"])


def _run_integration(session: nox.Session, env: str, local: bool, pytest_args: list[str]) -> None:
    from nox.command import CommandFailed

    _install_tools(session, "dev")
    target_file = Path(session.create_tmp()) / f"target-{env}.json"
    for name, command, extra_env in _integration_steps(env, local, target_file, pytest_args):
        try:
            session.run(*command, env=extra_env)
        except CommandFailed:
            if name == "integration":  # the failure is recorded, then fails the session
                session.run(*_release_command(env, local, target_file, passed=False))
            raise
    session.run(*_release_command(env, local, target_file, passed=True))


def _junit_file(target_file: Path) -> Path:
    return target_file.with_name(target_file.stem + ".junit.xml")


def _integration_steps(
    env: str, local: bool, target_file: Path, pytest_args: list[str]
) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, command, extra environment) of an integration run against a deployed env:
    the local API server (with --local), the target document, then pytest (its result is
    recorded by _release_command)."""
    where = ["--local"] if local else []
    serve = [("serve", ["stackrun", "serve", env, "--background"], {})] if local else []
    junit = _junit_file(target_file)
    junit.unlink(missing_ok=True)
    return [
        *serve,
        ("output", ["stackrun", "output", env, *where, "--output-file", str(target_file)], {}),
        (
            "integration",
            ["pytest", str(ROOT / "integration-tests"), f"--junitxml={junit}", *pytest_args],
            {"FLEET_TARGET_FILE": str(target_file)},
        ),
    ]


def _release_command(env: str, local: bool, target_file: Path, passed: bool) -> list[str]:
    """`stackrun release <env> --tested ...`: the integration result into env's release record
    (with pytest's counts when it wrote its report)."""
    junit = _junit_file(target_file)
    return [
        "stackrun",
        "release",
        env,
        *(["--local"] if local else []),
        "--tested",
        "passed" if passed else "failed",
        *(["--junit-xml", str(junit)] if junit.is_file() else []),
    ]


E2E_ENVIRONMENTS = sorted(p.parent.name for p in (ROOT / "live").glob("*/env.toml"))
E2E_HELP = f"""
nox -s e2e [-- <env> ...]: for each environment (default: {" ".join(E2E_ENVIRONMENTS)}), in
the local emulator: deploy (ending with the local API's smoke call), run integration-tests/,
record the result in the release record, then destroy (lifting deletion protection first, as
`destroy --lift-deletion-protection` does). The environments run side by side (each in its own
emulated account). An environment whose env.toml says `promote_from = "<source>"` (prod: stage)
is deployed as a release would be when the source runs too: the stacks that deploy no
function first, while the source is deployed and tested; then, once the source's integration
tests passed and were recorded, a deploy with `--promote-from <source>` (the source's tested
zips, no rebuild; what was deployed before is skipped). e2e then checks that its live zips'
sha256 equal the source's; the source is destroyed only after that. Each environment's output
goes to .nox/e2e/tmp/<env>.log and a line per step is printed. Any failing step fails the
session (the failed environment is left deployed for inspection; `nox -s emulator-stop` clears
everything). Part of plain `nox` (CI).
"""


@nox.session(python=TOOLS_PYTHON, requires=["doctor"])
def e2e(session: nox.Session) -> None:
    """Deploy, integration-test and destroy every environment locally: `-- [<env> ...]`."""
    if _help(session, E2E_HELP):
        return
    _install_tools(session, "dev")
    from concurrent.futures import ThreadPoolExecutor

    environments = session.posargs or E2E_ENVIRONMENTS
    tmp = Path(session.create_tmp()).resolve()
    gates = _E2EGates(environments, _function_stacks(session, environments))
    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        results = list(
            pool.map(lambda env: _e2e_environment(session, env, tmp, gates), environments)
        )
    failed = [env for env, ok in zip(environments, results, strict=True) if not ok]
    if failed:
        session.error(f"e2e failed for {', '.join(failed)} (logs: {tmp}/<env>.log)")


class _E2EGates:
    """Who waits for whom when environments promote from one another in one e2e run: the
    target's deploy waits for its source's recorded test result, the source's destroy for the
    target's deploy (which reads the source's live zips)."""

    def __init__(self, environments: list[str], function_stacks: dict[str, list[str]]) -> None:
        import threading
        import tomllib

        # the stacks that deploy functions (the promoted zips), per environment
        self.function_stacks = function_stacks
        self.source_of: dict[str, str] = {}
        for env in environments:
            settings = tomllib.loads((ROOT / "live" / env / "env.toml").read_text())
            if settings.get("promote_from") in environments:
                self.source_of[env] = settings["promote_from"]
        self.tested = {env: threading.Event() for env in environments}
        self.passed: dict[str, bool] = {}
        self.taken = {env: threading.Event() for env in environments}

    def targets_of(self, env: str) -> list[str]:
        return [target for target, source in self.source_of.items() if source == env]

    def release_tested(self, env: str, passed: bool) -> None:
        self.passed.setdefault(env, passed)
        self.tested[env].set()

    def promoted(self, target: str) -> None:
        self.taken[target].set()


def _function_stacks(session: nox.Session, environments: list[str]) -> dict[str, list[str]]:
    """env -> its stacks that deploy functions, as stackrun reads live/."""
    import json

    listing = session.run(
        "python",
        "-c",
        "import json, sys; from pathlib import Path; "
        "from stackrun.config import load_environment; "
        "print(json.dumps({env: [stack.name for stack in "
        "load_environment(Path('.').resolve(), env).stacks if stack.functions] "
        "for env in sys.argv[1:]}))",
        *environments,
        silent=True,
    )
    return json.loads(str(listing).strip().splitlines()[-1])


def _e2e_environment(session: nox.Session, env: str, tmp: Path, gates: _E2EGates) -> bool:
    """deploy -> integration tests -> destroy of one environment; True when all passed."""
    try:
        return _e2e_steps(session, env, tmp, gates)
    finally:  # whatever happened: nobody waits for this environment any longer
        gates.release_tested(env, False)
        gates.promoted(env)


def _e2e_steps(session: nox.Session, env: str, tmp: Path, gates: _E2EGates) -> bool:
    import json
    import os
    import subprocess
    import time

    bin_dir = Path(session.bin)
    environ = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    environ["VIRTUAL_ENV"] = str(bin_dir.parent)
    target_file = tmp / f"target-{env}.json"
    source = gates.source_of.get(env)
    promote = ["--promote-from", source] if source else []
    # What takes no function (the network, the database) is deployed while the source's
    # tests run: the promoted deploy then skips it (its fingerprint holds) and applies the rest
    exclude = [arg for stack in gates.function_stacks[env] for arg in ("--exclude", stack)]
    infrastructure = ["stackrun", "deploy", env, "--local", "--yes", *exclude]
    steps = [
        *([("infrastructure", infrastructure, {})] if source and exclude else []),
        ("deploy", ["stackrun", "deploy", env, "--local", "--yes", *promote], {}),
        *_integration_steps(env, True, target_file, ["-p", "no:cacheprovider"]),
        ("release", _release_command(env, True, target_file, passed=True), {}),
        (
            "destroy",
            ["stackrun", "destroy", env, "--local", "--yes", "--lift-deletion-protection"],
            {},
        ),
    ]
    log_file = tmp / f"{env}.log"
    with log_file.open("w") as log:

        def run(
            command: list[str], extra: dict[str, str], capture: bool = False
        ) -> subprocess.CompletedProcess:
            log.write(f"\n$ {' '.join(command)}\n")
            log.flush()
            return subprocess.run(
                command,
                cwd=ROOT,
                env={**environ, **extra},
                stdout=subprocess.PIPE if capture else log,
                stderr=subprocess.STDOUT if not capture else log,
                text=True,
                check=False,
            )

        def live_zips(of: str) -> dict[str, str]:
            """function -> sha256 of the zip live in `of` (its release record)."""
            result = run(["stackrun", "release", of, "--local"], {}, capture=True)
            log.write(result.stdout)
            if result.returncode != 0:
                return {}
            functions = json.loads(result.stdout)["functions"]
            return {key: function["sha256"] for key, function in functions.items()}

        def say(text: str) -> None:
            log.write(f"{text}\n")
            log.flush()
            session.log(f"e2e {env}: {text}")

        for name, command, extra in steps:
            if name == "deploy" and source:
                say(f"waiting for {source}'s integration tests to promote its zips")
                gates.tested[source].wait()
                if not gates.passed.get(source):
                    say(f"not promoted: {source} did not pass its integration tests")
                    return False
            if name == "destroy":
                for target in gates.targets_of(env):
                    say(f"waiting for {target} to take this release before destroying")
                    gates.taken[target].wait()
            started = time.monotonic()
            if name == "release":  # with the report pytest has written by now
                command = _release_command(env, True, target_file, passed=True)
            result = run(command, extra)
            if name == "deploy":
                gates.promoted(env)
            if name == "integration" and result.returncode != 0:  # recorded, then fails
                run(_release_command(env, True, target_file, passed=False), {})
            if name == "release":
                gates.release_tested(env, result.returncode == 0)
            seconds = time.monotonic() - started
            status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
            say(f"{name} {status} in {seconds:.0f}s")
            if result.returncode != 0:
                tail = log_file.read_text(errors="replace").splitlines()[-40:]
                print("\n".join(f"  {env} | {line}" for line in tail), flush=True)
                return False
            if name == "deploy" and source:
                mine, theirs = live_zips(env), live_zips(source)
                if not mine or mine != theirs:
                    say(f"live zips differ from {source}'s: {env} {mine}, {source} {theirs}")
                    return False
                say(
                    f"live zips equal {source}'s tested ones (sha256 "
                    + ", ".join(f"{key} {sha[:12]}" for key, sha in sorted(mine.items()))
                    + ")"
                )
    # The integration summary line, for the CI log.
    summary = [
        line
        for line in log_file.read_text(errors="replace").splitlines()
        if " passed" in line and line.startswith("=")
    ]
    session.log(f"e2e {env}: {summary[-1] if summary else 'done'}")
    return True


BENCH_HELP = """
nox -s bench [-- --env dev --runs 3 --cold-runs 1 --cases ... --json figures.json --keep]
stackrun deploy against the plain terraform loop (init + apply per stack folder) on the local
emulator: cold (and its floor, the provider's waits), repeat, fresh (a repeat from a fresh
copy), plan (sequential against parallel), one changed input, one changed lambda (and its
floor, the stack's own terraform apply); median wall times, ratios against targets, peak
memory; then per function the zip size, build time and handler import time; then (case
localapi, alone: `-- --cases localapi`, about 2 minutes) the local API under 1 and 8 clients.
See docs/performance.md. Takes about 20 minutes; not part of plain `nox`.
"""


@nox.session(python=TOOLS_PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark deploy against a plain terraform loop: `-- [--runs N] [--json PATH]`."""
    if _help(session, BENCH_HELP):
        return
    _install_tools(session)
    session.run("python", str(ROOT / "benchmarks" / "deploy_bench.py"), *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def bootstrap(session: nox.Session) -> None:
    """Create or re-apply the state backend only: `nox -s bootstrap -- <env> [--local]`."""
    _stackrun(session, "bootstrap")


@nox.session(python=TOOLS_PYTHON)
def baseline(session: nox.Session) -> None:
    """Apply an account's baseline (OIDC provider, deploy and plan roles) with administrator
    credentials, once per account: `nox -s baseline -- <env> [--local] [--yes]`."""
    _stackrun(session, "baseline")


@nox.session(python=TOOLS_PYTHON)
def validate(session: nox.Session) -> None:
    """Validate live/ without running anything: `nox -s validate [-- <env>] [--role plan|deploy]`
    (`--role`: print that role's ARN last, for CI); `-- --explain <env> [<stack>]` prints each
    stack's merged settings with the file each comes from (live/_defaults/ or the env's)."""
    _stackrun(session, "validate")


@nox.session(python=TOOLS_PYTHON)
def graph(session: nox.Session) -> None:
    """Print an environment's stacks, their modules and the outputs each consumes from which:
    `nox -s graph -- <env> [--format text|dot|mermaid]`."""
    _stackrun(session, "graph")


@nox.session(python=TOOLS_PYTHON)
def affected(session: nox.Session) -> None:
    """JSON of the environments and stacks whose inputs changed since a commit:
    `nox -s affected [-- --since REF]` (default: the merge base with main; CI's plan matrix)."""
    _stackrun(session, "affected")


@nox.session(python=TOOLS_PYTHON)
def rollback(session: nox.Session) -> None:
    """Move a function's live alias back one version (or `--to N`) in seconds, and pin it:
    `nox -s rollback -- <env> <function> [--to N] [--local]`."""
    _stackrun(session, "rollback")


@nox.session(python=TOOLS_PYTHON)
def unpin(session: nox.Session) -> None:
    """Release a rollback's pin; the next deploy moves live to the newest version:
    `nox -s unpin -- <env> <function> [--local]`."""
    _stackrun(session, "unpin")


@nox.session(python=TOOLS_PYTHON)
def unlock(session: nox.Session) -> None:
    """Release a lock left by a killed run: `-- <env> <stack> <id> [--local]` (a state lock)
    or `-- <env> --guard <id> [--local]` (the environment guard); asks for confirmation."""
    _stackrun(session, "unlock")


@nox.session(python=TOOLS_PYTHON)
def tf(session: nox.Session) -> None:
    """Any terraform command in one stack's working dir, with the environment's role, backend
    and inputs: `nox -s tf -- <env> <stack> [--local] -- state list` (nox passes the second
    `--` on; state-writing commands take the environment guard, apply/destroy are refused)."""
    _stackrun(session, "tf")


@nox.session(name="emulator-start", python=TOOLS_PYTHON)
def emulator_start(session: nox.Session) -> None:
    """Start the local AWS emulator (moto over HTTPS on 127.0.0.1): `-- [--port N]`."""
    _install_tools(session)
    session.run("stackrun", "emulator", "start", *session.posargs)


@nox.session(name="emulator-stop", python=TOOLS_PYTHON)
def emulator_stop(session: nox.Session) -> None:
    """Stop the local AWS emulator: `-- [--port N]`."""
    _install_tools(session)
    session.run("stackrun", "emulator", "stop", *session.posargs)


@nox.session(name="emulator-status", python=TOOLS_PYTHON)
def emulator_status(session: nox.Session) -> None:
    """Show whether the local AWS emulator runs: `-- [--port N]`."""
    _install_tools(session)
    session.run("stackrun", "emulator", "status", *session.posargs)


# ---- checks ----------------------------------------------------------------------------------

DOCS_HELP = """
nox -s docs [-- <module dir> ...]: rewrite the generated part of each modules/<name>/README.md
(between <!-- BEGIN_TF_DOCS --> and <!-- END_TF_DOCS -->): the Inputs table (name, description,
type, default, required, validation messages) from the module's variable blocks and the Outputs
table (name, description, sensitive) from its output blocks, read with python-hcl2. The rest
of the README is written by hand. Without arguments also dev's stack graph in
docs/architecture.md (between <!-- BEGIN_STACK_GRAPH --> and <!-- END_STACK_GRAPH -->):
`stackrun graph dev --format mermaid`. `nox -s lint` fails while either is stale.
"""


def _module_docs_requirement() -> str:
    """The parser the README generator needs: its entry of pyproject.toml's dev extra."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = project["optional-dependencies"]["dev"]
    return next(requirement for requirement in dev if requirement.startswith("python-hcl2"))


@nox.session(python=TOOLS_PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate the Inputs/Outputs sections of modules/*/README.md from the modules, and the
    stack graph of docs/architecture.md (stackrun graph)."""
    if _help(session, DOCS_HELP):
        return
    _install_tools(session)  # stackrun graph, for docs/architecture.md's stack graph
    _install(session, _module_docs_requirement(), locks=(TOOLS_LOCK,))
    session.run("python", str(MODULE_DOCS), *session.posargs)


LINT_HELP = """
nox -s lint: ruff (lint + format check) on the Python code, mypy --strict ([tool.mypy] of
pyproject.toml) over tools/stackrun and over each lambdas/<name>/src (with the local packages it
imports on MYPYPATH), the modules' READMEs against their variables and outputs and
docs/architecture.md's stack graph against live/ (`nox -s docs`
rewrites them), `terraform fmt -check` on modules/,
`terraform init -backend=false` + `terraform validate` + `terraform test` (mock provider) in
every module (with modules/.terraform.lock.hcl, read-only), check-jsonschema + zizmor on
.github/workflows and .github/dependabot.yml, and checkov over modules/ and
over each stack of live/ (its module with the stack's inputs; a check that does not apply to an
environment is skipped in that stack.toml's [policy.skip] with its reason). No failed check may
stay unsuppressed. No arguments.
Providers come from STACKRUN_PROVIDER_MIRROR or your TF_CLI_CONFIG_FILE (see README).
"""


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy, module READMEs up to date, terraform fmt/validate/test, workflow checks,
    checkov."""
    if _help(session, LINT_HELP):
        return
    _install(session, "ruff", locks=(TOOLS_LOCK,))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    _typecheck(session)  # installs the tools too: `stackrun graph` for docs/architecture.md
    _install(session, _module_docs_requirement(), locks=(TOOLS_LOCK,))
    session.run("python", str(MODULE_DOCS), "--check")
    terraform = shutil.which("terraform")
    if terraform is None:
        session.error("terraform is not on PATH")
    env, provider_lock = _terraform_env(session)
    session.run(
        terraform, "fmt", "-check", "-recursive", "-diff", "modules", external=True, env=env
    )
    module_checks = {}
    for module in MODULES:
        # the same provider selections as the stacks (git ignores the copy)
        shutil.copyfile(provider_lock, module / provider_lock.name)
        init = ["init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"]
        steps = [init, ["validate", "-no-color"]]
        if (module / "tests").is_dir():
            # terraform test with mock_provider: the module's secure defaults, offline
            steps.append(["test", "-no-color"])
        module_checks[f"terraform validate modules/{module.name}"] = [
            [terraform, f"-chdir={module}", *step] for step in steps
        ]
    _side_by_side(session, module_checks, env={**os.environ, **env})
    # The CI workflow: GitHub's workflow schema (vendored, offline) and zizmor's security audit.
    checkers = _lint_checkers(session)
    check_jsonschema = [str(checkers / "check-jsonschema"), "--builtin-schema"]
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    session.run(*check_jsonschema, "vendor.github-workflows", *workflows, external=True)
    dependabot = str(ROOT / ".github" / "dependabot.yml")
    session.run(*check_jsonschema, "vendor.dependabot", dependabot, external=True)
    session.run(str(checkers / "zizmor"), "--offline", ".github/", external=True)
    # Policy scan: every failed check must be fixed or suppressed next to the resource with a
    # written reason (`#checkov:skip=CKV_...: why`). --skip-download: no network needed.
    checkov = [
        str(checkers / "checkov"),
        "--framework=terraform",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    scans = {"checkov: modules": [[*checkov, "--directory", "modules"]]}
    # ... and each stack as its environment deploys it: the module with the stack's inputs.
    # A check that does not apply to one environment is skipped in its stack.toml
    # ([policy.skip] CHECK_ID = "why"), next to the inputs that make it fail.
    inputs_dir = Path(session.create_tmp()) / "stack-inputs"
    listing = session.run("stackrun", "validate", "--write-inputs", str(inputs_dir), silent=True)
    for line in str(listing).splitlines():
        if ".tfvars.json" not in line:
            continue
        module_dir, var_file, skips = line.split()
        skip = ["--skip-check", skips] if skips != "-" else []
        scans[f"checkov: {Path(module_dir).name} with {Path(var_file).name}"] = [
            [*checkov, "--directory", module_dir, "--var-file", var_file, *skip]
        ]
    _side_by_side(session, scans)


def _side_by_side(
    session: nox.Session, checks: dict[str, list[list[str]]], env: dict[str, str] | None = None
) -> None:
    """Independent checks, one per CPU at once (each of lint's is one process on one core):
    a check's commands one after another, stopping at the first that fails. Each check's
    output is printed whole, under its name, as it ends; the session fails after every check
    ended, naming the failed ones."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def run(name: str) -> tuple[str, bool, str]:
        output = []
        for command in checks[name]:
            result = subprocess.run(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            output.append(f"$ {' '.join(command)}\n{result.stdout}")
            if result.returncode != 0:
                return name, False, "".join(output) + f"(exit {result.returncode})\n"
        return name, True, "".join(output)

    failed = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, passed, output in pool.map(run, checks):
            session.log(f"{name}: {'ok' if passed else 'FAILED'}")
            print(output, end="", flush=True)
            if not passed:
                failed.append(name)
    if failed:
        session.error(f"failed: {', '.join(failed)}")


def _typecheck(session: nox.Session) -> None:
    """mypy --strict over tools/stackrun, then over each lambdas/<name>/src with the local
    packages it imports (_local_packages) on MYPYPATH; their third-party imports, mypy and the
    stubs come from pyproject.toml's typecheck extra (constraints/tools.txt)."""
    import os

    _install_tools(session, "typecheck")
    session.run("mypy", "tools/stackrun")
    for name in LAMBDAS:
        *libraries, _ = _local_packages(name)
        path = os.pathsep.join(_relative(ROOT / "lambdas" / folder / "src") for folder in libraries)
        session.log(f"mypy lambdas/{name}/src (MYPYPATH={path})")
        session.run("mypy", f"lambdas/{name}/src", env={"MYPYPATH": path})


def _lint_requirements() -> list[str]:
    """pyproject.toml's lint extra: the checkers of `nox -s lint`."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["optional-dependencies"]["lint"]


def _lint_checkers(session: nox.Session) -> Path:
    """The bin folder of a virtualenv next to the session's holding checkov, check-jsonschema and
    zizmor (constraints/lint.txt). Not the session's own: checkov's bc-python-hcl2 installs the
    same `hcl2` package as python-hcl2, which stackrun and the README generator parse with, and
    checkov pins an older boto3 than stackrun's."""
    location = Path(session.virtualenv.location)
    venv = location.with_name(location.name + "-checkers")
    python = venv / "bin" / "python"
    if not python.is_file():
        session.run(
            "uv",
            "venv",
            "--quiet",
            "--python",
            str(Path(session.bin) / "python"),
            str(venv),
            external=True,
        )
    session.run(
        "uv",
        "pip",
        "install",
        "--python",
        str(python),
        "-c",
        str(LINT_LOCK),
        *_lint_requirements(),
        external=True,
        env=COMPILED_INSTALL,  # checkov compiled its 5,700 modules again on every one of its runs
    )
    _require_locked(session, str(python), (LINT_LOCK,))
    return python.parent


def _terraform_env(session: nox.Session) -> tuple[dict[str, str], Path]:
    """The same provider settings stackrun uses (mirror or the user's CLI config), and the
    repository's provider lock file (stackrun.terraform.provider_lock)."""
    code = (
        "import json; from pathlib import Path; "
        "from stackrun.config import load_project; from stackrun.paths import cache_root; "
        "from stackrun.terraform import cli_config_env, provider_lock; r = Path('.').resolve(); "
        "print(json.dumps([cli_config_env(cache_root(r), load_project(r).provider_mirror), "
        "str(provider_lock(r))]))"
    )
    text = session.run("python", "-c", code, silent=True)
    import json

    env, lock = json.loads(str(text).strip().splitlines()[-1])
    return env, Path(lock)


LOCK_HELP = """
nox -s lock [-- --upgrade]: rewrite the lock files from their sources (commit what changed).
  constraints/tools.txt         uv pip compile of pyproject.toml with its dev and typecheck extras
  constraints/lint.txt          of its lint extra alone (lint's checkers, in their own venv)
  constraints/nox.txt           of constraints/nox.in: nox and uv, as CI and .ci/run install them
  constraints/lambda-tests.txt  of every lambdas/*/pyproject.toml with its test extra, within
                                the pins the functions' zips ship (lambdas/*/requirements.lock)
  modules/.terraform.lock.hcl   terraform providers lock in modules/ (the version of
                                modules/providers.tf), read-only for every stack and module test
uv keeps the versions the files pin unless `--upgrade`. Provider checksums: from the provider
mirror when STACKRUN_PROVIDER_MIRROR (or the project's provider_mirror) is set, for the
platforms it holds (an unpacked mirror gives h1: checksums only); otherwise from the registry,
for linux and darwin on amd64 and arm64. Checksums already in the file are kept.
"""


@nox.session(python=TOOLS_PYTHON)
def lock(session: nox.Session) -> None:
    """Rewrite constraints/*.txt and modules/.terraform.lock.hcl: `-- [--upgrade]`."""
    if _help(session, LOCK_HELP):
        return
    upgrade = ["--upgrade"] if "--upgrade" in session.posargs else []
    compile_command = [
        *("uv", "pip", "compile", "--universal", "--quiet", *upgrade),
        *("--custom-compile-command", "nox -s lock"),
    ]
    session.run(
        *compile_command,
        *("--python-version", TOOLS_PYTHON, "pyproject.toml"),
        *("--extra", "dev", "--extra", "typecheck"),
        *("-o", str(TOOLS_LOCK.relative_to(ROOT))),
        external=True,
    )
    session.run(
        *compile_command,
        *("--python-version", "3.11", _relative(NOX_LOCK.with_suffix(".in"))),
        *("-o", _relative(NOX_LOCK)),
        external=True,
    )
    _compile_stdin(
        session,
        [*compile_command, "--python-version", TOOLS_PYTHON, "-", "-o", _relative(LINT_LOCK)],
        _lint_requirements(),
    )
    # The lambdas are local projects: uv resolves them from their folders (stdin), and leaves
    # them out of the file; the functions' requirements.lock bound the third-party versions.
    shipped = sorted(ROOT.glob("lambdas/*/requirements.lock"))
    command = [
        *compile_command,
        *("--python-version", LAMBDA_PYTHON, "-"),
        *(arg for path in shipped for arg in ("-c", _relative(path))),
        *(arg for name in sorted(_local_distributions()) for arg in ("--no-emit-package", name)),
        *("-o", _relative(LAMBDA_TESTS_LOCK)),
    ]
    _compile_stdin(session, command, [f"-e lambdas/{name}[test]" for name in LAMBDAS])
    _install_tools(session)
    _lock_providers(session)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _compile_stdin(session: nox.Session, command: list[str], requirements: list[str]) -> None:
    """uv pip compile of requirements given on stdin (nox's session.run has no input)."""
    import subprocess

    session.log(" ".join(command))
    subprocess.run(command, input="\n".join(requirements) + "\n", text=True, cwd=ROOT, check=True)


def _lock_providers(session: nox.Session) -> None:
    """`terraform providers lock` in modules/ (from the mirror, or the registry)."""
    code = (
        "import os; from pathlib import Path; from stackrun.config import load_project; "
        "from stackrun.terraform import MIRROR_VARIABLE, provider_lock; r = Path('.').resolve(); "
        "print(os.environ.get(MIRROR_VARIABLE) or load_project(r).provider_mirror or '-', "
        "provider_lock(r))"
    )
    mirror_value, lock_file = str(session.run("python", "-c", code, silent=True)).split()
    if mirror_value == "-":
        source, platforms = [], PROVIDER_PLATFORMS
    else:
        mirror = Path(mirror_value).resolve()
        source = [f"-fs-mirror={mirror}"]
        # registry.terraform.io/<namespace>/<type>/<version>/<os_arch>
        platforms = sorted({path.name for path in mirror.glob("*/*/*/*/*") if path.is_dir()})
    terraform = shutil.which("terraform") or session.error("terraform is not on PATH")
    session.run(
        terraform,
        f"-chdir={Path(lock_file).parent}",
        "providers",
        "lock",
        *source,
        *(f"-platform={platform}" for platform in platforms),
        external=True,
    )


TEST_TOOLS_HELP = """
nox -s test-tools [-- <pytest args>]: the stack runner's own tests (tools/tests). Unit tests of
discovery, validation and rendering, and tests that run the real terraform against the local
emulator (marked `terraform`; `-- -m "not terraform"` runs only the fast ones).
"""


@nox.session(name="test-tools", python=TOOLS_PYTHON)
def test_tools(session: nox.Session) -> None:
    """The stack runner's tests (tools/tests): `-- <pytest args>`."""
    if _help(session, TEST_TOOLS_HELP):
        return
    _install_tools(session, "dev")
    # Two workers per core (each with its own emulator): a deploy test leaves its core idle
    # while the provider sleeps in its waiters (RDS, Lambda's 5 s after a code update), and a
    # second worker fills that (2 cores: 34 minutes with 2 workers on an idle machine, 29 with
    # 4 beside other work). worksteal lets idle workers take queued tests; the tests' conftest
    # orders them so each worker starts with its share of the longest (the dev journey takes
    # 13 minutes: started late, it ended the run alone). `-- -n 0`: one by one.
    workers = str(2 * (os.cpu_count() or 1))
    session.run("pytest", "-n", workers, "--dist", "worksteal", "tools/tests", *session.posargs)


# ---- lambdas: one test session per folder of lambdas/, found at load time -----------------


@nox.session(python=TOOLS_PYTHON)
def build(session: nox.Session) -> None:
    """Build dist/lambdas/<name>.zip for every function: `-- [names] [--force] [--relock]`."""
    _stackrun(session, "build")


LAMBDA_PYTHON = "3.12"  # the AWS Lambda runtime the functions target
TESTDB_URL_FILE = ROOT / ".stackrun" / "testdb" / "url"


@nox.session(python=TOOLS_PYTHON)
def testdb(session: nox.Session) -> None:
    """Start the local PostgreSQL the lambda tests use (left running; emulator-stop stops it)."""
    if _help(session, "nox -s testdb: start the lambda tests' PostgreSQL, print its URL."):
        return
    _install_tools(session)
    session.run("stackrun", "testdb", silent=True)
    session.log(f"test database ready (URL in {TESTDB_URL_FILE.relative_to(ROOT)})")


def _local_packages(name: str) -> list[str]:
    """Folders of lambdas/ that `name` needs (its local libraries, transitively), then itself.

    Local libraries are not on PyPI: they must be installed from their folders in the same pip
    call, or pip would look for (and might find someone else's) packages of that name there.
    The `test` extras count: fleet-testing (the test helpers) is only ever a test dependency,
    and it brings the migrations, whose own tests use it back.
    """
    import re
    import tomllib

    def normalise(dist: str) -> str:
        return re.sub(r"[-_.]+", "-", dist).lower()

    projects = {
        folder: tomllib.loads((ROOT / "lambdas" / folder / "pyproject.toml").read_text())["project"]
        for folder in LAMBDAS
    }
    by_dist = {normalise(project["name"]): folder for folder, project in projects.items()}
    needed: list[str] = []
    seen = {name}  # test extras may refer back (fleet-testing <-> fleet-migrations)

    def visit(folder: str) -> None:
        project = projects[folder]
        requirements = list(project.get("dependencies", []))
        requirements += project.get("optional-dependencies", {}).get("test", [])
        for requirement in requirements:
            dist = normalise(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
            local = by_dist.get(dist)
            if local and local not in seen:
                seen.add(local)
                visit(local)
                needed.append(local)

    visit(name)
    return [*needed, name]


def _lambda_test_session(name: str) -> None:
    @nox.session(name=f"test-{name}", python=LAMBDA_PYTHON, requires=["testdb"])
    def run_tests(session: nox.Session) -> None:
        if _help(
            session,
            f"nox -s test-{name} [-- <pytest args>]: lambdas/{name}'s tests on "
            f"Python {LAMBDA_PYTHON}, with only its own dependencies installed.",
        ):
            return
        *libraries, _ = _local_packages(name)
        editable = [arg for folder in libraries for arg in ("-e", f"lambdas/{folder}")]
        # the same pins as the function's zip (its requirements.lock), the rest from the lock
        shipped = [
            lock for lock in [ROOT / "lambdas" / name / "requirements.lock"] if lock.is_file()
        ]
        _install(
            session, *editable, "-e", f"lambdas/{name}[test]", locks=(LAMBDA_TESTS_LOCK, *shipped)
        )
        url = TESTDB_URL_FILE.read_text().strip()
        session.run(
            "pytest",
            f"lambdas/{name}/tests",
            *session.posargs,
            env={"FLEET_TEST_DATABASE_URL": url},
        )

    run_tests.__doc__ = f"Tests of lambdas/{name} on Python {LAMBDA_PYTHON}: `-- <pytest args>`."


for _name in LAMBDAS:
    _lambda_test_session(_name)

# doctor first: a machine that lacks a prerequisite is told so before the long sessions run.
nox.options.sessions = [
    "doctor",
    "lint",
    "test-tools",
    *(f"test-{name}" for name in LAMBDAS),
    "e2e",
]


if __name__ == "__main__":  # pragma: no cover - `python noxfile.py` is not how to run this
    sys.exit("run `nox -l` to list the sessions")
