"""`lambdas/<name>/requirements.lock`: a function's third-party pins, resolved by pip once."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from stackrun.build.installer import resolve
from stackrun.build.packages import BuildError, FunctionPackage, normalise
from stackrun.build.settings import IMPLEMENTATION, Log

LOCK_FILE = "requirements.lock"

_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([^\s;]+)$")
_LOCK_KEY = "# requirements-sha256: "


def _lock_key(requirements: Sequence[str], platform: str, python_version: str) -> str:
    text = json.dumps([sorted(requirements), platform, IMPLEMENTATION, python_version])
    return hashlib.sha256(text.encode()).hexdigest()


def _read_lock(path: Path) -> tuple[str | None, list[str]] | None:
    """(key from the header, pins) or None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    key = None
    pins: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(_LOCK_KEY):
            key = line[len(_LOCK_KEY) :].strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if match is None:
            raise BuildError(f"{path}:{number}: expected 'name==version', got {line!r}")
        pins.append(f"{normalise(match.group(1))}=={match.group(2)}")
    return key, sorted(pins)


def _write_lock(path: Path, name: str, key: str, pins: Sequence[str]) -> None:
    lines = [
        f"# Third-party requirements of the {name} Lambda function, resolved for the Lambda",
        "# platform by stackrun's builder. Regenerate with --relock (or delete this file).",
        f"{_LOCK_KEY}{key}",
        *sorted(pins),
    ]
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def locked_pins(
    function: FunctionPackage,
    requirements: Sequence[str],
    platform: str,
    python_version: str,
    relock: bool,
    log: Log,
) -> list[str]:
    """The pinned third-party set of `function`: from its lock file when that is current,
    otherwise resolved with pip and written to the lock file."""
    path = function.path / LOCK_FILE
    key = _lock_key(requirements, platform, python_version)
    current = _read_lock(path)
    if current is not None and current[0] == key and not relock:
        return current[1]
    if not requirements:
        pins: list[str] = []
    elif current is not None and not relock:
        # Declared requirements (or the platform) changed: keep the existing pins when they
        # still fit, so that adding one dependency does not upgrade all the others.
        try:
            pins = resolve(function, requirements, platform, python_version, current[1])
        except BuildError:
            pins = resolve(function, requirements, platform, python_version)
    else:
        pins = resolve(function, requirements, platform, python_version)
    reason = "regenerated" if relock else "written" if current is None else "updated"
    _write_lock(path, function.name, key, pins)
    log(f"lock {function.name}: {path.name} {reason} ({len(pins)} packages)")
    return pins
