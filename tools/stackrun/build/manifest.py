"""The build manifest `<name>.json` beside each zip, and the inputs hash that decides reuse."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stackrun.build.packages import FunctionPackage, Project, normalise
from stackrun.build.settings import (
    BUILDER_VERSION,
    COMPRESS_LEVEL,
    EXCLUDED_DISTRIBUTIONS,
    IMPLEMENTATION,
)
from stackrun.build.sources import is_executable
from stackrun.provenance import file_sha256


def inputs_digest(
    function: FunctionPackage,
    projects: Sequence[Project],
    sources: Sequence[Mapping[str, Path]],
    pins: Sequence[str],
    platform: str,
    python_version: str,
) -> str:
    """The hash of everything a function's zip is made from."""
    digest = hashlib.sha256()

    def add(*parts: str) -> None:
        digest.update(("\0".join(parts) + "\n").encode())

    add("builder", BUILDER_VERSION, platform, IMPLEMENTATION, python_version, str(COMPRESS_LEVEL))
    add("exclude", *sorted(EXCLUDED_DISTRIBUTIONS))
    add("handler", function.handler)
    add("pins", *pins)
    for project, files in zip(projects, sources, strict=True):
        add("package", normalise(project.distribution))
        add("file", "pyproject.toml", file_sha256(project.path / "pyproject.toml"))
        for name, path in files.items():
            add("file", name, file_sha256(path), "x" if is_executable(path) else "-")
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cached_manifest(manifest_path: Path, zip_path: Path, inputs: str) -> dict[str, Any] | None:
    """The manifest when it was built from `inputs` and the zip on disk is still that build."""
    manifest = _read_manifest(manifest_path)
    if (
        manifest is not None
        and manifest.get("inputs_sha256") == inputs
        and zip_path.is_file()
        and file_sha256(zip_path) == manifest.get("sha256")
    ):
        return manifest
    return None


def write_manifest(
    manifest_path: Path,
    function: FunctionPackage,
    zip_path: Path,
    build: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the manifest of a just-built zip; `build` holds architecture, python_version,
    inputs_sha256 and files (its member count)."""
    sha256 = file_sha256(zip_path)
    manifest = {
        "name": function.name,
        "sha256": sha256,
        "base64_sha256": base64.b64encode(bytes.fromhex(sha256)).decode(),
        "size": zip_path.stat().st_size,
        "handler": function.handler,
        "architecture": build["architecture"],
        "python_version": build["python_version"],
        "inputs_sha256": build["inputs_sha256"],
        "files": build["files"],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
