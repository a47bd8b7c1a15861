"""Terraform for stackrun: the subprocess, its providers, the rendered working directories.

process.py    run terraform: live output, a log file per stack, errors extracted
providers.py  where providers come from: a filesystem mirror or one shared plugin cache
render.py     a stack rendered into generated .tf.json files (the only writer of them)
workspace.py  one environment on one target: working dirs, logs, init
tfjson.py     terraform's machine-readable UI: messages, changes, errors
state.py      reading a stack's state (outputs, serial, deletion protection)
policy.py     every stack's inputs as .tfvars.json, for policy scans
"""

from stackrun.terraform.process import (
    Result,
    Terraform,
    extract_errors,
    parse_json_document,
    terraform_binary,
    terraform_version,
)
from stackrun.terraform.providers import (
    INIT_LOCKFILE,
    LOCK_FILE_NAME,
    MIRROR_VARIABLE,
    cli_config_env,
    copy_provider_lock,
    provider_lock,
    provider_mirror,
)

__all__ = [
    "INIT_LOCKFILE",
    "LOCK_FILE_NAME",
    "MIRROR_VARIABLE",
    "Result",
    "Terraform",
    "cli_config_env",
    "copy_provider_lock",
    "extract_errors",
    "parse_json_document",
    "provider_lock",
    "provider_mirror",
    "terraform_binary",
    "terraform_version",
]
