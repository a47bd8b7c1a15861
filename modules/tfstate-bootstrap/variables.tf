variable "bucket_name" {
  description = "Name of the S3 bucket that stores Terraform state. Must be a legal, globally unique S3 bucket name (general purpose bucket rules)."
  type        = string
  nullable    = false

  validation {
    condition     = length(var.bucket_name) >= 3 && length(var.bucket_name) <= 63
    error_message = "bucket_name must be between 3 and 63 characters long."
  }

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]*[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name may contain only lowercase letters, digits, dots and hyphens, and must begin and end with a letter or digit."
  }

  validation {
    condition     = !strcontains(var.bucket_name, "..") && !strcontains(var.bucket_name, ".-") && !strcontains(var.bucket_name, "-.")
    error_message = "bucket_name must not contain two adjacent dots, nor a dot next to a hyphen."
  }

  validation {
    condition     = !can(regex("^[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$", var.bucket_name))
    error_message = "bucket_name must not be formatted as an IP address."
  }

  validation {
    condition = alltrue([
      for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] : !startswith(var.bucket_name, prefix)
    ])
    error_message = "bucket_name must not start with a reserved prefix (xn--, sthree-, amzn-s3-demo-)."
  }

  validation {
    condition = alltrue([
      for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] : !endswith(var.bucket_name, suffix)
    ])
    error_message = "bucket_name must not end with a reserved suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)."
  }
}

variable "lock_table_name" {
  description = "Name of the DynamoDB table used for Terraform state locking (hash key LockID)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.lock_table_name))
    error_message = "lock_table_name must be 3-255 characters of letters, digits, underscore, hyphen or dot."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key used to encrypt the state bucket and the lock table. null (default) uses the AWS managed keys (aws/s3 for the bucket, aws/dynamodb for the table)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key-id>); aliases are not accepted."
  }
}

variable "force_destroy" {
  description = "Allow Terraform to delete the state bucket even if it still holds objects (all state versions are lost). Keep false outside throw-away test environments."
  type        = bool
  default     = false
  nullable    = false

  validation {
    condition     = contains([true, false], var.force_destroy)
    error_message = "force_destroy must be true or false."
  }
}

variable "deletion_protection" {
  description = "Enable DynamoDB deletion protection on the lock table. Set false only where the table must be destroyed (tests, teardown of an environment)."
  type        = bool
  default     = true
  nullable    = false

  validation {
    condition     = contains([true, false], var.deletion_protection)
    error_message = "deletion_protection must be true or false."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Number of days after which noncurrent (superseded) versions of state objects are permanently deleted."
  type        = number
  default     = 90
  nullable    = false

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number >= 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Number of days after which incomplete multipart uploads are aborted and their parts deleted."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number >= 1."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource of this module (the bucket and the lock table)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "tags keys must be 1-128 characters and not start with \"aws:\"; values must be at most 256 characters."
  }
}
