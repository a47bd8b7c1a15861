"""Run reports from terraform's JSON UI, end to end: real terraform against the local emulator.

`--report-file` (JSON, validated against schemas/run-report.schema.json) and `--summary-file`
(Markdown) of plan, deploy and destroy: resource addresses and actions, counts, errors; written
also when the run fails. One environment (producer -> consumer fixture modules) for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stackrun.deploy.report import SCHEMA_PATH

pytestmark = pytest.mark.terraform

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / SCHEMA_PATH).read_text())
PARAMETER = "module.stack.aws_ssm_parameter.this"


def validated(path: Path) -> dict:
    document = json.loads(path.read_text())
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    return document


def stack(document: dict, name: str) -> dict:
    return next(item for item in document["stacks"] if item["name"] == name)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, emulator):
    from emulated_repo import LocalRepo
    from stackrun.local.postgres import stop_all

    state_dir, port = emulator
    repo = LocalRepo(tmp_path_factory.mktemp("report") / "repo", state_dir, port)
    repo.env("echo", "210000000041")
    repo.producer_consumer("echo")
    yield repo
    stop_all(repo.root / ".stackrun")


def test_deploy_plan_and_destroy_reports(repo, tmp_path):
    report, summary = tmp_path / "deploy.json", tmp_path / "deploy.md"
    run = repo.run(
        "deploy", "echo", "--local", "--no-serve",
        "--report-file", str(report), "--summary-file", str(summary),
    )  # fmt: skip
    assert run.returncode == 0, run.text
    # the console shows terraform's messages, never its JSON
    assert "Apply complete! Resources: 1 added" in run.stdout
    assert '"@message"' not in run.stdout
    log = (repo.cache("echo") / "logs" / "010_producer.log").read_text()
    assert f"{PARAMETER}: Creation complete" in log and '"@level"' not in log

    document = validated(report)
    assert document["command"] == "deploy" and document["result"] == "succeeded"
    assert document["account_id"] == "210000000041" and document["target"] == "local"
    producer = stack(document, "010_producer")
    assert producer["status"] == "applied"
    assert producer["counts"] == {"add": 1, "change": 0, "destroy": 0}
    assert producer["resources"] == [{"address": PARAMETER, "action": "create"}]
    assert len(producer["fingerprint"]) == 64
    assert stack(document, "020_consumer")["resources"] == [
        {"address": PARAMETER, "action": "create"}
    ]
    markdown = summary.read_text()
    assert "| `010_producer` | applied | +1 ~0 -0, outputs | " in markdown
    assert f"**create** `{PARAMETER}`" in markdown and "<details>" in markdown

    # a changed input: the plan lists the update, and the consumer's replacement is called out
    repo.producer_consumer("echo", value="v2")
    report, summary = tmp_path / "plan.json", tmp_path / "plan.md"
    run = repo.run(
        "plan", "echo", "--local", "--detailed-exitcode",
        "--report-file", str(report), "--summary-file", str(summary),
    )  # fmt: skip
    assert run.returncode == 2, run.text
    document = validated(report)
    assert document["has_changes"] is True
    assert stack(document, "010_producer")["resources"] == [
        {"address": PARAMETER, "action": "update"}
    ]
    assert stack(document, "000_bootstrap")["status"] == "unchanged"
    assert f"**update** `{PARAMETER}`" in summary.read_text()

    # a failing apply: both files are written, with the error summary and the stacks not started
    repo.write(
        "modules/broken/main.tf",
        """
        resource "aws_ssm_parameter" "this" {
          name  = "/echo/broken"
          type  = "NoSuchType"
          value = "v"
        }
        """,
    )
    repo.write("live/echo/015_broken/stack.toml", 'module = "broken"\n')
    report, summary = tmp_path / "failed.json", tmp_path / "failed.md"
    run = repo.run(
        "deploy", "echo", "--local", "--no-serve",
        "--report-file", str(report), "--summary-file", str(summary),
    )  # fmt: skip
    assert run.returncode == 1, run.text
    document = validated(report)
    assert document["result"] == "failed" and "015_broken" in document["error"]
    failed = stack(document, "015_broken")
    assert failed["status"] == "failed" and "Error: " in failed["error"]
    assert stack(document, "020_consumer")["status"] == "not started"
    markdown = summary.read_text()
    assert "❌" in markdown and "not started" in markdown and "Error: " in markdown

    (repo.root / "live/echo/015_broken/stack.toml").unlink()
    (repo.root / "live/echo/015_broken").rmdir()
    report, summary = tmp_path / "destroy.json", tmp_path / "destroy.md"
    run = repo.run(
        "destroy", "echo", "--local",
        "--report-file", str(report), "--summary-file", str(summary),
    )  # fmt: skip
    assert run.returncode == 0, run.text
    document = validated(report)
    assert stack(document, "020_consumer")["status"] == "destroyed"
    assert {"address": PARAMETER, "action": "delete"} in stack(document, "010_producer")[
        "resources"
    ]
    markdown = summary.read_text()
    assert "destroyed:**" in markdown and f"`{PARAMETER}` (010_producer)" in markdown


def test_report_written_when_the_configuration_is_invalid(repo, tmp_path):
    report = tmp_path / "r.json"
    run = repo.run("plan", "nosuchenv", "--local", "--report-file", str(report))
    assert run.returncode == 1
    document = validated(report)
    assert document["result"] == "failed" and document["stacks"] == []
    assert "nosuchenv" in document["error"]
