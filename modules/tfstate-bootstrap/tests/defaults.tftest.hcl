# Offline test of the module's secure defaults: the mock provider supplies
# the schema only, so nothing is created and no credentials are needed.

mock_provider "aws" {}

variables {
  bucket_name     = "example-tfstate-123456789012-eu-west-1"
  lock_table_name = "example-tfstate-lock"
}

run "secure_defaults" {
  command = plan

  # S3 bucket
  assert {
    condition     = aws_s3_bucket.this.bucket == var.bucket_name
    error_message = "Bucket must be named after var.bucket_name."
  }

  assert {
    condition     = aws_s3_bucket.this.force_destroy == false
    error_message = "force_destroy must default to false."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "Bucket versioning must be Enabled."
  }

  assert {
    condition = alltrue([
      for r in aws_s3_bucket_server_side_encryption_configuration.this.rule :
      r.apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" && r.bucket_key_enabled == true
    ]) && length(aws_s3_bucket_server_side_encryption_configuration.this.rule) == 1
    error_message = "Default encryption must be SSE-KMS with an S3 Bucket Key."
  }

  assert {
    condition = alltrue([
      for r in aws_s3_bucket_server_side_encryption_configuration.this.rule :
      r.apply_server_side_encryption_by_default[0].kms_master_key_id == null
    ])
    error_message = "Without kms_key_arn the AWS managed key (no explicit key id) must be used."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this.block_public_acls &&
      aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls &&
      aws_s3_bucket_public_access_block.this.restrict_public_buckets
    )
    error_message = "All four public access block flags must be true."
  }

  assert {
    condition     = aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "Object ownership must be BucketOwnerEnforced (ACLs disabled)."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.tls_only.statement :
      s.effect == "Deny" &&
      contains(s.actions, "s3:*") &&
      anytrue([for p in s.principals : p.type == "*" && contains(p.identifiers, "*")]) &&
      anytrue([
        for c in s.condition :
        c.test == "Bool" && c.variable == "aws:SecureTransport" && contains(c.values, "false")
      ])
    ])
    error_message = "Bucket policy must deny s3:* to every principal when aws:SecureTransport is false."
  }

  assert {
    condition = anytrue([
      for r in aws_s3_bucket_lifecycle_configuration.this.rule :
      r.status == "Enabled" &&
      r.noncurrent_version_expiration[0].noncurrent_days == 90 &&
      r.abort_incomplete_multipart_upload[0].days_after_initiation == 7
    ])
    error_message = "Lifecycle must expire noncurrent versions after 90 days and abort incomplete uploads after 7."
  }

  # DynamoDB lock table
  assert {
    condition     = aws_dynamodb_table.lock.name == var.lock_table_name
    error_message = "Lock table must be named after var.lock_table_name."
  }

  assert {
    condition     = aws_dynamodb_table.lock.hash_key == "LockID"
    error_message = "Lock table hash key must be LockID."
  }

  assert {
    condition = anytrue([
      for a in aws_dynamodb_table.lock.attribute : a.name == "LockID" && a.type == "S"
    ])
    error_message = "LockID must be declared as a string (S) attribute."
  }

  assert {
    condition     = aws_dynamodb_table.lock.billing_mode == "PAY_PER_REQUEST"
    error_message = "Lock table must use PAY_PER_REQUEST billing."
  }

  assert {
    condition     = aws_dynamodb_table.lock.point_in_time_recovery[0].enabled == true
    error_message = "Lock table must have point-in-time recovery enabled."
  }

  assert {
    condition     = aws_dynamodb_table.lock.server_side_encryption[0].enabled == true
    error_message = "Lock table must have server-side encryption enabled."
  }

  assert {
    condition     = aws_dynamodb_table.lock.deletion_protection_enabled == true
    error_message = "Lock table deletion protection must default to on."
  }
}

run "customer_managed_key_and_overrides" {
  command = plan

  variables {
    kms_key_arn                        = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    deletion_protection                = false
    force_destroy                      = true
    noncurrent_version_expiration_days = 30
    tags                               = { Environment = "test" }
  }

  assert {
    condition = alltrue([
      for r in aws_s3_bucket_server_side_encryption_configuration.this.rule :
      r.apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" &&
      r.apply_server_side_encryption_by_default[0].kms_master_key_id == var.kms_key_arn
    ])
    error_message = "With kms_key_arn the bucket must use SSE-KMS with that key."
  }

  assert {
    condition     = aws_dynamodb_table.lock.server_side_encryption[0].kms_key_arn == var.kms_key_arn
    error_message = "With kms_key_arn the lock table must use that key."
  }

  assert {
    condition     = aws_dynamodb_table.lock.deletion_protection_enabled == false && aws_s3_bucket.this.force_destroy == true
    error_message = "deletion_protection and force_destroy must follow their variables."
  }

  assert {
    condition = anytrue([
      for r in aws_s3_bucket_lifecycle_configuration.this.rule : r.noncurrent_version_expiration[0].noncurrent_days == 30
    ])
    error_message = "noncurrent_version_expiration_days must drive the lifecycle rule."
  }

  assert {
    condition     = aws_s3_bucket.this.tags["Environment"] == "test" && aws_dynamodb_table.lock.tags["Environment"] == "test"
    error_message = "tags must be applied to the bucket and the lock table."
  }
}

run "rejects_illegal_bucket_name" {
  command = plan

  variables {
    bucket_name = "Bad_Bucket..Name"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_ip_formatted_bucket_name" {
  command = plan

  variables {
    bucket_name = "192.168.1.1"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_non_key_kms_arn" {
  command = plan

  variables {
    kms_key_arn = "alias/aws/s3"
  }

  expect_failures = [var.kms_key_arn]
}
