################################################################################
# Identity and engine
################################################################################

variable "identifier" {
  description = "RDS instance identifier (for example \"fleet-dev\"). Also the stem of the parameter group, the final snapshot, the log groups and the monitoring role."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.identifier)) && try(length(var.identifier) <= 63, false)
    error_message = "identifier must be 1-63 characters of lowercase letters, digits and single hyphens, start with a letter and not end with a hyphen."
  }
}

variable "engine_version" {
  description = "PostgreSQL engine version: a major version (\"16\", lets RDS pick and upgrade the minor version) or major.minor (\"16.8\"). The parameter group family (postgresNN) is derived from the major version. Must be 14 or later."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^\\d+(\\.\\d+)?$", var.engine_version)) && try(tonumber(split(".", var.engine_version)[0]) >= 14, false)
    error_message = "engine_version must look like \"16\" or \"16.8\" and its major version must be 14 or later."
  }
}

variable "allow_major_version_upgrade" {
  description = "Allow a change of engine_version to a new major version to be applied. Keep false except for the apply that performs a planned major upgrade."
  type        = bool
  default     = false

  validation {
    condition     = var.allow_major_version_upgrade != null
    error_message = "allow_major_version_upgrade must be true or false, not null."
  }
}

variable "instance_class" {
  description = "RDS instance class (for example db.t4g.micro for dev, db.m7g.large for prod)."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9-]+$", var.instance_class))
    error_message = "instance_class must be an RDS instance class such as db.t4g.micro (it starts with \"db.\")."
  }
}

variable "ca_cert_identifier" {
  description = "Certificate authority of the server certificate clients verify. rds-ca-rsa2048-g1 is valid until 2061 (the old rds-ca-2019 expired in 2024)."
  type        = string
  default     = "rds-ca-rsa2048-g1"

  validation {
    condition     = contains(["rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"], coalesce(var.ca_cert_identifier, "invalid"))
    error_message = "ca_cert_identifier must be one of rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1."
  }
}

################################################################################
# Storage
################################################################################

variable "allocated_storage" {
  description = "Initial storage in GiB (20 to 65536)."
  type        = number
  default     = 20

  validation {
    condition     = try(var.allocated_storage >= 20 && var.allocated_storage <= 65536 && floor(var.allocated_storage) == var.allocated_storage, false)
    error_message = "allocated_storage must be a whole number of GiB between 20 and 65536."
  }
}

variable "max_allocated_storage" {
  description = "Upper limit in GiB for storage autoscaling. 0 disables autoscaling; otherwise it must be greater than allocated_storage."
  type        = number
  default     = 100

  validation {
    condition     = try(var.max_allocated_storage >= 0 && var.max_allocated_storage <= 65536 && floor(var.max_allocated_storage) == var.max_allocated_storage, false)
    error_message = "max_allocated_storage must be 0 (no autoscaling) or a whole number of GiB up to 65536."
  }
}

variable "storage_type" {
  description = "Storage type: gp3 (default), gp2, io1 or io2."
  type        = string
  default     = "gp3"

  validation {
    condition     = contains(["gp2", "gp3", "io1", "io2"], coalesce(var.storage_type, "invalid"))
    error_message = "storage_type must be one of gp2, gp3, io1, io2."
  }
}

variable "kms_key_id" {
  description = "ARN of a customer managed KMS key for storage encryption (and Performance Insights when enabled). null uses the AWS managed aws/rds key; storage is encrypted either way. Changing it replaces the instance."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_id == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.kms_key_id))
    error_message = "kms_key_id must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

################################################################################
# Database and credentials
################################################################################

variable "db_name" {
  description = "Name of the database created with the instance (letters, digits, underscores; starts with a letter)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be 1-63 letters, digits or underscores and start with a letter."
  }

  validation {
    condition     = !contains(["postgres", "template0", "template1", "rdsadmin"], lower(coalesce(var.db_name, "postgres")))
    error_message = "db_name must not be postgres, template0, template1 or rdsadmin (reserved by PostgreSQL or RDS)."
  }
}

variable "master_username" {
  description = "Master user name. Its password is generated and rotated by RDS in Secrets Manager (manage_master_user_password), never passed to Terraform."
  type        = string
  default     = "fleet_admin"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.master_username))
    error_message = "master_username must be 1-63 letters, digits or underscores and start with a letter."
  }

  validation {
    condition = (
      !contains(["postgres", "admin", "root", "rdsadmin", "rdsrepladmin", "rds_superuser", "rds_replication", "rds_iam", "public", "user", "all"], lower(coalesce(var.master_username, "postgres"))) &&
      !startswith(lower(coalesce(var.master_username, "pg_")), "pg_") &&
      !startswith(lower(coalesce(var.master_username, "rds")), "rds")
    )
    error_message = "master_username must not be a well-known or reserved name (postgres, admin, root, public, user, all) nor start with pg_ or rds."
  }
}

variable "master_user_secret_kms_key_id" {
  description = "ARN of a customer managed KMS key for the RDS-managed master user secret and the role secrets (role_secrets). null uses the AWS managed aws/secretsmanager key."
  type        = string
  default     = null

  validation {
    condition     = var.master_user_secret_kms_key_id == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.master_user_secret_kms_key_id))
    error_message = "master_user_secret_kms_key_id must be null or a KMS key ARN."
  }
}

variable "role_secrets" {
  description = "Database roles (one per job, for example [\"fleet_reader\", \"fleet_writer\"]) that get a Secrets Manager secret each, named \"<identifier>/role/<role>\". The secrets are created empty: whoever creates the roles (the migrations function) generates each password and puts {\"username\", \"password\"} into the role's secret, so no password ever enters Terraform's plan or state. Each function is granted read access to its own role's secret only."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for r in var.role_secrets : can(regex("^[a-z][a-z0-9_]{0,62}$", r)) && !startswith(r, "pg_") && !startswith(r, "rds")])
    error_message = "role_secrets must be role names of 1-63 lower-case letters, digits or underscores, starting with a letter and not with pg_ or rds."
  }

  validation {
    condition     = length(distinct(var.role_secrets)) == length(var.role_secrets)
    error_message = "role_secrets must not name a role twice."
  }
}

variable "role_secret_recovery_window_in_days" {
  description = "Days a deleted role secret can be restored (7-30), or 0 to delete it at once (an environment that is destroyed and deployed again under the same identifier needs 0: a secret pending deletion blocks its name)."
  type        = number
  default     = 7

  validation {
    condition     = var.role_secret_recovery_window_in_days == 0 || (var.role_secret_recovery_window_in_days >= 7 && var.role_secret_recovery_window_in_days <= 30)
    error_message = "role_secret_recovery_window_in_days must be 0 or between 7 and 30."
  }
}

################################################################################
# Network
################################################################################

variable "db_subnet_group_name" {
  description = "Name of the DB subnet group (private subnets) to place the instance in, typically the network module's db_subnet_group_name output."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9 ._-]{1,255}$", var.db_subnet_group_name)) && lower(coalesce(var.db_subnet_group_name, "default")) != "default"
    error_message = "db_subnet_group_name must be the name of a DB subnet group (1-255 letters, digits, spaces, periods, underscores, hyphens) and not \"default\" (the default group uses the default VPC)."
  }
}

variable "vpc_security_group_ids" {
  description = "Security groups of the instance, typically [network.db_security_group_id]. The first one is exported as security_group_id."
  type        = list(string)

  validation {
    condition     = try(length(var.vpc_security_group_ids) >= 1, false)
    error_message = "vpc_security_group_ids must contain at least one security group id."
  }

  validation {
    condition     = var.vpc_security_group_ids == null ? false : alltrue([for id in var.vpc_security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "Each entry of vpc_security_group_ids must be a security group id (sg-...)."
  }
}

################################################################################
# Availability, backups, lifecycle
################################################################################

variable "multi_az" {
  description = "Run a synchronous standby in a second availability zone. Recommended for prod; off by default for cost."
  type        = bool
  default     = false

  validation {
    condition     = var.multi_az != null
    error_message = "multi_az must be true or false, not null."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (through Terraform or the console) until this is turned off."
  type        = bool
  default     = true

  validation {
    condition     = var.deletion_protection != null
    error_message = "deletion_protection must be true or false, not null."
  }
}

variable "skip_final_snapshot" {
  description = "Delete the instance without a final snapshot. When false the final snapshot is named \"<identifier>-final\"."
  type        = bool
  default     = false

  validation {
    condition     = var.skip_final_snapshot != null
    error_message = "skip_final_snapshot must be true or false, not null."
  }
}

variable "backup_retention_period" {
  description = "Days to keep automated backups (0 to 35; 0 disables automated backups and point-in-time recovery)."
  type        = number
  default     = 7

  validation {
    condition     = try(var.backup_retention_period >= 0 && var.backup_retention_period <= 35 && floor(var.backup_retention_period) == var.backup_retention_period, false)
    error_message = "backup_retention_period must be a whole number of days between 0 and 35."
  }
}

variable "backup_window" {
  description = "Daily UTC window for automated backups, \"hh24:mi-hh24:mi\" (at least 30 minutes, must not overlap maintenance_window). null lets RDS choose."
  type        = string
  default     = null

  validation {
    condition     = var.backup_window == null || can(regex("^([01]\\d|2[0-3]):[0-5]\\d-([01]\\d|2[0-3]):[0-5]\\d$", var.backup_window))
    error_message = "backup_window must be null or \"hh24:mi-hh24:mi\", for example \"02:00-02:30\"."
  }
}

variable "maintenance_window" {
  description = "Weekly UTC maintenance window, \"ddd:hh24:mi-ddd:hh24:mi\" (at least 30 minutes). null lets RDS choose."
  type        = string
  default     = null

  validation {
    condition     = var.maintenance_window == null || can(regex("^(mon|tue|wed|thu|fri|sat|sun):([01]\\d|2[0-3]):[0-5]\\d-(mon|tue|wed|thu|fri|sat|sun):([01]\\d|2[0-3]):[0-5]\\d$", lower(coalesce(var.maintenance_window, "x"))))
    error_message = "maintenance_window must be null or \"ddd:hh24:mi-ddd:hh24:mi\", for example \"sun:03:00-sun:04:00\"."
  }
}

variable "apply_immediately" {
  description = "Apply modifications immediately instead of in the next maintenance window (may cause a restart outside the window)."
  type        = bool
  default     = false

  validation {
    condition     = var.apply_immediately != null
    error_message = "apply_immediately must be true or false, not null."
  }
}

################################################################################
# Logging and monitoring
################################################################################

variable "enabled_cloudwatch_logs_exports" {
  description = "PostgreSQL log types exported to CloudWatch Logs: any of postgresql, upgrade, iam-db-auth-error."
  type        = list(string)
  default     = ["postgresql", "upgrade"]

  validation {
    condition     = var.enabled_cloudwatch_logs_exports == null ? false : alltrue([for t in var.enabled_cloudwatch_logs_exports : contains(["postgresql", "upgrade", "iam-db-auth-error"], t)])
    error_message = "enabled_cloudwatch_logs_exports may only contain postgresql, upgrade and iam-db-auth-error."
  }

  validation {
    condition     = var.enabled_cloudwatch_logs_exports == null ? false : length(distinct(var.enabled_cloudwatch_logs_exports)) == length(var.enabled_cloudwatch_logs_exports)
    error_message = "enabled_cloudwatch_logs_exports must not contain duplicates."
  }
}

variable "cloudwatch_log_group_retention_in_days" {
  description = "Retention in days of the CloudWatch log groups the exported PostgreSQL logs go to (created by this module so they expire and are deleted with the stack)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], coalesce(var.cloudwatch_log_group_retention_in_days, -1))
    error_message = "cloudwatch_log_group_retention_in_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "cloudwatch_log_group_kms_key_id" {
  description = "ARN of a customer managed KMS key for the PostgreSQL log groups. null uses CloudWatch Logs service encryption."
  type        = string
  default     = null

  validation {
    condition     = var.cloudwatch_log_group_kms_key_id == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.cloudwatch_log_group_kms_key_id))
    error_message = "cloudwatch_log_group_kms_key_id must be null or a KMS key ARN."
  }
}

variable "log_min_duration_statement_ms" {
  description = "Log every statement that runs at least this many milliseconds (PostgreSQL log_min_duration_statement). -1 disables slow-query logging."
  type        = number
  default     = 1000

  validation {
    condition     = try(var.log_min_duration_statement_ms >= -1 && floor(var.log_min_duration_statement_ms) == var.log_min_duration_statement_ms, false)
    error_message = "log_min_duration_statement_ms must be -1 or a whole number of milliseconds >= 0."
  }
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 disables it; 1, 5, 10, 15, 30 or 60). When > 0 the module creates the monitoring IAM role."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], coalesce(var.monitoring_interval, -1))
    error_message = "monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "performance_insights_enabled" {
  description = "Enable Performance Insights (7 days of retention are free; encrypted with kms_key_id when set). Off by default: see the README."
  type        = bool
  default     = false

  validation {
    condition     = var.performance_insights_enabled != null
    error_message = "performance_insights_enabled must be true or false, not null."
  }
}

variable "performance_insights_retention_period" {
  description = "Performance Insights retention in days when enabled: 7 (free tier), a multiple of 31 up to 713, or 731."
  type        = number
  default     = 7

  validation {
    condition     = try(var.performance_insights_retention_period == 7 || var.performance_insights_retention_period == 731 || (var.performance_insights_retention_period % 31 == 0 && var.performance_insights_retention_period >= 31 && var.performance_insights_retention_period <= 713), false)
    error_message = "performance_insights_retention_period must be 7, 731, or a multiple of 31 between 31 and 713."
  }
}

################################################################################
# Tags
################################################################################

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags). Copied to snapshots."
  type        = map(string)
  default     = {}

  validation {
    condition = var.tags == null ? false : alltrue([
      for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "tags keys must be 1-128 characters and not start with \"aws:\"; values at most 256 characters."
  }
}
