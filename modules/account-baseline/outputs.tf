output "oidc_provider_arn" {
  description = "ARN of GitHub Actions' OIDC identity provider in this account."
  value       = aws_iam_openid_connect_provider.github.arn
}

output "deploy_role_arn" {
  description = "ARN of the deploy role (env.toml deploy_role)."
  value       = aws_iam_role.deploy.arn
}

output "plan_role_arn" {
  description = "ARN of the plan role (env.toml plan_role)."
  value       = aws_iam_role.plan.arn
}

output "boundary_policy_arn" {
  description = "ARN of the deploy role's permissions boundary."
  value       = aws_iam_policy.boundary.arn
}

output "deploy_subject" {
  description = "The only OIDC subject the deploy role trusts."
  value       = local.deploy_subject
}

output "plan_subject" {
  description = "The only OIDC subject the plan role trusts."
  value       = local.plan_subject
}

output "deploy_branch" {
  description = "The branch deploys run from (GitHub environment deployment branch)."
  value       = var.deploy_branch
}
