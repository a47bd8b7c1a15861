# Offline test of the baseline's guarantees: the mock provider supplies the schema only, so
# nothing is created and no credentials are needed. The policies are jsonencode()d in the
# module, so their statements are known at plan time and asserted here.

mock_provider "aws" {
  override_during = plan

  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "111111111111" }
  }
  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }
  override_resource {
    target = aws_iam_openid_connect_provider.github
    values = { arn = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com" }
  }
  override_resource {
    target = aws_iam_policy.boundary
    values = { arn = "arn:aws:iam::111111111111:policy/fleet-deploy-boundary" }
  }
}

variables {
  github_repository  = "acme/fleet-infra"
  environment        = "dev"
  state_bucket       = "fleet-tfstate-111111111111-eu-west-1"
  lock_table         = "fleet-tf-locks"
  baseline_state_key = "dev/000_baseline/terraform.tfstate"
}

run "roles_trust_exactly_their_subjects" {
  command = plan

  assert {
    condition     = aws_iam_openid_connect_provider.github.url == "https://token.actions.githubusercontent.com" && aws_iam_openid_connect_provider.github.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The OIDC provider must be GitHub's, audience sts.amazonaws.com."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role.deploy.assume_role_policy).Statement : try(s.Condition.StringEquals["token.actions.githubusercontent.com:sub"], "")
      if s.Action == "sts:AssumeRoleWithWebIdentity"
    ] == ["repo:acme/fleet-infra:environment:dev"]
    error_message = "The deploy role must trust only repo:<owner>/<repo>:environment:<env>."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role.plan.assume_role_policy).Statement : try(s.Condition.StringEquals["token.actions.githubusercontent.com:sub"], "")
      if s.Action == "sts:AssumeRoleWithWebIdentity"
    ] == ["repo:acme/fleet-infra:pull_request"]
    error_message = "The plan role must trust only the repository's pull-request tokens."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role.deploy.assume_role_policy).Statement :
      s.Action == "sts:AssumeRoleWithWebIdentity" || try(s.Condition.ArnEquals["aws:PrincipalArn"], "") == "arn:aws:iam::111111111111:role/fleet-deploy"
    ])
    error_message = "Besides the OIDC subject, the deploy role may be assumed by itself only."
  }
}

run "deploy_role_boundary_protects_the_baseline" {
  command = plan

  assert {
    condition     = aws_iam_role.deploy.permissions_boundary == aws_iam_policy.boundary.arn
    error_message = "The deploy role must carry the boundary."
  }

  assert {
    condition = length([
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s
      if try(s.Effect == "Deny" && s.Sid == "DenyChangingTheBaseline" && contains(s.Action, "iam:Put*") && contains(s.Action, "iam:Delete*") && contains(s.Action, "iam:Update*") && contains(s.Action, "iam:Attach*") && contains(s.Action, "iam:Detach*") && contains(s.Action, "iam:Create*") && toset(s.Resource) == toset([
        "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com",
        "arn:aws:iam::111111111111:role/fleet-deploy",
        "arn:aws:iam::111111111111:role/fleet-plan",
        "arn:aws:iam::111111111111:policy/fleet-deploy-boundary",
      ]), false)
    ]) == 1
    error_message = "The boundary must deny changing the OIDC provider, both roles and itself."
  }

  assert {
    condition = length([
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s
      if try(s.Effect == "Deny" && contains(s.Action, "s3:PutObject") && contains(s.Resource, "arn:aws:s3:::fleet-tfstate-111111111111-eu-west-1/dev/000_baseline/*"), false)
    ]) == 1
    error_message = "The boundary must deny writing the baseline's objects (its state, lock and applied record: its folder)."
  }

  assert {
    condition = length([
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s
      if try(s.Effect == "Deny" && contains(s.Action, "iam:DeleteRolePermissionsBoundary") && s.Resource == "arn:aws:iam::111111111111:role/fleet-deploy", false)
    ]) == 1
    error_message = "The boundary must deny removing itself from the deploy role."
  }
}

run "plan_role_reads_and_locks_only" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.plan.policy).Statement : [
        for a in flatten([s.Action]) :
        can(regex("^[a-z0-9-]+:(Get|List|Describe|BatchGet|Head|GET$)", a)) || (contains(["s3:PutObject", "s3:DeleteObject"], a) && s.Resource == "arn:aws:s3:::fleet-tfstate-111111111111-eu-west-1/*.tflock") || (contains(["dynamodb:PutItem", "dynamodb:DeleteItem"], a) && s.Resource == "arn:aws:dynamodb:*:111111111111:table/fleet-tf-locks")
      ] if s.Effect == "Allow"
    ]))
    error_message = "The plan role may allow only read actions, and writes to the state lock only."
  }

  assert {
    condition = length([
      for s in jsondecode(aws_iam_role_policy.plan.policy).Statement : s
      if try(s.Effect == "Deny" && contains(s.Action, "sts:AssumeRole") && s.Resource == "arn:aws:iam::111111111111:role/fleet-deploy", false)
    ]) == 1
    error_message = "The plan role must be denied assuming the deploy role."
  }
}

run "a_write_action_is_refused_for_the_plan_role" {
  command = plan

  variables {
    plan_read_actions = ["ec2:Describe*", "ec2:RunInstances"]
  }

  expect_failures = [var.plan_read_actions]
}

run "a_malformed_repository_is_refused" {
  command = plan

  variables {
    github_repository = "acme/fleet-infra/extra"
  }

  expect_failures = [var.github_repository]
}

run "promotion_readers_and_sources" {
  command = plan

  variables {
    promotion_reader_role_arns      = ["arn:aws:iam::333333333333:role/fleet-deploy"]
    promotion_source_plan_role_arns = ["arn:aws:iam::222222222222:role/fleet-plan"]
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role.plan.assume_role_policy).Statement : s.Principal.AWS
      if s.Sid == "PromotionReaders" && s.Action == "sts:AssumeRole" && !can(s.Condition)
    ] == [["arn:aws:iam::333333333333:role/fleet-deploy"]]
    error_message = "The plan role must trust exactly the promotion readers' deploy roles, unconditionally."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role.deploy.assume_role_policy).Statement : s
      if try(s.Sid, "") == "PromotionReaders"
    ] == []
    error_message = "Promotion readers must never be trusted by the deploy role."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s.NotResource
      if try(s.Sid, "") == "DenyAssumingOtherRoles"
    ] == [["arn:aws:iam::111111111111:role/fleet-deploy", "arn:aws:iam::222222222222:role/fleet-plan"]]
    error_message = "The boundary must deny assuming any role but itself and the promotion sources' plan roles."
  }
}

run "no_promotion_by_default" {
  command = plan

  assert {
    condition = length([
      for s in jsondecode(aws_iam_role.plan.assume_role_policy).Statement : s
      if try(s.Sid, "") == "PromotionReaders"
    ]) == 0
    error_message = "Without promotion readers the plan role trusts no other account."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_policy.boundary.policy).Statement : s.NotResource
      if try(s.Sid, "") == "DenyAssumingOtherRoles"
    ] == [["arn:aws:iam::111111111111:role/fleet-deploy"]]
    error_message = "By default the deploy role assumes no role but itself."
  }
}

run "a_malformed_promotion_role_is_refused" {
  command = plan

  variables {
    promotion_reader_role_arns = ["fleet-deploy"]
  }

  expect_failures = [var.promotion_reader_role_arns]
}
