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

  # Known ids at plan time, so rules can be checked against the group they reference.
  override_resource {
    target          = aws_security_group.lambda
    override_during = plan
    values = {
      id = "sg-0000000000000a001"
    }
  }

  override_resource {
    target          = aws_security_group.db
    override_during = plan
    values = {
      id = "sg-0000000000000db01"
    }
  }

  override_resource {
    target          = aws_security_group.secretsmanager_endpoint
    override_during = plan
    values = {
      id = "sg-0000000000000e001"
    }
  }

  override_resource {
    target          = aws_vpc.this
    override_during = plan
    values = {
      id         = "vpc-00000000000000001"
      cidr_block = "10.20.0.0/16"
    }
  }
}

variables {
  name                 = "fleet-test"
  availability_zones   = ["eu-west-1a", "eu-west-1b"]
  private_subnet_cidrs = ["10.20.0.0/20", "10.20.16.0/20"]
}

run "vpc_is_private_only" {
  command = plan

  assert {
    condition     = aws_vpc.this.enable_dns_support && aws_vpc.this.enable_dns_hostnames
    error_message = "The VPC must have DNS support and DNS hostnames on (private DNS of interface endpoints needs both)."
  }

  assert {
    condition     = aws_vpc.this.cidr_block == "10.20.0.0/16"
    error_message = "The VPC must use the default CIDR block 10.20.0.0/16."
  }

  assert {
    condition     = length(aws_subnet.private) == 2
    error_message = "There must be exactly one private subnet per availability zone."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.map_public_ip_on_launch == false])
    error_message = "Private subnets must never assign public IPs on launch."
  }

  assert {
    condition     = aws_subnet.private["eu-west-1a"].cidr_block == "10.20.0.0/20" && aws_subnet.private["eu-west-1b"].cidr_block == "10.20.16.0/20"
    error_message = "Subnet CIDR blocks must follow the order of availability_zones."
  }

  assert {
    condition     = length(aws_route_table_association.private) == 2
    error_message = "Every private subnet must be associated with the module's private route table."
  }

  assert {
    condition     = aws_db_subnet_group.this.name == "fleet-test-db"
    error_message = "The DB subnet group must be named after the module's name prefix."
  }
}

run "default_security_group_is_closed" {
  command = plan

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The VPC's default security group must have no ingress and no egress rules."
  }
}

run "database_reachable_only_from_lambda_sg" {
  command = plan

  assert {
    condition     = aws_vpc_security_group_ingress_rule.db_from_lambda.security_group_id == "sg-0000000000000db01"
    error_message = "The database ingress rule must belong to the database security group."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.db_from_lambda.ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.db_from_lambda.from_port == 5432 &&
      aws_vpc_security_group_ingress_rule.db_from_lambda.to_port == 5432
    )
    error_message = "The database ingress rule must open TCP 5432 only."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.db_from_lambda.referenced_security_group_id == "sg-0000000000000a001"
    error_message = "The database ingress source must be the lambda security group."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.db_from_lambda.cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.db_from_lambda.cidr_ipv6 == null &&
      aws_vpc_security_group_ingress_rule.db_from_lambda.prefix_list_id == null
    )
    error_message = "The database must never be opened to a CIDR block or prefix list."
  }
}

run "lambda_egress_stays_inside_the_vpc" {
  command = plan

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.lambda_to_db.security_group_id == "sg-0000000000000a001" &&
      aws_vpc_security_group_egress_rule.lambda_to_db.referenced_security_group_id == "sg-0000000000000db01" &&
      aws_vpc_security_group_egress_rule.lambda_to_db.ip_protocol == "tcp" &&
      aws_vpc_security_group_egress_rule.lambda_to_db.from_port == 5432 &&
      aws_vpc_security_group_egress_rule.lambda_to_db.to_port == 5432 &&
      aws_vpc_security_group_egress_rule.lambda_to_db.cidr_ipv4 == null
    )
    error_message = "Lambda egress to PostgreSQL must target the database security group on TCP 5432 only."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.lambda_https_in_vpc.security_group_id == "sg-0000000000000a001" &&
      aws_vpc_security_group_egress_rule.lambda_https_in_vpc.cidr_ipv4 == "10.20.0.0/16" &&
      aws_vpc_security_group_egress_rule.lambda_https_in_vpc.ip_protocol == "tcp" &&
      aws_vpc_security_group_egress_rule.lambda_https_in_vpc.from_port == 443 &&
      aws_vpc_security_group_egress_rule.lambda_https_in_vpc.to_port == 443
    )
    error_message = "Lambda HTTPS egress must be limited to the VPC CIDR block on TCP 443."
  }
}

run "secretsmanager_endpoint_is_private" {
  command = plan

  assert {
    condition = (
      aws_vpc_endpoint.secretsmanager[0].vpc_endpoint_type == "Interface" &&
      aws_vpc_endpoint.secretsmanager[0].private_dns_enabled &&
      aws_vpc_endpoint.secretsmanager[0].service_name == "com.amazonaws.eu-west-1.secretsmanager"
    )
    error_message = "The Secrets Manager endpoint must be an interface endpoint with private DNS in every private subnet."
  }

  assert {
    condition     = aws_vpc_endpoint.secretsmanager[0].security_group_ids == toset(["sg-0000000000000e001"])
    error_message = "The endpoint must use its own security group only."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.secretsmanager_endpoint_from_lambda[0].security_group_id == "sg-0000000000000e001" &&
      aws_vpc_security_group_ingress_rule.secretsmanager_endpoint_from_lambda[0].referenced_security_group_id == "sg-0000000000000a001" &&
      aws_vpc_security_group_ingress_rule.secretsmanager_endpoint_from_lambda[0].from_port == 443 &&
      aws_vpc_security_group_ingress_rule.secretsmanager_endpoint_from_lambda[0].to_port == 443 &&
      aws_vpc_security_group_ingress_rule.secretsmanager_endpoint_from_lambda[0].cidr_ipv4 == null
    )
    error_message = "The endpoint security group must admit HTTPS from the lambda security group only."
  }

  assert {
    condition = anytrue([
      for c in data.aws_iam_policy_document.secretsmanager_endpoint[0].statement[0].condition :
      c.variable == "aws:PrincipalAccount" && c.values == tolist(["123456789012"])
    ])
    error_message = "The endpoint policy must restrict use to principals of this account."
  }
}

run "flow_logs_on_by_default" {
  command = plan

  assert {
    condition     = aws_flow_log.this[0].traffic_type == "ALL" && aws_flow_log.this[0].log_destination_type == "cloud-watch-logs"
    error_message = "VPC flow logs must record all traffic to CloudWatch Logs by default."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs[0].retention_in_days == 365 && aws_cloudwatch_log_group.flow_logs[0].name == "/aws/vpc-flow-logs/fleet-test"
    error_message = "The flow log group must expire its events (365 days by default)."
  }

  assert {
    condition = anytrue([
      for c in data.aws_iam_policy_document.flow_logs_assume[0].statement[0].condition :
      c.variable == "aws:SourceAccount" && c.values == tolist(["123456789012"])
    ])
    error_message = "The flow log role's trust policy must pin aws:SourceAccount (confused-deputy protection)."
  }
}

run "endpoint_and_flow_logs_can_be_disabled" {
  command = plan

  variables {
    enable_secretsmanager_endpoint = false
    enable_flow_logs               = false
  }

  assert {
    condition     = length(aws_vpc_endpoint.secretsmanager) == 0 && length(aws_security_group.secretsmanager_endpoint) == 0
    error_message = "No endpoint resources may be planned when the endpoint is disabled."
  }

  assert {
    condition     = output.secretsmanager_endpoint_id == null
    error_message = "secretsmanager_endpoint_id must be null when the endpoint is disabled."
  }

  assert {
    condition     = length(aws_flow_log.this) == 0 && length(aws_iam_role.flow_logs) == 0 && output.flow_log_group_name == null
    error_message = "No flow log resources may be planned when flow logs are disabled."
  }
}

run "three_zones" {
  command = plan

  variables {
    availability_zones   = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    private_subnet_cidrs = ["10.20.0.0/20", "10.20.16.0/20", "10.20.32.0/20"]
  }

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_route_table_association.private) == 3
    error_message = "Three zones must give three private subnets, each associated with the private route table."
  }
}

run "rejects_subnet_count_mismatch" {
  command = plan

  variables {
    availability_zones   = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    private_subnet_cidrs = ["10.20.0.0/20", "10.20.16.0/20"]
  }

  expect_failures = [aws_vpc.this]
}

run "rejects_subnet_outside_vpc" {
  command = plan

  variables {
    private_subnet_cidrs = ["10.20.0.0/20", "10.99.16.0/20"]
  }

  expect_failures = [aws_vpc.this]
}

run "rejects_single_zone" {
  command = plan

  variables {
    availability_zones   = ["eu-west-1a"]
    private_subnet_cidrs = ["10.20.0.0/20"]
  }

  expect_failures = [var.availability_zones, var.private_subnet_cidrs]
}

run "rejects_invalid_cidr" {
  command = plan

  variables {
    cidr_block = "10.20.0.0/8"
  }

  expect_failures = [var.cidr_block]
}

run "rejects_never_expiring_flow_logs" {
  command = plan

  variables {
    flow_logs_retention_days = 0
  }

  expect_failures = [var.flow_logs_retention_days]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "Fleet_Dev"
  }

  expect_failures = [var.name]
}
