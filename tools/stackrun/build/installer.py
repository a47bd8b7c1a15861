"""pip, run for the Lambda platform: resolving requirements, and installs cached per pin set."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from stackrun.build.packages import BuildError, FunctionPackage, normalise, requirement_name
from stackrun.build.settings import ARCHITECTURES, BUILDER_VERSION, IMPLEMENTATION

SITE_CACHE_DAYS = 30  # cached pip installs unused this long are removed


def platform_tag(architecture: str) -> str:
    """pip's --platform for a Lambda architecture."""
    platform = ARCHITECTURES.get(architecture)
    if platform is None:
        raise BuildError(
            f"unknown architecture {architecture!r} (expected one of {', '.join(ARCHITECTURES)})"
        )
    return platform


def _pip_base() -> list[str]:
    if importlib.util.find_spec("pip") is None:
        raise BuildError(
            f"pip is not installed for {sys.executable}; the Lambda builder runs "
            "`python -m pip` (install it with `python -m ensurepip` or `uv pip install pip`)"
        )
    return [sys.executable, "-m", "pip"]


def _platform_options(platform: str, python_version: str) -> list[str]:
    return [
        "--platform",
        platform,
        "--implementation",
        IMPLEMENTATION,
        "--python-version",
        python_version,
        "--only-binary=:all:",
    ]


def _run_pip(function: FunctionPackage, arguments: list[str], requirements: Sequence[str]) -> None:
    env = dict(os.environ)
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PYTHONDONTWRITEBYTECODE="1",
        PIP_NO_WARN_SCRIPT_LOCATION="1",
    )
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    result = subprocess.run(
        [*_pip_base(), *arguments], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode == 0:
        return
    output = (result.stdout + "\n" + result.stderr).strip().splitlines()
    lines = [line for line in output if not line.startswith("WARNING: Location ")]
    culprit = _failed_requirement("\n".join(lines), requirements)
    what = f"requirement {culprit!r}" if culprit else "requirements " + ", ".join(requirements)
    tail = "\n".join("    " + line for line in lines[-15:])
    raise BuildError(
        f"function {function.name}: pip could not install {what} for the Lambda platform "
        f"(exit {result.returncode}); last lines of pip's output:\n{tail}"
    )


def _failed_requirement(output: str, requirements: Sequence[str]) -> str | None:
    patterns = (
        r"No matching distribution found for (\S+)",
        r"Could not find a version that satisfies the requirement (\S+)",
        r"ResolutionImpossible.*?requested (\S+)",
    )
    for pattern in patterns:
        match = re.search(pattern, output, re.DOTALL)
        if match:
            name = requirement_name(match.group(1))
            for requirement in requirements:
                if requirement_name(requirement) == name:
                    return requirement
            return match.group(1)
    return None


def resolve(
    function: FunctionPackage,
    requirements: Sequence[str],
    platform: str,
    python_version: str,
    constraints: Sequence[str] = (),
) -> list[str]:
    """Resolve `requirements` for the target platform with pip (nothing is installed)."""
    with tempfile.TemporaryDirectory(prefix="stackrun-lock-") as temp:
        report = Path(temp, "report.json")
        arguments = [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(Path(temp, "target")),
            *_platform_options(platform, python_version),
        ]
        if constraints:
            constraint_file = Path(temp, "constraints.txt")
            constraint_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
            arguments += ["--constraint", str(constraint_file)]
        _run_pip(function, [*arguments, *requirements], requirements)
        data = json.loads(report.read_text(encoding="utf-8"))
    return sorted(
        f"{normalise(item['metadata']['name'])}=={item['metadata']['version']}"
        for item in data.get("install", [])
    )


def installed_site(
    function: FunctionPackage,
    install: Sequence[str],
    platform: str,
    python_version: str,
    site_cache: Path,
    force: bool,
) -> Path:
    """A folder holding the pinned third-party packages, installed for the Lambda platform.

    pip runs once per distinct set of pins (and platform, Python version): the install is kept
    in `site_cache/<key>` and later builds with the same pins (a source change, or another
    function with the same requirements) zip it again without calling pip. `force` installs
    afresh.
    """
    key_text = "\n".join([BUILDER_VERSION, platform, python_version, *sorted(install)])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
    site = site_cache / f"site-{key}"
    if site.is_dir() and not force:
        os.utime(site)  # recently used: kept by prune_sites
        return site
    site_cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".site-{key}.", dir=site_cache))
    try:
        arguments = [
            "install",
            "--no-deps",
            "--no-compile",
            "--quiet",
            "--target",
            str(staging),
            *_platform_options(platform, python_version),
            *install,
        ]
        _run_pip(function, arguments, install)
        shutil.rmtree(site, ignore_errors=True)
        staging.rename(site)  # complete installs only: a failed pip leaves no site behind
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return site


def prune_sites(site_cache: Path, keep_days: float = SITE_CACHE_DAYS) -> None:
    """Drop cached installs no build used for `keep_days` (pins that changed since)."""
    cutoff = time.time() - keep_days * 86400
    for site in site_cache.glob("site-*"):
        if site.is_dir() and site.stat().st_mtime < cutoff:
            shutil.rmtree(site, ignore_errors=True)
