output "jwt_authorizer" {
  description = "What an HTTP API JWT authorizer checks: issuer (the pool's, https://cognito-idp.<region>.amazonaws.com/<pool id>, or the external one) and audience (every app client's id, or the external audience). Pass it to the lambda-api module's authorizer input."
  value = local.create ? {
    issuer   = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this[0].id}"
    audience = sort([for c in aws_cognito_user_pool_client.this : c.id])
  } : var.external_issuer
}

output "issuer" {
  description = "The token issuer (the \"iss\" claim of its tokens)."
  value       = local.create ? "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this[0].id}" : var.external_issuer.issuer
}

output "user_pool_id" {
  description = "ID of the user pool (null with an external issuer)."
  value       = local.create ? aws_cognito_user_pool.this[0].id : null
}

output "user_pool_arn" {
  description = "ARN of the user pool (null with an external issuer)."
  value       = local.create ? aws_cognito_user_pool.this[0].arn : null
}

output "token_endpoint" {
  description = "The OAuth2 token endpoint of the pool's domain (client credentials grant); null with an external issuer."
  value       = local.create ? "https://${aws_cognito_user_pool_domain.this[0].domain}.auth.${data.aws_region.current.name}.amazoncognito.com/oauth2/token" : null
}

output "clients" {
  description = "Per app client: client_id, secret_arn (Secrets Manager secret holding JSON client_id/client_secret) and the scopes it may request. Empty with an external issuer."
  value = {
    for k, c in aws_cognito_user_pool_client.this : k => {
      client_id  = c.id
      secret_arn = aws_secretsmanager_secret.client[k].arn
      scopes     = sort(var.clients[k].scopes)
    }
  }
}
