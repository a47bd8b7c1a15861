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
