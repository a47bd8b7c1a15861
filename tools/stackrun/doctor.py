"""Is this machine ready to deploy? One check per prerequisite, each OK or MISSING with its fix.

`nox -s doctor` prints them (one line each) and fails when a required one is missing; `deploy`
and `e2e` require that session, so a first run stops at once, naming what is missing and the
command that gets it, before any virtualenv is created or anything else runs.

    Python 3.12    the tools' sessions and the functions' runtime (found the way nox finds
                   interpreters, or downloaded by uv when it can be: noxfile.py passes both)
    terraform      live/project.toml `terraform.version`
    PostgreSQL     initdb, pg_ctl, postgres: the local database servers (--local) and the
                   lambda tests' database
    AWS provider   hashicorp/aws at the version of modules/.terraform.lock.hcl, from the
                   provider mirror (STACKRUN_PROVIDER_MIRROR) or the registry

noxfile.py imports this module with nox's own Python, before any virtualenv exists: it uses the
standard library and the parts of stackrun that do (config, terraform, local.pg_programs).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackrun.config import Project
from stackrun.errors import StackrunError
from stackrun.local import pg_programs
from stackrun.terraform import (
    MIRROR_VARIABLE,
    provider_lock,
    provider_mirror,
    terraform_binary,
    terraform_version,
)

REGISTRY = "registry.terraform.io"
# where `doctor` checks that the registry answers when no provider mirror is set
REGISTRY_ADDRESS = (REGISTRY, 443)
AWS_PROVIDER = "hashicorp/aws"
TERRAFORM_INSTALL = "https://developer.hashicorp.com/terraform/install"
# How long `doctor` waits for the Terraform registry when no provider mirror is set.
REGISTRY_TIMEOUT_SECONDS = 3.0

# (version) -> the interpreter's path, or None
FindPython = Callable[[str], str | None]
# (version) -> True when it installed that version
InstallPython = Callable[[str], bool]


@dataclass(frozen=True)
class Check:
    """One prerequisite: what was found (OK), or the problem and the command that fixes it."""

    name: str
    found: str = ""
    problem: str = ""
    fix: str = ""
    required: bool = True

    @property
    def ok(self) -> bool:
        return not self.problem

    def line(self) -> str:
        if self.ok:
            return f"OK       {self.name:<13} {self.found}"
        unneeded = "" if self.required else " (not needed for this run)"
        return f"MISSING  {self.name:<13} {self.problem}{unneeded}; fix: {self.fix}"


def missing(checks: Iterable[Check]) -> list[Check]:
    """The required prerequisites that are missing."""
    return [check for check in checks if check.required and not check.ok]


# ---- Python ----------------------------------------------------------------------------------


def check_python(version: str, find: FindPython, install: InstallPython | None) -> Check:
    """Python `version` as nox will look for it (`find`), else downloaded (`install`, when
    downloads are allowed: None when not), else MISSING with the command that installs it."""
    name = f"Python {version}"
    path = find(version)
    downloaded = ""
    if path is None and install is not None and install(version):
        path, downloaded = find(version), " (downloaded by uv)"
    if path is not None:
        return Check(name, found=f"{path} ({_python_version(path)}){downloaded}")
    tried = "; downloading it failed (offline?)" if install is not None else ""
    return Check(
        name,
        problem=f"no python{version} on PATH, in pyenv's active versions or uv's{tried}",
        fix=python_fix(version),
    )


def _python_version(path: str) -> str:
    result = _run([path, "--version"])
    return result.strip() or "version unknown"


def python_fix(version: str) -> str:
    """The one command that gets Python `version`: activate it in pyenv when pyenv has it,
    install it with pyenv when pyenv is used, else with uv."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return (
            f"`uv python install {version}` (from github.com; offline: Python {version} from "
            "your OS packages or pyenv)"
        )
    root = Path(os.environ.get("PYENV_ROOT") or _run([pyenv, "root"]).strip())
    installed = sorted(
        (path.name for path in (root / "versions").glob(f"{version}*") if path.is_dir()),
        key=_version_key,
    )
    if not installed:
        return f"`pyenv install {version}`, then add it to PYENV_VERSION (or `pyenv global`)"
    active = os.environ.get("PYENV_VERSION") or _run([pyenv, "version-name"]).strip()
    versions = [name for name in active.split(":") if name and name != "system"]
    return (
        f"`export PYENV_VERSION={':'.join([*versions, installed[-1]])}` "
        f"(pyenv has {installed[-1]}, not active)"
    )


# ---- terraform -------------------------------------------------------------------------------


def check_terraform(constraint: str) -> Check:
    """terraform on PATH (or STACKRUN_TERRAFORM) whose version meets live/project.toml's."""
    fix = f"install terraform {constraint} ({TERRAFORM_INSTALL}), or set STACKRUN_TERRAFORM"
    try:
        binary = terraform_binary()
    except StackrunError:
        return Check("terraform", problem="not found on PATH", fix=fix)
    version = terraform_version(binary).split()[0]
    if not satisfies(version, constraint):
        return Check(
            "terraform",
            problem=f"{binary} is {version}, live/project.toml wants {constraint}",
            fix=fix,
        )
    return Check("terraform", found=f"{version} at {binary} (wanted: {constraint})")


_CONSTRAINT = re.compile(r"^\s*(>=|<=|!=|~>|=|>|<)?\s*v?(\d+(?:\.\d+)*)\s*$")


def satisfies(version: str, constraint: str) -> bool:
    """Whether `version` meets a terraform version constraint (">= 1.10, < 2.0", "~> 1.10")."""
    have = _version_key(version)
    for clause in constraint.split(","):
        found = _CONSTRAINT.match(clause)
        if found is None:
            raise StackrunError(f"not a terraform version constraint: {constraint!r}")
        operator, wanted = found.group(1) or "=", found.group(2)
        if not _meets(have, operator, wanted):
            return False
    return True


def _meets(have: tuple[int, ...], operator: str, wanted: str) -> bool:
    want = _version_key(wanted)
    width = max(len(have), len(want))
    have_, want_ = (key + (0,) * (width - len(key)) for key in (have, want))
    if operator == "~>":  # the last given part may grow: ~> 1.10 is >= 1.10, < 2.0
        prefix = len(want) - 1 if len(want) > 1 else 1
        return have_ >= want_ and have_[:prefix] == want_[:prefix]
    comparisons = {
        "=": have_ == want_,
        "!=": have_ != want_,
        ">": have_ > want_,
        ">=": have_ >= want_,
        "<": have_ < want_,
        "<=": have_ <= want_,
    }
    return comparisons[operator]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-")[0])[:3])


# ---- PostgreSQL ------------------------------------------------------------------------------


def check_postgres(required: bool) -> Check:
    """initdb, pg_ctl and postgres of one installation (what the local database servers run)."""
    name = "PostgreSQL"
    try:
        programs = [pg_programs.program(program) for program in pg_programs.SERVER_PROGRAMS]
    except pg_programs.ProgramNotFound as error:
        problem = str(error).split(";")[0]
        return Check(name, problem=problem, fix=pg_programs.INSTALL_HINT, required=required)
    version = _run([programs[-1], "--version"]).strip()
    folder = Path(programs[-1]).parent
    return Check(name, found=f"{version}: {', '.join(pg_programs.SERVER_PROGRAMS)} in {folder}")


# ---- the AWS provider ------------------------------------------------------------------------


def check_provider(project: Project, terraform_platform: str) -> Check:
    """Where terraform gets hashicorp/aws: the user's CLI configuration, the provider mirror
    (holding the locked version for this platform), or the registry when it can be reached."""
    name = "AWS provider"
    wanted = f"{AWS_PROVIDER} {locked_version(project.root)} {terraform_platform}"
    user_config = os.environ.get("TF_CLI_CONFIG_FILE")
    if user_config and Path(user_config).is_file():
        return Check(name, found=f"from your TF_CLI_CONFIG_FILE {user_config} (used as-is)")
    fix = (
        f"`export {MIRROR_VARIABLE}=<folder holding {REGISTRY}/{AWS_PROVIDER}/"
        f"{locked_version(project.root)}/{terraform_platform}/>`"
    )
    try:
        mirror = provider_mirror(project.provider_mirror)
    except StackrunError as error:
        return Check(name, problem=str(error), fix=fix)
    if mirror is None:
        return _registry_check(name, wanted, fix)
    if not mirror_holds(mirror, locked_version(project.root), terraform_platform):
        return Check(name, problem=f"provider mirror {mirror} does not hold {wanted}", fix=fix)
    return Check(name, found=f"{wanted} in the provider mirror {mirror}")


def _registry_check(name: str, wanted: str, fix: str) -> Check:
    try:
        socket.create_connection(REGISTRY_ADDRESS, timeout=REGISTRY_TIMEOUT_SECONDS).close()
    except OSError as error:
        return Check(
            name,
            problem=f"no provider mirror set and {REGISTRY} cannot be reached ({error})",
            fix=fix,
        )
    return Check(name, found=f"{wanted} from {REGISTRY} (no provider mirror set)")


def locked_version(repo_root: Path) -> str:
    """The hashicorp/aws version modules/.terraform.lock.hcl selects."""
    lock = provider_lock(repo_root)
    text = lock.read_text() if lock.is_file() else ""
    found = re.search(rf'provider "{REGISTRY}/{AWS_PROVIDER}" {{\s*version\s*=\s*"([^"]+)"', text)
    if found is None:
        raise StackrunError(f"{lock} selects no {AWS_PROVIDER} version (write it: `nox -s lock`)")
    return found.group(1)


def mirror_holds(mirror: Path, version: str, platform: str) -> bool:
    """Whether a filesystem mirror holds the provider, unpacked or packed (terraform reads
    both layouts)."""
    provider = mirror / REGISTRY / AWS_PROVIDER
    unpacked = provider / version / platform
    packed = provider / f"terraform-provider-aws_{version}_{platform}.zip"
    return unpacked.is_dir() or packed.is_file()


# ---- all of them -----------------------------------------------------------------------------


def run_checks(
    project: Project,
    pythons: Sequence[str],
    find: FindPython,
    install: InstallPython | None,
    postgres_required: bool,
) -> list[Check]:
    """Every prerequisite, in the order a deploy needs them."""
    checks = [check_python(version, find, install) for version in pythons]
    terraform = check_terraform(project.terraform_version)
    checks += [terraform, check_postgres(postgres_required)]
    checks.append(check_provider(project, _terraform_platform(terraform)))
    return checks


def _terraform_platform(terraform: Check) -> str:
    """terraform's <os>_<arch> (what provider packages are built for)."""
    if terraform.ok:
        _, _, platform = terraform_version(terraform_binary()).partition(" ")
        if platform:
            return platform
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    return f"{sys.platform}_{machine}"


def _run(command: list[str]) -> str:
    """A quick command's stdout ("" when it cannot run)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout
