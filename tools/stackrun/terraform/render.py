"""Render a stack into a terraform working directory of generated `.tf.json` files.

    main.tf.json      terraform settings, the module call with its inputs, the root variables
                      that carry upstream outputs, and the module's outputs re-exported
    backend.tf.json   the S3 backend: key <env>/<stack>/terraform.tfstate, DynamoDB lock table
                      and S3 lockfile both on, the run's role to assume (Target.role_arn)
    provider.tf.json  region, default tags, the run's role, allowed_account_ids

Upstream outputs never get written into these files: they are passed to terraform as TF_VAR_*
environment variables (see `dependency_variables`), so a sensitive upstream value stays out of
the cache folder and the root variable carries the upstream `sensitive` flag.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackrun.aws.target import SESSION_NAME, Target
from stackrun.config import Environment, Stack

MODULE_NAME = "stack"
# The generated files of a working dir: written here only (render_stack, write_backend).
MAIN_FILE = "main.tf.json"
BACKEND_FILE = "backend.tf.json"
PROVIDER_FILE = "provider.tf.json"
GENERATED_FILES = (MAIN_FILE, BACKEND_FILE, PROVIDER_FILE)


def escape_literal(value: Any) -> Any:
    """Escape terraform template sequences so a literal input stays literal in .tf.json."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return [escape_literal(item) for item in value]
    if isinstance(value, dict):
        return {key: escape_literal(item) for key, item in value.items()}
    return value


def terraform_settings(environment: Environment) -> dict[str, Any]:
    return {
        "required_version": environment.project.terraform_version,
        "required_providers": {
            "aws": {"source": "hashicorp/aws", "version": environment.project.aws_provider_version}
        },
    }


def artifact_inputs(
    stack: Stack,
    workdir: Path,
    manifests: Mapping[str, Mapping[str, Any]],
    artifact_dir: Path,
    live_versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The stack's functions input, each entry completed from its build manifest.

    The zip path is relative to the working dir, so the plan does not change between machines;
    the hash is what the Lambda API reports as CodeSha256, so an unchanged zip changes nothing.
    `live_versions` holds the pinned functions' versions (pins.py): their alias stays there.
    """
    assert stack.lambdas_input is not None
    functions = {}
    for name, settings in stack.inputs[stack.lambdas_input].items():
        manifest = manifests[name]
        functions[name] = {
            **settings,
            "zip_path": os.path.relpath(artifact_dir / f"{name}.zip", workdir),
            "source_code_hash": manifest["base64_sha256"],
            "handler": manifest["handler"],
            "architecture": manifest["architecture"],
        }
        if live_versions and name in live_versions:
            functions[name]["live_version"] = live_versions[name]
    return functions


def render_main(
    environment: Environment,
    stack: Stack,
    workdir: Path,
    sensitive_inputs: frozenset[str],
    functions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    source = os.path.relpath(stack.module.path, workdir)
    if not source.startswith("."):
        source = "./" + source
    module_call: dict[str, Any] = {"source": source}
    module_call.update({name: escape_literal(value) for name, value in stack.inputs.items()})
    if stack.lambdas_input is not None and functions is not None:
        module_call[stack.lambdas_input] = escape_literal(dict(functions))
    variables: dict[str, Any] = {}
    for dependency in stack.dependencies:
        module_call[dependency.input_name] = f"${{var.{dependency.input_name}}}"
        variables[dependency.input_name] = {
            "type": "any",
            "description": "from " + ", ".join(str(ref) for ref in dependency.references),
            "sensitive": dependency.input_name in sensitive_inputs,
        }
    # Every re-exported output is marked sensitive: a module output can carry a value the
    # provider schema marks sensitive without saying so itself, and terraform refuses an
    # unmarked root output then. Plans never print output values this way; what `stackrun
    # output` hides is decided by the module's own `sensitive` flags.
    outputs = {
        name: {"value": f"${{module.{MODULE_NAME}.{name}}}", "sensitive": True}
        for name in sorted(stack.module.outputs)
    }
    document: dict[str, Any] = {
        "terraform": terraform_settings(environment),
        "module": {MODULE_NAME: module_call},
    }
    if variables:
        document["variable"] = variables
    if outputs:
        document["output"] = outputs
    return document


def render_backend(environment: Environment, stack_name: str, target: Target) -> dict[str, Any]:
    backend = environment.backend
    settings: dict[str, Any] = {
        "bucket": backend.bucket,
        "key": environment.state_key(stack_name),
        "region": backend.region,
        "encrypt": True,
        # Both locks on: Terraform's documented migration setting from DynamoDB locking to the
        # S3 lockfile. Drop dynamodb_table once every user runs terraform >= 1.10.
        "dynamodb_table": backend.lock_table,
        "use_lockfile": True,
    }
    role_arn = target.role_arn(environment)
    if role_arn is not None:
        settings["assume_role"] = {"role_arn": role_arn, "session_name": SESSION_NAME}
    settings.update(target.backend_settings())
    return {"terraform": {"backend": {"s3": settings}}}


def render_provider(environment: Environment, stack_name: str, target: Target) -> dict[str, Any]:
    tags = environment.default_tags
    tags["Stack"] = stack_name
    provider: dict[str, Any] = {
        "region": environment.region,
        "allowed_account_ids": [environment.account_id],
        "default_tags": [{"tags": tags}],
    }
    role_arn = target.role_arn(environment)
    if role_arn is not None:
        provider["assume_role"] = [{"role_arn": role_arn, "session_name": SESSION_NAME}]
    provider.update(target.provider_settings())
    return {"provider": {"aws": [provider]}}


def dependency_variables(
    stack: Stack, upstream_outputs: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """TF_VAR_* values for a stack's dependencies, from the outputs of its upstream stacks.

    The root variables are `type = any`, so terraform parses these values as HCL expressions;
    JSON is valid HCL once template sequences are escaped.
    """
    values = {}
    for dependency in stack.dependencies:
        value = dependency.value(upstream_outputs)
        values[f"TF_VAR_{dependency.input_name}"] = json.dumps(escape_literal(value))
    return values


def write_json(path: Path, document: Mapping[str, Any]) -> bool:
    """Write `document` if it differs from what is there. Returns True when the file changed."""
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


def render_stack(
    environment: Environment,
    stack: Stack,
    target: Target,
    workdir: Path,
    sensitive_inputs: frozenset[str] = frozenset(),
    functions: Mapping[str, Any] | None = None,
) -> None:
    """Write the three generated files of `stack` into `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    main = render_main(environment, stack, workdir, sensitive_inputs, functions)
    write_json(workdir / MAIN_FILE, main)
    write_backend(environment, stack.name, target, workdir)
    write_json(workdir / PROVIDER_FILE, render_provider(environment, stack.name, target))


def write_backend(environment: Environment, stack_name: str, target: Target, workdir: Path) -> None:
    """Write the stack's S3 backend (also used alone: the bootstrap moves its local state)."""
    write_json(workdir / BACKEND_FILE, render_backend(environment, stack_name, target))


def remove_backend(workdir: Path) -> None:
    """Drop the backend: terraform then keeps the state locally (the bootstrap's first apply)."""
    (workdir / BACKEND_FILE).unlink(missing_ok=True)
