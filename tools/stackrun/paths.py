"""Where stackrun keeps generated files (kept free of heavy imports: `stackrun build` uses it)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(repo_root: Path) -> Path:
    """`.stackrun/` in the repository, or STACKRUN_CACHE_DIR."""
    override = os.environ.get("STACKRUN_CACHE_DIR")
    return Path(override).resolve() if override else repo_root / ".stackrun"


def artifact_dir(root: Path, architecture: str) -> Path:
    """Built function zips: dist/lambdas for arm64 (the default), dist/lambdas-<arch> else."""
    return root / "dist" / ("lambdas" if architecture == "arm64" else f"lambdas-{architecture}")


# --- the local target (stackrun.local) --------------------------------------------------------
# .stackrun/emulator/      the emulator's state (STACKRUN_EMULATOR_DIR): pid, log, tls/
# .stackrun/runtimes/      the local Lambda runtimes, one venv per python3.X (STACKRUN_RUNTIME_DIR)
# .stackrun/testdb/        the PostgreSQL the lambda tests use
# .stackrun/local/<env>/   a local environment: functions/ (deployed code), postgres/ (the server
#                          behind the emulated RDS instance), and the files of stackrun.local's
#                          modules (serve.json, database.json, ...), each named by its module


def emulator_dir(repo_root: Path) -> Path:
    """The emulator's state (TLS files, pid, log): STACKRUN_EMULATOR_DIR or .stackrun/emulator/."""
    override = os.environ.get("STACKRUN_EMULATOR_DIR")
    return Path(override).resolve() if override else cache_root(repo_root) / "emulator"


def emulator_tls_dir(state_dir: Path) -> Path:
    """The emulator's CA, server certificate and registry of local environments."""
    return state_dir / "tls"


def runtimes_dir(repo_root: Path) -> Path:
    """The local Lambda runtimes (one venv per python3.X): STACKRUN_RUNTIME_DIR or .stackrun/."""
    override = os.environ.get("STACKRUN_RUNTIME_DIR")
    return Path(override).resolve() if override else cache_root(repo_root) / "runtimes"


def test_database_dir(repo_root: Path) -> Path:
    """The lambda tests' PostgreSQL (`stackrun testdb`): its data, password and URL file."""
    return cache_root(repo_root) / "testdb"


def local_environments_dir(repo_root: Path) -> Path:
    """Where the local environments' folders (.stackrun/local/<env>/) are."""
    return cache_root(repo_root) / "local"


def local_functions_dir(environment_dir: Path) -> Path:
    """A local environment's deployed function code, unpacked per version."""
    return environment_dir / "functions"


def postgres_data_dir(folder: Path) -> Path:
    """The PostgreSQL data folder in ``folder``: a local environment's (the server behind the
    emulated RDS instance) or the lambda tests' (test_database_dir)."""
    return folder / "postgres"
