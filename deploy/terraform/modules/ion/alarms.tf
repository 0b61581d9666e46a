# Alarms (the original's to-do): a growing backlog, a message waiting too long, anything in the dead letters, and the
# function failing. Each notifies the alarm topic when it fires and when it clears. Missing data is not breaching: SQS
# stops reporting an idle queue's metrics after a few hours, and an idle queue is a healthy one.

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "backlog" {
  alarm_name        = "${var.name}-backlog"
  alarm_description = "More than ${var.backlog_alarm_threshold} messages wait in ${aws_sqs_queue.input.name} for ${var.backlog_alarm_periods * 5} minutes: delivery is slower than publishing, or stopped (the relay down, the function failing)."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = aws_sqs_queue.input.name
  }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = var.backlog_alarm_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.backlog_alarm_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
  tags          = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name        = "${var.name}-oldest-message"
  alarm_description = "A message has waited in ${aws_sqs_queue.input.name} for more than ${var.oldest_message_alarm_seconds} seconds: the relay is down or refusing ion, or retries are backing off."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateAgeOfOldestMessage"
  dimensions = {
    QueueName = aws_sqs_queue.input.name
  }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_alarm_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
  tags          = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name        = "${var.name}-dead-letters"
  alarm_description = "${aws_sqs_queue.dead_letters.name} is not empty: ion gave up on a message (the reason is in its attributes and in `ion dead-letters list`). Fix the cause, then redrive."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = aws_sqs_queue.dead_letters.name
  }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
  tags          = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name        = "${var.name}-lambda-errors"
  alarm_description = "The function ${aws_lambda_function.ion.function_name} failed (crashed, timed out, or could not start: see its log). Messages it did not finish come back to the queue."

  namespace   = "AWS/Lambda"
  metric_name = "Errors"
  dimensions = {
    FunctionName = aws_lambda_function.ion.function_name
  }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
  tags          = var.tags
}
