data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # With var.database set, every function gets the connection settings as
  # environment variables (a function's own value wins) and DB_SECRET_ARN of
  # the one database secret it may read: its database_role's, else
  # database.secret_arn. The password itself is fetched at run time.
  database_environment = var.database == null ? {} : {
    DB_HOST = var.database.host
    DB_PORT = tostring(var.database.port)
    DB_NAME = var.database.name
  }
  role_secret_arns = var.database == null ? {} : var.database.role_secret_arns
  database_secret_arns = {
    for k, f in var.functions : k => (
      var.database == null ? null : f.database_role != null ? local.role_secret_arns[f.database_role] : var.database.secret_arn
    )
  }
  functions = {
    for k, f in var.functions : k => merge(f, {
      environment = merge(
        local.database_environment,
        local.database_secret_arns[k] == null ? {} : { DB_SECRET_ARN = local.database_secret_arns[k] },
        f.manages_database_roles ? { DB_ROLE_SECRETS = jsonencode(local.role_secret_arns) } : {},
        f.environment,
      )
      secret_arns = distinct(concat(f.secret_arns, compact([local.database_secret_arns[k]])))
    })
  }

  # The alias API Gateway invokes. It points at the newest published version
  # (or the one a rollback pinned, live_version), so the API never runs $LATEST
  # (unpublished, mutable code).
  alias_name = "live"

  function_names = { for k, f in var.functions : k => "${var.name}-${k}" }

  # Built from the name instead of read from the function: the role policy
  # (which the function depends on) needs it, and reading it would be a cycle.
  function_arns = {
    for k, n in local.function_names :
    k => "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:function:${n}"
  }

  # Only functions that serve routes are wired to the API (integration and
  # invoke permission); a function without routes (for example migrations)
  # cannot be invoked through the API at all.
  api_functions = { for k, f in var.functions : k => f if length(f.routes) > 0 }

  # route key => function key. Route keys are unique across functions
  # (validated on var.functions).
  routes = merge([for k, f in var.functions : { for r in f.routes : r => k }]...)

  # route key => the scopes a token needs on it (at least one of them): the
  # function's route_scopes entry, else the scopes of the route's method.
  route_scopes = merge([
    for k, f in var.functions : {
      for r in f.routes : r => sort(lookup(f.route_scopes, r, var.method_scopes[split(" ", r)[0]]))
    }
  ]...)

  # CORS preflight answers for the methods the routes actually serve.
  route_methods = distinct([for r in keys(local.routes) : split(" ", r)[0]])
  cors_methods  = contains(local.route_methods, "ANY") ? ["*"] : sort(local.route_methods)

  # ENI management on behalf of a function in a VPC. EC2 authorizes the
  # Describe* actions only on "*"; Lambda creates the interfaces in the
  # subnets/security groups of vpc_config itself.
  eni_actions = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
  ]

  access_log_group_name = "/aws/apigateway/${var.name}/access"

  access_log_format = jsonencode({
    requestId               = "$context.requestId"
    ip                      = "$context.identity.sourceIp"
    requestTime             = "$context.requestTime"
    httpMethod              = "$context.httpMethod"
    routeKey                = "$context.routeKey"
    path                    = "$context.path"
    status                  = "$context.status"
    protocol                = "$context.protocol"
    responseLength          = "$context.responseLength"
    responseLatency         = "$context.responseLatency"
    integrationStatus       = "$context.integration.status"
    integrationLatency      = "$context.integration.latency"
    integrationErrorMessage = "$context.integrationErrorMessage"
  })
}

################################################################################
# Log groups (created before the functions so Lambda never creates its own,
# never-expiring, unmanaged ones)
################################################################################

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = each.value.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = merge(var.tags, { Name = "/aws/lambda/${local.function_names[each.key]}" })
}

resource "aws_cloudwatch_log_group" "access" {
  count = var.create_http_api ? 1 : 0

  #checkov:skip=CKV_AWS_338: retention is access_log_retention_days (30 days by default) to keep dev/stage costs down; set it to 365 or more for prod through the stack inputs when access logs are part of the audit trail.
  name              = local.access_log_group_name
  retention_in_days = var.access_log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = merge(var.tags, { Name = local.access_log_group_name })
}

################################################################################
# Execution roles (one per function, least privilege)
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaService"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Confused-deputy protection: only on behalf of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${local.function_names[each.key]}-lambda"
  description        = "Execution role of the Lambda function ${local.function_names[each.key]}"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = merge(var.tags, { Name = "${local.function_names[each.key]}-lambda" })
}

data "aws_iam_policy_document" "function" {
  #checkov:skip=CKV_AWS_111: the only write actions on "*" are the ec2 network interface actions Lambda needs for vpc_config (EC2 does not scope them to resources Lambda can know in advance), and the DenyNetworkInterfacesFromFunctionCode statement takes them away from the function's own code.
  for_each = local.functions

  statement {
    sid     = "WriteOwnLogGroupOnly"
    effect  = "Allow"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      "${aws_cloudwatch_log_group.function[each.key].arn}:*",
    ]
  }

  statement {
    sid       = "XRayTracing"
    effect    = "Allow"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "VpcNetworkInterfaces"
    effect    = "Allow"
    actions   = local.eni_actions
    resources = ["*"]
  }

  # Lambda calls EC2 for the function's interfaces without the
  # lambda:SourceFunctionArn key; calls made with the role's credentials from
  # inside the function carry it. So this takes the ENI actions away from the
  # function's code (it cannot create interfaces in other subnets) without
  # affecting Lambda's own management of the interfaces.
  statement {
    sid       = "DenyNetworkInterfacesFromFunctionCode"
    effect    = "Deny"
    actions   = local.eni_actions
    resources = ["*"]

    condition {
      test     = "ArnLike"
      variable = "lambda:SourceFunctionArn"
      values   = [local.function_arns[each.key], "${local.function_arns[each.key]}:*"]
    }
  }

  # The migrations function gives each database role its password: it puts
  # the generated value into the role's (empty) secret.
  dynamic "statement" {
    for_each = each.value.manages_database_roles && length(local.role_secret_arns) > 0 ? [sort(values(local.role_secret_arns))] : []

    content {
      sid       = "SetDatabaseRoleSecrets"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(each.value.secret_arns) > 0 ? [each.value.secret_arns] : []

    content {
      sid       = "ReadOwnSecretsOnly"
      effect    = "Allow"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = statement.value
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

################################################################################
# Functions, versions and the "live" alias
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116: synchronous API function: API Gateway invokes it synchronously and returns the error to the caller, there is no asynchronous event to dead-letter.
  #checkov:skip=CKV_AWS_272: code signing is not used: the deploy tooling builds the zips deterministically and passes their SHA-256 (source_code_hash), and only the deploy role can update the code.
  for_each = local.functions

  function_name = local.function_names[each.key]
  description   = "${var.name} ${each.key} (${each.value.handler})"
  role          = aws_iam_role.function[each.key].arn

  filename         = each.value.zip_path
  source_code_hash = each.value.source_code_hash
  handler          = each.value.handler
  runtime          = each.value.runtime
  architectures    = [each.value.architecture]
  memory_size      = each.value.memory_size
  timeout          = each.value.timeout

  # Every change of code or configuration publishes a new immutable version
  # (and the alias follows it); an unchanged zip publishes nothing.
  publish = true

  reserved_concurrent_executions = each.value.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "environment" {
    for_each = length(each.value.environment) > 0 ? [each.value.environment] : []

    content {
      variables = environment.value
    }
  }

  tags = merge(var.tags, { Name = local.function_names[each.key] })

  # The log group must exist before the first invocation (or Lambda creates
  # an unmanaged one), and the role must carry its policy before Lambda
  # validates the VPC permissions at creation.
  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}

resource "aws_lambda_alias" "live" {
  for_each = local.functions

  name             = local.alias_name
  description      = "What the HTTP API invokes: the newest published version of ${local.function_names[each.key]}, or the version a rollback pinned"
  function_name    = aws_lambda_function.this[each.key].function_name
  function_version = coalesce(each.value.live_version, aws_lambda_function.this[each.key].version)

  lifecycle {
    # Routing weights belong to the release tooling: stackrun's canary gives a new version a
    # share of the traffic with UpdateAlias and clears it when it decides (see the README).
    # Lambda may report a cleared routing as an empty one, which would otherwise show as drift.
    ignore_changes = [routing_config]
  }
}

################################################################################
# HTTP API
################################################################################

resource "aws_apigatewayv2_api" "this" {
  count = var.create_http_api ? 1 : 0

  name          = var.name
  description   = "HTTP API of ${var.name}"
  protocol_type = "HTTP"

  dynamic "cors_configuration" {
    for_each = length(var.cors_allow_origins) > 0 ? [var.cors_allow_origins] : []

    content {
      allow_origins = cors_configuration.value
      allow_methods = local.cors_methods
      allow_headers = ["authorization", "content-type"]
      max_age       = 300
    }
  }

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_lambda_permission" "api" {
  for_each = local.api_functions

  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  principal     = "apigateway.amazonaws.com"
  function_name = aws_lambda_function.this[each.key].function_name
  qualifier     = aws_lambda_alias.live[each.key].name
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/*/*"
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = local.api_functions

  api_id           = aws_apigatewayv2_api.this[0].id
  description      = "Lambda ${local.function_names[each.key]}:${local.alias_name}"
  integration_type = "AWS_PROXY"
  # Lambda proxy integrations are always invoked with POST.
  integration_method = "POST"
  integration_uri    = aws_lambda_alias.live[each.key].invoke_arn
  # The default, "1.0", sends the REST API event shape; powertools'
  # APIGatewayHttpResolver (and the HTTP API event in general) needs "2.0".
  payload_format_version = "2.0"
}

# Every route requires a JWT from the configured issuer: API Gateway answers
# 401 (no, malformed, expired or foreign token) or 403 (none of the route's
# scopes) itself, without invoking the function.
resource "aws_apigatewayv2_authorizer" "jwt" {
  count = var.create_http_api ? 1 : 0

  api_id           = aws_apigatewayv2_api.this[0].id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.authorizer.issuer
    audience = sort(var.authorizer.audience)
  }
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.routes

  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.this[each.value].id}"

  authorization_type   = "JWT"
  authorizer_id        = aws_apigatewayv2_authorizer.jwt[0].id
  authorization_scopes = local.route_scopes[each.key]

  # A route must not go live before API Gateway may invoke its function.
  depends_on = [aws_lambda_permission.api]
}

resource "aws_apigatewayv2_stage" "this" {
  count = var.create_http_api ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = var.stage_name
  auto_deploy = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access[0].arn
    format          = local.access_log_format
  }

  # Both limits explicitly: left unset they are 0 and every request is
  # throttled (429).
  default_route_settings {
    throttling_rate_limit    = var.throttling_rate_limit
    throttling_burst_limit   = var.throttling_burst_limit
    detailed_metrics_enabled = true
  }

  tags = merge(var.tags, { Name = "${var.name}-${trimprefix(var.stage_name, "$")}" })
}

# The HTTP API's resources became optional (create_http_api): their addresses
# gained an index, the deployed ones are the same objects.
moved {
  from = aws_cloudwatch_log_group.access
  to   = aws_cloudwatch_log_group.access[0]
}

moved {
  from = aws_apigatewayv2_api.this
  to   = aws_apigatewayv2_api.this[0]
}

moved {
  from = aws_apigatewayv2_authorizer.jwt
  to   = aws_apigatewayv2_authorizer.jwt[0]
}

moved {
  from = aws_apigatewayv2_stage.this
  to   = aws_apigatewayv2_stage.this[0]
}
