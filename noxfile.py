"""The one entry point: `nox -l` lists the sessions, `nox -s <session> -- --help` explains one.

Operations (each takes `-- <env> [--local] [options]`, see `nox -s deploy -- --help`):
    deploy, plan, destroy, output, bootstrap, validate, unlock
Local emulator:   emulator-start, emulator-stop, emulator-status
Checks:           lint, test-tools, test-<lambda> per folder of lambdas/ (plain `nox` runs
                  every check), testdb (the PostgreSQL the lambda tests use)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
MODULES = sorted(p for p in (ROOT / "modules").iterdir() if (p / "versions.tf").is_file())
TOOLS_PYTHON = "3.12"
LAMBDAS = sorted(p.name for p in (ROOT / "lambdas").iterdir() if (p / "pyproject.toml").is_file())

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


def _install_tools(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


def _stackrun(session: nox.Session, command: str) -> None:
    _install_tools(session)
    session.run("stackrun", command, *session.posargs, external=False)


# ---- operations ------------------------------------------------------------------------------


@nox.session(python=TOOLS_PYTHON)
def deploy(session: nox.Session) -> None:
    """Test the lambdas, then deploy: `nox -s deploy -- <env> [--local] [--skip-tests]`."""
    arguments = [arg for arg in session.posargs if arg != "--skip-tests"]
    if (
        "--help" not in arguments
        and "-h" not in arguments
        and "--skip-tests" not in session.posargs
    ):
        # What is deployed was tested first: every lambda's test session (the build happens in
        # stackrun deploy itself, cached by input hash).
        session.run("nox", "-s", *(f"test-{name}" for name in LAMBDAS), external=True)
    _install_tools(session)
    session.run("stackrun", "deploy", *arguments)


@nox.session(python=TOOLS_PYTHON)
def plan(session: nox.Session) -> None:
    """Plan an environment: `nox -s plan -- <env> [--local] [--detailed-exitcode]`."""
    _stackrun(session, "plan")


@nox.session(python=TOOLS_PYTHON)
def destroy(session: nox.Session) -> None:
    """Destroy an environment's stacks in reverse order: `nox -s destroy -- <env> [--local]`."""
    _stackrun(session, "destroy")


@nox.session(python=TOOLS_PYTHON)
def output(session: nox.Session) -> None:
    """Print all stacks' outputs as JSON: `nox -s output -- <env> [--local]`."""
    _stackrun(session, "output")


@nox.session(python=TOOLS_PYTHON)
def bootstrap(session: nox.Session) -> None:
    """Create or re-apply the state backend only: `nox -s bootstrap -- <env> [--local]`."""
    _stackrun(session, "bootstrap")


@nox.session(python=TOOLS_PYTHON)
def validate(session: nox.Session) -> None:
    """Validate live/ without running anything: `nox -s validate [-- <env>]`."""
    _stackrun(session, "validate")


@nox.session(python=TOOLS_PYTHON)
def unlock(session: nox.Session) -> None:
    """Release a stale environment guard: `nox -s unlock -- <env> [--local] --guard <id>`."""
    _stackrun(session, "unlock")


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

LINT_HELP = """
nox -s lint: ruff (lint + format check) on the Python code, `terraform fmt -check` on modules/,
`terraform init -backend=false` + `terraform validate` + `terraform test` (mock provider) in
every module, check-jsonschema + zizmor on .github/workflows, and checkov over
modules/ (no failed check may stay unsuppressed). No arguments.
Providers come from STACKRUN_PROVIDER_MIRROR or your TF_CLI_CONFIG_FILE (see README).
"""


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, terraform fmt/validate/test of every module, workflow checks, checkov."""
    if _help(session, LINT_HELP):
        return
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    terraform = shutil.which("terraform")
    if terraform is None:
        session.error("terraform is not on PATH")
    _install_tools(session)
    env = _terraform_env(session)
    session.run(
        terraform, "fmt", "-check", "-recursive", "-diff", "modules", external=True, env=env
    )
    for module in MODULES:
        session.log(f"terraform validate modules/{module.name}")
        session.run(
            terraform,
            f"-chdir={module}",
            "init",
            "-backend=false",
            "-input=false",
            "-no-color",
            external=True,
            env=env,
            silent=True,
        )
        session.run(terraform, f"-chdir={module}", "validate", "-no-color", external=True, env=env)
        if (module / "tests").is_dir():
            # terraform test with mock_provider: the module's secure defaults, offline
            session.run(terraform, f"-chdir={module}", "test", "-no-color", external=True, env=env)
    # The CI workflow: GitHub's workflow schema (vendored, offline) and zizmor's security audit.
    session.install("check-jsonschema>=0.29", "zizmor>=1.0")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("zizmor", "--offline", ".github/")
    # Policy scan: every failed check must be fixed or suppressed next to the resource with a
    # written reason (`#checkov:skip=CKV_...: why`). --skip-download: no network needed.
    session.install("checkov>=3.2")
    session.run(
        "checkov",
        "--directory",
        "modules",
        "--framework",
        "terraform",
        "--quiet",
        "--compact",
        "--skip-download",
    )


def _terraform_env(session: nox.Session) -> dict[str, str]:
    """The same provider settings stackrun uses (mirror or the user's CLI config)."""
    code = (
        "import json; from pathlib import Path; "
        "from stackrun.config import load_project; from stackrun.workspace import cache_root; "
        "from stackrun.terraform import cli_config_env; r = Path('.').resolve(); "
        "print(json.dumps(cli_config_env(cache_root(r), load_project(r).provider_mirror)))"
    )
    text = session.run("python", "-c", code, silent=True)
    import json

    return json.loads(str(text).strip().splitlines()[-1])


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
    # The deploy tests mostly wait on terraform and the emulator: two workers (each with its
    # own emulator) keep two cores busy without starving the emulators. `-- -n 0`: one by one.
    session.run("pytest", "-n", "2", "--dist", "worksteal", "tools/tests", *session.posargs)


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
    seen = {name}  # test extras may refer back (fleet_common's tests use the migrations)

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
        session.install(*editable, "-e", f"lambdas/{name}[test]")
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

nox.options.sessions = ["lint", "test-tools", *(f"test-{name}" for name in LAMBDAS)]


if __name__ == "__main__":  # pragma: no cover - `python noxfile.py` is not how to run this
    sys.exit("run `nox -l` to list the sessions")
