# SES's bounces and complaints, arriving after the send: SES publishes them to an SNS topic (an identity's notification
# topic, or a configuration set's event destination), and a queue subscribed to it holds them for the Lambda, which
# puts the addresses on the suppression list (its second event source mapping, in lambda.tf). With
# create_feedback_queue the topic is the module's own; with feedback_topic_arn the queue is subscribed to a topic SES
# already publishes to (in this account and region). `ion serve` workers may read it as well (worker_policy_arn,
# worker_environment).

locals {
  feedback_queue     = var.create_feedback_queue || var.feedback_topic_arn != null
  feedback_topic_arn = var.feedback_topic_arn != null ? var.feedback_topic_arn : one(aws_sns_topic.feedback[*].arn)
}

resource "aws_sns_topic" "feedback" {
  count = var.feedback_topic_arn == null && var.create_feedback_queue ? 1 : 0

  name = "${var.name}-feedback"
  tags = var.tags
}

# SES publishes on the account's behalf, and only for this account's identities and configuration sets.
data "aws_iam_policy_document" "ses_to_feedback_topic" {
  count = var.feedback_topic_arn == null && var.create_feedback_queue ? 1 : 0

  statement {
    sid       = "SesPublishes"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.feedback[0].arn]

    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "feedback" {
  count = var.feedback_topic_arn == null && var.create_feedback_queue ? 1 : 0

  arn    = aws_sns_topic.feedback[0].arn
  policy = data.aws_iam_policy_document.ses_to_feedback_topic[0].json
}

# No dead-letter queue: ion deletes what is no SES notification, and a notification the list could not take comes
# back until it can. Kept as long as the other queues, for a list that is down for days.
resource "aws_sqs_queue" "feedback" {
  count = local.feedback_queue ? 1 : 0

  name = "${var.name}-feedback"
  # Six times the function's timeout, as for the input queue (AWS's advice for a queue a Lambda reads; Lambda refuses a
  # mapping to a queue whose visibility timeout is below the function's). `ion serve` sets its own on each receive.
  visibility_timeout_seconds = 6 * var.lambda_timeout_seconds
  message_retention_seconds  = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "feedback_topic_to_queue" {
  count = local.feedback_queue ? 1 : 0

  statement {
    sid       = "OnlyTheFeedbackTopicSends"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.feedback[0].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.feedback_topic_arn]
    }
  }
}

resource "aws_sqs_queue_policy" "feedback" {
  count = local.feedback_queue ? 1 : 0

  queue_url = aws_sqs_queue.feedback[0].id
  policy    = data.aws_iam_policy_document.feedback_topic_to_queue[0].json
}

resource "aws_sns_topic_subscription" "feedback" {
  count = local.feedback_queue ? 1 : 0

  topic_arn = local.feedback_topic_arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.feedback[0].arn
  # SNS's envelope, as SES's topics are subscribed in AWS's own set-ups; ion reads it (and a raw notification too).
  raw_message_delivery = false

  # SES's first notifications must find the queue willing to take them.
  depends_on = [aws_sqs_queue_policy.feedback]
}
