output "bucket_name" {
  description = "Name of the S3 state bucket."
  value       = aws_s3_bucket.this.id

  # Hand the bucket out only once it is fully configured (encrypted,
  # versioned, locked down), so nothing writes state into a half-made bucket.
  depends_on = [
    aws_s3_bucket_public_access_block.this,
    aws_s3_bucket_ownership_controls.this,
    aws_s3_bucket_versioning.this,
    aws_s3_bucket_server_side_encryption_configuration.this,
    aws_s3_bucket_policy.this,
    aws_s3_bucket_lifecycle_configuration.this,
  ]
}

output "bucket_arn" {
  description = "ARN of the S3 state bucket."
  value       = aws_s3_bucket.this.arn
}

output "lock_table_name" {
  description = "Name of the DynamoDB state lock table."
  value       = aws_dynamodb_table.lock.name
}

output "lock_table_arn" {
  description = "ARN of the DynamoDB state lock table."
  value       = aws_dynamodb_table.lock.arn
}

output "region" {
  description = "AWS region the backend lives in (use it as the backend's region)."
  value       = data.aws_region.current.name
}
