# Delivery events (accepted, sent, deferred, failed, dead, suppressed, redriven, bounced, complained): ion publishes each
# once to the topic NAME-events, its JSON with raw delivery and a `type` message attribute, so other services subscribe
# the AWS way (a queue, a Lambda, a filter policy on `type`). The Lambda and `ion serve` workers publish alike. Each
# webhook named in var.webhooks gets a queue NAME-webhook-WEBHOOK on that topic, which `ion serve` workers read and POST
# to the webhook's URL, signed (Ion:Events:Webhooks:WEBHOOK:Url and :Secret, set on the workers; the Lambda sends no
# webhooks), with a dead-letter queue for events the receiver never took.

locals {
  events_topic = var.create_events_topic || length(var.webhooks) > 0
}

resource "aws_sns_topic" "events" {
  count = local.events_topic ? 1 : 0

  name = "${var.name}-events"
  tags = var.tags
}

# ion decides when an event is dead (after Ion:Events:RetryFor, a day by default) and sends it here with why; SQS's own
# count (every retry is a receive) is SQS's highest, a guard only.
resource "aws_sqs_queue" "webhook_dead" {
  for_each = toset(var.webhooks)

  name                      = "${var.name}-webhook-${each.key}-dead"
  message_retention_seconds = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "webhook" {
  for_each = toset(var.webhooks)

  name                      = "${var.name}-webhook-${each.key}"
  message_retention_seconds = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.webhook_dead[each.key].arn
    maxReceiveCount     = 1000
  })
}

data "aws_iam_policy_document" "events_topic_to_webhook" {
  for_each = toset(var.webhooks)

  statement {
    sid       = "OnlyTheEventsTopicSends"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.webhook[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.events[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "webhook" {
  for_each = toset(var.webhooks)

  queue_url = aws_sqs_queue.webhook[each.key].id
  policy    = data.aws_iam_policy_document.events_topic_to_webhook[each.key].json
}

resource "aws_sns_topic_subscription" "webhook" {
  for_each = toset(var.webhooks)

  topic_arn = aws_sns_topic.events[0].arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.webhook[each.key].arn
  # The body is the event's JSON and ion's attributes reach the queue as message attributes.
  raw_message_delivery = true

  depends_on = [aws_sqs_queue_policy.webhook]
}
