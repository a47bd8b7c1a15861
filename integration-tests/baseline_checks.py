"""The account baseline's guarantees, checked on the policy documents an account holds.

IAM in the emulator (moto) does not evaluate policies, so the guarantees are proven on the
documents read back from the account (iam get_role, get_role_policy,
list_attached_role_policies, get_policy_version, get_open_id_connect_provider), with a small
evaluator of Allow/Deny statements (wildcards in actions and resources, NotAction and
NotResource). The same checks run against a real account (the deploy role may read IAM).

Used by integration-tests/test_baseline.py (e2e and CI, after a deploy) and by
tools/tests/test_baseline_local.py (a local deploy of a throwaway repository).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"

# An action is a read when its name (after "service:") starts with one of these verbs.
READ_VERBS = ("Get", "List", "Describe", "BatchGet", "Head", "GET")
# The only writes the plan role may have: taking and releasing a state lock.
LOCK_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "dynamodb:PutItem", "dynamodb:DeleteItem")

# Writes to the baseline's IAM resources the deploy role's boundary must deny (a sample of
# every kind: trust, inline and attached policies, boundary, deletion, policy versions, tags).
BASELINE_IAM_WRITES = (
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:TagRole",
    "iam:PassRole",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicy",
    "iam:DeleteOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
)
STATE_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion")


@dataclass(frozen=True)
class Baseline:
    """What one account's baseline must hold (from `stackrun output`'s target.baseline)."""

    account_id: str
    environment: str
    github_repository: str
    deploy_role_arn: str
    plan_role_arn: str
    state_bucket: str
    lock_table: str
    state_key: str
    # deploy --promote-from (env.toml promote_from): plan roles this deploy role may assume,
    # and deploy roles of other accounts this plan role trusts
    promotion_sources: tuple[str, ...] = ()
    promotion_readers: tuple[str, ...] = ()

    @property
    def oidc_provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:oidc-provider/{OIDC_HOST}"

    @property
    def deploy_subject(self) -> str:
        return f"repo:{self.github_repository}:environment:{self.environment}"

    @property
    def plan_subject(self) -> str:
        return f"repo:{self.github_repository}:pull_request"


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


def _role_name(arn: str) -> str:
    return arn.split(":role/", 1)[1]


def _matches_action(pattern: str, action: str) -> bool:
    return fnmatchcase(action.lower(), pattern.lower())


def _covers(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether the statement applies to `action` on `resource` (conditions not evaluated)."""
    if "Action" in statement:
        if not any(_matches_action(p, action) for p in _list(statement["Action"])):
            return False
    elif any(_matches_action(p, action) for p in _list(statement.get("NotAction"))):
        return False
    if "Resource" in statement:
        return any(fnmatchcase(resource, p) for p in _list(statement["Resource"]))
    return not any(fnmatchcase(resource, p) for p in _list(statement.get("NotResource")))


def denies(document: dict[str, Any], action: str, resource: str) -> bool:
    """An unconditional explicit Deny of `action` on `resource` in the document."""
    return any(
        s.get("Effect") == "Deny" and not s.get("Condition") and _covers(s, action, resource)
        for s in _list(document.get("Statement"))
    )


def is_read(action: str) -> bool:
    service, _, name = action.partition(":")
    return bool(service) and "*" not in service and name.startswith(READ_VERBS)


def role_policies(iam: Any, role_name: str) -> list[dict[str, Any]]:
    """Every identity policy of a role: its inline policies and attached managed policies."""
    documents = [
        _document(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        documents.append(managed_policy(iam, attached["PolicyArn"]))
    return documents


def managed_policy(iam: Any, arn: str) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _document(
        iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    )


def check_oidc_provider(iam: Any, baseline: Baseline) -> None:
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=baseline.oidc_provider_arn)
    assert provider["Url"].removeprefix("https://") == OIDC_HOST, provider
    assert provider["ClientIDList"] == [AUDIENCE], provider


def check_trust(
    iam: Any, role_arn: str, subject: str, baseline: Baseline, readers: tuple[str, ...] = ()
) -> None:
    """The role trusts exactly one OIDC subject (with GitHub's audience) and otherwise only
    itself (aws:PrincipalArn pinned to its own ARN) and, unconditionally, exactly the roles
    of `readers` (the plan role: deploy roles of environments promoting from this one)."""
    role = iam.get_role(RoleName=_role_name(role_arn))["Role"]
    trust = _document(role["AssumeRolePolicyDocument"])
    subjects, trusted = [], []
    for statement in _list(trust.get("Statement")):
        assert statement["Effect"] == "Allow", statement
        principal = statement["Principal"]
        if "Federated" in principal:
            assert _list(principal["Federated"]) == [baseline.oidc_provider_arn], statement
            assert _list(statement["Action"]) == ["sts:AssumeRoleWithWebIdentity"], statement
            equals = statement["Condition"]["StringEquals"]
            assert set(statement["Condition"]) == {"StringEquals"}, statement
            assert _list(equals[f"{OIDC_HOST}:aud"]) == [AUDIENCE], statement
            subjects += _list(equals[f"{OIDC_HOST}:sub"])
        else:
            assert set(principal) == {"AWS"}, statement
            assert _list(statement["Action"]) == ["sts:AssumeRole"], statement
            if statement.get("Condition"):
                pinned = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
                assert _list(pinned) == [role_arn], statement
            else:
                trusted += _list(principal["AWS"])
    assert subjects == [subject], f"{role_arn} trusts {subjects}, expected only {subject!r}"
    assert sorted(trusted) == sorted(readers), (
        f"{role_arn} trusts {trusted} without condition, expected exactly {list(readers)}"
    )


def check_plan_role(iam: Any, baseline: Baseline) -> None:
    """Allows reads, and writes only on the state lock; never the deploy role."""
    documents = role_policies(iam, _role_name(baseline.plan_role_arn))
    assert documents, "the plan role has no policy"
    lock_resources = (
        f"arn:aws:s3:::{baseline.state_bucket}/*.tflock",
        f"arn:aws:dynamodb:*:{baseline.account_id}:table/{baseline.lock_table}",
    )
    for document in documents:
        for statement in _list(document.get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            assert "NotAction" not in statement, f"plan role: Allow with NotAction {statement}"
            for action in _list(statement["Action"]):
                if is_read(action):
                    continue
                assert action in LOCK_ACTIONS, f"plan role allows the write {action!r}"
                resources = _list(statement.get("Resource"))
                assert resources and all(r in lock_resources for r in resources), (
                    f"plan role allows {action} beyond the state lock: {resources}"
                )
    assert any(denies(d, "sts:AssumeRole", baseline.deploy_role_arn) for d in documents), (
        "the plan role must be denied sts:AssumeRole on the deploy role"
    )
    assert not any(
        s.get("Effect") == "Allow" and _covers(s, "sts:AssumeRole", baseline.deploy_role_arn)
        for d in documents
        for s in _list(d.get("Statement"))
    )


def check_deploy_boundary(iam: Any, baseline: Baseline) -> None:
    """The deploy role carries the boundary, which denies changing the baseline."""
    role = iam.get_role(RoleName=_role_name(baseline.deploy_role_arn))["Role"]
    boundary_arn = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    assert boundary_arn, "the deploy role has no permissions boundary"
    boundary = managed_policy(iam, boundary_arn)
    protected = (
        baseline.oidc_provider_arn,
        baseline.deploy_role_arn,
        baseline.plan_role_arn,
        boundary_arn,
    )
    for resource in protected:
        for action in BASELINE_IAM_WRITES:
            assert denies(boundary, action, resource), f"boundary allows {action} on {resource}"
    state = f"arn:aws:s3:::{baseline.state_bucket}/{baseline.state_key}"
    # and every object beside it (its lockfile, stackrun's record of the last apply)
    beside = f"{state.rsplit('/', 1)[0]}/any-object-beside-the-state"
    for action in STATE_WRITES:
        for resource in (state, beside):
            assert denies(boundary, action, resource), f"boundary allows {action} on {resource}"
    # the rest of the state bucket stays writable: the deploy role keeps the stacks' states
    other = state.replace("/000_baseline/", "/010_x/")  # another stack's state, same environment
    assert not denies(boundary, "s3:PutObject", other)
    # it assumes no role but itself and the plan roles of the environments it promotes from
    created = f"arn:aws:iam::{baseline.account_id}:role/fleet-x-lambda"
    assert denies(boundary, "sts:AssumeRole", created), "boundary allows assuming other roles"
    for source in (baseline.deploy_role_arn, *baseline.promotion_sources):
        assert not denies(boundary, "sts:AssumeRole", source), f"boundary denies {source}"


def check_baseline(iam: Any, baseline: Baseline) -> None:
    check_oidc_provider(iam, baseline)
    check_trust(iam, baseline.deploy_role_arn, baseline.deploy_subject, baseline)
    check_trust(
        iam, baseline.plan_role_arn, baseline.plan_subject, baseline, baseline.promotion_readers
    )
    check_plan_role(iam, baseline)
    check_deploy_boundary(iam, baseline)
