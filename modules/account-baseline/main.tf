data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  oidc_host  = "token.actions.githubusercontent.com"
  audience   = "sts.amazonaws.com"

  # The subjects of GitHub's OIDC tokens each role trusts (the token's "sub" claim).
  deploy_subject = "repo:${var.github_repository}:environment:${var.environment}"
  plan_subject   = "repo:${var.github_repository}:pull_request"

  # Known before apply (a plan of a fresh account can show them): the roles' ARNs by name.
  deploy_role_arn   = "arn:${local.partition}:iam::${local.account_id}:role/${var.deploy_role_name}"
  plan_role_arn     = "arn:${local.partition}:iam::${local.account_id}:role/${var.plan_role_name}"
  boundary_name     = "${var.deploy_role_name}-boundary"
  boundary_arn      = "arn:${local.partition}:iam::${local.account_id}:policy/${local.boundary_name}"
  oidc_provider_arn = "arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.oidc_host}"
  bucket_arn        = "arn:${local.partition}:s3:::${var.state_bucket}"
  lock_table_arn    = "arn:${local.partition}:dynamodb:*:${local.account_id}:table/${var.lock_table}"
  # every object of the baseline's own stack folder: its state, the state's S3 lockfile
  # (<key>.tflock) and stackrun's record of the last apply beside them
  baseline_state_objects = ["${local.bucket_arn}/${dirname(var.baseline_state_key)}/*"]
  # its DynamoDB lock items: LockID "<bucket>/<key>" and "<bucket>/<key>-md5"
  baseline_lock_ids = ["${var.state_bucket}/${var.baseline_state_key}", "${var.state_bucket}/${var.baseline_state_key}-md5"]
}

################################################################################
# GitHub Actions' OIDC identity provider
################################################################################

resource "aws_iam_openid_connect_provider" "github" {
  url             = "https://${local.oidc_host}"
  client_id_list  = [local.audience]
  thumbprint_list = var.github_oidc_thumbprints

  tags = var.tags
}

# A role may assume itself only when its trust policy says so: CI's OIDC session of a role,
# and then stackrun and terraform assume the same role again (env.toml names it). The account
# root as principal with aws:PrincipalArn pinned to the role itself admits that role alone.
# Policies are jsonencode()d locals, not aws_iam_policy_document: `terraform test` with a mock
# provider can then assert their statements.
locals {
  trust = {
    for role, subject in { deploy = local.deploy_subject, plan = local.plan_subject } : role => {
      Version                     = "2012-10-17"
      Statement = [
        {
          Sid       = role == "deploy" ? "GitHubEnvironment" : "GitHubPullRequest"
          Effect    = "Allow"
          Action    = "sts:AssumeRoleWithWebIdentity"
          Principal = { Federated = aws_iam_openid_connect_provider.github.arn }
          Condition = {
            StringEquals = {
              "${local.oidc_host}:aud" = local.audience
              "${local.oidc_host}:sub" = subject
            }
          }
        },
        {
          Sid       = "ItselfOnly"
          Effect    = "Allow"
          Action    = "sts:AssumeRole"
          Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
          Condition = {
            ArnEquals = { "aws:PrincipalArn" = role == "deploy" ? local.deploy_role_arn : local.plan_role_arn }
          }
        },
      ]
    }
  }
  # The deploy roles of environments promoting from this one read it through the plan role
  # (read-only): their release record and live function code.
  promotion_readers = length(var.promotion_reader_role_arns) == 0 ? [] : [{
    Sid       = "PromotionReaders"
    Effect    = "Allow"
    Action    = "sts:AssumeRole"
    Principal = { AWS = var.promotion_reader_role_arns }
  }]
  plan_trust = merge(local.trust.plan, {
    Statement = concat(local.trust.plan.Statement, local.promotion_readers)
  })
}

################################################################################
# Deploy role: permissions boundary that protects the baseline
################################################################################

locals {
  boundary = {
    Version = "2012-10-17"
    Statement = [
      { Sid = "Ceiling", Effect = "Allow", Action = "*", Resource = "*" },
      {
        Sid    = "DenyChangingTheBaseline"
        Effect = "Deny"
        Action = [
          "iam:Add*", "iam:Attach*", "iam:Create*", "iam:Delete*", "iam:Detach*", "iam:PassRole",
          "iam:Put*", "iam:Remove*", "iam:Set*", "iam:Tag*", "iam:Untag*", "iam:Update*",
        ]
        Resource = [local.oidc_provider_arn, local.deploy_role_arn, local.plan_role_arn, local.boundary_arn]
      },
      {
        Sid      = "DenyRemovingTheBoundary"
        Effect   = "Deny"
        Action   = ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"]
        Resource = local.deploy_role_arn
      },
      {
        Sid    = "DenyWritingTheBaselineState"
        Effect = "Deny"
        Action = [
          "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject", "s3:PutObjectAcl",
          "s3:PutObjectTagging", "s3:RestoreObject",
        ]
        Resource = local.baseline_state_objects
      },
      {
        Sid       = "DenyTakingTheBaselineLock"
        Effect    = "Deny"
        Action    = ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource  = local.lock_table_arn
        Condition = { "ForAnyValue:StringEquals" = { "dynamodb:LeadingKeys" = local.baseline_lock_ids } }
      },
      # Roles the deploy creates (the functions' roles) cannot be used to step around this
      # boundary by assuming them: the deploy role assumes no role but itself, and the
      # (read-only) plan roles of the environments it promotes from.
      {
        Sid         = "DenyAssumingOtherRoles"
        Effect      = "Deny"
        Action      = "sts:AssumeRole"
        NotResource = concat([local.deploy_role_arn], var.promotion_source_plan_role_arns)
      },
    ]
  }
}

resource "aws_iam_policy" "boundary" {
  #checkov:skip=CKV_AWS_62:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_63:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_286:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_287:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_288:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_289:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_290:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV_AWS_355:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  #checkov:skip=CKV2_AWS_40:A permissions boundary is a ceiling, not a grant: its Allow * is the cap minus the Deny statements that protect the baseline; the role's own policies grant what it may do.
  name        = local.boundary_name
  description = "Permissions boundary of ${var.deploy_role_name}: everything except changing the account baseline (OIDC provider, ${var.deploy_role_name}, ${var.plan_role_name}, this policy, the baseline's state)."
  policy      = jsonencode(local.boundary)

  tags = var.tags
}

resource "aws_iam_role" "deploy" {
  name                 = var.deploy_role_name
  description          = "Deploys and destroys ${var.environment} (stackrun deploy/destroy). Trusted by ${local.deploy_subject} only."
  assume_role_policy   = jsonencode(local.trust.deploy)
  permissions_boundary = aws_iam_policy.boundary.arn
  max_session_duration = 3600

  tags = merge(var.tags, { DeployBranch = var.deploy_branch })
}

resource "aws_iam_role_policy_attachment" "deploy" {
  #checkov:skip=CKV_AWS_274:The deploy role creates networks, databases, functions, their IAM roles and an identity pool; its rights are capped by the boundary that protects the baseline, and only its own GitHub environment's jobs may assume it. deploy_policy_arns narrows it.
  for_each = toset(var.deploy_policy_arns)

  role       = aws_iam_role.deploy.name
  policy_arn = each.value
}

################################################################################
# Plan role: read-only, plus the state lock
################################################################################

locals {
  plan_policy = {
    Version = "2012-10-17"
    Statement = [
      { Sid = "Read", Effect = "Allow", Action = var.plan_read_actions, Resource = "*" },
      {
        Sid      = "ReadState"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:ListBucket"]
        Resource = [local.bucket_arn, "${local.bucket_arn}/*"]
      },
      {
        Sid      = "StateLockFile"
        Effect   = "Allow"
        Action   = ["s3:DeleteObject", "s3:PutObject"]
        Resource = "${local.bucket_arn}/*.tflock"
      },
      # state locks only (LockID "<bucket>/<key>"), not the environment guard's items
      {
        Sid       = "StateLockTable"
        Effect    = "Allow"
        Action    = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
        Resource  = local.lock_table_arn
        Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["${var.state_bucket}/*"] } }
      },
      {
        Sid      = "NeverTheDeployRole"
        Effect   = "Deny"
        Action   = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
        Resource = local.deploy_role_arn
      },
    ]
  }
}

resource "aws_iam_role" "plan" {
  name                 = var.plan_role_name
  description          = "Plans (read-only) of pull requests of ${var.github_repository}; takes and releases state locks only. Trusted by ${local.plan_subject} only."
  assume_role_policy   = jsonencode(local.plan_trust)
  max_session_duration = 3600

  tags = var.tags
}

resource "aws_iam_role_policy" "plan" {
  #checkov:skip=CKV_AWS_355:Read actions only (variable validation: Get/List/Describe/BatchGet/Head) on every resource a plan refreshes; the resources are the stacks', unknown to the baseline.
  #checkov:skip=CKV_AWS_287:A plan reads what it refreshes (e.g. secretsmanager:GetSecretValue of secret versions in state); the state it must read holds those values anyway. No write.
  #checkov:skip=CKV_AWS_288:As above: reading is what a plan does; the role writes nothing but state locks.
  name   = "read-only-and-state-lock"
  role   = aws_iam_role.plan.id
  policy = jsonencode(local.plan_policy)
}
