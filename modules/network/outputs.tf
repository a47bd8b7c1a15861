output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, in the order of var.availability_zones."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id]
}

output "private_route_table_id" {
  description = "ID of the route table of the private subnets (local route only)."
  value       = aws_route_table.private.id
}

output "lambda_security_group_id" {
  description = "ID of the security group for the Lambda functions (egress to the database on 5432 and HTTPS inside the VPC only)."
  value       = aws_security_group.lambda.id
}

output "db_security_group_id" {
  description = "ID of the security group for the database (ingress 5432 from the lambda security group only)."
  value       = aws_security_group.db.id
}

output "db_subnet_group_name" {
  description = "Name of the DB subnet group over the private subnets."
  value       = aws_db_subnet_group.this.name
}

output "secretsmanager_endpoint_id" {
  description = "ID of the Secrets Manager interface VPC endpoint, or null when enable_secretsmanager_endpoint is false."
  value       = try(aws_vpc_endpoint.secretsmanager[0].id, null)
}

output "flow_log_group_name" {
  description = "Name of the CloudWatch log group receiving the VPC flow logs, or null when enable_flow_logs is false."
  value       = try(aws_cloudwatch_log_group.flow_logs[0].name, null)
}
