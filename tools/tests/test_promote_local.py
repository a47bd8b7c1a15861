"""Promotion of exact artifacts: stage's live, tested zips deployed to prod with no build.

Real terraform and the real stackrun CLI against the emulator: two environments (stage, prod,
each its own emulated account) with one functions-only lambda-api stack whose function needs
no database, a test result recorded through `stackrun release`, then `deploy prod
--promote-from stage` and its refusals.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

import pytest

pytestmark = pytest.mark.terraform

STAGE, PROD = "250000000001", "250000000002"
FUNCTION_STACK = """
module = "lambda-api"
[lambdas]
input = "functions"
[inputs]
name = "tst-{env}"
create_http_api = false
subnet_ids = ["subnet-0a1b2c3d"]
security_group_ids = ["sg-0a1b2c3d"]
[inputs.functions.hello]
log_retention_days = 1
"""
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="1" tests="5" time="1.0">
</testsuite></testsuites>
"""


def _function(repo, name: str, answer: str) -> None:
    repo.write(
        f"lambdas/{name}/pyproject.toml",
        f"""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tst-{name}"
        version = "0.1.0"
        dependencies = []

        [tool.fleet]
        lambda = true
        handler = "{name}.handler.handler"
        """,
    )
    repo.write(f"lambdas/{name}/src/{name}/__init__.py", "")
    repo.write(
        f"lambdas/{name}/src/{name}/handler.py",
        f"def handler(event, context):\n    return {{'answer': {answer!r}}}\n",
    )


def _live(repo, env: str, function: str = "hello") -> dict:
    """GetFunction of the version the live alias serves."""
    client = repo.client(env, "lambda")
    version = client.get_alias(FunctionName=f"tst-{env}-{function}", Name="live")
    return client.get_function(
        FunctionName=f"tst-{env}-{function}", Qualifier=version["FunctionVersion"]
    )


def _hex(code_sha256: str) -> str:
    return base64.b64decode(code_sha256).hex()


def _promote(repo):
    return repo.run("deploy", "prod", "--local", "--no-serve", "--yes", "--promote-from", "stage")


def test_promote_deploys_stage_bytes_and_refuses_untested_or_changed(local_repo, tmp_path):
    repo = local_repo
    _function(repo, "hello", "stage build")
    repo.env("stage", STAGE)
    repo.env("prod", PROD, 'promote_from = "stage"\n')
    for env in ("stage", "prod"):
        repo.write(f"live/{env}/010_fn/stack.toml", FUNCTION_STACK.format(env=env))

    deployed = repo.run("deploy", "stage", "--local", "--no-serve")
    assert deployed.returncode == 0, deployed.text
    assert "release record of stage" in deployed.stdout
    stage_sha = _hex(_live(repo, "stage")["Configuration"]["CodeSha256"])
    record = json.loads(repo.run("release", "stage", "--local").stdout)
    assert record["functions"]["010_fn/hello"]["sha256"] == stage_sha
    assert record["tested"] is None

    # untested, and prod deploys one function more than stage's release: refused, both named
    _function(repo, "extra", "x")
    repo.write(
        "live/prod/010_fn/stack.toml",
        FUNCTION_STACK.format(env="prod") + "[inputs.functions.extra]\n",
    )
    refused = _promote(repo)
    assert refused.returncode == 1, refused.text
    assert "refusing to promote stage to prod" in refused.stderr
    assert "has no integration-test result" in refused.stderr
    assert "010_fn/extra: deployed by prod, but not in stage's release" in refused.stderr
    repo.write("live/prod/010_fn/stack.toml", FUNCTION_STACK.format(env="prod"))
    assert "release record" not in refused.stdout  # prod was not touched
    buckets = repo.client("prod", "s3").list_buckets()["Buckets"]
    assert _bucket(repo, "prod") not in [bucket["Name"] for bucket in buckets]

    # a failed test run is recorded, and refused
    failed = repo.run("release", "stage", "--local", "--tested", "failed")
    assert failed.returncode == 0, failed.text
    refused = _promote(repo)
    assert refused.returncode == 1 and "failed its integration tests" in refused.stderr

    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    passed = repo.run(
        "release", "stage", "--local", "--tested", "passed", "--junit-xml", str(junit)
    )
    assert passed.returncode == 0, passed.text
    tested = json.loads(repo.run("release", "stage", "--local").stdout)["tested"]
    assert tested["result"] == "passed"
    assert (tested["passed"], tested["failed"], tested["skipped"]) == (4, 0, 1)

    # prod's own build would differ now: irrelevant, nothing is built
    _function(repo, "hello", "changed after stage")
    promoted = _promote(repo)
    assert promoted.returncode == 0, promoted.text
    assert "build hello" not in promoted.stdout
    prod = _live(repo, "prod")["Configuration"]
    assert prod["CodeSha256"] == _live(repo, "stage")["Configuration"]["CodeSha256"]
    prod_record = json.loads(repo.run("release", "prod", "--local").stdout)
    assert prod_record["promoted_from"]["environment"] == "stage"
    assert prod_record["functions"]["010_fn/hello"]["sha256"] == stage_sha
    manifest = json.loads((repo.cache("prod") / "promoted" / "hello.json").read_text())
    assert manifest["sha256"] == stage_sha and manifest["handler"] == "hello.handler.handler"

    # stage's live code changed out of band: its record no longer says what runs there
    client = repo.client("stage", "lambda")
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello/handler.py", "def handler(event, context):\n    return 'x'\n")
    name = "tst-stage-hello"
    client.update_function_code(FunctionName=name, ZipFile=other.getvalue())
    version = client.publish_version(FunctionName=name)["Version"]
    client.update_alias(FunctionName=name, Name="live", FunctionVersion=version)
    changed_sha = hashlib.sha256(other.getvalue()).hexdigest()
    refused = _promote(repo)
    assert refused.returncode == 1, refused.text
    assert "010_fn/hello (tst-stage-hello)" in refused.stderr
    assert changed_sha in refused.stderr and stage_sha in refused.stderr
    assert _live(repo, "prod")["Configuration"]["CodeSha256"] == prod["CodeSha256"]
    # ... and its test result cannot be recorded for what it no longer runs
    again = repo.run("release", "stage", "--local", "--tested", "passed")
    assert again.returncode == 1 and "no longer matches what is live" in again.stderr


def _bucket(repo, env: str) -> str:
    from stackrun.config import load_environment

    return load_environment(repo.root, env).backend.bucket
