output "address" {
  description = "Host name of the instance (resolves to private addresses only)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port PostgreSQL listens on."
  value       = aws_db_instance.this.port
}

output "endpoint" {
  description = "address:port of the instance."
  value       = aws_db_instance.this.endpoint
}

output "db_name" {
  description = "Name of the database created with the instance."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name. The password is in the secret master_user_secret_arn."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS manages for the master user (JSON with username and password). Grant secretsmanager:GetSecretValue on it to the migrations function only."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "role_secret_arns" {
  description = "Database role => ARN of its secret (created empty; the migrations function puts {\"username\", \"password\"} into it). Give each function the secret of its own role only."
  value       = { for role, secret in aws_secretsmanager_secret.role : role => secret.arn }
}

output "security_group_ids" {
  description = "Security groups attached to the instance."
  value       = var.vpc_security_group_ids
}

output "security_group_id" {
  description = "The first security group of the instance (the database security group of the network module)."
  value       = var.vpc_security_group_ids[0]
}

output "instance_identifier" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "ARN of the RDS instance."
  value       = aws_db_instance.this.arn
}

output "instance_resource_id" {
  description = "Resource id (db-...) of the instance, the part of rds-db:connect ARNs used for IAM database authentication."
  value       = aws_db_instance.this.resource_id
}

output "engine_version_actual" {
  description = "Engine version actually running (engine_version may be just the major version)."
  value       = aws_db_instance.this.engine_version_actual
}

output "parameter_group_name" {
  description = "Name of the DB parameter group of the instance."
  value       = aws_db_parameter_group.this.name
}

output "monitoring_role_arn" {
  description = "ARN of the Enhanced Monitoring IAM role, or null when monitoring_interval is 0."
  value       = try(aws_iam_role.monitoring[0].arn, null)
}

output "cloudwatch_log_group_names" {
  description = "Names of the CloudWatch log groups receiving the exported PostgreSQL logs, by log type."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}
