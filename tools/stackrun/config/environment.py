"""live/<env>/env.toml, and the whole environment: project, env.toml and every stack."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.checks import Collector, quote, read_toml
from stackrun.config.defaults import check_defaults_folder
from stackrun.config.keys import (
    ACCOUNT_ID_PATTERN,
    BUCKET_NAME_PATTERN,
    DEFAULT_PLAN_ROLE,
    ENV_NAME_PATTERN,
    ENV_SCHEMA,
    IDENTITY_TABLE,
    ISSUER_PATTERN,
    REGION_PATTERN,
    ROLE_ARN_PATTERN,
    ROLE_KEYS,
    ROLE_NAME_PATTERN,
    TABLE_NAME_PATTERN,
)
from stackrun.config.layout import env_dir, env_file, list_environments, project_file
from stackrun.config.model import (
    EXTERNAL_ISSUER_INPUT,
    BackendSettings,
    Environment,
    ExternalIssuer,
    Project,
    Stack,
)
from stackrun.config.project import load_project
from stackrun.config.stacks import load_stacks
from stackrun.errors import ConfigError, ConfigIssue


def _check_identity(table: Any, collector: Collector) -> ExternalIssuer | None:
    if not isinstance(table, dict):
        return None
    before = len(collector.issues)
    collector.check_table(table, IDENTITY_TABLE, "identity.")
    issuer, audience = table.get("issuer"), table.get("audience")
    if isinstance(issuer, str) and not ISSUER_PATTERN.fullmatch(issuer):
        collector.add(
            "identity.issuer",
            "expected an https:// URL without query, fragment or credentials (API Gateway "
            f"fetches the issuer's keys over TLS), got {quote(issuer)}",
        )
    if isinstance(audience, list):
        if not audience:
            collector.add("identity.audience", "expected at least one audience value, got []")
        for index, value in enumerate(audience):
            if isinstance(value, str) and not value.strip():
                collector.add(
                    f"identity.audience[{index}]", "expected a non-empty audience value, got ''"
                )
    if len(collector.issues) > before:
        return None
    return ExternalIssuer(issuer=table["issuer"], audience=tuple(table["audience"]))


def _check_env_name(env_name: str) -> list[ConfigIssue]:
    """An environment's name is its folder's name: it goes into state keys, bucket and table
    names and tags, so it must be a plain lowercase name (ENV_NAME_PATTERN)."""
    if ENV_NAME_PATTERN.fullmatch(env_name):
        return []
    return [
        ConfigIssue(
            env_dir(Path(), env_name),
            "",
            "not an environment folder name: expected 1 to 31 lowercase letters, digits and "
            f"'-', starting with a letter, got {quote(env_name)}",
        )
    ]


def _read_env_file(root: Path, env_name: str, collector: Collector) -> dict[str, Any]:
    data = read_toml(env_file(root, env_name), collector) or {}
    collector.check_table(data, ENV_SCHEMA)
    account = data.get("account_id")
    if isinstance(account, str) and not ACCOUNT_ID_PATTERN.fullmatch(account):
        collector.add("account_id", f"expected exactly 12 digits, got {quote(account)}")
    region = data.get("region")
    if isinstance(region, str) and not REGION_PATTERN.fullmatch(region):
        collector.add(
            "region", f'expected an AWS region name such as "eu-west-1", got {quote(region)}'
        )
    for key in ROLE_KEYS:
        role = data.get(key)
        if not isinstance(role, str):
            continue
        arn_match = ROLE_ARN_PATTERN.fullmatch(role)
        if role.startswith("arn:"):
            if not arn_match:
                collector.add(key, f"expected an IAM role ARN, got {quote(role)}")
            elif isinstance(account, str) and arn_match.group(1) != account:
                collector.add(
                    key,
                    f"the role's account {arn_match.group(1)} is not this environment's "
                    f"account_id {account}",
                )
        elif not ROLE_NAME_PATTERN.fullmatch(role):
            collector.add(key, f"expected an IAM role name, got {quote(role)}")
    deploy, plan = data.get("deploy_role"), data.get("plan_role", DEFAULT_PLAN_ROLE)
    if (
        isinstance(deploy, str)
        and isinstance(plan, str)
        and isinstance(account, str)
        and _role_arn(deploy, account) == _role_arn(plan, account)
    ):
        collector.add(
            "plan_role",
            f"the plan role must not be the deploy role ({quote(deploy)}): plans of pull "
            "requests run with read-only rights",
        )
    return data


def _role_arn(role: str, account: str) -> str:
    """A role name or ARN of env.toml as an ARN in `account`."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"


def load_environment(root: Path, env_name: str) -> Environment:
    """Load live/project.toml, live/<env>/env.toml and every stack of the environment.

    Raises ConfigError listing every problem found. Nothing is run.
    """
    project = load_project(root)
    known = _known_environments(root, env_name)
    env_path = env_file(root, env_name)
    collector = Collector(env_path, root)
    data = _read_env_file(root, env_name, collector)
    identity = _check_identity(data.get("identity"), collector)
    account = data.get("account_id", "")
    _check_promote_from(data.get("promote_from"), env_name, known, collector)
    issues = collector.issues + _shared_account(root, env_name, known, account, collector.file)
    stacks, stack_issues = load_stacks(root, env_name, project)
    issues += stack_issues + check_defaults_folder(root)
    if issues:
        # Before the backend names are resolved: a bad account_id or region is reported on its
        # own key of env.toml, not again as a bad bucket or table name of project.toml.
        raise ConfigError(issues)
    region = data.get("region", project.default_region)
    backend = _backend(project, env_name, account, region, root)
    return Environment(
        project=project,
        name=env_name,
        account_id=account,
        region=region,
        deploy_role_arn=_role_arn(data["deploy_role"], account),
        plan_role_arn=_role_arn(data.get("plan_role", DEFAULT_PLAN_ROLE), account),
        tags=MappingProxyType(dict(data.get("tags", {}))),
        protected=data.get("protected", False),
        backend=backend,
        stacks=tuple(_with_identity(stacks, identity)),
        path=env_path.parent,
        lambda_architecture=data.get("lambda_architecture", "arm64"),
        identity=identity,
        promote_from=data.get("promote_from"),
    )


def _known_environments(root: Path, env_name: str) -> list[str]:
    """The environments of live/; raises ConfigError unless `env_name` is a well-named one."""
    name_issues = _check_env_name(env_name)
    if name_issues:
        raise ConfigError(name_issues)
    known = list_environments(root)
    if env_name not in known:
        file = env_file(Path(), env_name)
        raise ConfigError(
            [
                ConfigIssue(
                    file,
                    "",
                    f"unknown environment {env_name!r}; known environments: "
                    f"{', '.join(known) or 'none'} (each needs {file})",
                )
            ]
        )
    return known


def _check_promote_from(
    promote_from: Any, env_name: str, known: list[str], collector: Collector
) -> None:
    if isinstance(promote_from, str) and (promote_from == env_name or promote_from not in known):
        others = ", ".join(other for other in known if other != env_name) or "none"
        collector.add(
            "promote_from",
            f"expected another environment of live/ ({others}), got {quote(promote_from)}",
        )


def _shared_account(
    root: Path, env_name: str, known: list[str], account: Any, file: Path
) -> list[ConfigIssue]:
    """Each environment is its own account: a shared account would share one state bucket and
    let one environment's provider act on another's resources."""
    if not isinstance(account, str) or not ACCOUNT_ID_PATTERN.fullmatch(account):
        return []
    issues = []
    for other in known:
        if other == env_name:
            continue
        other_collector = Collector(env_file(root, other), root)
        if _read_env_file(root, other, other_collector).get("account_id") == account:
            issues.append(
                ConfigIssue(
                    file,
                    "account_id",
                    f"account {account} is also used by environment {other!r}; "
                    "each environment needs its own AWS account",
                )
            )
    return issues


def _backend(
    project: Project, env_name: str, account: str, region: str, root: Path
) -> BackendSettings:
    """The state backend of the environment: project.toml's name templates filled in."""
    fields = {"project": project.name, "account_id": account, "region": region, "env": env_name}
    backend = BackendSettings(
        bucket=project.bucket_template.format(**fields),
        lock_table=project.lock_table_template.format(**fields),
        region=region,
        deletion_protection=project.backend_deletion_protection,
    )
    backend_issues = _check_backend_names(backend, root)
    if backend_issues:
        raise ConfigError(backend_issues)
    return backend


def _with_identity(stacks: list[Stack], identity: ExternalIssuer | None) -> list[Stack]:
    """Stacks whose module takes `external_issuer` get env.toml's [identity] (or null)."""
    value = identity.as_input() if identity else None
    return [
        replace(stack, inputs=MappingProxyType({**stack.inputs, EXTERNAL_ISSUER_INPUT: value}))
        if EXTERNAL_ISSUER_INPUT in stack.module.variables
        else stack
        for stack in stacks
    ]


def _check_backend_names(backend: BackendSettings, root: Path) -> list[ConfigIssue]:
    file = project_file(Path())
    issues = []
    if not BUCKET_NAME_PATTERN.fullmatch(backend.bucket) or ".." in backend.bucket:
        issues.append(
            ConfigIssue(
                file,
                "backend.bucket",
                f"resolves to {backend.bucket!r}, not a valid S3 bucket name "
                "(3-63 chars of lowercase letters, digits, '.' and '-')",
            )
        )
    if not TABLE_NAME_PATTERN.fullmatch(backend.lock_table):
        issues.append(
            ConfigIssue(
                file,
                "backend.lock_table",
                f"resolves to {backend.lock_table!r}, not a valid DynamoDB table name",
            )
        )
    return issues
