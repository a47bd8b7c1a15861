"""The packages of lambdas/: functions and libraries, read from their pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.errors import StackrunError

_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_HANDLER = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class BuildError(StackrunError):
    """A function could not be built (bad package metadata, missing handler, pip failure)."""


@dataclass(frozen=True)
class FunctionPackage:
    """A folder of lambdas/ whose pyproject has `[tool.fleet] lambda = true`."""

    name: str
    path: Path
    distribution: str
    handler: str


@dataclass(frozen=True)
class Project:
    """The `[project]` and `[tool.fleet]` tables of one package's pyproject.toml."""

    path: Path
    distribution: str
    version: str | None
    dependencies: tuple[str, ...]
    fleet: dict[str, Any] | None


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name: `Fleet_Common` -> `fleet-common`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised distribution name a PEP 508 requirement string refers to."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalise(match.group(1))


def read_project(folder: Path) -> Project:
    pyproject = folder / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{pyproject}: cannot read: {exc}") from exc
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise BuildError(f"{pyproject}: [project] name is missing")
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise BuildError(f"{pyproject}: [project] dependencies must be a list of strings")
    for dependency in dependencies:
        if _NAME.match(dependency) is None:
            raise BuildError(f"{pyproject}: invalid dependency {dependency!r}")
    fleet = data.get("tool", {}).get("fleet")
    if fleet is not None and not isinstance(fleet, dict):
        raise BuildError(f"{pyproject}: [tool.fleet] must be a table")
    version = project.get("version")
    return Project(
        path=folder,
        distribution=project["name"],
        version=version if isinstance(version, str) else None,
        dependencies=tuple(d.strip() for d in dependencies),
        fleet=fleet,
    )


def discover(lambdas_dir: Path) -> tuple[list[FunctionPackage], dict[str, Path]]:
    """The functions of `lambdas_dir` (sorted by folder name) and its libraries, keyed by
    normalised distribution name. Folders without a pyproject.toml are ignored."""
    functions: list[FunctionPackage] = []
    libraries: dict[str, Path] = {}
    seen: dict[str, Path] = {}
    if not lambdas_dir.is_dir():
        return functions, libraries
    for folder in sorted(p for p in lambdas_dir.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")) or not (folder / "pyproject.toml").is_file():
            continue
        project = read_project(folder)
        distribution = normalise(project.distribution)
        if distribution in seen:
            raise BuildError(
                f"{folder}/pyproject.toml: distribution {project.distribution!r} is also "
                f"defined by {seen[distribution]}"
            )
        seen[distribution] = folder
        function = _function_of(project, distribution)
        if function is None:
            libraries[distribution] = folder
        else:
            functions.append(function)
    return functions, libraries


def _function_of(project: Project, distribution: str) -> FunctionPackage | None:
    """The package as a function, or None for a library."""
    folder = project.path
    fleet = project.fleet or {}
    is_lambda = fleet.get("lambda", False)
    if not isinstance(is_lambda, bool):
        raise BuildError(f"{folder}/pyproject.toml: [tool.fleet] lambda must be true/false")
    if not is_lambda:
        return None
    handler = fleet.get("handler")
    if not isinstance(handler, str) or not _HANDLER.fullmatch(handler):
        raise BuildError(
            f"{folder}/pyproject.toml: [tool.fleet] handler must be 'package.module.function'"
            f" (got {handler!r})"
        )
    return FunctionPackage(folder.name, folder, distribution, handler)


def check_function_dependencies(functions: list[FunctionPackage]) -> None:
    """Only libraries can be dependencies: a function depending on another function fails."""
    by_dist = {f.distribution: f for f in functions}
    for function in functions:
        for requirement in read_project(function.path).dependencies:
            other = by_dist.get(requirement_name(requirement))
            if other is not None and other is not function:
                raise BuildError(
                    f"function {function.name} depends on {requirement!r}, which is the function "
                    f"package {other.name}: only libraries ([tool.fleet] lambda = false) can be "
                    "dependencies"
                )


def local_closure(
    function: FunctionPackage, libraries: Mapping[str, Path]
) -> tuple[list[Project], list[str]]:
    """(the function's project + its local libraries, transitively; third-party requirements)."""
    own = read_project(function.path)
    projects = [own]
    third_party: set[str] = set()
    visited = {normalise(own.distribution)}
    queue = [own]
    while queue:
        project = queue.pop(0)
        for requirement in project.dependencies:
            name = requirement_name(requirement)
            if name in libraries:
                if name not in visited:
                    visited.add(name)
                    library = read_project(libraries[name])
                    projects.append(library)
                    queue.append(library)
            elif name != normalise(own.distribution):
                third_party.add(requirement)
    libs = sorted(projects[1:], key=lambda p: normalise(p.distribution))
    return [own, *libs], sorted(third_party)
