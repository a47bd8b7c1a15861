# Offline plan-time tests: the mock provider needs only the provider schema
# (from the filesystem mirror). override_during = plan needs Terraform >= 1.11.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

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

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  # Known values at plan time, so references between resources can be checked.
  override_resource {
    target          = aws_apigatewayv2_api.this
    override_during = plan
    values = {
      id            = "abc123"
      execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123"
    }
  }

  override_resource {
    target          = aws_cloudwatch_log_group.function
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/fleet-test-fn"
    }
  }

  override_resource {
    target          = aws_cloudwatch_log_group.access
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/fleet-test/access"
    }
  }

  override_resource {
    target          = aws_lambda_function.this
    override_during = plan
    values = {
      arn        = "arn:aws:lambda:eu-west-1:123456789012:function:fleet-test-fn"
      invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:fleet-test-fn/invocations"
      version    = "3"
    }
  }

  override_resource {
    target          = aws_lambda_alias.live
    override_during = plan
    values = {
      arn        = "arn:aws:lambda:eu-west-1:123456789012:function:fleet-test-fn:live"
      invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:fleet-test-fn:live/invocations"
    }
  }

  override_resource {
    target          = aws_apigatewayv2_authorizer.jwt
    override_during = plan
    values = {
      id = "auth01"
    }
  }

  override_resource {
    target          = aws_apigatewayv2_integration.this
    override_during = plan
    values = {
      id = "integ01"
    }
  }
}

variables {
  name = "fleet-test"

  functions = {
    api = {
      zip_path         = "build/api.zip"
      source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
      handler          = "fleet_api.handler.handler"
      routes           = ["POST /projects", "GET /projects/{project}/devices", "GET /projects"]
      route_scopes     = { "GET /projects" = ["fleet/admin", "fleet/audit"] }
      secret_arns      = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf"]
      environment      = { POWERTOOLS_SERVICE_NAME = "fleet-api" }
    }
    teams = {
      zip_path         = "build/teams.zip"
      source_code_hash = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
      handler          = "fleet_teams.handler.handler"
      architecture     = "x86_64"
      routes           = ["ANY /teams/{proxy+}"]
    }
    migrations = {
      zip_path         = "build/migrations.zip"
      source_code_hash = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
      handler          = "fleet_migrations.handler.handler"
      timeout          = 300
      secret_arns      = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf"]
    }
  }

  subnet_ids         = ["subnet-0000000000000a001", "subnet-0000000000000b001"]
  security_group_ids = ["sg-0000000000000a001"]

  authorizer = {
    issuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool01"
    audience = ["client-b", "client-a"]
  }
}

run "every_route_requires_the_jwt_authorizer_and_its_scopes" {
  command = plan

  assert {
    condition = (
      aws_apigatewayv2_authorizer.jwt[0].authorizer_type == "JWT" &&
      aws_apigatewayv2_authorizer.jwt[0].identity_sources == toset(["$request.header.Authorization"]) &&
      aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool01" &&
      aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].audience == toset(["client-a", "client-b"])
    )
    error_message = "The API must have one JWT authorizer reading the Authorization header, with the given issuer and audience."
  }

  assert {
    condition = length(aws_apigatewayv2_route.this) == 4 && alltrue([
      for r in aws_apigatewayv2_route.this : r.authorization_type == "JWT" && r.authorizer_id == "auth01" && length(r.authorization_scopes) >= 1
    ])
    error_message = "Every route must use the JWT authorizer and require at least one scope: no route without an authorizer."
  }

  assert {
    condition = (
      aws_apigatewayv2_route.this["GET /projects/{project}/devices"].authorization_scopes == toset(["fleet/read"]) &&
      aws_apigatewayv2_route.this["POST /projects"].authorization_scopes == toset(["fleet/write"]) &&
      aws_apigatewayv2_route.this["ANY /teams/{proxy+}"].authorization_scopes == toset(["fleet/write"])
    )
    error_message = "GET routes must require fleet/read and POST (and ANY) routes fleet/write by default."
  }

  assert {
    condition     = aws_apigatewayv2_route.this["GET /projects"].authorization_scopes == toset(["fleet/admin", "fleet/audit"])
    error_message = "A function's route_scopes entry must replace the method's default scopes on that route."
  }

  assert {
    condition     = output.route_scopes["GET /projects"] == tolist(["fleet/admin", "fleet/audit"]) && output.route_scopes["POST /projects"] == tolist(["fleet/write"])
    error_message = "The route_scopes output must list each route's required scopes."
  }
}

run "authorizer_refuses_a_plain_http_issuer" {
  command = plan

  variables {
    authorizer = {
      issuer   = "http://issuer.example.com"
      audience = ["client-a"]
    }
  }

  expect_failures = [var.authorizer]
}

run "authorizer_refuses_an_empty_audience" {
  command = plan

  variables {
    authorizer = {
      issuer   = "https://issuer.example.com"
      audience = []
    }
  }

  expect_failures = [var.authorizer]
}

run "route_scopes_must_name_a_route_of_the_function" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["GET /projects"]
        route_scopes     = { "GET /other" = ["fleet/read"] }
      }
    }
  }

  expect_failures = [var.functions]
}

run "a_route_cannot_be_left_without_scopes" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["GET /projects"]
        route_scopes     = { "GET /projects" = [] }
      }
    }
  }

  expect_failures = [var.functions]
}

run "functions_publish_versions_behind_a_live_alias" {
  command = plan

  assert {
    condition     = length(aws_lambda_function.this) == 3 && alltrue([for f in aws_lambda_function.this : f.publish == true])
    error_message = "Every function must publish a version (publish = true) so the alias can point at immutable code."
  }

  assert {
    condition = (
      aws_lambda_function.this["api"].function_name == "fleet-test-api" &&
      aws_lambda_function.this["api"].filename == "build/api.zip" &&
      aws_lambda_function.this["api"].source_code_hash == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" &&
      aws_lambda_function.this["api"].handler == "fleet_api.handler.handler"
    )
    error_message = "The function must be named <name>-<key> and deploy the given zip with the given hash and handler."
  }

  assert {
    condition = (
      aws_lambda_function.this["api"].runtime == "python3.12" &&
      aws_lambda_function.this["api"].architectures == tolist(["arm64"]) &&
      aws_lambda_function.this["api"].memory_size == 256 &&
      aws_lambda_function.this["api"].timeout == 10 &&
      aws_lambda_function.this["api"].reserved_concurrent_executions == -1 &&
      aws_lambda_function.this["teams"].architectures == tolist(["x86_64"])
    )
    error_message = "Function defaults must be python3.12, arm64, 256 MB, 10 s, unreserved concurrency; architecture must be overridable."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.tracing_config[0].mode == "Active"])
    error_message = "X-Ray tracing must be Active on every function."
  }

  assert {
    condition = alltrue([
      for f in aws_lambda_function.this :
      f.vpc_config[0].subnet_ids == toset(["subnet-0000000000000a001", "subnet-0000000000000b001"]) &&
      f.vpc_config[0].security_group_ids == toset(["sg-0000000000000a001"])
    ])
    error_message = "Every function must run in the given private subnets with the given security groups."
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "fleet-api" && length(aws_lambda_function.this["teams"].environment) == 0
    error_message = "Environment variables must be passed through, and no empty environment block be planned."
  }

  assert {
    condition = alltrue([
      for k, a in aws_lambda_alias.live :
      a.name == "live" && a.function_name == aws_lambda_function.this[k].function_name && a.function_version == "3"
    ])
    error_message = "Each function must have a \"live\" alias pointing at its published version."
  }

  assert {
    condition = (
      aws_cloudwatch_log_group.function["api"].name == "/aws/lambda/fleet-test-api" &&
      aws_cloudwatch_log_group.function["api"].retention_in_days == 30
    )
    error_message = "Each function must get its /aws/lambda/<name>-<key> log group with a 30-day default retention."
  }

  assert {
    condition     = output.functions["api"].alias_name == "live" && output.functions["api"].version == "3" && output.functions["api"].log_group_name == "/aws/lambda/fleet-test-api"
    error_message = "The functions output must describe alias, version and log group."
  }
}

run "api_integrations_use_payload_v2_and_the_alias" {
  command = plan

  assert {
    condition     = aws_apigatewayv2_api.this[0].protocol_type == "HTTP" && aws_apigatewayv2_api.this[0].name == "fleet-test"
    error_message = "The API must be an HTTP API named after the prefix."
  }

  assert {
    condition     = length(aws_apigatewayv2_integration.this) == 2 && alltrue([for i in aws_apigatewayv2_integration.this : i.payload_format_version == "2.0"])
    error_message = "Every integration must use payload_format_version 2.0 (1.0 breaks powertools' APIGatewayHttpResolver)."
  }

  assert {
    condition     = alltrue([for i in aws_apigatewayv2_integration.this : i.integration_type == "AWS_PROXY" && i.integration_method == "POST"])
    error_message = "Integrations must be Lambda proxy integrations."
  }

  assert {
    condition = alltrue([
      for k, i in aws_apigatewayv2_integration.this :
      i.integration_uri == aws_lambda_alias.live[k].invoke_arn && i.integration_uri != aws_lambda_function.this[k].invoke_arn
    ])
    error_message = "Integrations must invoke the live alias, not the unqualified function ($LATEST)."
  }

  assert {
    condition     = !contains(keys(aws_apigatewayv2_integration.this), "migrations") && !contains(keys(aws_lambda_permission.api), "migrations")
    error_message = "A function without routes must not be reachable through the API."
  }

  assert {
    condition = (
      length(aws_apigatewayv2_route.this) == 4 &&
      aws_apigatewayv2_route.this["POST /projects"].target == "integrations/integ01" &&
      aws_apigatewayv2_route.this["GET /projects/{project}/devices"].route_key == "GET /projects/{project}/devices" &&
      aws_apigatewayv2_route.this["ANY /teams/{proxy+}"].api_id == "abc123"
    )
    error_message = "There must be one route per route key, targeting its function's integration."
  }

  assert {
    condition     = output.routes == { "POST /projects" = "api", "GET /projects/{project}/devices" = "api", "GET /projects" = "api", "ANY /teams/{proxy+}" = "teams" }
    error_message = "The routes output must map each route key to its function."
  }

  assert {
    condition     = length(aws_apigatewayv2_api.this[0].cors_configuration) == 0
    error_message = "No CORS configuration may be planned when cors_allow_origins is empty."
  }
}

run "permission_allows_the_api_to_invoke_the_alias_only" {
  command = plan

  assert {
    condition = alltrue([
      for k, p in aws_lambda_permission.api :
      p.qualifier == "live" &&
      p.qualifier == aws_lambda_alias.live[k].name &&
      p.function_name == aws_lambda_function.this[k].function_name &&
      p.principal == "apigateway.amazonaws.com" &&
      p.action == "lambda:InvokeFunction" &&
      p.source_arn == "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/*"
    ])
    error_message = "The invoke permission must be for the live alias, for API Gateway, limited to this API's execution ARN."
  }
}

run "stage_is_throttled_and_logged" {
  command = plan

  assert {
    condition     = aws_apigatewayv2_stage.this[0].name == "$default" && aws_apigatewayv2_stage.this[0].auto_deploy
    error_message = "The stage must be $default with auto_deploy by default."
  }

  assert {
    # try(): an unset limit is null in the plan, and must fail the assertion
    # rather than the comparison.
    condition = try(
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_rate_limit == 50 &&
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_burst_limit == 100 &&
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_rate_limit > 0 &&
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_burst_limit > 0,
      false
    )
    error_message = "Throttling must be set explicitly and non-zero on the stage (unset means 0: every request 429)."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this[0].default_route_settings[0].detailed_metrics_enabled
    error_message = "Detailed (per-route) metrics must be on."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this[0].access_log_settings[0].destination_arn == "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/fleet-test/access"
    error_message = "Access logs must go to the module's access log group."
  }

  assert {
    condition = alltrue([
      for field in ["requestId", "ip", "requestTime", "httpMethod", "routeKey", "status", "protocol", "responseLength", "integrationErrorMessage"] :
      contains(keys(jsondecode(aws_apigatewayv2_stage.this[0].access_log_settings[0].format)), field)
    ])
    error_message = "The access log format must be JSON with requestId, ip, requestTime, httpMethod, routeKey, status, protocol, responseLength, integrationErrorMessage."
  }

  assert {
    condition     = aws_cloudwatch_log_group.access[0].name == "/aws/apigateway/fleet-test/access" && aws_cloudwatch_log_group.access[0].retention_in_days == 30 && output.access_log_group_name == "/aws/apigateway/fleet-test/access"
    error_message = "The access log group must have a 30-day default retention."
  }
}

run "role_is_least_privilege" {
  command = plan

  assert {
    condition = anytrue([
      for c in data.aws_iam_policy_document.assume.statement[0].condition :
      c.variable == "aws:SourceAccount" && c.values == tolist(["123456789012"])
    ]) && tolist(data.aws_iam_policy_document.assume.statement[0].principals)[0].identifiers == toset(["lambda.amazonaws.com"])
    error_message = "The execution roles must trust lambda.amazonaws.com only on behalf of this account (aws:SourceAccount)."
  }

  assert {
    condition = alltrue([
      for k, r in aws_iam_role.function : r.name == "fleet-test-${k}-lambda"
    ])
    error_message = "Each function must get its own role."
  }

  assert {
    # Every statement that grants a secretsmanager action grants exactly
    # GetSecretValue/DescribeSecret on exactly the given secret.
    condition = alltrue([
      for s in data.aws_iam_policy_document.function["api"].statement :
      s.resources == toset(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf"]) &&
      s.actions == toset(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]) &&
      s.effect == "Allow"
      if anytrue([for a in s.actions : startswith(a, "secretsmanager:")])
    ]) && length([for s in data.aws_iam_policy_document.function["api"].statement : s if contains(s.actions, "secretsmanager:GetSecretValue")]) == 1
    error_message = "The role policy must allow secretsmanager:GetSecretValue (and DescribeSecret) only on the given secret ARN."
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.function["teams"].statement : s if anytrue([for a in s.actions : startswith(a, "secretsmanager:")])]) == 0
    error_message = "A function without secret_arns must not be allowed any secretsmanager action."
  }

  assert {
    condition = alltrue(flatten([
      for k, d in data.aws_iam_policy_document.function : [
        for s in d.statement : [for a in s.actions : !strcontains(a, "*")]
      ]
    ]))
    error_message = "No statement may use wildcard actions."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.function["api"].statement :
      s.resources == toset(["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/fleet-test-fn:*"])
      if anytrue([for a in s.actions : startswith(a, "logs:")])
    ])
    error_message = "Log permissions must be limited to the function's own log group."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.function["api"].statement :
      s.effect == "Deny" && contains(s.actions, "ec2:CreateNetworkInterface") && anytrue([
        for c in s.condition : c.variable == "lambda:SourceFunctionArn" && contains(c.values, "arn:aws:lambda:eu-west-1:123456789012:function:fleet-test-api")
      ])
    ])
    error_message = "The function's own code must be denied the ENI actions (lambda:SourceFunctionArn)."
  }
}

run "cors_follows_route_methods" {
  command = plan

  variables {
    cors_allow_origins = ["https://fleet.example.com"]
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["POST /projects", "GET /projects", "GET /projects/{project}"]
      }
    }
  }

  assert {
    condition = (
      aws_apigatewayv2_api.this[0].cors_configuration[0].allow_origins == toset(["https://fleet.example.com"]) &&
      aws_apigatewayv2_api.this[0].cors_configuration[0].allow_methods == toset(["GET", "POST"])
    )
    error_message = "CORS must allow the given origins and exactly the methods of the routes."
  }
}

run "throttling_and_stage_are_configurable" {
  command = plan

  variables {
    stage_name             = "v1"
    throttling_rate_limit  = 5.5
    throttling_burst_limit = 10
    kms_key_arn            = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition = (
      aws_apigatewayv2_stage.this[0].name == "v1" &&
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_rate_limit == 5.5 &&
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_burst_limit == 10
    )
    error_message = "stage_name and the throttling limits must reach the stage."
  }

  assert {
    condition = (
      aws_lambda_function.this["api"].kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" &&
      aws_cloudwatch_log_group.function["api"].kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" &&
      aws_cloudwatch_log_group.access[0].kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    )
    error_message = "kms_key_arn must encrypt the environment variables and every log group."
  }
}

run "rejects_bad_route_key" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["/projects"]
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_unknown_method" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["FETCH /projects"]
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_duplicate_route_across_functions" {
  command = plan

  variables {
    functions = {
      a = {
        zip_path         = "build/a.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "a.handler"
        routes           = ["GET /projects"]
      }
      b = {
        zip_path         = "build/b.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "b.handler"
        routes           = ["GET /projects"]
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_bad_architecture" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        architecture     = "aarch64"
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_bad_handler" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "handler"
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_hex_source_code_hash" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        handler          = "fleet_api.handler.handler"
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_out_of_range_memory_and_timeout" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        memory_size      = 64
        timeout          = 901
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_wildcard_secret_arn" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        secret_arns      = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"]
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_reserved_environment_variable" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        environment      = { AWS_REGION = "us-east-1" }
      }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_zero_throttling" {
  command = plan

  variables {
    throttling_rate_limit  = 0
    throttling_burst_limit = 0
  }

  expect_failures = [var.throttling_rate_limit, var.throttling_burst_limit]
}

run "rejects_bad_cors_origin" {
  command = plan

  variables {
    cors_allow_origins = ["https://fleet.example.com/app"]
  }

  expect_failures = [var.cors_allow_origins]
}

run "rejects_bad_subnet" {
  command = plan

  variables {
    subnet_ids = ["10.20.0.0/20"]
  }

  expect_failures = [var.subnet_ids]
}

run "database_settings_reach_every_function" {
  command = plan

  variables {
    database = {
      host       = "fleet.abc.eu-west-1.rds.amazonaws.com"
      port       = 5432
      name       = "fleet"
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-9999-XyZ"
    }
  }

  assert {
    condition     = aws_lambda_function.this["teams"].environment[0].variables["DB_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-9999-XyZ"
    error_message = "A function without environment of its own must still get the database settings."
  }

  assert {
    condition     = aws_lambda_function.this["api"].environment[0].variables["DB_PORT"] == "5432" && aws_lambda_function.this["api"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "fleet-api"
    error_message = "Database settings must be merged with the function's own environment."
  }

  assert {
    condition     = contains(local.functions["teams"].secret_arns, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-9999-XyZ")
    error_message = "Every function may read the database secret."
  }
}

run "functions_only_without_the_http_api" {
  command = plan

  variables {
    create_http_api = false
    authorizer      = null
    functions = {
      migrations = {
        zip_path         = "build/migrations.zip"
        source_code_hash = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
        handler          = "fleet_migrations.handler.handler"
        timeout          = 300
      }
    }
  }

  assert {
    condition = (
      length(aws_apigatewayv2_api.this) == 0 && length(aws_apigatewayv2_authorizer.jwt) == 0 &&
      length(aws_apigatewayv2_stage.this) == 0 && length(aws_cloudwatch_log_group.access) == 0 &&
      length(aws_lambda_permission.api) == 0 && output.api_id == null
    )
    error_message = "Without the HTTP API nothing of it is created and nothing may invoke the functions through it."
  }

  assert {
    condition     = aws_lambda_alias.live["migrations"].name == "live" && aws_lambda_function.this["migrations"].publish
    error_message = "A function without the API is still published behind its live alias."
  }
}

run "functions_only_refuses_routes" {
  command = plan

  variables {
    create_http_api = false
    authorizer      = null
  }

  expect_failures = [var.create_http_api]
}

run "the_http_api_requires_an_authorizer" {
  command = plan

  variables {
    authorizer = null
  }

  expect_failures = [var.authorizer]
}

run "each_function_reads_only_its_database_role_secret" {
  command = plan

  variables {
    create_http_api = false
    authorizer      = null
    functions = {
      reader = {
        zip_path         = "build/reader.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "reader.handler.handler"
        database_role    = "fleet_reader"
      }
      migrations = {
        zip_path               = "build/migrations.zip"
        source_code_hash       = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
        handler                = "fleet_migrations.handler.handler"
        manages_database_roles = true
      }
    }
    database = {
      host       = "fleet.abc.eu-west-1.rds.amazonaws.com"
      port       = 5432
      name       = "fleet"
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-9999-XyZ"
      role_secret_arns = {
        fleet_reader = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_reader-AbC"
        fleet_writer = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_writer-DeF"
      }
    }
  }

  assert {
    condition = (
      aws_lambda_function.this["reader"].environment[0].variables["DB_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_reader-AbC" &&
      local.functions["reader"].secret_arns == tolist(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_reader-AbC"]) &&
      !contains(keys(aws_lambda_function.this["reader"].environment[0].variables), "DB_ROLE_SECRETS")
    )
    error_message = "A function with a database_role connects with that role's secret and may read no other (not the master secret)."
  }

  assert {
    condition = (
      aws_lambda_function.this["migrations"].environment[0].variables["DB_SECRET_ARN"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-9999-XyZ" &&
      jsondecode(aws_lambda_function.this["migrations"].environment[0].variables["DB_ROLE_SECRETS"])["fleet_writer"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_writer-DeF"
    )
    error_message = "The function that manages the roles connects with database.secret_arn and learns every role's secret."
  }
}

run "a_database_role_must_have_a_secret" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["GET /projects"]
        database_role    = "fleet_admin"
      }
    }
    database = {
      host             = "fleet.abc.eu-west-1.rds.amazonaws.com"
      port             = 5432
      name             = "fleet"
      role_secret_arns = { fleet_reader = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleet/role/fleet_reader-AbC" }
    }
  }

  expect_failures = [var.database]
}

run "a_pinned_function_keeps_its_alias_on_the_pinned_version" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        routes           = ["GET /projects"]
        live_version     = "2"
      }
      teams = {
        zip_path         = "build/teams.zip"
        source_code_hash = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        handler          = "fleet_teams.handler.handler"
        routes           = ["ANY /teams/{proxy+}"]
      }
    }
  }

  assert {
    condition     = aws_lambda_alias.live["api"].function_version == "2" && output.functions["api"].version == "2"
    error_message = "A function with live_version must keep its alias on that version (a rollback's pin)."
  }

  assert {
    condition     = aws_lambda_alias.live["teams"].function_version == "3"
    error_message = "A function without live_version must follow its newest published version."
  }
}

run "live_version_must_be_a_published_version_number" {
  command = plan

  variables {
    functions = {
      api = {
        zip_path         = "build/api.zip"
        source_code_hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        handler          = "fleet_api.handler.handler"
        live_version     = "$LATEST"
      }
    }
  }

  expect_failures = [var.functions]
}
