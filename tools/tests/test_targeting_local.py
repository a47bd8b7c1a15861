"""--stack / --exclude end to end: real terraform and the real stackrun CLI against the local
emulator, in a small environment of fast stacks (SSM parameters):

    010_producer -> 020_consumer -> 030_chain        015_solo (alone)
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.terraform

ENV = "tgt"
ACCOUNT = "260000000001"


def _environment(repo) -> None:
    repo.env(ENV, ACCOUNT)
    repo.producer_consumer(ENV)  # 010_producer -> 020_consumer
    repo.write(
        f"live/{ENV}/015_solo/stack.toml",
        f'module = "producer"\n[inputs]\nname = "{ENV}-solo"\n',
    )
    repo.write(
        f"live/{ENV}/030_chain/stack.toml",
        f"""
        module = "producer"
        [inputs]
        name = "{ENV}-chain"
        [dependencies]
        value = "020_consumer.copied"
        """,
    )


def _report(repo, *args: str):
    """Run stackrun with --report-file; (the run, the report's selection, {stack: status})."""
    run, document = repo.run_reported(*args)
    return run, document["selected"], {s["name"]: s["status"] for s in document["stacks"]}


def _parameters(repo) -> set[str]:
    ssm = repo.client(ENV, "ssm")
    return {p["Name"] for p in ssm.describe_parameters()["Parameters"]}


def test_stack_selection_deploys_plans_and_destroys_only_the_selected_stacks(local_repo):
    repo = local_repo
    _environment(repo)

    # a stack whose upstream is neither selected nor deployed: refused before any stack runs
    refused = repo.run("deploy", ENV, "--local", "--stack", "020_consumer")
    assert refused.returncode == 1, refused.text
    assert "020_consumer takes 010_producer.value" in refused.stderr
    assert "select them too (--stack +020_consumer)" in refused.stderr
    assert "deploying 020_consumer" not in refused.stdout

    # +NAME: the stack and its upstream, nothing else; the report lists only those
    deployed, selected, statuses = _report(
        repo, "deploy", ENV, "--local", "--stack", "+020_consumer"
    )
    assert deployed.returncode == 0, deployed.text
    assert selected == ["010_producer", "020_consumer"]
    assert statuses == {"010_producer": "applied", "020_consumer": "applied"}
    assert "only the selected stacks (010_producer, 020_consumer)" in deployed.stdout
    assert _parameters(repo) == {"/tgt-producer/value", "/tgt-consumer/copy"}

    # a plain name: that stack alone, its upstream values read from the other stacks' state
    chain, selected, statuses = _report(repo, "deploy", ENV, "--local", "--stack", "030_chain")
    assert chain.returncode == 0, chain.text
    assert (selected, statuses) == (["030_chain"], {"030_chain": "applied"})
    assert "deploying 010_producer" not in chain.stdout
    outputs = repo.outputs(ENV)
    assert outputs["030_chain"]["value"] == outputs["020_consumer"]["copied"]
    assert outputs["015_solo"] == {}  # never selected, never deployed

    # NAME+ with --exclude: 010_producer and what is downstream of it, less 030_chain
    plan, selected, statuses = _report(
        repo, "plan", ENV, "--local", "--stack", "010_producer+", "--exclude", "030_chain"
    )
    assert plan.returncode == 0, plan.text
    assert selected == ["010_producer", "020_consumer"]
    assert statuses == {"010_producer": "unchanged", "020_consumer": "unchanged"}

    # an unknown name: an error listing the environment's stacks, nothing run
    unknown = repo.run("plan", ENV, "--local", "--stack", "040_nope")
    assert unknown.returncode == 1
    assert "--stack 040_nope: tgt has no stack '040_nope'" in unknown.stderr
    assert "010_producer, 015_solo, 020_consumer, 030_chain" in unknown.stderr
    assert "planning" not in unknown.stdout

    # destroying a stack whose outputs a deployed stack consumes: refused, naming it
    blocked = repo.run("destroy", ENV, "--local", "--stack", "010_producer")
    assert blocked.returncode == 1, blocked.text
    assert "  010_producer: 020_consumer" in blocked.stderr
    assert "nothing was destroyed" in blocked.stderr
    assert len(_parameters(repo)) == 3

    # NAME+: the stack and everything downstream, in reverse order; the rest stays
    destroyed, selected, statuses = _report(
        repo, "destroy", ENV, "--local", "--stack", "020_consumer+"
    )
    assert destroyed.returncode == 0, destroyed.text
    assert selected == ["020_consumer", "030_chain"]
    assert statuses == {"030_chain": "destroyed", "020_consumer": "destroyed"}
    text = destroyed.stdout
    assert text.index("destroying 030_chain") < text.index("destroying 020_consumer")
    assert _parameters(repo) == {"/tgt-producer/value"}

    # output --stack: just that stack (target stays whole)
    shown = repo.run("output", ENV, "--local", "--stack", "010_producer")
    assert shown.returncode == 0, shown.text
    document = json.loads(shown.stdout)
    assert set(document) == {"010_producer", "target"}
    assert document["target"]["account_id"] == ACCOUNT

    # now nothing consumes 010_producer any more: its destroy goes ahead
    last = repo.run("destroy", ENV, "--local", "--stack", "010_producer")
    assert last.returncode == 0, last.text
    assert _parameters(repo) == set()
