# Applications publish to the topic; the input queue gets each message byte for byte (raw delivery). Messages ion
# gives up on go to the dead-letter queue with their reason (ion sends them there itself); SQS moves a message there
# by itself only after max_receive_count receives, the backstop for a message that kills its consumer.

resource "aws_sns_topic" "mail" {
  name = var.name
  tags = var.tags
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "input" {
  name = var.name
  # A batch is hidden while the function works on it; at least six times the function's timeout (AWS's advice) so a
  # batch whose invocation is throttled or retried is not handed out again meanwhile.
  visibility_timeout_seconds = max(var.visibility_timeout_seconds, 6 * var.lambda_timeout_seconds + var.maximum_batching_window_in_seconds)
  message_retention_seconds  = local.message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

# Only the input queue may move messages into the dead-letter queue (and redrive there is ion's, back to it).
resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.input.arn]
  })
}

data "aws_iam_policy_document" "topic_to_queue" {
  statement {
    sid       = "OnlyTheTopicSends"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.input.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.mail.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "input" {
  queue_url = aws_sqs_queue.input.id
  policy    = data.aws_iam_policy_document.topic_to_queue.json
}

resource "aws_sns_topic_subscription" "input" {
  topic_arn = aws_sns_topic.mail.arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.input.arn
  # Without it the queue gets SNS's JSON envelope instead of the application's message.
  raw_message_delivery = true

  # The first messages published must find the queue willing to take them.
  depends_on = [aws_sqs_queue_policy.input]
}
