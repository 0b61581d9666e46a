# Nothing secret: the SMTP password stays in SSM, and no output names anything that holds it.

output "topic_arn" {
  description = "The topic applications publish to (aws sns publish --topic-arn …)."
  value       = aws_sns_topic.mail.arn
}

output "queue_url" {
  description = "The input queue's URL (Ion:Aws:QueueUrl)."
  value       = aws_sqs_queue.input.url
}

output "queue_arn" {
  description = "The input queue's ARN."
  value       = aws_sqs_queue.input.arn
}

output "dead_letter_queue_url" {
  description = "The dead-letter queue's URL (Ion:Aws:DeadLetterQueueUrl)."
  value       = aws_sqs_queue.dead_letters.url
}

output "dead_letter_queue_arn" {
  description = "The dead-letter queue's ARN."
  value       = aws_sqs_queue.dead_letters.arn
}

output "table_name" {
  description = "The delivery log's DynamoDB table (Ion:Aws:TableName)."
  value       = aws_dynamodb_table.log.name
}

output "suppression_table_name" {
  description = "The suppression list's DynamoDB table (Ion:Aws:SuppressionTable)."
  value       = aws_dynamodb_table.suppressions.name
}

output "function_name" {
  description = "The Lambda's name."
  value       = aws_lambda_function.ion.function_name
}

output "log_group_name" {
  description = "The Lambda's CloudWatch log group (aws logs tail …)."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "alarm_topic_arn" {
  description = "The topic every alarm notifies; subscribe more endpoints to it."
  value       = aws_sns_topic.alarms.arn
}

output "worker_environment" {
  description = "The settings an `ion serve` worker or an `ion` command needs for this store, as environment variables (Ion__Aws__…), the feedback queue's included when there is one. Nothing secret."
  value       = local.worker_environment
}

output "feedback_queue_url" {
  description = "The feedback queue's URL (Ion:Aws:FeedbackQueueUrl) with create_feedback_queue or feedback_topic_arn, else null."
  value       = one(aws_sqs_queue.feedback[*].url)
}

output "feedback_topic_arn" {
  description = "The topic the feedback queue is subscribed to, for SES's identity notifications or a configuration set's event destination (aws_ses_identity_notification_topic), with create_feedback_queue or feedback_topic_arn, else null."
  value       = local.feedback_topic_arn
}

output "worker_policy_arn" {
  description = "The IAM policy for `ion serve` workers when create_worker_policy = true, else null."
  value       = one(aws_iam_policy.worker[*].arn)
}

output "events_topic_arn" {
  description = "The topic ion publishes delivery events to (Ion:Aws:EventsTopicArn), with create_events_topic or webhooks, else null: subscribe a queue or a function to it, filtering on the type attribute if you like."
  value       = one(aws_sns_topic.events[*].arn)
}

output "webhook_queue_urls" {
  description = "Each webhook's queue on the events topic, by webhook name (Ion:Aws:WebhookQueueUrls:NAME)."
  value       = { for webhook, queue in aws_sqs_queue.webhook : webhook => queue.url }
}

output "payload_bucket" {
  description = "The bucket for messages over SNS's 256 KB (Ion:Aws:PayloadBucket), with create_payload_bucket, else null."
  value       = one(aws_s3_bucket.payloads[*].bucket)
}
