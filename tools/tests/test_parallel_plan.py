"""`plan --parallelism N` without terraform: the option shared with deploy, its check, and
which stacks a plan marks as planned with an upstream's current outputs."""

from __future__ import annotations

import os

import pytest

from stackrun import cli
from stackrun.config import load_environment
from stackrun.config.graph import consuming_downstream


@pytest.mark.parametrize("command", ["plan", "deploy"])
@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_parallelism_below_one_is_refused_naming_the_flag(command, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args([command, "dev", "--parallelism", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --parallelism: expected a whole number of at least 1" in error
    assert value in error


def test_plan_defaults_to_one_stack_per_cpu_and_deploy_to_one():
    parser = cli.build_parser()
    assert parser.parse_args(["plan", "dev"]).parallelism == max(os.cpu_count() or 1, 1)
    assert parser.parse_args(["deploy", "dev"]).parallelism == 1
    assert parser.parse_args(["plan", "dev", "--parallelism", "3"]).parallelism == 3


def test_consumers_downstream_within_the_run(repo):
    """010_net -> 020_app -> 030_top (which also takes 010_net's subnets); 040_after only waits
    for 020_app (`after`): it consumes no output, so no changed output reaches its plan."""
    repo.standard()  # dev: 010_net, 020_app (consumes 010_net)
    net = 'module = "networkish"\n[inputs]\nname = "{}"\n'
    repo.stack("dev", "040_after", 'after = ["020_app"]\n' + net.format("after"))
    repo.stack(
        "dev",
        "030_top",
        'module = "consumer"\n[dependencies]\nvpc_id = "020_app.id"\n'
        'subnet_ids = "010_net.subnet_ids"\n',
    )
    environment = load_environment(repo.root, "dev")
    everything = {stack.name for stack in environment.stacks}
    assert consuming_downstream(environment, "010_net", everything) == {"020_app", "030_top"}
    assert consuming_downstream(environment, "020_app", everything) == {"030_top"}
    # a stack not in the run is not planned, and passes nothing on: 030_top still takes
    # 010_net's output itself
    assert consuming_downstream(environment, "010_net", everything - {"020_app"}) == {"030_top"}
    assert consuming_downstream(environment, "020_app", everything - {"030_top"}) == set()
    assert consuming_downstream(environment, "040_after", everything) == set()


def test_plans_start_longest_first_and_report_in_directory_order(repo):
    """The stacks whose state holds the most resource instances start first; the report keeps
    directory order."""
    from stackrun.config import load_environment
    from stackrun.deploy.parallel import side_by_side
    from stackrun.deploy.plan import longest_first
    from stackrun.deploy.report import RunReport, StackReport, StackStatus

    repo.standard()  # dev: 010_net, 020_app
    repo.stack("dev", "030_more", 'module = "networkish"\n[inputs]\nname = "more"\n')
    stacks = load_environment(repo.root, "dev").stacks

    def state(*counts: int) -> dict:
        return {"resources": [{"instances": [{}] * count} for count in counts]}

    states = {"010_net": state(1, 1), "020_app": state(5), "030_more": state(2)}  # 2, 5, 2
    order = longest_first(stacks, states)
    assert [stack.name for stack in order] == ["020_app", "010_net", "030_more"]
    assert [s.name for s in longest_first(stacks, {})] == [s.name for s in stacks]

    started: list[tuple[str, int]] = []
    report = RunReport("plan", "dev", "111111111111", "local")

    def work(stack, index):
        started.append((stack.name, index))
        return StackReport(stack.name, StackStatus.UNCHANGED)

    side_by_side(stacks, {s.name: set() for s in stacks}, 1, work, report, start_order=order)
    assert started == [("020_app", 2), ("010_net", 1), ("030_more", 3)]
    assert [entry.name for entry in report.stacks] == ["010_net", "020_app", "030_more"]
