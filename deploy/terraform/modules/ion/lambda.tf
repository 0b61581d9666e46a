# The Lambda: ion's NativeAOT `bootstrap` on the OS-only runtime, fed by the input queue in batches (and by SES's
# feedback queue, when there is one), reporting which messages of a batch failed so the others are not received again.

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# Only when asked: the value passes through Terraform and is kept in its state in clear text. A parameter created
# with `aws ssm put-parameter` never is.
resource "aws_ssm_parameter" "smtp_password" {
  count = var.create_smtp_password_parameter ? 1 : 0

  name        = local.password_parameter_name
  description = "SMTP relay password of ion (${var.name}); read by the Lambda at start"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.smtp_password
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.smtp_password != null
      error_message = "create_smtp_password_parameter = true needs smtp_password."
    }
  }
}

resource "aws_lambda_function" "ion" {
  function_name = var.name
  description   = "ion: delivers the messages of the ${var.name} queue through ${var.smtp_host}"
  role          = aws_iam_role.lambda.arn

  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)

  timeout     = var.lambda_timeout_seconds
  memory_size = var.lambda_memory_mb
  # The most SMTP connections at once: relays cap concurrent connections, and the original's to-do asked for a bound.
  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = local.lambda_environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda.name
  }

  tags = var.tags

  # The role's permissions and the log group must exist before the first invocation.
  depends_on = [aws_iam_role_policy.lambda, aws_cloudwatch_log_group.lambda]

  lifecycle {
    precondition {
      condition     = var.smtp_username == null || local.password_parameter_name != null
      error_message = "smtp_username is set but no password is: set smtp_password_parameter_name (a SecureString parameter you created), or create_smtp_password_parameter = true with smtp_password."
    }

    precondition {
      condition     = var.smtp_fallback_host == null || var.smtp_fallback_username == null || var.smtp_fallback_password_parameter_name != null
      error_message = "smtp_fallback_username is set but no password is: set smtp_fallback_password_parameter_name (a SecureString parameter you created)."
    }
  }
}

resource "aws_lambda_event_source_mapping" "input" {
  event_source_arn = aws_sqs_queue.input.arn
  function_name    = aws_lambda_function.ion.arn

  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  # ion answers per message: the failed ones stay on the queue (with the delay ion chose), the rest are deleted.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  # The mapping checks at creation that the role may read the queue.
  depends_on = [aws_iam_role_policy.lambda]

  lifecycle {
    precondition {
      # Above the reserved concurrency the mapping's invocations are throttled and the batch goes back to the queue,
      # each time costing every message in it a receive towards max_receive_count.
      condition     = var.maximum_concurrency <= coalesce(var.reserved_concurrent_executions, var.maximum_concurrency)
      error_message = "maximum_concurrency must not exceed reserved_concurrent_executions."
    }

    precondition {
      condition     = var.batch_size <= 10 || var.maximum_batching_window_in_seconds >= 1
      error_message = "batch_size above 10 needs maximum_batching_window_in_seconds of at least 1 (an SQS event source mapping rule)."
    }
  }
}

# SES's notifications (feedback.tf), to the same function: it tells their records from ion's messages by their queue
# (each record's eventSourceARN against Ion__Aws__FeedbackQueueUrl) and puts the addresses on the suppression list; a
# record the list could not take is reported failed, and comes back after the queue's visibility timeout.
resource "aws_lambda_event_source_mapping" "feedback" {
  count = local.feedback_queue ? 1 : 0

  event_source_arn = aws_sqs_queue.feedback[0].arn
  function_name    = aws_lambda_function.ion.arn

  # A write to the list each, and no hurry: no batching window.
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  # The smallest a mapping takes. It shares the function's reserved concurrency with the input queue's mapping.
  scaling_config {
    maximum_concurrency = 2
  }

  depends_on = [aws_iam_role_policy.lambda]

  lifecycle {
    precondition {
      # As for the input queue's mapping: the two together must fit in the reserved concurrency, or invocations of
      # either are throttled, and a throttled batch of mail costs each of its messages a receive.
      condition     = var.maximum_concurrency + 2 <= coalesce(var.reserved_concurrent_executions, var.maximum_concurrency + 2)
      error_message = "With a feedback queue (create_feedback_queue or feedback_topic_arn), reserved_concurrent_executions must be at least maximum_concurrency + 2: the feedback queue's event source mapping takes up to 2 invocations at once."
    }
  }
}
