"""The account baseline in the emulated account: applied by the first `deploy --local`, skipped
while unchanged, re-applied by `stackrun baseline`, and its policies read back and checked
(moto does not enforce IAM, so the documents themselves are asserted: see
integration-tests/baseline_checks.py, which e2e also runs against every deployed environment).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from stackrun.config import load_environment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration-tests"))
from baseline_checks import Baseline, check_baseline

pytestmark = pytest.mark.terraform


def _baseline_line(text: str) -> str:
    found = re.search(r"^<== (000_baseline .*)$", text, re.M)
    assert found, text
    return found.group(1)


def test_a_local_deploy_applies_the_baseline_first_and_its_policies_hold(local_repo):
    repo = local_repo
    project = repo.root / "live" / "project.toml"
    project.write_text(
        project.read_text() + '\n[github]\nrepository = "acme/fleet-infra"\nbranch = "main"\n'
    )
    repo.env("gamma", "230000000001", extra='plan_role = "fleet-plan"\n')
    repo.env("delta", "230000000002")
    repo.producer_consumer("gamma")

    first = repo.run("deploy", "gamma", "--local")
    assert first.returncode == 0, first.text
    text = first.stdout
    assert (
        text.index("000_bootstrap: creating the state backend")
        < text.index("000_baseline: applying the account baseline")
        < text.index("deploying 010_producer")
    )
    assert "applied" in _baseline_line(text)

    environment = load_environment(repo.root, "gamma")
    target = json.loads(repo.run("output", "gamma", "--local").stdout)["target"]
    assert target["plan_role_arn"] == "arn:aws:iam::230000000001:role/fleet-plan"
    described = target["baseline"]
    assert described["state_key"] == "gamma/000_baseline/terraform.tfstate"
    baseline = Baseline(
        account_id="230000000001",
        environment="gamma",
        github_repository="acme/fleet-infra",
        deploy_role_arn=environment.deploy_role_arn,
        plan_role_arn=environment.plan_role_arn,
        state_bucket=environment.backend.bucket,
        lock_table=environment.backend.lock_table,
        state_key=described["state_key"],
    )
    assert described == {
        "github_repository": "acme/fleet-infra",
        "deploy_branch": "main",
        "deploy_role_arn": baseline.deploy_role_arn,
        "plan_role_arn": baseline.plan_role_arn,
        "state_bucket": baseline.state_bucket,
        "lock_table": baseline.lock_table,
        "state_key": baseline.state_key,
        "promotion_source_plan_role_arns": [],
        "promotion_reader_role_arns": [],
    }
    iam = repo.client("gamma", "iam")
    check_baseline(iam, baseline)
    # the baseline's state lives in the environment's bucket, under its own key
    s3 = repo.client("gamma", "s3")
    s3.head_object(Bucket=baseline.state_bucket, Key=baseline.state_key)
    # its working dir assumes neither CI role: in AWS the caller's administrator credentials,
    # in the emulator their stand-in, a session in the emulated account
    workdir = repo.cache("gamma") / "stacks" / "000_baseline"
    for name in ("backend.tf.json", "provider.tf.json"):
        rendered = (workdir / name).read_text()
        assert ":role/stackrun-local-administrator" in rendered
        assert ":role/deploy" not in rendered and "fleet-plan" not in rendered

    # A checker that would let a bad document through proves nothing: each guarantee broken in
    # the emulated account is caught.
    plan_name = "fleet-plan"
    original = iam.get_role_policy(RoleName=plan_name, PolicyName="read-only-and-state-lock")
    document = original["PolicyDocument"]
    document["Statement"].append({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"})
    iam.put_role_policy(
        RoleName=plan_name,
        PolicyName="read-only-and-state-lock",
        PolicyDocument=json.dumps(document),
    )
    with pytest.raises(AssertionError, match="ec2:RunInstances"):
        check_baseline(iam, baseline)
    document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Allow"][:-1]
    iam.put_role_policy(
        RoleName=plan_name,
        PolicyName="read-only-and-state-lock",
        PolicyDocument=json.dumps(document),
    )
    with pytest.raises(AssertionError, match="denied sts:AssumeRole on the deploy role"):
        check_baseline(iam, baseline)
    trust = iam.get_role(RoleName="deploy")["Role"]["AssumeRolePolicyDocument"]
    trust["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"
    ] = ["repo:acme/fleet-infra:environment:gamma", "repo:acme/fleet-infra:environment:delta"]
    iam.update_assume_role_policy(RoleName="deploy", PolicyDocument=json.dumps(trust))

    # The next deploy sees the baseline unchanged (its fingerprint; drift made outside
    # terraform is `stackrun baseline`'s to repair) and skips it: no terraform run.
    second = repo.run("deploy", "gamma", "--local")
    assert second.returncode == 0, second.text
    assert "skipped" in _baseline_line(second.stdout)

    # `stackrun baseline` always applies: the drift above is repaired and the checks hold.
    again = repo.run("baseline", "gamma", "--local")
    assert again.returncode == 0, again.text
    assert "applied" in _baseline_line(again.stdout), again.stdout
    assert "deploy_subject = repo:acme/fleet-infra:environment:gamma" in again.stdout
    check_baseline(iam, baseline)

    # plan acts as the plan role, terraform and stackrun alike
    plan = repo.run("plan", "gamma", "--local")
    assert plan.returncode == 0, plan.text
    backend = (repo.cache("gamma") / "stacks" / "010_producer" / "backend.tf.json").read_text()
    assert "arn:aws:iam::230000000001:role/fleet-plan" in backend
    assert ":role/deploy" not in backend
