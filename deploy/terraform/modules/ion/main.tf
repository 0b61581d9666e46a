# ion on AWS: SNS topic → SQS input queue (raw delivery) → the Lambda → the SMTP relay, with a dead-letter queue,
# a DynamoDB delivery log and suppression list, and alarms. queues.tf, table.tf, lambda.tf, iam.tf and alarms.tf hold the
# parts; feedback.tf the optional queue of SES's bounces and complaints; events.tf the optional delivery events topic and
# the webhooks' queues; payloads.tf the optional bucket for messages over 256 KB.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region = data.aws_region.current.region

  # SQS's longest retention, on both queues: a message waiting out a long relay outage, or a dead letter waiting to be
  # redriven, must not expire first.
  message_retention_seconds = 14 * 24 * 60 * 60

  password_parameter_name = var.create_smtp_password_parameter ? coalesce(var.smtp_password_parameter_name, "/${var.name}/smtp-password") : var.smtp_password_parameter_name

  # A parameter's ARN has no doubled slash: /ion/smtp-password → …:parameter/ion/smtp-password.
  password_parameter_arn = local.password_parameter_name == null ? null : "arn:${data.aws_partition.current.partition}:ssm:${local.region}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(local.password_parameter_name, "/")}"

  fallback_password_parameter_arn = var.smtp_fallback_host == null || var.smtp_fallback_password_parameter_name == null ? null : "arn:${data.aws_partition.current.partition}:ssm:${local.region}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(var.smtp_fallback_password_parameter_name, "/")}"

  # The parameters the function reads at start: the relay's password, and the fallback relay's.
  password_parameter_arns = compact([local.password_parameter_arn, local.fallback_password_parameter_arn])

  password_key_arn = var.kms_key_arn != null ? var.kms_key_arn : one(data.aws_kms_alias.ssm[*].target_key_arn)

  # What any ion (the Lambda or `ion serve`) needs to find the AWS store. Nothing secret.
  store_environment = {
    Ion__Store                   = "Aws"
    Ion__Aws__Region             = local.region
    Ion__Aws__QueueUrl           = aws_sqs_queue.input.url
    Ion__Aws__DeadLetterQueueUrl = aws_sqs_queue.dead_letters.url
    Ion__Aws__TableName          = aws_dynamodb_table.log.name
    Ion__Aws__SuppressionTable   = aws_dynamodb_table.suppressions.name
    Ion__Aws__TopicArn           = aws_sns_topic.mail.arn
  }

  # Both publish events when there is a topic for them (events.tf), both read the feedback queue when there is one
  # (feedback.tf), and both read and write large messages' payloads when there is a bucket for them (payloads.tf).
  optional_environment = { for key, value in {
    Ion__Aws__EventsTopicArn   = one(aws_sns_topic.events[*].arn)
    Ion__Aws__FeedbackQueueUrl = one(aws_sqs_queue.feedback[*].url)
    Ion__Aws__PayloadBucket    = one(aws_s3_bucket.payloads[*].bucket)
  } : key => value if value != null }

  # `ion serve`'s: the webhooks' queues too, which only workers read (events.tf).
  worker_environment = merge(local.store_environment, local.optional_environment, {
    for webhook, queue in aws_sqs_queue.webhook : "Ion__Aws__WebhookQueueUrls__${webhook}" => queue.url
  })

  # The Lambda's configuration: ion's settings as environment variables, the feedback queue's included, by which the
  # function tells that queue's records (its second event source mapping) from ion's messages. The password is not one
  # of them: the function reads the parameter named here, with decryption, when it starts.
  lambda_environment = merge(local.store_environment, local.optional_environment, {
    for key, value in {
      Ion__Smtp__Host              = var.smtp_host
      Ion__Smtp__Port              = tostring(var.smtp_port)
      Ion__Smtp__Security          = var.smtp_security
      Ion__Smtp__Username          = var.smtp_username
      Ion__Smtp__PasswordParameter = local.password_parameter_name
      Ion__DefaultSender           = var.default_sender
      Ion__Delivery__MaxAttempts   = tostring(var.max_attempts)
      # The fallback relay's settings only with its host: without one there is none (its port and security have defaults).
      Ion__Smtp__Fallback__Host              = var.smtp_fallback_host
      Ion__Smtp__Fallback__Port              = var.smtp_fallback_host == null ? null : tostring(var.smtp_fallback_port)
      Ion__Smtp__Fallback__Security          = var.smtp_fallback_host == null ? null : var.smtp_fallback_security
      Ion__Smtp__Fallback__Username          = var.smtp_fallback_host == null ? null : var.smtp_fallback_username
      Ion__Smtp__Fallback__PasswordParameter = var.smtp_fallback_host == null ? null : var.smtp_fallback_password_parameter_name
      Ion__Smtp__Fallback__AfterDeferrals    = var.smtp_fallback_host == null || var.smtp_fallback_after_deferrals == null ? null : tostring(var.smtp_fallback_after_deferrals)
    } : key => value if value != null
  })
}

# The AWS-managed key SSM encrypts SecureString parameters with by default. AWS creates it on the first use in the
# account and region, so it is read after this module's own parameter exists (when the module creates it).
data "aws_kms_alias" "ssm" {
  count = var.kms_key_arn == null && length(local.password_parameter_arns) > 0 ? 1 : 0
  name  = "alias/aws/ssm"

  depends_on = [aws_ssm_parameter.smtp_password]
}
