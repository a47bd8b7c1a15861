data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # With an external issuer the module creates nothing and only passes it through.
  create = var.external_issuer == null

  domain_prefix = coalesce(var.domain_prefix, "${var.name}-${data.aws_caller_identity.current.account_id}")
  clients       = local.create ? var.clients : {}
}

################################################################################
# User pool: machine callers only (no self sign-up, no hosted UI)
################################################################################

resource "aws_cognito_user_pool" "this" {
  count = local.create ? 1 : 0

  name                = var.name
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"

  # Nobody signs up: the pool exists for its app clients (client credentials grant).
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 16
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 1
  }

  tags = merge(var.tags, { Name = var.name })
}

# Serves the OAuth2 token endpoint: https://<prefix>.auth.<region>.amazoncognito.com/oauth2/token
resource "aws_cognito_user_pool_domain" "this" {
  count = local.create ? 1 : 0

  domain       = local.domain_prefix
  user_pool_id = aws_cognito_user_pool.this[0].id
}

resource "aws_cognito_resource_server" "this" {
  count = local.create ? 1 : 0

  identifier   = var.resource_server.identifier
  name         = var.resource_server.name
  user_pool_id = aws_cognito_user_pool.this[0].id

  dynamic "scope" {
    for_each = var.resource_server.scopes

    content {
      scope_name        = scope.key
      scope_description = scope.value
    }
  }
}

################################################################################
# App clients: client credentials grant only, one secret each
################################################################################

resource "aws_cognito_user_pool_client" "this" {
  for_each = local.clients

  name         = "${var.name}-${each.key}"
  user_pool_id = aws_cognito_user_pool.this[0].id

  generate_secret                      = true
  allowed_oauth_flows                  = ["client_credentials"]
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_scopes                 = sort(each.value.scopes)
  # No user sign-in flows: the client only exchanges its secret for access tokens.
  explicit_auth_flows           = ["ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  access_token_validity = each.value.access_token_validity_minutes
  id_token_validity     = 60
  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  # The scopes must exist on the resource server before a client may be granted them.
  depends_on = [aws_cognito_resource_server.this]
}

resource "aws_secretsmanager_secret" "client" {
  #checkov:skip=CKV2_AWS_57: the secret holds a Cognito app client's secret, which Cognito generates and cannot rotate in place; rotation is a new client (docs/security.md), not a Secrets Manager rotation function.
  #checkov:skip=CKV_AWS_149: kms_key_arn selects a customer managed key; the default is the AWS managed aws/secretsmanager key, which encrypts at rest and keeps key management out of the way for environments without a CMK.
  for_each = local.clients

  name                    = "${var.name}/clients/${each.key}"
  description             = "Client id and secret of the Cognito app client ${var.name}-${each.key} (OAuth2 client credentials)"
  recovery_window_in_days = var.secret_recovery_window_in_days
  kms_key_id              = var.kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}/clients/${each.key}" })
}

resource "aws_secretsmanager_secret_version" "client" {
  for_each = local.clients

  secret_id = aws_secretsmanager_secret.client[each.key].id
  secret_string = jsonencode({
    client_id     = aws_cognito_user_pool_client.this[each.key].id
    client_secret = aws_cognito_user_pool_client.this[each.key].client_secret
  })
}
