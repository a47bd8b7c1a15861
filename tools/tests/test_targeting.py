"""--stack / --exclude without terraform: the selection over an environment's dependency graph,
its errors, the destroy refusal and how the report shows a selection."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stackrun import cli
from stackrun.config import load_environment
from stackrun.config.graph import consumers, downstream
from stackrun.deploy.report import SCHEMA_PATH, RunReport, StackReport, StackStatus
from stackrun.deploy.selection import refuse_consumed_destroy, select
from stackrun.errors import StackrunError

ALL = {"010_net", "015_solo", "020_app", "030_top", "040_after"}


@pytest.fixture
def graph(repo):
    """010_net -> 020_app -> 030_top (which also takes 010_net's subnets); 040_after waits for
    020_app (`after`) without consuming its outputs; 015_solo stands alone."""
    repo.standard()  # dev: 010_net, 020_app (consumes 010_net)
    net = 'module = "networkish"\n[inputs]\nname = "{}"\n'
    repo.stack("dev", "015_solo", net.format("solo"))
    repo.stack("dev", "040_after", 'after = ["020_app"]\n' + net.format("after"))
    repo.stack(
        "dev",
        "030_top",
        """
        module = "consumer"
        [dependencies]
        vpc_id = "020_app.id"
        subnet_ids = "010_net.subnet_ids"
        """,
    )
    return load_environment(repo.root, "dev")


def test_without_options_every_stack_runs(graph):
    assert select(graph, [], []) is None


def test_a_plain_name_selects_that_stack_only(graph):
    assert select(graph, ["020_app"]) == {"020_app"}
    assert select(graph, ["020_app", "015_solo"]) == {"020_app", "015_solo"}


def test_name_plus_adds_everything_downstream_through_dependencies_and_after(graph):
    environment = graph
    assert downstream(environment, ["020_app"]) == {"030_top", "040_after"}
    assert select(environment, ["010_net+"]) == {"010_net", "020_app", "030_top", "040_after"}
    assert select(environment, ["020_app+"]) == {"020_app", "030_top", "040_after"}
    assert select(environment, ["030_top+"]) == {"030_top"}


def test_plus_name_adds_everything_upstream(graph):
    environment = graph
    assert select(environment, ["+030_top"]) == {"010_net", "020_app", "030_top"}
    assert select(environment, ["+040_after"]) == {"010_net", "020_app", "040_after"}
    assert select(environment, ["+015_solo"]) == {"015_solo"}
    assert select(environment, ["+020_app+"]) == {"010_net", "020_app", "030_top", "040_after"}


def test_exclude_takes_stacks_out_after_the_expansion(graph):
    environment = graph
    assert select(environment, ["010_net+"], ["030_top"]) == {"010_net", "020_app", "040_after"}
    # --exclude alone: every other stack
    assert select(environment, [], ["020_app+"]) == {"010_net", "015_solo"}
    assert select(environment, [], ["015_solo"]) == ALL - {"015_solo"}


def test_an_unknown_name_names_the_flag_and_lists_the_environments_stacks(graph):
    for stacks, excluded, flag, given in (
        (["025_nope"], [], "--stack", "025_nope"),
        (["020_ap+"], [], "--stack", "020_ap+"),
        (["020_app"], ["+099_x"], "--exclude", "+099_x"),
        (["+"], [], "--stack", "+"),
    ):
        with pytest.raises(StackrunError) as error:
            select(graph, stacks, excluded)
        message = str(error.value)
        assert message.startswith(f"{flag} {given}: dev has no stack"), message
        assert "010_net, 015_solo, 020_app, 030_top, 040_after" in message


def test_a_stack_both_named_and_excluded_is_a_conflict(graph):
    with pytest.raises(StackrunError, match="--stack 020_app is also excluded by --exclude"):
        select(graph, ["020_app"], ["020_app"])
    with pytest.raises(StackrunError, match="--stack 020_app is also excluded by --exclude"):
        select(graph, ["020_app"], ["010_net+"])


def test_a_selection_left_empty_is_an_error(graph):
    with pytest.raises(StackrunError, match="no stack of dev is left to run"):
        select(graph, ["030_top+"], ["+030_top"])


def test_destroy_refuses_while_a_deployed_consumer_outside_the_selection_remains(graph):
    deployed = {"resources": [{"type": "aws_ssm_parameter"}]}
    assert set(consumers(graph, "010_net")) == {"020_app", "030_top"}
    states = {"020_app": deployed, "030_top": None, "040_after": deployed}
    with pytest.raises(StackrunError) as error:
        refuse_consumed_destroy(graph, frozenset({"010_net"}), states)
    message = str(error.value)
    assert "  010_net: 020_app\n" in message  # 030_top is not deployed
    assert "nothing was destroyed" in message and "--stack 010_net+" in message
    # with its consumers selected too, or with them not deployed, it goes ahead
    refuse_consumed_destroy(graph, frozenset({"010_net", "020_app", "030_top"}), states)
    refuse_consumed_destroy(graph, frozenset({"010_net"}), {"020_app": {"resources": []}})
    # `after` is no consumer: 040_after does not hold 020_app back
    refuse_consumed_destroy(graph, frozenset({"020_app"}), {"040_after": deployed})
    refuse_consumed_destroy(graph, None, states)


def test_the_report_lists_the_selection(tmp_path):
    report = RunReport("plan", "dev", selected=("010_net", "020_app"))
    report.stacks = [
        StackReport("010_net", StackStatus.UNCHANGED),
        StackReport("020_app", StackStatus.CHANGES, added=1),
    ]
    assert report.summary().splitlines()[1] == (
        "  only the selected stacks (010_net, 020_app); the others did not run"
    )
    report.write(str(tmp_path / "r.json"), str(tmp_path / "r.md"))
    document = json.loads((tmp_path / "r.json").read_text())
    schema = json.loads((Path(__file__).resolve().parents[2] / SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["selected"] == ["010_net", "020_app"]
    assert [stack["name"] for stack in document["stacks"]] == ["010_net", "020_app"]
    assert "_only the selected stacks (010_net, 020_app)" in (tmp_path / "r.md").read_text()
    assert json.loads(_unselected_report(tmp_path))["selected"] is None


def _unselected_report(tmp_path) -> str:
    RunReport("plan", "dev").write(str(tmp_path / "all.json"), None)
    return (tmp_path / "all.json").read_text()


@pytest.mark.parametrize("command", ["deploy", "plan", "destroy", "output"])
def test_an_unknown_stack_fails_before_anything_runs(graph, repo, monkeypatch, capsys, command):
    monkeypatch.setenv("STACKRUN_ROOT", str(repo.root))
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "dev", "--local", "--port", "1", "--stack", "099_gone"])
    assert exited.value.code == 1
    printed = capsys.readouterr()
    assert "--stack 099_gone: dev has no stack '099_gone'" in printed.err
    # nothing was started: no emulator (port 1 is no emulator's), no run announced
    assert f"stackrun {command} dev ->" not in printed.out + printed.err
    assert [path.name for path in (repo.root / ".stackrun").iterdir()] == ["hcl"]  # parsed modules


def test_every_boto3_session_of_a_process_shares_one_data_loader():
    """Each service model is parsed once per process, whatever the credentials or role."""
    from stackrun.aws.target import Target

    target = Target(endpoint="https://127.0.0.1:1", ca_bundle=Path("/nonexistent/ca.pem"))
    sessions = [target.base_session("eu-west-1") for _ in range(3)]
    sessions.append(target.as_role("admin").base_session("us-east-1"))
    loaders = {id(s._session.get_component("data_loader")) for s in sessions}
    assert len(loaders) == 1
    paths = sessions[0]._session.get_component("data_loader").search_paths
    assert len(paths) == len(set(paths))  # boto3's own folder added once, not per session
    assert sessions[1].client("s3").meta.region_name == "eu-west-1"
    assert sessions[3].region_name == "us-east-1"
