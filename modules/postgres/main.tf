data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  engine_major = split(".", var.engine_version)[0]
  family       = "postgres${local.engine_major}"

  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.identifier}-final"

  create_monitoring_role = var.monitoring_interval > 0
  # IAM role names are limited to 64 characters.
  monitoring_role_name = "${substr(var.identifier, 0, 48)}-rds-monitoring"

  # Parameters of the DB parameter group. rds.force_ssl refuses unencrypted
  # client connections (RDS PostgreSQL < 15 defaults it to 0); the log settings
  # give an audit trail of sessions and schema changes plus slow queries
  # without logging every statement (which would also log data).
  parameters = [
    { name = "rds.force_ssl", value = "1", apply_method = "pending-reboot" },
    { name = "log_connections", value = "1", apply_method = "immediate" },
    { name = "log_disconnections", value = "1", apply_method = "immediate" },
    { name = "log_statement", value = "ddl", apply_method = "immediate" },
    { name = "log_min_duration_statement", value = tostring(var.log_min_duration_statement_ms), apply_method = "immediate" },
  ]
}

################################################################################
# Parameter group
################################################################################

resource "aws_db_parameter_group" "this" {
  # name_prefix + create_before_destroy: a new family (major upgrade) creates
  # the new group before the instance switches to it and the old one is dropped.
  name_prefix = "${var.identifier}-${local.family}-"
  family      = local.family
  description = "PostgreSQL settings of ${var.identifier}: TLS required, connection/DDL/slow-query logging"

  dynamic "parameter" {
    for_each = local.parameters

    content {
      name         = parameter.value.name
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  tags = merge(var.tags, { Name = "${var.identifier}-${local.family}" })

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Log groups for the exported PostgreSQL logs
################################################################################

# RDS would create these itself on first export, with "never expire" retention
# and outside Terraform (they would outlive the stack). Creating them first
# gives them a retention and ties them to this stack.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158: a customer managed key is opt-in through cloudwatch_log_group_kms_key_id; without it CloudWatch Logs still encrypts at rest with service-owned keys, and a module-created CMK would cost per environment and need a key policy this module cannot know.
  for_each = toset(var.enabled_cloudwatch_logs_exports)

  name              = "/aws/rds/instance/${var.identifier}/${each.value}"
  retention_in_days = var.cloudwatch_log_group_retention_in_days
  kms_key_id        = var.cloudwatch_log_group_kms_key_id

  tags = merge(var.tags, { Name = "/aws/rds/instance/${var.identifier}/${each.value}" })
}

################################################################################
# Enhanced Monitoring role
################################################################################

data "aws_iam_policy_document" "monitoring_assume" {
  count = local.create_monitoring_role ? 1 : 0

  statement {
    sid     = "RdsEnhancedMonitoring"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    # Confused-deputy protection: only on behalf of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count = local.create_monitoring_role ? 1 : 0

  name               = local.monitoring_role_name
  description        = "Lets RDS Enhanced Monitoring of ${var.identifier} publish OS metrics to CloudWatch Logs"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume[0].json

  tags = merge(var.tags, { Name = local.monitoring_role_name })
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count = local.create_monitoring_role ? 1 : 0

  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

################################################################################
# DB instance
################################################################################

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157: Multi-AZ is the multi_az variable: on in prod, off by default because a standby doubles the cost of short-lived dev/stage databases that can be restored from backups.
  #checkov:skip=CKV_AWS_353: Performance Insights is the performance_insights_enabled variable, off by default: not needed for a db.t4g.micro dev database, and AWS is retiring it in favour of CloudWatch Database Insights; Enhanced Monitoring and slow-query logs are on.
  #checkov:skip=CKV_AWS_354: Performance Insights is off by default; when enabled it uses kms_key_id (or the AWS managed key when kms_key_id is null, as for storage).
  identifier = var.identifier

  engine                      = "postgres"
  engine_version              = var.engine_version
  allow_major_version_upgrade = var.allow_major_version_upgrade
  auto_minor_version_upgrade  = true
  instance_class              = var.instance_class
  ca_cert_identifier          = var.ca_cert_identifier

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = var.storage_type
  storage_encrypted     = true
  kms_key_id            = var.kms_key_id

  db_name  = var.db_name
  username = var.master_username
  # RDS generates the password and keeps it (and its rotation) in Secrets
  # Manager: it never appears in Terraform variables, plans or state.
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = var.master_user_secret_kms_key_id
  iam_database_authentication_enabled = true

  db_subnet_group_name   = var.db_subnet_group_name
  vpc_security_group_ids = var.vpc_security_group_ids
  publicly_accessible    = false
  port                   = 5432
  parameter_group_name   = aws_db_parameter_group.this.name

  multi_az                  = var.multi_az
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = local.final_snapshot_identifier
  backup_retention_period   = var.backup_retention_period
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot     = true
  apply_immediately         = var.apply_immediately

  enabled_cloudwatch_logs_exports       = var.enabled_cloudwatch_logs_exports
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = local.create_monitoring_role ? aws_iam_role.monitoring[0].arn : null
  performance_insights_enabled          = var.performance_insights_enabled
  performance_insights_retention_period = var.performance_insights_enabled ? var.performance_insights_retention_period : null
  performance_insights_kms_key_id       = var.performance_insights_enabled ? var.kms_key_id : null

  tags = merge(var.tags, { Name = var.identifier })

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy_attachment.monitoring,
  ]

  lifecycle {
    precondition {
      condition     = var.max_allocated_storage == 0 || var.max_allocated_storage > var.allocated_storage
      error_message = "max_allocated_storage must be 0 (autoscaling off) or greater than allocated_storage (${var.allocated_storage} GiB); got ${var.max_allocated_storage}."
    }
  }
}

################################################################################
# One secret per database role, created empty (the migrations function sets
# the value: no password in Terraform's plan or state)
################################################################################

resource "aws_secretsmanager_secret" "role" {
  #checkov:skip=CKV2_AWS_57: no rotation Lambda: the migrations function generates the role's password, puts it here and sets it on the role; a new password is rotated in by putting a value without the role's credentials, such as {} (see docs/runbook.md), and the functions fetch it again when the old one is refused.
  #checkov:skip=CKV_AWS_149: a customer managed key is opt-in through master_user_secret_kms_key_id, as for the master secret; without it the AWS managed aws/secretsmanager key encrypts the secret.
  for_each = toset(var.role_secrets)

  name                    = "${var.identifier}/role/${each.key}"
  description             = "Credentials of the database role ${each.key} of ${var.identifier}, set by the migrations function"
  kms_key_id              = var.master_user_secret_kms_key_id
  recovery_window_in_days = var.role_secret_recovery_window_in_days

  tags = merge(var.tags, { Name = "${var.identifier}/role/${each.key}" })
}
