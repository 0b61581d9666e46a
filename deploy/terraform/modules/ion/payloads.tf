# Messages over SNS's 256 KB (an invoice, a report as PDF): with create_payload_bucket, ion keeps such a message in the
# bucket NAME-payloads-ACCOUNT-REGION and the topic and queue carry a pointer to it (the format of AWS's extended client
# libraries for SQS and SNS, which applications publishing straight to the topic can use). ion deletes a payload once
# its message is sent; a dead letter keeps its payload until it is redriven. The lifecycle rule expires what is left
# after the queues' retention, so no payload outlives the last message that could point to it only by accident.

resource "aws_s3_bucket" "payloads" {
  count = var.create_payload_bucket ? 1 : 0

  bucket = "${var.name}-payloads-${data.aws_caller_identity.current.account_id}-${local.region}"
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "payloads" {
  count = var.create_payload_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.payloads[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "payloads" {
  count = var.create_payload_bucket ? 1 : 0

  bucket = aws_s3_bucket.payloads[0].id

  rule {
    id     = "ion-payloads-expire"
    status = "Enabled"

    filter {}

    expiration {
      days = local.message_retention_seconds / 86400
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
