"""Build the Lambda deployment zips of lambdas/<name>/, reproducibly and only when needed.

Every folder of lambdas/ holds an installable package (pyproject.toml, src/ layout). A package
is a *function* when its pyproject says so::

    [tool.fleet]
    lambda = true
    handler = "create_project.handler.handler"

Any other package (no `[tool.fleet]` table, or `lambda = false`) is a *library* that functions
depend on by distribution name (`dependencies = ["fleet-common"]`).

Building one function writes `dist/lambdas/<name>.zip` and a manifest `dist/lambdas/<name>.json`:

- The zip root holds the function's and its local libraries' src/ trees (copied, not installed)
  and its third-party requirements, installed by pip for the Lambda platform (manylinux2014,
  CPython 3.12, wheels only). boto3, botocore and s3transfer are left out: the Lambda runtime
  provides them.
- Third-party requirements are pinned in `lambdas/<name>/requirements.lock` (sorted
  `name==version` lines). The file is generated when missing, refreshed when the declared
  requirements or the target platform change (keeping the existing pins where possible) and
  regenerated from scratch with `relock=True`.
- The zip is deterministic: sorted members, fixed timestamps, normalised modes, fixed
  compression level, no byte-code and none of the install-time files pip writes (RECORD,
  INSTALLER, REQUESTED, direct_url.json). Same inputs, same bytes.
- The *inputs* (sources, lock pins, build settings) are hashed; when the hash matches the
  manifest and the zip on disk still has the recorded sha256, the build is skipped without
  calling pip.
- pip's install of the pinned requirements is kept in `.stackrun/build/site-<key>` (the key
  hashes the pins, platform and Python version): a source change rebuilds the zip from it
  without pip; `force` installs afresh.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.paths import cache_root
from stackrun.provenance import file_sha256

# Bump when the zip layout or the hashing changes: every cached artifact is then rebuilt.
BUILDER_VERSION = "1"

ARCHITECTURES = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
IMPLEMENTATION = "cp"
# Provided by the Lambda Python runtime (and the copy powertools is meant to use).
EXCLUDED_DISTRIBUTIONS = frozenset({"boto3", "botocore", "s3transfer"})
# Written by pip at install time; they differ between installs (or hold absolute paths).
INSTALL_ONLY_METADATA = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
LOCK_FILE = "requirements.lock"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 9
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
SITE_CACHE_DAYS = 30  # cached pip installs unused this long are removed

_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([^\s;]+)$")
_LOCK_KEY = "# requirements-sha256: "

Log = Callable[[str], Any]


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


# ---- package metadata ------------------------------------------------------------------------


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name: `Fleet_Common` -> `fleet-common`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised distribution name a PEP 508 requirement string refers to."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalise(match.group(1))


@dataclass(frozen=True)
class _Project:
    path: Path
    distribution: str
    version: str | None
    dependencies: tuple[str, ...]
    fleet: dict[str, Any] | None


def _read_project(folder: Path) -> _Project:
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
    return _Project(
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
        project = _read_project(folder)
        distribution = normalise(project.distribution)
        if distribution in seen:
            raise BuildError(
                f"{folder}/pyproject.toml: distribution {project.distribution!r} is also "
                f"defined by {seen[distribution]}"
            )
        seen[distribution] = folder
        fleet = project.fleet or {}
        is_lambda = fleet.get("lambda", False)
        if not isinstance(is_lambda, bool):
            raise BuildError(f"{folder}/pyproject.toml: [tool.fleet] lambda must be true/false")
        if not is_lambda:
            libraries[distribution] = folder
            continue
        handler = fleet.get("handler")
        if not isinstance(handler, str) or not re.fullmatch(
            r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", handler
        ):
            raise BuildError(
                f"{folder}/pyproject.toml: [tool.fleet] handler must be 'package.module.function'"
                f" (got {handler!r})"
            )
        functions.append(FunctionPackage(folder.name, folder, distribution, handler))
    return functions, libraries


def _local_closure(
    function: FunctionPackage, libraries: Mapping[str, Path]
) -> tuple[list[_Project], list[str]]:
    """(the function's project + its local libraries, transitively; third-party requirements)."""
    own = _read_project(function.path)
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
                    library = _read_project(libraries[name])
                    projects.append(library)
                    queue.append(library)
            elif name != normalise(own.distribution):
                third_party.add(requirement)
    libs = sorted(projects[1:], key=lambda p: normalise(p.distribution))
    return [own, *libs], sorted(third_party)


def source_roots(package: Path) -> list[Path]:
    """The `src/` folders a package needs on sys.path: its own and its local libraries'.

    For running a package from source (the local migration step) exactly as its zip would
    hold it.
    """
    functions, libraries = discover(package.parent)
    function = next((f for f in functions if f.path == package), None)
    if function is None:
        return [package / "src"]
    projects, _ = _local_closure(function, libraries)
    return [project.path / "src" for project in projects]


# ---- source files ----------------------------------------------------------------------------


def _skip_source(name: str, is_dir: bool) -> bool:
    if name.startswith("."):  # .DS_Store, .mypy_cache, ...
        return True
    if is_dir:
        return name in {"__pycache__", "tests"} or name.endswith(".egg-info")
    return name.endswith((".pyc", ".pyo"))


def _walk(root: Path, skip: Callable[[str, bool, str], bool]) -> Iterator[tuple[str, Path]]:
    """(posix path relative to root, file) for every kept file, in sorted order."""
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = sorted(d for d in dirs if not skip(d, True, prefix))
        for name in sorted(files):
            if not skip(name, False, prefix):
                yield prefix + name, Path(folder, name)


def _source_files(project: _Project) -> dict[str, Path]:
    src = project.path / "src"
    if not src.is_dir():
        raise BuildError(f"{project.path}: no src/ folder (packages must use the src layout)")
    return dict(_walk(src, lambda name, is_dir, _prefix: _skip_source(name, is_dir)))


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)


def _check_handler(function: FunctionPackage, files: Mapping[str, Path]) -> None:
    module, _, attribute = function.handler.rpartition(".")
    base = module.replace(".", "/")
    candidates = [f"{base}.py", f"{base}/__init__.py"]
    where = f"{function.path / 'src'}"
    found = next((c for c in candidates if c in files), None)
    if found is None:
        raise BuildError(
            f"function {function.name} ({function.distribution}): handler "
            f"{function.handler!r} names module {module!r}, which is not in {where} "
            f"(looked for {' or '.join(candidates)})"
        )
    path = files[found]
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise BuildError(
            f"function {function.name}: handler module {path} does not compile: {exc}"
        ) from exc
    if attribute not in _top_level_names(tree):
        raise BuildError(
            f"function {function.name} ({function.distribution}): handler "
            f"{function.handler!r}: {path} defines no top-level {attribute!r}"
        )


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def targets(node: ast.AST) -> Iterable[str]:
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                yield from targets(element)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(targets(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                names.update(targets(node.target))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    return names


# ---- lock file -------------------------------------------------------------------------------


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


def _run_pip(function: FunctionPackage, arguments: list[str], requirements: Sequence[str]):
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


def _resolve(
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


def _locked_pins(
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
            pins = _resolve(function, requirements, platform, python_version, current[1])
        except BuildError:
            pins = _resolve(function, requirements, platform, python_version)
    else:
        pins = _resolve(function, requirements, platform, python_version)
    reason = "regenerated" if relock else "written" if current is None else "updated"
    _write_lock(path, function.name, key, pins)
    log(f"lock {function.name}: {path.name} {reason} ({len(pins)} packages)")
    return pins


def _installed_site(
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
        os.utime(site)  # recently used: kept by _prune_sites
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


def _prune_sites(site_cache: Path, keep_days: float = SITE_CACHE_DAYS) -> None:
    """Drop cached installs no build used for `keep_days` (pins that changed since)."""
    cutoff = time.time() - keep_days * 86400
    for site in site_cache.glob("site-*"):
        if site.is_dir() and site.stat().st_mtime < cutoff:
            shutil.rmtree(site, ignore_errors=True)


# ---- zip -------------------------------------------------------------------------------------


def _third_party_files(staging: Path) -> dict[str, Path]:
    """Files pip installed into `staging` that belong in the zip, by archive name."""
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

    def skip(name: str, is_dir: bool, prefix: str) -> bool:
        if not prefix and name in dropped:
            return True
        if is_dir:
            return name in {"__pycache__", "tests"}
        if prefix.endswith(".dist-info/") and prefix.count("/") == 1:
            return name in INSTALL_ONLY_METADATA
        return name.endswith((".pyc", ".pyo"))

    return dict(_walk(staging, skip))


def _write_zip(path: Path, members: Mapping[str, Path | bytes]) -> int:
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
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = 3  # unix: external_attr holds the mode
                if name in directories:
                    info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | 0x10
                    archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
                    continue
                source = members[name]
                if isinstance(source, bytes):
                    data, mode = source, FILE_MODE
                else:
                    data = source.read_bytes()
                    mode = EXEC_MODE if _is_executable(source) else FILE_MODE
                info.external_attr = (stat.S_IFREG | mode) << 16
                archive.writestr(
                    info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
                )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return len(members)


def _metadata_stub(project: _Project) -> tuple[str, bytes] | None:
    """A minimal dist-info METADATA for a copied local package, so that
    importlib.metadata.version() works for it in the function too."""
    if project.version is None:
        return None
    folder = f"{re.sub(r'[-_.]+', '_', project.distribution)}-{project.version}.dist-info"
    text = f"Metadata-Version: 2.1\nName: {project.distribution}\nVersion: {project.version}\n"
    return f"{folder}/METADATA", text.encode()


def _add_members(
    members: dict[str, Path | bytes], origin: dict[str, str], new: Mapping[str, Path | bytes], by
) -> None:
    for name, source in new.items():
        if name in members:
            if _content(members[name]) != _content(source):
                raise BuildError(f"{name} is provided by both {origin[name]} and {by}")
            continue
        members[name] = source
        origin[name] = by


def _content(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()


# ---- build -----------------------------------------------------------------------------------


def _inputs_digest(
    function: FunctionPackage,
    projects: Sequence[_Project],
    sources: Sequence[Mapping[str, Path]],
    pins: Sequence[str],
    platform: str,
    python_version: str,
) -> str:
    digest = hashlib.sha256()

    def add(*parts: str) -> None:
        digest.update(("\0".join(parts) + "\n").encode())

    add("builder", BUILDER_VERSION, platform, IMPLEMENTATION, python_version)
    add("exclude", *sorted(EXCLUDED_DISTRIBUTIONS))
    add("handler", function.handler)
    add("pins", *pins)
    for project, files in zip(projects, sources, strict=True):
        add("package", normalise(project.distribution))
        add("file", "pyproject.toml", file_sha256(project.path / "pyproject.toml"))
        for name, path in files.items():
            add("file", name, file_sha256(path), "x" if _is_executable(path) else "-")
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


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
    """Build (or reuse) `out_dir/<name>.zip` for one function; see the module docstring.

    `site_cache` keeps pip's installs for reuse (see _installed_site).
    """
    started = time.monotonic()
    platform = ARCHITECTURES.get(architecture)
    if platform is None:
        raise BuildError(
            f"unknown architecture {architecture!r} (expected one of {', '.join(ARCHITECTURES)})"
        )
    projects, requirements = _local_closure(function, libraries)
    sources = [_source_files(project) for project in projects]
    _check_handler(function, sources[0])
    pins = _locked_pins(function, requirements, platform, python_version, relock, log)
    inputs = _inputs_digest(function, projects, sources, pins, platform, python_version)

    zip_path = out_dir / f"{function.name}.zip"
    manifest_path = out_dir / f"{function.name}.json"
    manifest = _read_manifest(manifest_path)
    if (
        not force
        and manifest is not None
        and manifest.get("inputs_sha256") == inputs
        and zip_path.is_file()
        and file_sha256(zip_path) == manifest.get("sha256")
    ):
        log(f"build {function.name}: unchanged (cached)")
        return Artifact(
            name=function.name,
            zip_path=zip_path,
            sha256=manifest["sha256"],
            base64_sha256=manifest["base64_sha256"],
            size=zip_path.stat().st_size,
            handler=function.handler,
            rebuilt=False,
            seconds=time.monotonic() - started,
        )

    members: dict[str, Path | bytes] = {}
    origin: dict[str, str] = {}
    for project, files in zip(projects, sources, strict=True):
        where = f"{project.path.name}/src"
        _add_members(members, origin, files, where)
        stub = _metadata_stub(project)
        if stub is not None:
            _add_members(members, origin, {stub[0]: stub[1]}, where)
    install = [p for p in pins if p.split("==")[0] not in EXCLUDED_DISTRIBUTIONS]
    out_dir.mkdir(parents=True, exist_ok=True)
    if install:
        site = _installed_site(function, install, platform, python_version, site_cache, force)
        _add_members(members, origin, _third_party_files(site), "third-party packages")
    count = _write_zip(zip_path, members)

    sha256 = file_sha256(zip_path)
    base64_sha256 = base64.b64encode(bytes.fromhex(sha256)).decode()
    size = zip_path.stat().st_size
    manifest = {
        "name": function.name,
        "sha256": sha256,
        "base64_sha256": base64_sha256,
        "size": size,
        "handler": function.handler,
        "architecture": architecture,
        "python_version": python_version,
        "inputs_sha256": inputs,
        "files": count,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    seconds = time.monotonic() - started
    log(f"build {function.name}: {seconds:.1f}s, {_size(size)}, sha256 {sha256[:12]}")
    return Artifact(
        name=function.name,
        zip_path=zip_path,
        sha256=sha256,
        base64_sha256=base64_sha256,
        size=size,
        handler=function.handler,
        rebuilt=True,
        seconds=seconds,
    )


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
    """Build every function of `repo_root/lambdas` (or those named in `only`), in name order."""
    out_dir = out_dir if out_dir is not None else repo_root / "dist" / "lambdas"
    functions, libraries = discover(repo_root / "lambdas")
    by_dist = {f.distribution: f for f in functions}
    for function in functions:
        for requirement in _read_project(function.path).dependencies:
            other = by_dist.get(requirement_name(requirement))
            if other is not None and other is not function:
                raise BuildError(
                    f"function {function.name} depends on {requirement!r}, which is the function "
                    f"package {other.name}: only libraries ([tool.fleet] lambda = false) can be "
                    "dependencies"
                )
    if only is not None:
        names = {f.name for f in functions}
        unknown = sorted(set(only) - names)
        if unknown:
            raise BuildError(
                f"no function named {', '.join(unknown)} in {repo_root / 'lambdas'} "
                f"(functions: {', '.join(sorted(names)) or 'none'})"
            )
        functions = [f for f in functions if f.name in set(only)]
    # Concurrent commands (deploys of several environments) build one at a time; the later
    # ones then find the zips cached.
    site_cache = cache_root(repo_root) / "build"
    with file_lock(out_dir / ".build.lock"):
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
        _prune_sites(site_cache)
    return artifacts


__all__ = [
    "ARCHITECTURES",
    "BUILDER_VERSION",
    "EXCLUDED_DISTRIBUTIONS",
    "Artifact",
    "BuildError",
    "FunctionPackage",
    "build_all",
    "build_function",
    "discover",
    "normalise",
]
