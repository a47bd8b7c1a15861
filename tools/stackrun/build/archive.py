"""The reproducible zip writer: same members, same bytes (sorted, fixed times and modes)."""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from stackrun.build.packages import BuildError, Project, normalise
from stackrun.build.settings import COMPRESS_LEVEL, EXCLUDED_DISTRIBUTIONS
from stackrun.build.sources import is_executable, walk

# Written by pip at install time; they differ between installs (or hold absolute paths).
INSTALL_ONLY_METADATA = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755

Members = dict[str, Path | bytes]  # archive name -> file or content


def _excluded_tops(staging: Path) -> set[str]:
    """Top-level names of `staging` that belong to the distributions the runtime provides."""
    dropped: set[str] = set(EXCLUDED_DISTRIBUTIONS) | {"bin"}
    for info in staging.glob("*.dist-info"):
        distribution = normalise(info.name[: -len(".dist-info")].rsplit("-", 1)[0])
        if distribution not in EXCLUDED_DISTRIBUTIONS:
            continue
        dropped.add(info.name)
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                top = line.split(",", 1)[0].split("/", 1)[0]
                if top and top not in {".", ".."}:
                    dropped.add(top)
    return dropped


def third_party_files(staging: Path) -> dict[str, Path]:
    """Files pip installed into `staging` that belong in the zip, by archive name."""
    dropped = _excluded_tops(staging)

    def skip(name: str, is_dir: bool, prefix: str) -> bool:
        if not prefix and name in dropped:
            return True
        if is_dir:
            return name in {"__pycache__", "tests"}
        if prefix.endswith(".dist-info/") and prefix.count("/") == 1:
            return name in INSTALL_ONLY_METADATA
        return name.endswith((".pyc", ".pyo"))

    return dict(walk(staging, skip))


def _write_entry(archive: zipfile.ZipFile, name: str, source: Path | bytes | None) -> None:
    """One member; `source` None for a directory entry."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = 3  # unix: external_attr holds the mode
    if source is None:
        info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | 0x10
        archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
        return
    if isinstance(source, bytes):
        data, mode = source, FILE_MODE
    else:
        data = source.read_bytes()
        mode = EXEC_MODE if is_executable(source) else FILE_MODE
    info.external_attr = (stat.S_IFREG | mode) << 16
    archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)


def write_zip(path: Path, members: Mapping[str, Path | bytes]) -> int:
    """Write a deterministic zip of `members` (archive name -> file or content); file count."""
    directories = {
        "/".join(parts[:i]) + "/"
        for name in members
        for parts in [name.split("/")]
        for i in range(1, len(parts))
    }
    entries: list[str] = sorted(directories | set(members))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for name in entries:
                _write_entry(archive, name, None if name in directories else members[name])
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return len(members)


def metadata_stub(project: Project) -> tuple[str, bytes] | None:
    """A minimal dist-info METADATA for a copied local package, so that
    importlib.metadata.version() works for it in the function too."""
    if project.version is None:
        return None
    folder = f"{re.sub(r'[-_.]+', '_', project.distribution)}-{project.version}.dist-info"
    text = f"Metadata-Version: 2.1\nName: {project.distribution}\nVersion: {project.version}\n"
    return f"{folder}/METADATA", text.encode()


def add_members(
    members: Members, origin: dict[str, str], new: Mapping[str, Path | bytes], by: str
) -> None:
    """Add `new` (provided by `by`); a name two providers give different contents fails."""
    for name, source in new.items():
        if name in members:
            if _content(members[name]) != _content(source):
                raise BuildError(f"{name} is provided by both {origin[name]} and {by}")
            continue
        members[name] = source
        origin[name] = by


def _content(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()
