variable "name" {
  description = "Name prefix for every resource of this module (for example \"fleet-dev\"). Lowercase letters, digits and hyphens; it ends up in security group, subnet group, log group and IAM role names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 characters of lowercase letters, digits and hyphens, start with a letter and not end with a hyphen."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC. AWS accepts prefix lengths /16 to /28."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.cidr_block, 0)) &&
      can(regex("^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$", var.cidr_block)) &&
      try(tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 28, false)
    )
    error_message = "cidr_block must be an IPv4 CIDR block (a.b.c.d/n) with a prefix length between /16 and /28."
  }

  validation {
    condition     = try(cidrsubnet(var.cidr_block, 0, 0) == var.cidr_block, false)
    error_message = "cidr_block must be the network address of the block (for example 10.20.0.0/16, not 10.20.1.0/16)."
  }
}

variable "availability_zones" {
  description = "Availability zones to spread the private subnets over, one subnet per zone (for example [\"eu-west-1a\", \"eu-west-1b\"]). RDS subnet groups need at least two."
  type        = list(string)

  validation {
    condition     = try(length(var.availability_zones) >= 2, false)
    error_message = "availability_zones must list at least 2 availability zones (an RDS DB subnet group needs subnets in two zones)."
  }

  validation {
    condition     = var.availability_zones == null ? false : length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must not contain duplicates."
  }

  validation {
    condition     = var.availability_zones == null ? false : alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-\\d+[a-z]$", az))])
    error_message = "Each availability zone must be a zone name such as eu-west-1a (not a zone id such as euw1-az1)."
  }
}

variable "private_subnet_cidrs" {
  description = "IPv4 CIDR blocks of the private subnets, one per entry of availability_zones and in the same order. Each must lie inside cidr_block and be /16 to /28."
  type        = list(string)

  validation {
    condition     = try(length(var.private_subnet_cidrs) >= 2, false)
    error_message = "private_subnet_cidrs must list at least 2 CIDR blocks (one per availability zone)."
  }

  validation {
    condition = var.private_subnet_cidrs == null ? false : alltrue([
      for c in var.private_subnet_cidrs : (
        can(regex("^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$", c)) &&
        try(cidrsubnet(c, 0, 0) == c, false) &&
        try(tonumber(split("/", c)[1]) >= 16 && tonumber(split("/", c)[1]) <= 28, false)
      )
    ])
    error_message = "Each private subnet CIDR must be an IPv4 network address with a prefix length between /16 and /28 (for example 10.20.0.0/20)."
  }

  validation {
    condition     = var.private_subnet_cidrs == null ? false : length(distinct(var.private_subnet_cidrs)) == length(var.private_subnet_cidrs)
    error_message = "private_subnet_cidrs must not contain duplicates."
  }
}

variable "enable_secretsmanager_endpoint" {
  description = "Create an interface VPC endpoint for Secrets Manager (private DNS on) so functions in the private subnets can read the database secret without a NAT gateway or internet access."
  type        = bool
  default     = true

  validation {
    condition     = var.enable_secretsmanager_endpoint != null
    error_message = "enable_secretsmanager_endpoint must be true or false, not null."
  }
}

variable "enable_flow_logs" {
  description = "Record VPC flow logs to a CloudWatch log group owned by this module (audit trail of accepted and rejected connections)."
  type        = bool
  default     = true

  validation {
    condition     = var.enable_flow_logs != null
    error_message = "enable_flow_logs must be true or false, not null."
  }
}

variable "flow_logs_traffic_type" {
  description = "Which traffic the VPC flow logs record: ALL, ACCEPT or REJECT."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], coalesce(var.flow_logs_traffic_type, "invalid"))
    error_message = "flow_logs_traffic_type must be one of ALL, ACCEPT, REJECT."
  }
}

variable "flow_logs_retention_days" {
  description = "Retention in days of the VPC flow log group. One of the values CloudWatch Logs accepts; 0 (never expire) is refused so logs cannot pile up unbounded. Lower it in short-lived environments to save cost."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], coalesce(var.flow_logs_retention_days, -1))
    error_message = "flow_logs_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "flow_logs_kms_key_id" {
  description = "ARN of a customer managed KMS key to encrypt the flow log group with. null uses the CloudWatch Logs service encryption. The key policy must allow the logs.<region>.amazonaws.com principal."
  type        = string
  default     = null

  validation {
    condition     = var.flow_logs_kms_key_id == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\\d{12}:key/.+$", var.flow_logs_kms_key_id))
    error_message = "flow_logs_kms_key_id must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}

  validation {
    condition = var.tags == null ? false : alltrue([
      for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "tags keys must be 1-128 characters and not start with \"aws:\"; values at most 256 characters."
  }
}
