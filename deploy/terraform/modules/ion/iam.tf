# Least privilege: each statement names the actions ion calls and the one resource they act on.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name}-lambda"
  description        = "ion's Lambda (${var.name}): the queues, the delivery log, the suppression list, its log group and the SMTP password"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "lambda" {
  # The event source mapping receives, deletes and reads attributes with the function's role; ion changes visibility
  # (a retry's delay) and sends (a delay beyond SQS's 12-hour visibility cap is re-parked as a new message, and a
  # redrive sends dead letters back here).
  statement {
    sid       = "InputQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [aws_sqs_queue.input.arn]
  }

  # ion dead-letters by sending with the reason, and a redrive reads the dead letters and deletes what it moved.
  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }

  # SES's notifications: the feedback queue's event source mapping receives, deletes what the function did not report
  # failed, and reads the queue's attributes, with the function's role. ion itself calls nothing on it.
  dynamic "statement" {
    for_each = aws_sqs_queue.feedback[*].arn

    content {
      sid       = "FeedbackQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  # Delivery events, when there is a topic for them (events.tf): each published once.
  dynamic "statement" {
    for_each = aws_sns_topic.events[*].arn

    content {
      sid       = "EventsTopic"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }

  # Large messages' payloads (payloads.tf): read when a message is taken, deleted once it is sent. ListBucket lets S3
  # answer a payload that is gone with 404 (a dead letter saying so) rather than 403 (taken for S3 refusing ion).
  dynamic "statement" {
    for_each = aws_s3_bucket.payloads[*].arn

    content {
      sid       = "PayloadObjects"
      actions   = ["s3:GetObject", "s3:DeleteObject"]
      resources = ["${statement.value}/*"]
    }
  }

  dynamic "statement" {
    for_each = aws_s3_bucket.payloads[*].arn

    content {
      sid       = "PayloadBucket"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "DeliveryLog"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.log.arn]
  }

  statement {
    sid       = "DeadLetterIndex"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.log.arn}/index/dead_letters"]
  }

  # The lookup before each send, the refusals added, and those a refusal streak found to be the relay's taken off again
  # (a scan: rare). Listing and the API's removals are ion serve's.
  statement {
    sid       = "SuppressionList"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.suppressions.arn]
  }

  statement {
    sid       = "Log"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  dynamic "statement" {
    for_each = local.password_parameter_name == null ? [] : [local.password_parameter_arn]

    content {
      sid       = "SmtpPassword"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  # The fallback relay's password, when it has one.
  dynamic "statement" {
    for_each = local.fallback_password_parameter_arn == null ? [] : [local.fallback_password_parameter_arn]

    content {
      sid       = "SmtpFallbackPassword"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  # Decrypting the password, and only on SSM's behalf: the key cannot be used directly.
  dynamic "statement" {
    for_each = length(local.password_parameter_arns) == 0 ? [] : [local.password_key_arn]

    content {
      sid       = "SmtpPasswordKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "ion"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# For `ion serve` on EC2 or ECS instead of (or beside) the Lambda: what README.md's "Running on AWS" lists. Attach it
# to the instance or task role. The SMTP password reaches workers through their own environment or secrets file.
data "aws_iam_policy_document" "worker" {
  count = var.create_worker_policy ? 1 : 0

  statement {
    sid       = "Queues"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.input.arn, aws_sqs_queue.dead_letters.arn]
  }

  # ion publishes through the topic (HTTP API, ion publish) and checks at start that it exists.
  statement {
    sid       = "Topic"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.mail.arn]
  }

  # DescribeTable: the start check.
  statement {
    sid       = "DeliveryLog"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.log.arn, "${aws_dynamodb_table.log.arn}/index/dead_letters"]
  }

  # As the Lambda's, plus the API's listing (the by_address index) and the start check.
  statement {
    sid       = "SuppressionList"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.suppressions.arn, "${aws_dynamodb_table.suppressions.arn}/index/by_address"]
  }

  # SES's notifications: received, deleted once on the list, and handed back at once by a stopping worker; the
  # attributes read by the start check.
  dynamic "statement" {
    for_each = aws_sqs_queue.feedback[*].arn

    content {
      sid       = "FeedbackQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  # Delivery events: published once, the topic checked at start (events.tf).
  dynamic "statement" {
    for_each = aws_sns_topic.events[*].arn

    content {
      sid       = "EventsTopic"
      actions   = ["sns:Publish", "sns:GetTopicAttributes"]
      resources = [statement.value]
    }
  }

  # Large messages' payloads (payloads.tf): put by the API and ion publish, read when a message is taken, deleted once
  # it is sent; ListBucket for the start check (HeadBucket) and for a gone payload to be a 404, not a 403.
  dynamic "statement" {
    for_each = aws_s3_bucket.payloads[*].arn

    content {
      sid       = "PayloadObjects"
      actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
      resources = ["${statement.value}/*"]
    }
  }

  dynamic "statement" {
    for_each = aws_s3_bucket.payloads[*].arn

    content {
      sid       = "PayloadBucket"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]
    }
  }

  # Each webhook's events (one statement per webhook, so no Sid): received, deleted once its receiver took them, hidden until a retry is due, counted for
  # the dashboard and checked at start.
  dynamic "statement" {
    for_each = aws_sqs_queue.webhook

    content {
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [statement.value.arn]
    }
  }

  # An event never taken goes to its webhook's dead-letter queue with why (found by its URL), and is counted there.
  dynamic "statement" {
    for_each = aws_sqs_queue.webhook_dead

    content {
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
      resources = [statement.value.arn]
    }
  }
}

resource "aws_iam_policy" "worker" {
  count = var.create_worker_policy ? 1 : 0

  name        = "${var.name}-worker"
  description = "ion serve workers on ${var.name}: the queues, the topic, the delivery log and the suppression list"
  policy      = data.aws_iam_policy_document.worker[0].json
  tags        = var.tags
}
