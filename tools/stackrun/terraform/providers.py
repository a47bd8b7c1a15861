"""Where terraform takes providers from.

Terraform must never download the AWS provider into each stack: stackrun writes a CLI
configuration that installs from an unpacked filesystem mirror (given by
STACKRUN_PROVIDER_MIRROR or `terraform.provider_mirror` in live/project.toml), unless the user
already points TF_CLI_CONFIG_FILE at a file of their own. TF_PLUGIN_CACHE_DIR, when set, is
passed through untouched. Which provider versions (and checksums) terraform may install is
the repository's one dependency lock file, provider_lock(): copied into every stack's working
directory, and init runs with INIT_LOCKFILE (read-only) so no stack selects another version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stackrun.errors import StackrunError
from stackrun.paths import plugin_cache_dir, terraform_cli_config

MIRROR_VARIABLE = "STACKRUN_PROVIDER_MIRROR"
LOCK_FILE_NAME = ".terraform.lock.hcl"
# every `terraform init`: the provider selections come from the committed lock file, unchanged
INIT_LOCKFILE = "-lockfile=readonly"


def provider_lock(repo_root: Path) -> Path:
    """The repository's provider selections: every stack and module test inits with this file
    (`nox -s lock` updates it, `terraform providers lock` in modules/)."""
    return repo_root / "modules" / LOCK_FILE_NAME


def copy_provider_lock(repo_root: Path, workdir: Path) -> None:
    """Put the repository's lock file into a working directory terraform inits in."""
    source = provider_lock(repo_root)
    if not source.is_file():
        raise StackrunError(
            f"{source} does not exist: it holds the provider versions and checksums every stack "
            "initialises with (write it with `nox -s lock`)"
        )
    content = source.read_bytes()
    target = workdir / LOCK_FILE_NAME
    if not target.is_file() or target.read_bytes() != content:
        target.write_bytes(content)


def provider_mirror(configured_mirror: Path | None) -> Path | None:
    """The filesystem mirror terraform installs providers from: STACKRUN_PROVIDER_MIRROR, else
    the project's `terraform.provider_mirror`; None when neither is set. Raises when it is set
    but is no mirror."""
    mirror_value = os.environ.get(MIRROR_VARIABLE)
    mirror = Path(mirror_value) if mirror_value else configured_mirror
    if mirror is not None and not (mirror / "registry.terraform.io").is_dir():
        source = (
            MIRROR_VARIABLE if mirror_value else "terraform.provider_mirror (live/project.toml)"
        )
        raise StackrunError(
            f"provider mirror {mirror} (from {source}) is not an unpacked filesystem mirror: "
            "expected a folder holding registry.terraform.io/<namespace>/<type>/<version>/<os_arch>"
        )
    return mirror


def cli_config_env(cache_dir: Path, configured_mirror: Path | None) -> dict[str, str]:
    """Environment variables that make terraform take providers from one shared place.

    Order of precedence: an existing TF_CLI_CONFIG_FILE (the user's own), then
    STACKRUN_PROVIDER_MIRROR, then the project's `terraform.provider_mirror`. With none of them
    terraform downloads from the registry into one plugin cache (TF_PLUGIN_CACHE_DIR, or
    .stackrun/plugin-cache), once for every stack.
    """
    user_config = os.environ.get("TF_CLI_CONFIG_FILE")
    if user_config and Path(user_config).is_file():
        return {}
    mirror = provider_mirror(configured_mirror)
    env: dict[str, str] = {}
    if mirror is None:
        if user_config:
            # TF_CLI_CONFIG_FILE names a missing file; terraform would warn on every call.
            env["TF_CLI_CONFIG_FILE"] = os.devnull
        if not os.environ.get("TF_PLUGIN_CACHE_DIR"):
            # Download each provider once for all stacks, not once per stack. Inits that use
            # the cache run one at a time (Workspace.ensure_init; hashicorp/terraform#31964).
            plugin_cache = plugin_cache_dir(cache_dir)
            plugin_cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache)
        return env
    cache_dir.mkdir(parents=True, exist_ok=True)
    config_file = terraform_cli_config(cache_dir)
    # json.dumps quotes the path the way HCL expects for ordinary paths.
    content = (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror.resolve()))}\n"
        '    include = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "}\n"
    )
    if not config_file.is_file() or config_file.read_text() != content:
        config_file.write_text(content)
    env["TF_CLI_CONFIG_FILE"] = str(config_file)
    return env
