"""The Lambda artifact builder, on throwaway packages (a library, two functions) in tmp_path,
and on a copy of the repository's own lambdas/ (no test code in any function zip).

The builds call the real pip against PyPI: for one small pure-Python requirement (six), and
for the functions' pinned requirements.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from stackrun.build import Artifact, BuildError, build_all, discover, installer
from stackrun.build.archive import INSTALL_ONLY_METADATA, third_party_files
from stackrun.build.lockfile import LOCK_FILE

SIX = "six==1.16.0"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def package(
    root: Path,
    folder: str,
    distribution: str,
    dependencies: list[str],
    fleet: str | None,
) -> Path:
    path = root / "lambdas" / folder
    deps = ", ".join(f'"{d}"' for d in dependencies)
    text = f"""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{distribution}"
        version = "0.1.0"
        dependencies = [{deps}]
        """
    if fleet is not None:
        text += "\n[tool.fleet]\n" + fleet
    write(path / "pyproject.toml", textwrap.dedent(text))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    lib = package(root, "fleet_lib", "Fleet_Lib", [SIX], "lambda = false\n")
    write(lib / "src/fleet_lib/__init__.py", "from .greet import greet\n")
    write(
        lib / "src/fleet_lib/greet.py",
        """
        import six


        def greet(name):
            return six.text_type("hello " + name)
        """,
    )
    write(lib / "src/fleet_lib/tests/test_greet.py", "def test():\n    pass\n")
    write(lib / "tests/test_lib.py", "def test():\n    pass\n")

    hello = package(
        root,
        "hello",
        "fleet-hello",
        ["fleet-lib", "boto3>=1.0; python_version < '3'"],
        'lambda = true\nhandler = "hello_fn.handler.handler"\n',
    )
    write(hello / "src/hello_fn/__init__.py", "")
    write(
        hello / "src/hello_fn/handler.py",
        """
        from fleet_lib import greet


        def handler(event, context):
            return {"message": greet(event["name"])}
        """,
    )
    (hello / "src/hello_fn/__pycache__").mkdir()
    (hello / "src/hello_fn/__pycache__/handler.cpython-312.pyc").write_bytes(b"junk")
    (hello / "src/hello_fn/stale.pyc").write_bytes(b"junk")
    (hello / "src/hello_fn.egg-info").mkdir()
    (hello / "src/hello_fn.egg-info/PKG-INFO").write_text("Name: fleet-hello\n")

    other = package(
        root, "other", "fleet-other", [], 'lambda = true\nhandler = "other_fn.app.main"\n'
    )
    write(other / "src/other_fn/__init__.py", "")
    write(other / "src/other_fn/app.py", "def main(event, context):\n    return 'other'\n")

    # a package without [tool.fleet] (like lambdas/migrations today) is a library
    plain = package(root, "plain", "fleet-plain", [], None)
    write(plain / "src/fleet_plain/__init__.py", "")
    return root


def run_build(root: Path, **kwargs) -> tuple[dict[str, Artifact], list[str]]:
    lines: list[str] = []
    artifacts = build_all(root, log=lines.append, **kwargs)
    return {a.name: a for a in artifacts}, lines


def members(zip_path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.infolist()


# ---- discovery -------------------------------------------------------------------------------


def test_discover_separates_functions_and_libraries(repo: Path) -> None:
    functions, libraries = discover(repo / "lambdas")
    assert [(f.name, f.distribution, f.handler) for f in functions] == [
        ("hello", "fleet-hello", "hello_fn.handler.handler"),
        ("other", "fleet-other", "other_fn.app.main"),
    ]
    assert functions[0].path == repo / "lambdas" / "hello"
    assert libraries == {
        "fleet-lib": repo / "lambdas" / "fleet_lib",
        "fleet-plain": repo / "lambdas" / "plain",
    }


def test_discover_rejects_a_function_without_a_valid_handler(repo: Path) -> None:
    package(repo, "broken", "fleet-broken", [], "lambda = true\n")
    with pytest.raises(BuildError, match=r"broken/pyproject.toml.*handler"):
        discover(repo / "lambdas")


# ---- builds (these call pip) -----------------------------------------------------------------


def test_build_contents_manifest_lock_and_import(repo: Path) -> None:
    artifacts, lines = run_build(repo)
    hello = artifacts["hello"]
    assert hello.rebuilt
    assert hello.zip_path == repo / "dist/lambdas/hello.zip"
    assert lines[0].startswith("lock hello: requirements.lock written (1 packages)")
    assert any(line.startswith("build hello: ") and "KB, sha256 " in line for line in lines)

    infos = members(hello.zip_path)
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {"hello_fn/handler.py", "fleet_lib/greet.py", "six.py"} <= set(names)
    assert "fleet_hello-0.1.0.dist-info/METADATA" in names
    assert not any("other_fn" in n or "fleet_plain" in n for n in names)
    assert not any(n.split("/")[0] in {"boto3", "botocore", "s3transfer", "bin"} for n in names)
    assert not any("tests/" in n or "__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(".egg-info" in n for n in names)
    six_info = [n for n in names if n.startswith("six-1.16.0.dist-info/")]
    assert "six-1.16.0.dist-info/METADATA" in six_info
    assert not any(n.rsplit("/", 1)[1] in INSTALL_ONLY_METADATA for n in six_info)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
        assert info.extra == b""
        mode = info.external_attr >> 16
        assert mode & 0o777 == (0o755 if info.is_dir() else 0o644), info.filename

    data = hello.zip_path.read_bytes()
    digest = hashlib.sha256(data).digest()
    assert hello.sha256 == digest.hex()
    assert hello.base64_sha256 == base64.b64encode(digest).decode()
    assert hello.size == len(data)
    manifest = json.loads((repo / "dist/lambdas/hello.json").read_text())
    assert manifest == {
        "name": "hello",
        "sha256": hello.sha256,
        "base64_sha256": hello.base64_sha256,
        "size": hello.size,
        "handler": "hello_fn.handler.handler",
        "architecture": "arm64",
        "python_version": "3.12",
        "inputs_sha256": manifest["inputs_sha256"],
        "files": sum(1 for info in infos if not info.is_dir()),
    }
    assert len(manifest["inputs_sha256"]) == 64

    lock = (repo / "lambdas/hello/requirements.lock").read_text().splitlines()
    assert [line for line in lock if not line.startswith("#")] == ["six==1.16.0"]
    other_lock = (repo / "lambdas/other/requirements.lock").read_text().splitlines()
    assert [line for line in other_lock if not line.startswith("#")] == []

    # the handler runs from the zip alone: no site-packages (-S), only the zip on the path
    script = (
        "import importlib.metadata, sys, hello_fn.handler as h, six; "
        "assert six.__file__.startswith(sys.argv[1]), six.__file__; "
        "print(h.handler({'name': 'zip'}, None)['message'], importlib.metadata.version('six'))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(hello.zip_path)],
        env={"PYTHONPATH": str(hello.zip_path), "PATH": os.environ.get("PATH", "")},
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hello", "zip", "1.16.0"]


def test_builds_from_clean_are_identical_and_the_cache_skips_pip(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = run_build(repo)
    first_bytes = first["hello"].zip_path.read_bytes()

    # from clean: no dist/, no lock (resolved again), every source file with a new mtime
    for path in (repo / "dist/lambdas").iterdir():
        path.unlink()
    (repo / "lambdas/hello/requirements.lock").unlink()
    later = time.time() + 3600
    for path in (repo / "lambdas").rglob("*"):
        os.utime(path, (later, later))
    second, _ = run_build(repo)
    assert second["hello"].rebuilt
    assert second["hello"].sha256 == first["hello"].sha256
    assert second["hello"].zip_path.read_bytes() == first_bytes
    assert second["other"].sha256 == first["other"].sha256

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a cached build ran {args}")

    monkeypatch.setattr(installer.subprocess, "run", no_subprocess)
    third, lines = run_build(repo)  # no_subprocess: nothing is installed or zipped again
    assert not any(a.rebuilt for a in third.values())
    assert third["hello"].sha256 == first["hello"].sha256
    assert third["hello"].base64_sha256 == first["hello"].base64_sha256
    assert lines == ["build hello: unchanged (cached)", "build other: unchanged (cached)"]


def test_changes_rebuild_only_the_functions_they_touch(repo: Path) -> None:
    first, _ = run_build(repo)

    handler = repo / "lambdas/other/src/other_fn/app.py"
    handler.write_text(handler.read_text() + "# changed\n")
    second, _ = run_build(repo)
    assert (second["hello"].rebuilt, second["other"].rebuilt) == (False, True)
    assert second["other"].sha256 != first["other"].sha256

    greet = repo / "lambdas/fleet_lib/src/fleet_lib/greet.py"
    greet.write_text(greet.read_text() + "# changed\n")
    third, _ = run_build(repo)
    assert (third["hello"].rebuilt, third["other"].rebuilt) == (True, False)
    assert third["hello"].sha256 != first["hello"].sha256

    # files the zip leaves out do not count as changes
    write(repo / "lambdas/fleet_lib/src/fleet_lib/tests/test_more.py", "x = 1\n")
    (repo / "lambdas/fleet_lib/src/fleet_lib/__pycache__").mkdir()
    (repo / "lambdas/fleet_lib/src/fleet_lib/__pycache__/greet.cpython-312.pyc").write_bytes(b"")
    fourth, _ = run_build(repo)
    assert not any(a.rebuilt for a in fourth.values())

    # a corrupted zip and force=True both rebuild, to the same bytes
    third["other"].zip_path.write_bytes(b"corrupt")
    fifth, _ = run_build(repo)
    assert (fifth["hello"].rebuilt, fifth["other"].rebuilt) == (False, True)
    assert fifth["other"].sha256 == second["other"].sha256
    forced, _ = run_build(repo, force=True, only=["hello"])
    assert list(forced) == ["hello"] and forced["hello"].rebuilt
    assert forced["hello"].sha256 == third["hello"].sha256


def test_a_source_change_rebuilds_from_the_cached_install_without_pip(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = run_build(repo)
    sites = sorted((repo / ".stackrun/build").glob("site-*"))
    assert len(sites) == 1  # hello's pins (six); other installs nothing

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"pip ran for a source change: {args}")

    monkeypatch.setattr(installer.subprocess, "run", no_subprocess)
    handler = repo / "lambdas/hello/src/hello_fn/handler.py"
    handler.write_text(handler.read_text() + "# changed\n")
    second, _ = run_build(repo)
    assert (second["hello"].rebuilt, second["other"].rebuilt) == (True, False)
    assert second["hello"].sha256 != first["hello"].sha256
    with zipfile.ZipFile(second["hello"].zip_path) as archive:
        assert archive.read("hello_fn/handler.py").endswith(b"# changed\n")
        assert "six.py" in archive.namelist()
    monkeypatch.undo()

    # a damaged cache is repaired by force, to the same bytes
    (sites[0] / "six.py").write_text("broken = True\n")
    forced, _ = run_build(repo, force=True, only=["hello"])
    assert forced["hello"].sha256 == second["hello"].sha256


def test_lock_is_regenerated_on_relock_and_when_requirements_change(repo: Path) -> None:
    run_build(repo, only=["hello"])
    lock = repo / "lambdas/hello/requirements.lock"
    original = lock.read_text()

    # a hand-edited pin is honoured until --relock
    lock.write_text(original.replace("six==1.16.0", "six==1.15.0"))
    artifacts, _ = run_build(repo, only=["hello"])
    assert artifacts["hello"].rebuilt
    with zipfile.ZipFile(artifacts["hello"].zip_path) as archive:
        assert "six-1.15.0.dist-info/METADATA" in archive.namelist()
    artifacts, lines = run_build(repo, only=["hello"], relock=True)
    assert lines[0] == "lock hello: requirements.lock regenerated (1 packages)"
    assert lock.read_text() == original

    # a lock resolved again to the same pins does not rebuild the zip
    lock.unlink()
    artifacts, lines = run_build(repo, only=["hello"])
    assert lines == [
        "lock hello: requirements.lock written (1 packages)",
        "build hello: unchanged (cached)",
    ]
    assert not artifacts["hello"].rebuilt

    # a changed requirement set refreshes the lock, keeping pins that still fit
    pyproject = repo / "lambdas/fleet_lib/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'"{SIX}"', '"six>=1.10"'))
    artifacts, lines = run_build(repo, only=["hello"])
    assert lines[0] == "lock hello: requirements.lock updated (1 packages)"
    assert "six==1.16.0" in lock.read_text().splitlines()
    assert artifacts["hello"].rebuilt


def test_x86_64_is_a_different_build(repo: Path, tmp_path: Path) -> None:
    run_build(repo, only=["other"])
    x86, _ = run_build(repo, only=["other"], out_dir=tmp_path / "x86", architecture="x86_64")
    assert x86["other"].rebuilt
    manifest = json.loads((tmp_path / "x86/other.json").read_text())
    assert manifest["architecture"] == "x86_64"
    arm = json.loads((repo / "dist/lambdas/other.json").read_text())
    assert manifest["inputs_sha256"] != arm["inputs_sha256"]
    with pytest.raises(BuildError, match="unknown architecture 'ppc64'"):
        run_build(repo, architecture="ppc64")


# ---- errors ----------------------------------------------------------------------------------


def test_missing_handler_module_names_package_and_handler(repo: Path) -> None:
    pyproject = repo / "lambdas/other/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("other_fn.app.main", "other_fn.nope.main"))
    with pytest.raises(BuildError) as caught:
        run_build(repo, only=["other"])
    message = str(caught.value)
    assert "function other (fleet-other)" in message
    assert "'other_fn.nope.main'" in message
    assert "other_fn/nope.py" in message


def test_missing_handler_function_is_reported(repo: Path) -> None:
    pyproject = repo / "lambdas/other/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("other_fn.app.main", "other_fn.app.run"))
    with pytest.raises(BuildError, match=r"function other .*defines no top-level 'run'"):
        run_build(repo, only=["other"])


def test_pip_failure_names_function_and_requirement(repo: Path) -> None:
    missing = "stackrun-no-such-package-4f1c9e==0.0.1"
    package(
        repo, "bad", "fleet-bad", [missing], 'lambda = true\nhandler = "bad_fn.handler.handler"\n'
    )
    write(repo / "lambdas/bad/src/bad_fn/handler.py", "def handler(event, context):\n    pass\n")
    with pytest.raises(BuildError) as caught:
        run_build(repo, only=["bad"])
    message = str(caught.value)
    assert message.startswith(f"function bad: pip could not install requirement {missing!r}")
    assert "No matching distribution" in message
    assert not (repo / "lambdas/bad/requirements.lock").exists()


def test_a_function_cannot_depend_on_another_function(repo: Path) -> None:
    pyproject = repo / "lambdas/other/pyproject.toml"
    text = pyproject.read_text().replace("dependencies = []", 'dependencies = ["fleet-hello"]')
    pyproject.write_text(text)
    with pytest.raises(BuildError, match="function package hello"):
        run_build(repo)


def test_excluded_distributions_and_install_files_are_dropped(tmp_path: Path) -> None:
    staging = tmp_path / "site"
    for name in [
        "boto3/__init__.py",
        "botocore/data/x.json",
        "boto3-1.35.0.dist-info/METADATA",
        "s3transfer-0.10.0.dist-info/METADATA",
        "bin/jp.py",
        "jmespath/__init__.py",
        "jmespath-1.0.1.dist-info/METADATA",
        "jmespath-1.0.1.dist-info/RECORD",
        "jmespath-1.0.1.dist-info/INSTALLER",
        "jmespath-1.0.1.dist-info/REQUESTED",
        "jmespath-1.0.1.dist-info/direct_url.json",
        "jmespath/tests/test_x.py",
        "jmespath/__pycache__/x.cpython-312.pyc",
    ]:
        write(staging / name, "x\n")
    write(staging / "s3transfer-0.10.0.dist-info/RECORD", "s3transfer/__init__.py,sha256=x,1\n")
    write(staging / "s3transfer/__init__.py", "x\n")
    assert sorted(third_party_files(staging)) == [
        "jmespath-1.0.1.dist-info/METADATA",
        "jmespath/__init__.py",
    ]


# ---- the repository's own functions ----------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
# Test-only code, none of which may reach a function zip: the helper package (anywhere in a
# zip), the helper modules' names (in the local packages' code; third-party packages may have a
# `testing` module of their own) and local code importing the test tools.
TEST_PACKAGE = "fleet_testing"
TEST_HELPER_MODULES = frozenset({"proptest", "pytest_plugin", "testing"})
TEST_ONLY_IMPORTS = frozenset({TEST_PACKAGE, "pytest", "_pytest", "hypothesis", "moto"})


def _local_top_levels(lambdas: Path) -> set[str]:
    """The top-level names the packages of `lambdas` put into a zip (from their src/)."""
    return {
        child.name.removesuffix(".py")
        for src in lambdas.glob("*/src")
        for child in src.iterdir()
        if not child.name.endswith(".egg-info") and not child.name.startswith((".", "_"))
    }


def _imported_roots(source: bytes) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_function_zip_ships_test_code(tmp_path: Path) -> None:
    """Every function of the repository's lambdas/, built for real: no zip holds fleet_testing,
    a test helper module (proptest, pytest_plugin, testing), a tests/ folder, or local code
    importing pytest, hypothesis or moto; and no requirements.lock needs changing for it."""
    root = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT / "lambdas",
        root / "lambdas",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"),
    )
    functions, _ = discover(root / "lambdas")
    assert functions, f"no function found in {REPO_ROOT / 'lambdas'}"
    artifacts, lines = run_build(root)
    assert sorted(artifacts) == sorted(f.name for f in functions)
    # the committed locks are current: the build neither resolved nor rewrote any of them
    assert not [line for line in lines if line.startswith("lock ")], lines
    for function in functions:
        lock = (function.path / LOCK_FILE).read_text()
        assert lock == (REPO_ROOT / "lambdas" / function.name / LOCK_FILE).read_text()
        assert "fleet-testing" not in lock and "fleet_testing" not in lock

    local = _local_top_levels(root / "lambdas")
    problems: list[str] = []
    for name, artifact in sorted(artifacts.items()):
        with zipfile.ZipFile(artifact.zip_path) as archive:
            for member in archive.namelist():
                parts = member.rstrip("/").split("/")
                top = parts[0].split("-")[0]  # fleet_testing-0.1.0.dist-info -> fleet_testing
                stem = parts[-1].removesuffix(".py")
                if top == TEST_PACKAGE:
                    problems.append(f"{name}.zip: {member} (the test helper package)")
                elif "tests" in parts[:-1] or (member.endswith("/") and parts[-1] == "tests"):
                    problems.append(f"{name}.zip: {member} (a tests/ folder)")
                elif top in local and stem in TEST_HELPER_MODULES:
                    problems.append(f"{name}.zip: {member} (a test helper module)")
                elif top in local and member.endswith(".py"):
                    imported = _imported_roots(archive.read(member)) & TEST_ONLY_IMPORTS
                    if imported:
                        problems.append(f"{name}.zip: {member} imports {sorted(imported)}")
    assert not problems, "test-only code in function zips:\n" + "\n".join(problems)
