"""The account baseline of the deployed environment: GitHub's OIDC provider, the deploy role
(its own environment's subject only, a boundary that denies changing the baseline) and the plan
role (pull requests only, reads plus the state lock, never the deploy role).

Read-only (IAM reads through the deploy role); runs in prod's read-only run too. Skipped when
the project names no GitHub repository (`stackrun output`'s target.baseline is null).
"""

from __future__ import annotations

from typing import Any

import pytest

from baseline_checks import Baseline, check_baseline
from fleet_itest import Aws, Target


@pytest.fixture(scope="module")
def baseline(target: Target) -> Baseline:
    document = target.document.get("target", {}).get("baseline")
    if not document:
        pytest.skip("no account baseline: live/project.toml has no [github] repository")
    return Baseline(
        account_id=str(target.account_id),
        environment=target.environment,
        github_repository=document["github_repository"],
        deploy_role_arn=document["deploy_role_arn"],
        plan_role_arn=document["plan_role_arn"],
        state_bucket=document["state_bucket"],
        lock_table=document["lock_table"],
        state_key=document["state_key"],
        promotion_sources=tuple(document.get("promotion_source_plan_role_arns") or ()),
        promotion_readers=tuple(document.get("promotion_reader_role_arns") or ()),
    )


@pytest.fixture(scope="module")
def iam(aws: Aws) -> Any:
    return aws.client("iam")


def test_the_account_holds_the_baseline_and_its_policies_keep_their_guarantees(iam, baseline):
    check_baseline(iam, baseline)
