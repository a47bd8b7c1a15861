"""The account baseline without terraform: its configuration, the roles each command acts as,
what terraform is told to assume, and the CI workflow's use of the roles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stackrun.aws.baseline import BASELINE_STACK, baseline_stack
from stackrun.aws.target import Target
from stackrun.commands.context import COMMAND_ROLES
from stackrun.config import load_environment, load_project
from stackrun.errors import ConfigError
from stackrun.terraform.render import render_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB = '\n[github]\nrepository = "acme/fleet-infra"\nbranch = "main"\n'


def _errors(load) -> str:
    with pytest.raises(ConfigError) as caught:
        load()
    return str(caught.value)


def _with_github(repo, table: str = GITHUB) -> None:
    path = repo.root / "live" / "project.toml"
    path.write_text(path.read_text() + table)


def _with_baseline_module(repo) -> None:
    shutil.copytree(
        REPO_ROOT / "modules" / "account-baseline",
        repo.root / "modules" / "account-baseline",
        ignore=shutil.ignore_patterns(".terraform*", "tests"),
    )


def test_plan_role_defaults_to_fleet_plan_and_takes_a_name_or_an_arn(repo):
    repo.standard()
    environment = load_environment(repo.root, "dev")
    assert environment.plan_role_arn == "arn:aws:iam::111111111111:role/fleet-plan"
    assert environment.role_arn("plan") == environment.plan_role_arn
    assert environment.role_arn("deploy") == "arn:aws:iam::111111111111:role/deploy"
    assert environment.role_arn("admin") is None
    repo.env("dev", extra='plan_role = "arn:aws:iam::111111111111:role/reader"\n')
    assert load_environment(repo.root, "dev").plan_role_arn.endswith(":role/reader")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"arn:aws:iam::222222222222:role/p"', "the role's account 222222222222 is not this"),
        ('"not a role"', "expected an IAM role name, got 'not a role'"),
        ('"arn:aws:iam::x"', "expected an IAM role ARN"),
        ("3", "expected an IAM role name or role ARN in this account, got int 3"),
        ('"deploy"', "the plan role must not be the deploy role"),
        ('"arn:aws:iam::111111111111:role/deploy"', "the plan role must not be the deploy role"),
    ],
)
def test_a_bad_plan_role_is_reported_on_its_key(repo, value, expected):
    repo.standard()
    repo.env("dev", extra=f"plan_role = {value}\n")
    message = _errors(lambda: load_environment(repo.root, "dev"))
    assert "live/dev/env.toml: key 'plan_role'" in message
    assert expected in message


def test_github_repository_and_branch_are_validated(repo):
    repo.standard()
    _with_github(repo)
    github = load_project(repo.root).github
    assert (github.repository, github.branch) == ("acme/fleet-infra", "main")
    for table, key, expected in [
        ('\n[github]\nrepository = "acme"\n', "github.repository", 'expected "owner/repo"'),
        ('\n[github]\nrepository = "a/b/c"\n', "github.repository", 'expected "owner/repo"'),
        ('\n[github]\nrepository = "-a/b"\n', "github.repository", 'expected "owner/repo"'),
        ('\n[github]\nrepository = "a/.."\n', "github.repository", 'expected "owner/repo"'),
        ('\n[github]\nbranch = "main"\n', "github.repository", "missing: expected"),
        ('\n[github]\nrepository = "a/b"\nbranch = "x..y"\n', "github.branch", "plain git"),
        ('\n[github]\nrepository = "a/b"\nbranch = "x.lock"\n', "github.branch", "plain git"),
        ('\n[github]\nrepository = "a/b"\nbranch = "-x"\n', "github.branch", "plain git"),
        ('\n[github]\nrepository = "a/b"\nbranch = "a b"\n', "github.branch", "plain git"),
        ('\n[github]\nrepository = "a/b"\nrepo = "a/b"\n', "github.repo", "unknown key"),
    ]:
        repo.write("live/project.toml", '[project]\nname = "fleet"\ndefault_region = "eu-west-1"\n')
        _with_github(repo, table)
        message = _errors(lambda: load_project(repo.root))
        assert f"live/project.toml: key '{key}'" in message, table
        assert expected in message, table


def test_the_baseline_stack_takes_everything_from_the_configuration(repo):
    repo.standard()
    repo.env("dev", extra='plan_role = "reader"\n')
    _with_github(repo)
    _with_baseline_module(repo)
    stack = baseline_stack(load_environment(repo.root, "dev"))
    assert stack.name == BASELINE_STACK == "000_baseline"
    assert dict(stack.inputs) == {
        "github_repository": "acme/fleet-infra",
        "deploy_branch": "main",
        "environment": "dev",
        "deploy_role_name": "deploy",
        "plan_role_name": "reader",
        "state_bucket": "fleet-tfstate-111111111111-eu-west-1",
        "lock_table": "fleet-tf-locks",
        "baseline_state_key": "dev/000_baseline/terraform.tfstate",
        "promotion_source_plan_role_arns": [],
        "promotion_reader_role_arns": [],
    }
    # every input is a variable of the module (no stack.toml checks it)
    assert set(stack.inputs) <= set(stack.module.variables)


def test_promote_from_gives_the_baselines_their_promotion_roles(repo):
    repo.standard()
    repo.env("stage", "222222222222")
    repo.env("prod", "333333333333", extra='promote_from = "stage"\nplan_role = "reader"\n')
    _with_github(repo)
    _with_baseline_module(repo)
    stage = baseline_stack(load_environment(repo.root, "stage")).inputs
    prod = baseline_stack(load_environment(repo.root, "prod")).inputs
    dev = baseline_stack(load_environment(repo.root, "dev")).inputs
    assert stage["promotion_reader_role_arns"] == ["arn:aws:iam::333333333333:role/deploy"]
    assert stage["promotion_source_plan_role_arns"] == []
    assert prod["promotion_source_plan_role_arns"] == ["arn:aws:iam::222222222222:role/fleet-plan"]
    assert prod["promotion_reader_role_arns"] == []
    assert dev["promotion_reader_role_arns"] == dev["promotion_source_plan_role_arns"] == []


@pytest.mark.parametrize("value", ['"prod"', '"nowhere"'])
def test_promote_from_names_another_environment(repo, value):
    repo.standard()
    repo.env("prod", "333333333333", extra=f"promote_from = {value}\n")
    message = _errors(lambda: load_environment(repo.root, "prod"))
    assert "key 'promote_from': expected another environment of live/ (dev)" in message


def test_the_baseline_needs_the_github_repository(repo):
    repo.standard()
    message = _errors(lambda: baseline_stack(load_environment(repo.root, "dev")))
    assert "live/project.toml: key 'github.repository': missing" in message


def test_the_baseline_refuses_a_role_with_a_path(repo):
    repo.standard()
    _with_github(repo)
    _with_baseline_module(repo)
    repo.env("dev", extra='plan_role = "arn:aws:iam::111111111111:role/ci/plan"\n')
    message = _errors(lambda: baseline_stack(load_environment(repo.root, "dev")))
    assert "live/dev/env.toml: key 'plan_role'" in message and "has a path" in message


def _rendered(repo, role: str) -> tuple[dict, dict]:
    repo.standard()
    environment = load_environment(repo.root, "dev")
    workdir = repo.root / "w" / role
    render_stack(environment, environment.stack("020_app"), Target(role=role), workdir)
    backend = json.loads((workdir / "backend.tf.json").read_text())["terraform"]["backend"]["s3"]
    provider = json.loads((workdir / "provider.tf.json").read_text())["provider"]["aws"][0]
    return backend, provider


def test_plan_renders_the_plan_role_and_the_baseline_no_role(repo):
    assert COMMAND_ROLES == {"plan": "plan", "baseline": "admin"}
    backend, provider = _rendered(repo, "plan")
    assert backend["assume_role"]["role_arn"] == "arn:aws:iam::111111111111:role/fleet-plan"
    assert provider["assume_role"][0]["role_arn"] == "arn:aws:iam::111111111111:role/fleet-plan"
    backend, provider = _rendered(repo, "deploy")
    assert backend["assume_role"]["role_arn"] == "arn:aws:iam::111111111111:role/deploy"
    assert provider["assume_role"][0]["role_arn"] == "arn:aws:iam::111111111111:role/deploy"
    backend, provider = _rendered(repo, "admin")
    assert "assume_role" not in backend and "assume_role" not in provider
    assert provider["allowed_account_ids"] == ["111111111111"]


def test_the_emulators_administrator_is_a_session_in_the_emulated_account(repo):
    repo.standard()
    environment = load_environment(repo.root, "dev")
    local = Target(endpoint="https://127.0.0.1:1", ca_bundle=Path("/ca.pem"))
    admin = local.as_role("admin")
    assert admin.role_arn(environment) == (
        "arn:aws:iam::111111111111:role/stackrun-local-administrator"
    )
    assert local.role_arn(environment) == environment.deploy_role_arn
    assert Target(role="admin").role_arn(environment) is None


def test_the_workflows_plan_job_references_only_the_plan_role():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())
    plan = workflow["jobs"]["plan"]
    text = json.dumps(plan)
    assert "environment" not in plan  # a GitHub environment would change the OIDC subject
    for word in ("deploy_role", "DEPLOY_ROLE", "fleet-deploy", "deploy-role"):
        assert word not in text, word
    assumed = [
        step["with"]["role-to-assume"]
        for step in plan["steps"]
        if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials")
    ]
    assert assumed == ["${{ steps.role.outputs.arn }}"]
    role_step = next(step for step in plan["steps"] if step.get("id") == "role")
    assert "--role plan" in role_step["run"]
    for name in ("deploy-dev", "deploy-stage", "deploy-prod"):
        steps = workflow["jobs"][name]["steps"]
        role_step = next(step for step in steps if step.get("id") == "role")
        assert "--role deploy" in role_step["run"]
