"""live/project.toml: the project-wide settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stackrun.config.checks import Collector, is_int, quote, read_toml
from stackrun.config.keys import (
    BACKEND_TABLE,
    BRANCH_PATTERN,
    DURATION_PATTERN,
    GITHUB_REPOSITORY_PATTERN,
    GITHUB_TABLE,
    LOCAL_TABLE,
    PROJECT_NAME_PATTERN,
    PROJECT_SCHEMA,
    PROJECT_TABLE,
    REGION_PATTERN,
    TEMPLATE_FIELDS,
    TERRAFORM_TABLE,
)
from stackrun.config.layout import project_file
from stackrun.config.model import GitHubSettings, Project
from stackrun.errors import ConfigError


def _check_github(table: Mapping[str, Any], collector: Collector) -> GitHubSettings | None:
    before = len(collector.issues)
    repository, branch = table.get("repository"), table.get("branch", "main")
    if isinstance(repository, str):
        name = repository.partition("/")[2]
        if not GITHUB_REPOSITORY_PATTERN.fullmatch(repository) or name in (".", ".."):
            collector.add(
                "github.repository",
                "expected \"owner/repo\" (owner: letters, digits and '-', up to 39; repo: "
                f"letters, digits, '.', '_' and '-'), got {quote(repository)}",
            )
    if isinstance(branch, str) and (
        not BRANCH_PATTERN.fullmatch(branch)
        or any(part in branch for part in ("..", "//", "@{"))
        or branch.endswith(("/", ".lock"))
    ):
        collector.add(
            "github.branch",
            "expected a plain git branch name (letters, digits, '.', '_', '-', '/'; no '..', "
            f"'//', trailing '/' or '.lock'), got {quote(branch)}",
        )
    if len(collector.issues) > before or not table or not isinstance(repository, str):
        return None
    return GitHubSettings(repository=repository, branch=branch)


TABLES = {
    "project": PROJECT_TABLE,
    "backend": BACKEND_TABLE,
    "terraform": TERRAFORM_TABLE,
    "local": LOCAL_TABLE,
    "github": GITHUB_TABLE,
}


def load_project(root: Path) -> Project:
    """Read and validate live/project.toml."""
    path = project_file(root)
    collector = Collector(path, root)
    data = read_toml(path, collector)
    if data is None:
        raise ConfigError(collector.issues)
    collector.check_table(data, PROJECT_SCHEMA)
    tables = _tables(data, collector)
    github = _check_github(tables["github"], collector) if "github" in data else None
    _check_values(tables, collector)
    if collector.issues:
        raise ConfigError(collector.issues)
    return _project(root, tables, github)


def _tables(data: Mapping[str, Any], collector: Collector) -> dict[str, dict[str, Any]]:
    """project.toml's tables ({} for one absent or not a table), each checked on its keys."""
    tables = {}
    for name, schema in TABLES.items():
        table = data.get(name, {})
        tables[name] = table if isinstance(table, dict) else {}
        if name in data or name != "github":  # [github] is optional; when there, complete
            collector.check_table(tables[name], schema, prefix=f"{name}.")
    return tables


def _check_values(tables: Mapping[str, Mapping[str, Any]], collector: Collector) -> None:
    """The values whose type is right but whose form is not (names, templates, durations)."""
    project, backend = tables["project"], tables["backend"]
    name = project.get("name", "")
    if isinstance(name, str) and name and not PROJECT_NAME_PATTERN.fullmatch(name):
        collector.add(
            "project.name",
            "expected 3 to 32 lowercase letters, digits and '-' (starting with a letter), "
            f"got {quote(name)}",
        )
    region = project.get("default_region", "")
    if isinstance(region, str) and region and not REGION_PATTERN.fullmatch(region):
        collector.add("project.default_region", f"expected an AWS region name, got {quote(region)}")
    for key in ("bucket", "lock_table"):
        template = backend.get(key)
        if isinstance(template, str):
            _check_template(template, f"backend.{key}", collector)
    lock_timeout = tables["terraform"].get("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    if isinstance(lock_timeout, str) and not DURATION_PATTERN.fullmatch(lock_timeout):
        collector.add(
            "terraform.lock_timeout", f'expected a duration like "5m", got {quote(lock_timeout)}'
        )
    port = tables["local"].get("port", DEFAULT_LOCAL_PORT)
    if is_int(port) and not 1024 <= port <= 65535:
        collector.add("local.port", f"expected a TCP port between 1024 and 65535, got {port}")


DEFAULT_LOCK_TIMEOUT = "5m"
DEFAULT_LOCAL_PORT = 4566


def _project(
    root: Path, tables: Mapping[str, Mapping[str, Any]], github: GitHubSettings | None
) -> Project:
    """The Project of checked tables, with the defaults of the keys they leave out."""
    project, backend, terraform = tables["project"], tables["backend"], tables["terraform"]
    mirror = terraform.get("provider_mirror")
    return Project(
        root=root,
        name=project.get("name", ""),
        default_region=project.get("default_region", ""),
        bucket_template=backend.get("bucket", "{project}-tfstate-{account_id}-{region}"),
        lock_table_template=backend.get("lock_table", "{project}-tf-locks"),
        backend_deletion_protection=backend.get("deletion_protection", True),
        terraform_version=terraform.get("version", ">= 1.10"),
        aws_provider_version=terraform.get("aws_provider_version", ">= 5.0"),
        lock_timeout=terraform.get("lock_timeout", DEFAULT_LOCK_TIMEOUT),
        provider_mirror=(root / mirror) if isinstance(mirror, str) else None,
        local_port=tables["local"].get("port", DEFAULT_LOCAL_PORT),
        tags=MappingProxyType(dict(project.get("tags", {}))),
        github=github,
    )


def _check_template(template: str, key: str, collector: Collector) -> None:
    fields = set(re.findall(r"{([^{}]*)}", template))
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        collector.add(
            key, f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(TEMPLATE_FIELDS)}"
        )
        return
    try:  # every placeholder is known: only a lone brace is left to fail str.format
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, ""))
    except (ValueError, LookupError, AttributeError):
        collector.add(
            key,
            "expected a name template using {project}, {account_id}, {region}, {env}; "
            f"got {quote(template)}, with a '{{' or '}}' that is not part of a placeholder",
        )
