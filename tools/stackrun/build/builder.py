"""Build one function's zip (or reuse it), and every function of lambdas/ in turn."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.build.archive import (
    Members,
    add_members,
    metadata_stub,
    third_party_files,
    write_zip,
)
from stackrun.build.installer import installed_site, platform_tag, prune_sites
from stackrun.build.lockfile import locked_pins
from stackrun.build.manifest import cached_manifest, inputs_digest, write_manifest
from stackrun.build.packages import (
    BuildError,
    FunctionPackage,
    Project,
    check_function_dependencies,
    discover,
    local_closure,
)
from stackrun.build.settings import EXCLUDED_DISTRIBUTIONS, Log
from stackrun.build.sources import check_handler, source_files
from stackrun.filelock import file_lock
from stackrun.paths import artifact_dir, build_cache_dir, build_lock_file


@dataclass(frozen=True)
class Artifact:
    """One built (or cached) function zip."""

    name: str
    zip_path: Path
    sha256: str
    base64_sha256: str
    size: int
    handler: str
    rebuilt: bool
    seconds: float

    @classmethod
    def of(
        cls, function: FunctionPackage, zip_path: Path, manifest: Mapping[str, Any], **run: Any
    ) -> Artifact:
        """From the zip's manifest; `run` gives rebuilt and seconds."""
        return cls(
            name=function.name,
            zip_path=zip_path,
            sha256=manifest["sha256"],
            base64_sha256=manifest["base64_sha256"],
            size=zip_path.stat().st_size,
            handler=function.handler,
            **run,
        )


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def _local_members(
    projects: Sequence[Project], sources: Sequence[Mapping[str, Path]]
) -> tuple[Members, dict[str, str]]:
    """The zip members copied from the function's and its libraries' src/ trees."""
    members: Members = {}
    origin: dict[str, str] = {}
    for project, files in zip(projects, sources, strict=True):
        where = f"{project.path.name}/src"
        add_members(members, origin, files, where)
        stub = metadata_stub(project)
        if stub is not None:
            add_members(members, origin, {stub[0]: stub[1]}, where)
    return members, origin


def build_function(
    function: FunctionPackage,
    libraries: Mapping[str, Path],
    out_dir: Path,
    *,
    architecture: str = "arm64",
    python_version: str = "3.12",
    force: bool = False,
    relock: bool = False,
    log: Log = print,
    site_cache: Path,
) -> Artifact:
    """Build (or reuse) `out_dir/<name>.zip` for one function; see the package docstring.

    `site_cache` keeps pip's installs for reuse (see installer.installed_site).
    """
    started = time.monotonic()
    platform = platform_tag(architecture)
    projects, requirements = local_closure(function, libraries)
    sources = [source_files(project) for project in projects]
    check_handler(function, sources[0])
    pins = locked_pins(function, requirements, platform, python_version, relock, log)
    inputs = inputs_digest(function, projects, sources, pins, platform, python_version)

    zip_path = out_dir / f"{function.name}.zip"
    manifest_path = out_dir / f"{function.name}.json"
    cached = None if force else cached_manifest(manifest_path, zip_path, inputs)
    if cached is not None:
        log(f"build {function.name}: unchanged (cached)")
        return Artifact.of(
            function, zip_path, cached, rebuilt=False, seconds=time.monotonic() - started
        )

    members, origin = _local_members(projects, sources)
    install = [p for p in pins if p.split("==")[0] not in EXCLUDED_DISTRIBUTIONS]
    out_dir.mkdir(parents=True, exist_ok=True)
    if install:
        site = installed_site(function, install, platform, python_version, site_cache, force)
        add_members(members, origin, third_party_files(site), "third-party packages")
    count = write_zip(zip_path, members)
    settings = {"architecture": architecture, "python_version": python_version}
    manifest = write_manifest(
        manifest_path, function, zip_path, {**settings, "inputs_sha256": inputs, "files": count}
    )
    seconds = time.monotonic() - started
    size, sha256 = manifest["size"], manifest["sha256"]
    log(f"build {function.name}: {seconds:.1f}s, {_size(size)}, sha256 {sha256[:12]}")
    return Artifact.of(function, zip_path, manifest, rebuilt=True, seconds=seconds)


def _selected(
    functions: list[FunctionPackage], only: Sequence[str] | None, lambdas_dir: Path
) -> list[FunctionPackage]:
    if only is None:
        return functions
    names = {f.name for f in functions}
    unknown = sorted(set(only) - names)
    if unknown:
        raise BuildError(
            f"no function named {', '.join(unknown)} in {lambdas_dir} "
            f"(functions: {', '.join(sorted(names)) or 'none'})"
        )
    return [f for f in functions if f.name in set(only)]


def build_all(
    repo_root: Path,
    out_dir: Path | None = None,
    architecture: str = "arm64",
    python_version: str = "3.12",
    force: bool = False,
    log: Log = print,
    *,
    relock: bool = False,
    only: Sequence[str] | None = None,
) -> list[Artifact]:
    """Build every function of `repo_root/lambdas` (or those named in `only`), in name order.

    `out_dir` defaults to the architecture's artifact folder (paths.artifact_dir).
    """
    platform_tag(architecture)  # an unknown architecture fails before any folder is made
    out_dir = out_dir if out_dir is not None else artifact_dir(repo_root, architecture)
    lambdas_dir = repo_root / "lambdas"
    functions, libraries = discover(lambdas_dir)
    check_function_dependencies(functions)
    functions = _selected(functions, only, lambdas_dir)
    # Concurrent commands (deploys of several environments) build one at a time; the later
    # ones then find the zips cached.
    site_cache = build_cache_dir(repo_root)
    with file_lock(build_lock_file(out_dir)):
        artifacts = [
            build_function(
                function,
                libraries,
                out_dir,
                architecture=architecture,
                python_version=python_version,
                force=force,
                relock=relock,
                log=log,
                site_cache=site_cache,
            )
            for function in functions
        ]
        prune_sites(site_cache)
    return artifacts
