output "api_id" {
  description = "ID of the HTTP API; null with create_http_api = false."
  value       = one(aws_apigatewayv2_api.this[*].id)
}

output "api_endpoint" {
  description = "Invoke URL of the stage (for the $default stage the API's base URL with a trailing slash; otherwise .../<stage_name>); null with create_http_api = false."
  value       = one(aws_apigatewayv2_stage.this[*].invoke_url)
}

output "execution_arn" {
  description = "Execution ARN of the HTTP API (arn:aws:execute-api:<region>:<account>:<api_id>), the prefix of the source_arn of invoke permissions; null with create_http_api = false."
  value       = one(aws_apigatewayv2_api.this[*].execution_arn)
}

output "stage_name" {
  description = "Name of the stage; null with create_http_api = false."
  value       = one(aws_apigatewayv2_stage.this[*].name)
}

output "routes" {
  description = "Route key => key of the function serving it (for example {\"GET /projects\" = \"api\"})."
  value       = local.routes
}

output "functions" {
  description = "Per function key: function_name, arn (unqualified), alias_arn and alias_name (what the API invokes), version (the published version the alias points at), published_version (the newest published version; differs from version while live_version holds the alias back), role_arn, log_group_name, invoke_arn (of the alias)."
  value = {
    for k, f in aws_lambda_function.this : k => {
      function_name     = f.function_name
      arn               = f.arn
      alias_arn         = aws_lambda_alias.live[k].arn
      alias_name        = aws_lambda_alias.live[k].name
      version           = aws_lambda_alias.live[k].function_version
      published_version = f.version
      role_arn          = aws_iam_role.function[k].arn
      log_group_name    = aws_cloudwatch_log_group.function[k].name
      invoke_arn        = aws_lambda_alias.live[k].invoke_arn
    }
  }
}

output "access_log_group_name" {
  description = "Name of the CloudWatch log group receiving the stage's access logs (one JSON object per request); null with create_http_api = false."
  value       = one(aws_cloudwatch_log_group.access[*].name)
}

output "route_scopes" {
  description = "Route key => the scopes its JWT authorizer requires (a token needs at least one of them)."
  value       = local.route_scopes
}

output "authorizer_id" {
  description = "ID of the HTTP API's JWT authorizer (every route uses it); null with create_http_api = false."
  value       = one(aws_apigatewayv2_authorizer.jwt[*].id)
}
