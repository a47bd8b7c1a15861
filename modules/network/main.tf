data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # PostgreSQL port: the only port the database security group opens.
  db_port = 5432

  # One private subnet per availability zone, keyed by zone so that adding a
  # zone at the end never renumbers (and replaces) the existing subnets.
  # try() keeps the plan alive long enough for the precondition on aws_vpc.this
  # to report a length mismatch with a readable message.
  private_subnets = {
    for i, az in var.availability_zones : az => try(var.private_subnet_cidrs[i], null)
  }

  # cidrsubnet(x, 0, 0) normalises "a.b.c.d/n" to the network address of /n,
  # so a subnet lies inside the VPC when its first address, widened to the VPC
  # prefix, is the VPC network itself.
  vpc_prefix_length = tonumber(split("/", var.cidr_block)[1])
  subnets_inside_vpc = alltrue([
    for c in var.private_subnet_cidrs : try(
      tonumber(split("/", c)[1]) >= local.vpc_prefix_length &&
      cidrsubnet("${cidrhost(c, 0)}/${local.vpc_prefix_length}", 0, 0) == var.cidr_block,
      false
    )
  ])

  flow_log_group_name = "/aws/vpc-flow-logs/${var.name}"
}

################################################################################
# VPC
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  instance_tenancy     = "default"

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    precondition {
      condition     = length(var.private_subnet_cidrs) == length(var.availability_zones)
      error_message = "private_subnet_cidrs must have exactly one CIDR block per availability zone: got ${length(var.private_subnet_cidrs)} CIDR block(s) for ${length(var.availability_zones)} availability zone(s)."
    }

    precondition {
      condition     = local.subnets_inside_vpc
      error_message = "Every entry of private_subnet_cidrs must lie inside cidr_block (${var.cidr_block})."
    }
  }
}

# Take over the VPC's default security group and strip every rule from it:
# anything that is launched without an explicit security group gets no network
# access at all instead of the AWS default "allow all from the same group".
# The empty lists are explicit so that a rule added by hand shows up as drift
# and is removed on the next apply (unset, the attributes are only computed).
resource "aws_default_security_group" "this" {
  vpc_id  = aws_vpc.this.id
  ingress = []
  egress  = []

  tags = merge(var.tags, { Name = "${var.name}-default-do-not-use" })
}

################################################################################
# Private subnets (no internet gateway, no NAT, no public IPs)
################################################################################

resource "aws_subnet" "private" {
  for_each = local.private_subnets

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = false

  tags = merge(var.tags, {
    Name = "${var.name}-private-${each.key}"
    Tier = "private"
  })
}

# An explicit route table with only the implicit local route, so the subnets do
# not silently follow whatever someone later adds to the VPC's main route table.
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private.id
}

resource "aws_db_subnet_group" "this" {
  name        = "${var.name}-db"
  description = "Private subnets of ${var.name} for RDS"
  subnet_ids  = [for az in var.availability_zones : aws_subnet.private[az].id]

  tags = merge(var.tags, { Name = "${var.name}-db" })
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5: attached outside this module: the Lambda functions of the lambda-api stack take its id from the lambda_security_group_id output.
  name        = "${var.name}-lambda"
  description = "Lambda functions of ${var.name}: egress to the database and to VPC endpoints only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-lambda" })
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_db" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "PostgreSQL to the database security group"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.db.id

  tags = merge(var.tags, { Name = "${var.name}-lambda-to-db" })
}

resource "aws_vpc_security_group_egress_rule" "lambda_https_in_vpc" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to interface VPC endpoints inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = aws_vpc.this.cidr_block

  tags = merge(var.tags, { Name = "${var.name}-lambda-https-in-vpc" })
}

resource "aws_security_group" "db" {
  #checkov:skip=CKV2_AWS_5: attached outside this module: the postgres module puts its id on the RDS instance (db_security_group_id output).
  name        = "${var.name}-db"
  description = "PostgreSQL of ${var.name}: ingress 5432 from the lambda security group only, no egress"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-db" })
}

resource "aws_vpc_security_group_ingress_rule" "db_from_lambda" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the lambda security group"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.lambda.id

  tags = merge(var.tags, { Name = "${var.name}-db-from-lambda" })
}

################################################################################
# Secrets Manager interface endpoint
################################################################################

resource "aws_security_group" "secretsmanager_endpoint" {
  count = var.enable_secretsmanager_endpoint ? 1 : 0

  name        = "${var.name}-secretsmanager-endpoint"
  description = "Secrets Manager interface endpoint of ${var.name}: ingress 443 from the lambda security group only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-secretsmanager-endpoint" })
}

resource "aws_vpc_security_group_ingress_rule" "secretsmanager_endpoint_from_lambda" {
  count = var.enable_secretsmanager_endpoint ? 1 : 0

  security_group_id            = aws_security_group.secretsmanager_endpoint[0].id
  description                  = "HTTPS from the lambda security group"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id

  tags = merge(var.tags, { Name = "${var.name}-secretsmanager-from-lambda" })
}

data "aws_iam_policy_document" "secretsmanager_endpoint" {
  count = var.enable_secretsmanager_endpoint ? 1 : 0

  # Data perimeter: only principals of this account may use the endpoint, and
  # only to read secrets (what the functions do), so a compromised function can
  # neither reach secrets of another account nor change any through it.
  statement {
    sid       = "OnlyThisAccountsPrincipalsReading"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = ["*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "secretsmanager" {
  count = var.enable_secretsmanager_endpoint ? 1 : 0

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${data.aws_region.current.name}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for az in var.availability_zones : aws_subnet.private[az].id]
  security_group_ids  = [aws_security_group.secretsmanager_endpoint[0].id]
  policy              = data.aws_iam_policy_document.secretsmanager_endpoint[0].json

  tags = merge(var.tags, { Name = "${var.name}-secretsmanager" })
}

################################################################################
# VPC flow logs
################################################################################

resource "aws_cloudwatch_log_group" "flow_logs" {
  #checkov:skip=CKV_AWS_158: a customer managed key is opt-in through flow_logs_kms_key_id; without it CloudWatch Logs still encrypts the group at rest with service-owned keys, and a module-created CMK would cost per environment and need a key policy this module cannot know.
  count = var.enable_flow_logs ? 1 : 0

  name              = local.flow_log_group_name
  retention_in_days = var.flow_logs_retention_days
  kms_key_id        = var.flow_logs_kms_key_id

  tags = merge(var.tags, { Name = local.flow_log_group_name })
}

data "aws_iam_policy_document" "flow_logs_assume" {
  count = var.enable_flow_logs ? 1 : 0

  statement {
    sid     = "VpcFlowLogsService"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Confused-deputy protection: the service may assume this role only on
    # behalf of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  count = var.enable_flow_logs ? 1 : 0

  statement {
    sid    = "WriteThisVpcsFlowLogGroupOnly"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [
      aws_cloudwatch_log_group.flow_logs[0].arn,
      "${aws_cloudwatch_log_group.flow_logs[0].arn}:log-stream:*",
    ]
  }

  # The delivery service looks its group up before writing; DescribeLogGroups
  # only supports a log-group:* resource, and it reveals names, not contents.
  statement {
    sid       = "FindTheLogGroup"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  count = var.enable_flow_logs ? 1 : 0

  name               = "${var.name}-vpc-flow-logs"
  description        = "Lets VPC Flow Logs write to ${local.flow_log_group_name}"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume[0].json

  tags = merge(var.tags, { Name = "${var.name}-vpc-flow-logs" })
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.enable_flow_logs ? 1 : 0

  name   = "write-flow-log-group"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count = var.enable_flow_logs ? 1 : 0

  vpc_id                   = aws_vpc.this.id
  traffic_type             = var.flow_logs_traffic_type
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn             = aws_iam_role.flow_logs[0].arn
  max_aggregation_interval = 600

  tags = merge(var.tags, { Name = "${var.name}-flow-logs" })
}
