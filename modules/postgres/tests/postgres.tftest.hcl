# Offline plan-time tests: the mock provider needs only the provider schema
# (from the filesystem mirror). override_during = plan needs Terraform >= 1.11.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
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

  override_resource {
    target          = aws_db_parameter_group.this
    override_during = plan
    values = {
      name = "fleet-test-postgres16-20250101000000000000000001"
    }
  }

  override_resource {
    target          = aws_iam_role.monitoring
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:role/fleet-test-rds-monitoring"
    }
  }
}

variables {
  identifier             = "fleet-test"
  db_name                = "fleet"
  db_subnet_group_name   = "fleet-test-db"
  vpc_security_group_ids = ["sg-0000000000000db01"]
}

run "secure_defaults" {
  command = plan

  assert {
    condition     = aws_db_instance.this.engine == "postgres" && aws_db_instance.this.engine_version == "16"
    error_message = "The engine must be PostgreSQL 16 by default."
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted == true
    error_message = "Storage must always be encrypted."
  }

  assert {
    condition     = aws_db_instance.this.publicly_accessible == false
    error_message = "The instance must never be publicly accessible."
  }

  assert {
    condition     = aws_db_instance.this.manage_master_user_password == true && aws_db_instance.this.password == null && aws_db_instance.this.password_wo == null
    error_message = "The master password must be managed by RDS in Secrets Manager, never passed through Terraform."
  }

  assert {
    condition     = aws_db_instance.this.iam_database_authentication_enabled == true
    error_message = "IAM database authentication must be enabled."
  }

  assert {
    condition     = aws_db_instance.this.deletion_protection == true && aws_db_instance.this.skip_final_snapshot == false
    error_message = "Deletion protection and a final snapshot must be on by default."
  }

  assert {
    condition     = aws_db_instance.this.final_snapshot_identifier == "fleet-test-final"
    error_message = "The final snapshot identifier must be derived from the identifier."
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period == 7 && aws_db_instance.this.copy_tags_to_snapshot == true
    error_message = "Backups must be kept 7 days by default and snapshots must carry the tags."
  }

  assert {
    condition     = aws_db_instance.this.auto_minor_version_upgrade == true && aws_db_instance.this.allow_major_version_upgrade == false
    error_message = "Minor upgrades must be automatic, major upgrades opt-in."
  }

  assert {
    condition     = aws_db_instance.this.vpc_security_group_ids == toset(["sg-0000000000000db01"]) && aws_db_instance.this.db_subnet_group_name == "fleet-test-db"
    error_message = "The instance must use the given security groups and subnet group."
  }

  assert {
    condition     = aws_db_instance.this.enabled_cloudwatch_logs_exports == toset(["postgresql", "upgrade"])
    error_message = "postgresql and upgrade logs must be exported by default."
  }

  assert {
    condition     = aws_db_instance.this.ca_cert_identifier == "rds-ca-rsa2048-g1"
    error_message = "The instance must use a current CA."
  }

  assert {
    condition     = aws_db_instance.this.instance_class == "db.t4g.micro" && aws_db_instance.this.multi_az == false
    error_message = "Default sizing must be a single-AZ db.t4g.micro."
  }

  assert {
    condition     = aws_db_instance.this.allocated_storage == 20 && aws_db_instance.this.max_allocated_storage == 100 && aws_db_instance.this.storage_type == "gp3"
    error_message = "Default storage must be 20 GiB gp3 autoscaling up to 100 GiB."
  }

  assert {
    condition     = aws_db_instance.this.parameter_group_name == "fleet-test-postgres16-20250101000000000000000001"
    error_message = "The instance must use the module's parameter group."
  }

  assert {
    condition     = aws_db_instance.this.apply_immediately == false
    error_message = "Changes must wait for the maintenance window by default."
  }
}

run "parameter_group_forces_tls_and_logs" {
  command = plan

  assert {
    condition     = aws_db_parameter_group.this.family == "postgres16"
    error_message = "The parameter group family must follow the engine major version."
  }

  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "rds.force_ssl must be 1 (TLS required for every client connection)."
  }

  assert {
    condition = alltrue([
      for n in ["log_connections", "log_disconnections"] :
      anytrue([for p in aws_db_parameter_group.this.parameter : p.name == n && p.value == "1"])
    ])
    error_message = "Connections and disconnections must be logged."
  }

  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "log_statement" && p.value == "ddl"])
    error_message = "Schema changes (DDL) must be logged, and only those (not data)."
  }

  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "log_min_duration_statement" && p.value == "1000"])
    error_message = "Slow statements (>= 1 s) must be logged by default."
  }
}

run "log_groups_expire" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_log_group.this) == 2
    error_message = "One log group per exported log type must be created."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this["postgresql"].name == "/aws/rds/instance/fleet-test/postgresql" && aws_cloudwatch_log_group.this["postgresql"].retention_in_days == 365
    error_message = "Log groups must use the RDS naming and expire after 365 days by default."
  }
}

run "enhanced_monitoring_on_by_default" {
  command = plan

  assert {
    condition     = aws_db_instance.this.monitoring_interval == 60 && aws_db_instance.this.monitoring_role_arn == "arn:aws:iam::123456789012:role/fleet-test-rds-monitoring"
    error_message = "Enhanced Monitoring must report every 60 s using the module's role."
  }

  assert {
    condition     = aws_iam_role_policy_attachment.monitoring[0].policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    error_message = "The monitoring role must only carry the AWS managed Enhanced Monitoring policy."
  }

  assert {
    condition = anytrue([
      for c in data.aws_iam_policy_document.monitoring_assume[0].statement[0].condition :
      c.variable == "aws:SourceAccount" && c.values == tolist(["123456789012"])
    ])
    error_message = "The monitoring role's trust policy must pin aws:SourceAccount (confused-deputy protection)."
  }

  assert {
    condition     = aws_db_instance.this.performance_insights_enabled == false
    error_message = "Performance Insights must be off by default."
  }
}

run "monitoring_can_be_turned_off" {
  command = plan

  variables {
    monitoring_interval = 0
  }

  assert {
    condition     = length(aws_iam_role.monitoring) == 0 && aws_db_instance.this.monitoring_interval == 0 && output.monitoring_role_arn == null
    error_message = "No monitoring role may be created when Enhanced Monitoring is off."
  }
}

run "disposable_environment" {
  command = plan

  variables {
    deletion_protection = false
    skip_final_snapshot = true
  }

  assert {
    condition     = aws_db_instance.this.final_snapshot_identifier == null && aws_db_instance.this.deletion_protection == false
    error_message = "Without a final snapshot no snapshot identifier may be set."
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted && !aws_db_instance.this.publicly_accessible && aws_db_instance.this.manage_master_user_password
    error_message = "Relaxing the lifecycle settings must not relax encryption, exposure or password handling."
  }
}

run "family_follows_major_version" {
  command = plan

  variables {
    engine_version = "17.2"
  }

  assert {
    condition     = aws_db_parameter_group.this.family == "postgres17" && startswith(aws_db_parameter_group.this.name_prefix, "fleet-test-postgres17-")
    error_message = "engine_version 17.2 must use the postgres17 family."
  }
}

run "performance_insights_uses_the_storage_key" {
  command = plan

  variables {
    performance_insights_enabled = true
    kms_key_id                   = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition = (
      aws_db_instance.this.performance_insights_enabled &&
      aws_db_instance.this.performance_insights_retention_period == 7 &&
      aws_db_instance.this.performance_insights_kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555" &&
      aws_db_instance.this.kms_key_id == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    )
    error_message = "Performance Insights must keep 7 days and be encrypted with the storage key."
  }
}

run "outputs_first_security_group" {
  command = plan

  variables {
    vpc_security_group_ids = ["sg-0000000000000db01", "sg-0000000000000db02"]
  }

  assert {
    condition     = output.security_group_id == "sg-0000000000000db01" && length(output.security_group_ids) == 2
    error_message = "security_group_id must be the first of vpc_security_group_ids."
  }
}

run "rejects_max_storage_below_allocated" {
  command = plan

  variables {
    allocated_storage     = 50
    max_allocated_storage = 40
  }

  expect_failures = [aws_db_instance.this]
}

run "rejects_old_engine" {
  command = plan

  variables {
    engine_version = "13.7"
  }

  expect_failures = [var.engine_version]
}

run "rejects_postgres_master_user" {
  command = plan

  variables {
    master_username = "postgres"
  }

  expect_failures = [var.master_username]
}

run "rejects_bad_instance_class" {
  command = plan

  variables {
    instance_class = "t4g.micro"
  }

  expect_failures = [var.instance_class]
}

run "rejects_too_small_storage" {
  command = plan

  variables {
    allocated_storage = 10
  }

  expect_failures = [var.allocated_storage]
}

run "rejects_long_backup_retention" {
  command = plan

  variables {
    backup_retention_period = 36
  }

  expect_failures = [var.backup_retention_period]
}

run "rejects_no_security_group" {
  command = plan

  variables {
    vpc_security_group_ids = []
  }

  expect_failures = [var.vpc_security_group_ids]
}

run "rejects_unknown_log_export" {
  command = plan

  variables {
    enabled_cloudwatch_logs_exports = ["postgresql", "audit"]
  }

  expect_failures = [var.enabled_cloudwatch_logs_exports]
}

run "rejects_reserved_db_name" {
  command = plan

  variables {
    db_name = "template1"
  }

  expect_failures = [var.db_name]
}

run "role_secrets_are_created_empty" {
  command = plan

  variables {
    role_secrets = ["fleet_reader", "fleet_writer"]
  }

  assert {
    condition = (
      length(aws_secretsmanager_secret.role) == 2 &&
      aws_secretsmanager_secret.role["fleet_reader"].name == "${var.identifier}/role/fleet_reader" &&
      aws_secretsmanager_secret.role["fleet_writer"].recovery_window_in_days == 7
    )
    error_message = "Each role gets one secret named <identifier>/role/<role>, kept 7 days after deletion by default."
  }
}

run "rejects_a_reserved_role_name" {
  command = plan

  variables {
    role_secrets = ["pg_monitor"]
  }

  expect_failures = [var.role_secrets]
}
