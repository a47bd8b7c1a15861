"""`nox -s doctor` and the first run that explains itself (stackrun.doctor, noxfile.py).

The nox tests run the real nox on this repository's noxfile in a subprocess, with a throwaway
--envdir: doctor runs with no virtualenv, and a deploy whose prerequisite is missing stops before
creating one. The unit tests run each check against a tool that is there and one that is not.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from stackrun import doctor
from stackrun.config import load_project
from stackrun.local import pg_programs

LOCKED_AWS = doctor.locked_version(REPO_ROOT)


# ---- nox in a subprocess ---------------------------------------------------------------------


def _nox(
    *args: str, env: dict[str, str], envdir: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    nox = shutil.which("nox")
    assert nox is not None, "nox is not on PATH (pip install -r constraints/nox.txt)"
    return subprocess.run(
        [nox, "-f", str(REPO_ROOT / "noxfile.py"), "--envdir", str(envdir), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _without_python_312(tmp_path: Path) -> dict[str, str]:
    """The environment with Python 3.12 out of reach: no PATH folder holding python3.12 or
    pyenv (its shims included), uv's Python store empty, and uv offline (no download)."""
    kept = [
        folder
        for folder in os.environ["PATH"].split(os.pathsep)
        if folder
        and not (Path(folder) / "python3.12").exists()
        and not (Path(folder) / "pyenv").exists()
        and "pyenv" not in Path(folder).parts[-2:]
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYENV")}
    env.update(
        PATH=os.pathsep.join(kept),
        UV_OFFLINE="1",
        UV_PYTHON_INSTALL_DIR=str(tmp_path / "uv-pythons"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        NOX_DOWNLOAD_PYTHON="auto",
    )
    return env


def test_doctor_reports_every_prerequisite_without_a_virtualenv(tmp_path):
    envdir = tmp_path / "nox"
    result = _nox("-s", "doctor", env=dict(os.environ), envdir=envdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = [line for line in result.stdout.splitlines() if line.startswith("OK ")]
    assert [line.split()[1] for line in lines] == ["Python", "terraform", "PostgreSQL", "AWS"]
    # the interpreter nox would use: python3.12, or (inside a 3.12 virtualenv) its python3
    assert "(Python 3.12." in lines[0]
    assert "wanted: >= 1.10" in lines[1]
    assert "initdb, pg_ctl, postgres in" in lines[2]
    assert not envdir.exists() or not any(path.is_dir() for path in envdir.iterdir())


def test_deploy_without_python_312_says_what_is_missing_and_how_to_get_it(tmp_path):
    envdir = tmp_path / "nox"
    env = _without_python_312(tmp_path)
    result = _nox("-s", "deploy", "--", "dev", "--local", env=env, envdir=envdir)
    assert result.returncode != 0
    missing = [line for line in result.stdout.splitlines() if line.startswith("MISSING")]
    assert len(missing) == 1, result.stdout + result.stderr
    assert missing[0].split()[1:3] == ["Python", "3.12"]
    assert "downloading it failed" in missing[0]
    assert "fix: `uv python install 3.12`" in missing[0]
    assert "OK       terraform" in result.stdout
    assert "Session deploy aborted: Prerequisite session doctor was not successful" in (
        result.stderr
    )
    # what ran before the explanation: the doctor only (no deploy virtualenv, no lambda tests)
    assert "Running session test-" not in result.stderr
    assert not (envdir / "deploy").exists()


def test_doctor_fails_naming_each_missing_tool_and_its_fix(tmp_path):
    empty_mirror = tmp_path / "mirror"
    (empty_mirror / "registry.terraform.io").mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if key != "TF_CLI_CONFIG_FILE"}
    env.update(
        STACKRUN_TERRAFORM=str(tmp_path / "no-terraform-here"),
        STACKRUN_PROVIDER_MIRROR=str(empty_mirror),
    )
    result = _nox("-s", "doctor", env=env, envdir=tmp_path / "nox")
    assert result.returncode != 0
    missing = {
        line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("MISSING")
    }
    assert set(missing) == {"terraform", "AWS"}, result.stdout
    assert "fix: install terraform >= 1.10" in missing["terraform"]
    assert f"does not hold hashicorp/aws {LOCKED_AWS}" in missing["AWS"]
    assert "fix: `export STACKRUN_PROVIDER_MIRROR=" in missing["AWS"]
    assert "missing: terraform, AWS provider" in result.stderr


def test_doctor_help(tmp_path):
    result = _nox("-s", "doctor", "--", "--help", env=dict(os.environ), envdir=tmp_path / "n")
    assert result.returncode == 0
    assert "MISSING" in result.stdout and "STACKRUN_PROVIDER_MIRROR" in result.stdout


def test_doctor_imports_with_the_standard_library_alone():
    """noxfile.py imports the checks into nox's own Python, which has none of stackrun's
    dependencies (CI installs only constraints/nox.txt there): -S leaves site-packages out."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import stackrun.doctor, stackrun.config; "
        "top = {name.split('.')[0] for name in sys.modules}; "
        "print(*sorted(top - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(REPO_ROOT / "tools")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["__main__", "stackrun"]


# ---- Python ----------------------------------------------------------------------------------

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def _finder(bin_dir: Path):
    return lambda version: shutil.which(f"python{version}", path=str(bin_dir))


def test_python_present(tmp_path):
    (tmp_path / f"python{RUNNING}").symlink_to(sys.executable)
    check = doctor.check_python(RUNNING, _finder(tmp_path), install=None)
    assert check.ok
    assert check.found.startswith(str(tmp_path / f"python{RUNNING}"))
    assert f"(Python {RUNNING}." in check.found


def test_python_missing_with_downloads_off(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pyenv
    check = doctor.check_python(RUNNING, _finder(tmp_path), install=None)
    assert not check.ok and check.required
    assert "downloading" not in check.problem
    assert check.fix.startswith(f"`uv python install {RUNNING}`")
    assert check.line().startswith(f"MISSING  Python {RUNNING}")


def test_python_missing_then_downloaded(tmp_path):
    def install(version: str) -> bool:
        (tmp_path / f"python{version}").symlink_to(sys.executable)
        return True

    check = doctor.check_python(RUNNING, _finder(tmp_path), install=install)
    assert check.ok and check.found.endswith("(downloaded by uv)")


def test_python_missing_and_the_download_failed(tmp_path):
    check = doctor.check_python(RUNNING, _finder(tmp_path), install=lambda version: False)
    assert not check.ok and "downloading it failed" in check.problem


def _pyenv(tmp_path: Path, monkeypatch, *versions: str) -> None:
    """A pyenv on PATH whose root holds `versions` (the fix is read from them, pyenv not run)."""
    bin_dir, root = tmp_path / "bin", tmp_path / "pyenv-root"
    bin_dir.mkdir()
    (bin_dir / "pyenv").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "pyenv").chmod(0o755)
    for version in versions:
        (root / "versions" / version).mkdir(parents=True)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PYENV_VERSION", "3.11.7")


def test_python_fix_activates_a_version_pyenv_has(tmp_path, monkeypatch):
    _pyenv(tmp_path, monkeypatch, "3.11.7", "3.12.1", "3.12.10")
    assert doctor.python_fix("3.12").startswith("`export PYENV_VERSION=3.11.7:3.12.10`")


def test_python_fix_installs_with_pyenv(tmp_path, monkeypatch):
    _pyenv(tmp_path, monkeypatch, "3.11.7")
    assert doctor.python_fix("3.12").startswith("`pyenv install 3.12`")


# ---- terraform -------------------------------------------------------------------------------


def test_terraform_present():
    check = doctor.check_terraform(">= 1.10")
    assert check.ok, check.line()
    assert shutil.which("terraform") in check.found


def test_terraform_too_old():
    check = doctor.check_terraform(">= 99.0")
    assert not check.ok and "live/project.toml wants >= 99.0" in check.problem
    assert check.fix.startswith("install terraform >= 99.0")


def test_terraform_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKRUN_TERRAFORM", str(tmp_path / "terraform"))
    check = doctor.check_terraform(">= 1.10")
    assert not check.ok and check.problem == "not found on PATH"
    assert "STACKRUN_TERRAFORM" in check.fix


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [
        ("1.11.4", ">= 1.10", True),
        ("1.9.8", ">= 1.10", False),
        ("1.11.4", ">= 1.10, < 1.11", False),
        ("1.11.4", "~> 1.10", True),
        ("2.0.0", "~> 1.10", False),
        ("1.10.9", "~> 1.10.2", True),
        ("1.11.0", "~> 1.10.2", False),
        ("1.11.4", "1.11.4", True),
        ("1.11.4", "!= 1.11.4", False),
        ("1.11.0-beta1", "> 1.10", True),
    ],
)
def test_terraform_version_constraints(version, constraint, expected):
    assert doctor.satisfies(version, constraint) is expected


# ---- PostgreSQL ------------------------------------------------------------------------------


def test_postgres_present():
    check = doctor.check_postgres(required=True)
    assert check.ok, check.line()
    assert "PostgreSQL" in check.found and "initdb, pg_ctl, postgres in" in check.found


def test_postgres_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_programs, "DEBIAN_LAYOUT", tmp_path / "usr-lib-postgresql")
    check = doctor.check_postgres(required=False)
    assert not check.ok and "initdb, pg_ctl, postgres" in check.problem
    assert "(not needed for this run)" in check.line()
    assert "apt-get install postgresql" in check.fix
    assert doctor.missing([check]) == []


# ---- the AWS provider ------------------------------------------------------------------------


@pytest.fixture
def project(monkeypatch):
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.delenv("STACKRUN_PROVIDER_MIRROR", raising=False)
    return load_project(REPO_ROOT)


def test_provider_in_the_mirror(tmp_path, monkeypatch, project):
    (tmp_path / "registry.terraform.io/hashicorp/aws" / LOCKED_AWS / "linux_amd64").mkdir(
        parents=True
    )
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(tmp_path))
    check = doctor.check_provider(project, "linux_amd64")
    assert check.ok and str(tmp_path) in check.found and LOCKED_AWS in check.found


def test_provider_not_in_the_mirror(tmp_path, monkeypatch, project):
    (tmp_path / "registry.terraform.io/hashicorp/aws/5.0.0/linux_amd64").mkdir(parents=True)
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(tmp_path))
    check = doctor.check_provider(project, "linux_amd64")
    assert not check.ok and f"hashicorp/aws {LOCKED_AWS} linux_amd64" in check.problem
    assert f"registry.terraform.io/hashicorp/aws/{LOCKED_AWS}/linux_amd64/" in check.fix


def test_provider_mirror_that_is_no_mirror(tmp_path, monkeypatch, project):
    monkeypatch.setenv("STACKRUN_PROVIDER_MIRROR", str(tmp_path))
    check = doctor.check_provider(project, "linux_amd64")
    assert not check.ok and "is not an unpacked filesystem mirror" in check.problem


def test_provider_from_the_users_cli_config(tmp_path, monkeypatch, project):
    (tmp_path / "terraform.rc").write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "terraform.rc"))
    assert doctor.check_provider(project, "linux_amd64").ok


def test_provider_from_the_registry_when_it_answers(monkeypatch, project):
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setattr(doctor, "REGISTRY_ADDRESS", server.getsockname()[:2])
        check = doctor.check_provider(project, "linux_amd64")
    assert check.ok and "no provider mirror set" in check.found


def test_provider_registry_unreachable_without_a_mirror(monkeypatch, project):
    with socket.create_server(("127.0.0.1", 0)) as server:
        closed_port = server.getsockname()[:2]
    monkeypatch.setattr(doctor, "REGISTRY_ADDRESS", closed_port)
    check = doctor.check_provider(project, "linux_amd64")
    assert not check.ok and "cannot be reached" in check.problem
    assert check.fix.startswith("`export STACKRUN_PROVIDER_MIRROR=")
