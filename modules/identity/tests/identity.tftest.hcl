# Offline plan-time tests of the module's defaults (mock provider: the schema from the mirror).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  override_resource {
    target          = aws_cognito_user_pool.this
    override_during = plan
    values = {
      id  = "eu-west-1_Pool01"
      arn = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Pool01"
    }
  }
}

variables {
  name = "fleet-test"

  clients = {
    ci = {
      scopes = ["fleet/write", "fleet/read"]
    }
    dashboard = {
      scopes                        = ["fleet/read"]
      access_token_validity_minutes = 15
    }
  }
}

run "pool_is_for_machine_callers_only" {
  command = plan

  assert {
    condition     = length(aws_cognito_user_pool.this) == 1 && aws_cognito_user_pool.this[0].admin_create_user_config[0].allow_admin_create_user_only == true
    error_message = "The pool must not allow self sign-up."
  }

  assert {
    condition     = aws_cognito_user_pool.this[0].deletion_protection == "ACTIVE"
    error_message = "Deletion protection must be on by default."
  }

  assert {
    condition     = aws_cognito_user_pool_domain.this[0].domain == "fleet-test-123456789012"
    error_message = "The domain prefix must default to <name>-<account id>."
  }

  assert {
    condition = (
      aws_cognito_resource_server.this[0].identifier == "fleet" &&
      toset([for s in aws_cognito_resource_server.this[0].scope : s.scope_name]) == toset(["read", "write"])
    )
    error_message = "The resource server must define fleet/read and fleet/write."
  }
}

run "clients_use_client_credentials_only_with_their_scopes" {
  command = plan

  assert {
    condition = alltrue([
      for c in aws_cognito_user_pool_client.this :
      c.generate_secret == true &&
      c.allowed_oauth_flows == toset(["client_credentials"]) &&
      c.allowed_oauth_flows_user_pool_client == true &&
      c.explicit_auth_flows == toset(["ALLOW_REFRESH_TOKEN_AUTH"])
    ])
    error_message = "Every client must have a secret and use the client credentials grant only."
  }

  assert {
    condition = (
      aws_cognito_user_pool_client.this["ci"].allowed_oauth_scopes == toset(["fleet/read", "fleet/write"]) &&
      aws_cognito_user_pool_client.this["dashboard"].allowed_oauth_scopes == toset(["fleet/read"])
    )
    error_message = "A client may request exactly the scopes it was given."
  }

  assert {
    condition = (
      aws_cognito_user_pool_client.this["ci"].access_token_validity == 60 &&
      aws_cognito_user_pool_client.this["dashboard"].access_token_validity == 15 &&
      aws_cognito_user_pool_client.this["dashboard"].token_validity_units[0].access_token == "minutes"
    )
    error_message = "Access tokens must live 60 minutes by default, as configured otherwise."
  }

  assert {
    condition     = aws_secretsmanager_secret.client["ci"].name == "fleet-test/clients/ci" && aws_secretsmanager_secret.client["ci"].recovery_window_in_days == 30
    error_message = "Each client's secret must be stored as <name>/clients/<client> with a recovery window."
  }

  assert {
    condition     = output.jwt_authorizer.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool01"
    error_message = "The authorizer's issuer must be the pool's issuer URL."
  }

  assert {
    condition     = output.token_endpoint == "https://fleet-test-123456789012.auth.eu-west-1.amazoncognito.com/oauth2/token"
    error_message = "The token endpoint must be the pool domain's /oauth2/token."
  }
}

run "an_external_issuer_creates_nothing" {
  command = plan

  variables {
    external_issuer = {
      issuer   = "https://login.example.com/oauth2/default"
      audience = ["api://fleet"]
    }
  }

  assert {
    condition = (
      length(aws_cognito_user_pool.this) == 0 && length(aws_cognito_user_pool_client.this) == 0 &&
      length(aws_secretsmanager_secret.client) == 0 && output.token_endpoint == null
    )
    error_message = "With an external issuer no pool, client or secret may be created."
  }

  assert {
    condition     = output.jwt_authorizer.issuer == "https://login.example.com/oauth2/default" && output.jwt_authorizer.audience == tolist(["api://fleet"])
    error_message = "The external issuer must be passed through as jwt_authorizer."
  }
}

run "rejects_a_plain_http_issuer" {
  command = plan

  variables {
    external_issuer = {
      issuer   = "http://login.example.com"
      audience = ["api://fleet"]
    }
  }

  expect_failures = [var.external_issuer]
}

run "rejects_an_empty_audience" {
  command = plan

  variables {
    external_issuer = {
      issuer   = "https://login.example.com"
      audience = [" "]
    }
  }

  expect_failures = [var.external_issuer]
}

run "rejects_a_scope_the_resource_server_lacks" {
  command = plan

  variables {
    clients = {
      ci = { scopes = ["fleet/admin"] }
    }
  }

  expect_failures = [var.clients]
}

run "rejects_a_too_short_token_lifetime" {
  command = plan

  variables {
    clients = {
      ci = { scopes = ["fleet/read"], access_token_validity_minutes = 1 }
    }
  }

  expect_failures = [var.clients]
}
