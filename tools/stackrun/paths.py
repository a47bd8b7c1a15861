"""Where stackrun keeps generated files (kept free of heavy imports: `stackrun build` uses it).

Every segment of the `.stackrun/` layout (and of dist/) is spelled here only:

    dist/lambdas[-<arch>]/                     built zips and manifests, .build.lock
    .stackrun/build/site-<key>/                pip installs cached per pin set
    .stackrun/plugin-cache/, terraform.rc      providers: cache or generated CLI config
    .stackrun/init.lock                        inits that share the plugin cache, one at a time
    .stackrun/<target>/<env>/                  one environment on one target:
        stacks/<NNN_name>/                     a stack's terraform working dir
            .stackrun-init                     the init fingerprint
        logs/<NNN_name>.log                    terraform's output of the last run
        promoted/                              deploy --promote-from: the source's zips
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR = ".stackrun"
CACHE_DIR_VARIABLE = "STACKRUN_CACHE_DIR"
INIT_MARKER = ".stackrun-init"


def cache_root(repo_root: Path) -> Path:
    """`.stackrun/` in the repository, or STACKRUN_CACHE_DIR."""
    return _overridable(CACHE_DIR_VARIABLE, repo_root / CACHE_DIR)


# ---- build -----------------------------------------------------------------------------------


def artifact_dir(root: Path, architecture: str) -> Path:
    """Built function zips: dist/lambdas for arm64 (the default), dist/lambdas-<arch> else."""
    return root / "dist" / ("lambdas" if architecture == "arm64" else f"lambdas-{architecture}")


def build_lock_file(out_dir: Path) -> Path:
    """Held while building into `out_dir`: concurrent builds run one at a time."""
    return out_dir / ".build.lock"


def build_cache_dir(repo_root: Path) -> Path:
    """pip's installs of pinned requirements, kept for reuse (`site-<key>` folders)."""
    return cache_root(repo_root) / "build"


# ---- terraform -------------------------------------------------------------------------------


def plugin_cache_dir(cache_dir: Path) -> Path:
    """The TF_PLUGIN_CACHE_DIR stackrun sets when the user has none (and no mirror)."""
    return cache_dir / "plugin-cache"


def terraform_cli_config(cache_dir: Path) -> Path:
    """The generated TF_CLI_CONFIG_FILE that installs providers from a filesystem mirror."""
    return cache_dir / "terraform.rc"


def init_lock_file(repo_root: Path) -> Path:
    """Held by `terraform init` while it uses the shared plugin cache."""
    return cache_root(repo_root) / "init.lock"


def environment_dir(repo_root: Path, target_name: str, environment_name: str) -> Path:
    """`.stackrun/<target>/<env>/`: one environment's generated files on one target."""
    return cache_root(repo_root) / target_name / environment_name


def stack_workdir(environment_dir: Path, stack_name: str) -> Path:
    """A stack's terraform working directory (rendered .tf.json, .terraform, markers)."""
    return environment_dir / "stacks" / stack_name


def stack_log_file(environment_dir: Path, stack_name: str) -> Path:
    """terraform's output of the stack's last run."""
    return environment_dir / "logs" / f"{stack_name}.log"


def init_marker(workdir: Path) -> Path:
    """Holds the fingerprint of the inputs the working dir was last initialised with."""
    return workdir / INIT_MARKER


def promoted_dir(environment_dir: Path) -> Path:
    """deploy --promote-from: the source environment's live zips, deployed instead of a build."""
    return environment_dir / "promoted"


# --- the local target (stackrun.local) --------------------------------------------------------
# .stackrun/emulator/      the emulator's state (STACKRUN_EMULATOR_DIR): pid, log, tls/,
#                          rds/<account>/<resource id>/postgres/ (the servers behind its RDS
#                          instances) and rds/<account>/database.json (where they listen),
#                          lambda/<account>/ (the code its Invoke runs, extracted)
# .stackrun/runtimes/      the local Lambda runtimes, one venv per python3.X (STACKRUN_RUNTIME_DIR)
# .stackrun/testdb/        the PostgreSQL the lambda tests use
# .stackrun/local/<env>/   a local environment: functions/ (deployed code, unpacked), and the
#                          files of stackrun.local's modules (serve.json, serve.log, ...),
#                          each named by its module


def emulator_dir(repo_root: Path) -> Path:
    """The emulator's state (TLS files, pid, log): STACKRUN_EMULATOR_DIR or .stackrun/emulator/."""
    return _overridable("STACKRUN_EMULATOR_DIR", cache_root(repo_root) / "emulator")


def emulator_tls_dir(state_dir: Path) -> Path:
    """The emulator's CA, server certificate and registry of local environments."""
    return state_dir / "tls"


def emulator_state_of(tls_dir: Path) -> Path:
    """The emulator state folder whose emulator_tls_dir is ``tls_dir``."""
    return tls_dir.parent


def config_generation_file(tls_dir: Path) -> Path:
    """Where the emulator counts writes to the Lambda and API Gateway configuration."""
    return tls_dir / "config-generation"


def emulated_rds_dir(emulator_state: Path) -> Path:
    """The data of the emulator's RDS instances: it lives and dies with the emulator's state,
    so every clone that deploys against one emulator sees the same databases, as in AWS."""
    return emulator_state / "rds"


def emulated_rds_account_dir(emulator_state: Path, account_id: str) -> Path:
    """The folders of one account's emulated RDS instances, each named by the instance's
    DbiResourceId (a new one for a new instance, as in RDS)."""
    return emulated_rds_dir(emulator_state) / account_id


def emulated_rds_endpoint_file(emulator_state: Path, account_id: str) -> Path:
    """Where one account's emulated RDS instances' clients really connect (the local servers'
    addresses), beside the instances' data; read by the local runtime in `serve` and in the
    emulator's Lambda Invoke."""
    return emulated_rds_account_dir(emulator_state, account_id) / "database.json"


def emulated_lambda_dir(emulator_state: Path, account_id: str) -> Path:
    """What the emulator's Lambda Invoke keeps of one account: each version's code, extracted."""
    return emulator_state / "lambda" / account_id


def runtimes_dir(repo_root: Path) -> Path:
    """The local Lambda runtimes (one venv per python3.X): STACKRUN_RUNTIME_DIR or .stackrun/."""
    return _overridable("STACKRUN_RUNTIME_DIR", cache_root(repo_root) / "runtimes")


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
    """The PostgreSQL data folder in ``folder``: an emulated RDS instance's
    (emulated_rds_account_dir) or the lambda tests' (test_database_dir)."""
    return folder / "postgres"


def _overridable(variable: str, default: Path) -> Path:
    """The folder the environment variable names (resolved), else `default`."""
    override = os.environ.get(variable)
    return Path(override).resolve() if override else default
