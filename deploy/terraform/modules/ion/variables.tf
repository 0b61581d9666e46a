# Validations refer only to their own variable (Terraform before 1.9 allows nothing else); rules that join two
# variables are preconditions on the resource they protect (lambda.tf). A nullable number is tested with
# `x == null ? true : …`, since `||` does not short-circuit before Terraform 1.12.

variable "name" {
  description = "Name of the topic, the input queue and the function; the other resources are named after it (NAME-dead-letters, NAME-log, NAME-alarms, NAME-lambda)."
  type        = string

  validation {
    # The tightest limits: SQS queue names (80 characters, with "-dead-letters" added) and IAM role names (64, with "-lambda").
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$", var.name))
    error_message = "name must be 1 to 50 letters, digits, '-' or '_', starting with a letter or digit."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}

# --- the Lambda ----------------------------------------------------------------------------------------------------

variable "package_path" {
  description = "Path of the Lambda's zip (bootstrap at its root), as built by deploy/lambda/release.sh, e.g. deploy/lambda/dist/ion-lambda-arm64.zip. Its architecture must match `architecture`."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must name a .zip file."
  }
}

variable "architecture" {
  description = "The Lambda's instruction set, matching the package: arm64 (cheaper per GB-second) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "lambda_timeout_seconds" {
  description = "How long one invocation (one batch) may run. The input queue's visibility timeout is at least 6 times this."
  type        = number
  default     = 60

  validation {
    # Below 30 s an invocation may spend its time reaching the relay (TLS, AUTH) and stop short of its deadline with
    # nothing sent: every such batch goes back, each costing its messages a receive towards max_receive_count.
    condition     = var.lambda_timeout_seconds >= 30 && var.lambda_timeout_seconds <= 900 && floor(var.lambda_timeout_seconds) == var.lambda_timeout_seconds
    error_message = "lambda_timeout_seconds must be a whole number from 30 to 900 (Lambda's limit is 15 minutes)."
  }
}

variable "lambda_memory_mb" {
  description = "The Lambda's memory in MB (CPU grows with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240 && floor(var.lambda_memory_mb) == var.lambda_memory_mb
    error_message = "lambda_memory_mb must be a whole number from 128 to 10240."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and the most allowed to) the function: at most this many SMTP connections at once. null: no reservation, the account's pool. Must be at least maximum_concurrency, and maximum_concurrency + 2 with a feedback queue (its event source mapping takes up to 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.reserved_concurrent_executions == null ? true : var.reserved_concurrent_executions >= 2 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "reserved_concurrent_executions must be null or a whole number of at least 2 (the event source mapping's smallest maximum_concurrency)."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the Lambda's log."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

# --- the event source mapping --------------------------------------------------------------------------------------

variable "batch_size" {
  description = "Most messages per invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the event source mapping may wait to fill a batch (required to be at least 1 when batch_size is above 10)."
  type        = number
  default     = 1

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300 && floor(var.maximum_batching_window_in_seconds) == var.maximum_batching_window_in_seconds
    error_message = "maximum_batching_window_in_seconds must be a whole number from 0 to 300."
  }
}

variable "maximum_concurrency" {
  description = "Most concurrent invocations the queue starts. Keep it at most reserved_concurrent_executions: above it, invocations are throttled and their messages go back to the queue, each throttle costing a receive."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number from 2 to 1000 (SQS event source mapping limits)."
  }
}

# --- the queues ----------------------------------------------------------------------------------------------------

variable "max_receive_count" {
  description = "Receives after which SQS itself moves a message to the dead-letter queue. ion counts attempts in DynamoDB and dead-letters with the reason itself; this is only the backstop for a message that kills its consumer, so it must stay high enough that a relay outage never dead-letters by receive count."
  type        = number
  default     = 50

  validation {
    # ion warns at start below 10: a message handed back a few times (a slow relay, a restart) could be dead-lettered healthy.
    condition     = var.max_receive_count >= 10 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 10 to 1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "The input queue's visibility timeout, raised to 6 × lambda_timeout_seconds + maximum_batching_window_in_seconds when lower (AWS's advice for a queue a Lambda reads)."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number from 0 to 43200 (SQS's 12 hours)."
  }
}

# --- the delivery log ----------------------------------------------------------------------------------------------

variable "point_in_time_recovery" {
  description = "Point-in-time recovery of the delivery log and suppression list tables (35 days of continuous backups, billed per GB)."
  type        = bool
  default     = true
}

# --- ion's settings ------------------------------------------------------------------------------------------------

variable "smtp_host" {
  description = "The SMTP relay (Ion:Smtp:Host), e.g. email-smtp.eu-west-1.amazonaws.com."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", var.smtp_host))
    error_message = "smtp_host must be a host name or an IPv4 address, without scheme or port (the port is smtp_port)."
  }
}

variable "smtp_port" {
  description = "The relay's port (Ion:Smtp:Port): 587 with StartTls, 465 with SslOnConnect."
  type        = number
  default     = 587

  validation {
    condition     = var.smtp_port >= 1 && var.smtp_port <= 65535 && floor(var.smtp_port) == var.smtp_port
    error_message = "smtp_port must be a whole number from 1 to 65535."
  }
}

variable "smtp_security" {
  description = "How the connection to the relay is secured (Ion:Smtp:Security): StartTls (required, not opportunistic) or SslOnConnect (TLS from the first byte, port 465)."
  type        = string
  default     = "StartTls"

  validation {
    # ion refuses None to a relay that is not on its own machine, and a Lambda's relay never is.
    condition     = contains(["StartTls", "SslOnConnect"], var.smtp_security)
    error_message = "smtp_security must be StartTls or SslOnConnect (ion allows None only to a relay on its own machine, which a Lambda never has)."
  }
}

variable "smtp_username" {
  description = "The relay's user name (Ion:Smtp:Username); null for a relay without AUTH. With a user name, the password must be in SSM: smtp_password_parameter_name, or create_smtp_password_parameter."
  type        = string
  default     = null
}

variable "smtp_fallback_host" {
  description = "A fallback relay (Ion:Smtp:Fallback:Host), as Postfix's fallback_relay: ion delivers through it while the primary is down or refuses ion, and for a message the primary deferred smtp_fallback_after_deferrals times. Null: none."
  type        = string
  default     = null

  validation {
    condition     = var.smtp_fallback_host == null ? true : can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", var.smtp_fallback_host))
    error_message = "smtp_fallback_host must be a host name or an IPv4 address, without scheme or port (the port is smtp_fallback_port)."
  }
}

variable "smtp_fallback_port" {
  description = "The fallback relay's port (Ion:Smtp:Fallback:Port)."
  type        = number
  default     = 587

  validation {
    condition     = var.smtp_fallback_port >= 1 && var.smtp_fallback_port <= 65535 && floor(var.smtp_fallback_port) == var.smtp_fallback_port
    error_message = "smtp_fallback_port must be a whole number from 1 to 65535."
  }
}

variable "smtp_fallback_security" {
  description = "How the connection to the fallback relay is secured (Ion:Smtp:Fallback:Security): StartTls or SslOnConnect."
  type        = string
  default     = "StartTls"

  validation {
    condition     = contains(["StartTls", "SslOnConnect"], var.smtp_fallback_security)
    error_message = "smtp_fallback_security must be StartTls or SslOnConnect (ion allows None only to a relay on its own machine, which a Lambda never has)."
  }
}

variable "smtp_fallback_username" {
  description = "The fallback relay's user name (Ion:Smtp:Fallback:Username); null without AUTH. With one, smtp_fallback_password_parameter_name must name its password's SecureString parameter."
  type        = string
  default     = null
}

variable "smtp_fallback_password_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the fallback relay's password (Ion__Smtp__Fallback__PasswordParameter), created outside Terraform."
  type        = string
  default     = null

  validation {
    condition     = var.smtp_fallback_password_parameter_name == null ? true : can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.smtp_fallback_password_parameter_name)) && length(var.smtp_fallback_password_parameter_name) <= 1011
    error_message = "smtp_fallback_password_parameter_name must be an SSM parameter name: letters, digits, '_', '.', '-', levels separated by '/'."
  }
}

variable "smtp_fallback_after_deferrals" {
  description = "A message deferred this many times goes through the fallback from its next attempt on (Ion:Smtp:Fallback:AfterDeferrals); 0: the fallback only carries mail while the primary is down. Null: ion's default, 3."
  type        = number
  default     = null

  validation {
    condition     = var.smtp_fallback_after_deferrals == null ? true : var.smtp_fallback_after_deferrals >= 0 && floor(var.smtp_fallback_after_deferrals) == var.smtp_fallback_after_deferrals
    error_message = "smtp_fallback_after_deferrals must be a whole number, 0 or more."
  }
}

variable "smtp_password_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the relay's password (Ion__Smtp__PasswordParameter), e.g. /ion/smtp-password. Create it outside Terraform (recommended: the password then never enters the state), or let the module create it (create_smtp_password_parameter)."
  type        = string
  default     = null

  validation {
    condition     = var.smtp_password_parameter_name == null ? true : can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.smtp_password_parameter_name)) && length(var.smtp_password_parameter_name) <= 1011
    error_message = "smtp_password_parameter_name must be an SSM parameter name: letters, digits, '_', '.', '-', levels separated by '/'."
  }
}

variable "create_smtp_password_parameter" {
  description = "Create the SSM parameter from smtp_password (named smtp_password_parameter_name, or /NAME/smtp-password). The password is then in the Terraform state in clear text: prefer creating the parameter yourself."
  type        = bool
  default     = false
}

variable "smtp_password" {
  description = "The relay's password, only with create_smtp_password_parameter = true. Ends up in the state (see the README)."
  type        = string
  default     = null
  sensitive   = true
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the password parameter, which the function may use through SSM only. null: the account's AWS-managed alias/aws/ssm key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/…), not an alias."
  }
}

variable "default_sender" {
  description = "From of messages that name none (Ion:DefaultSender); null keeps ion's default. Your relay must accept it."
  type        = string
  default     = null

  validation {
    condition     = var.default_sender == null ? true : can(regex("^[!-~]+@[A-Za-z0-9.-]+$", var.default_sender))
    error_message = "default_sender must be an email address with an ASCII local part."
  }
}

variable "max_attempts" {
  description = "Attempts before a transiently failing message becomes a dead letter (Ion:Delivery:MaxAttempts); answers about the relay itself count none."
  type        = number
  default     = 5

  validation {
    condition     = var.max_attempts >= 1 && var.max_attempts <= 100 && floor(var.max_attempts) == var.max_attempts
    error_message = "max_attempts must be a whole number from 1 to 100."
  }
}

variable "create_worker_policy" {
  description = "Also create an IAM policy for `ion serve` workers (EC2, ECS) on the same topic, queues and table; its ARN is the worker_policy_arn output."
  type        = bool
  default     = false
}

# --- SES feedback ----------------------------------------------------------------------------------------------------

variable "create_feedback_queue" {
  description = "Also create the topic NAME-feedback for SES to publish bounces and complaints to, and the queue NAME-feedback subscribed to it, which the Lambda reads into the suppression list through a second event source mapping (Ion:Aws:FeedbackQueueUrl; `ion serve` workers may read it too). Needs reserved_concurrent_executions of at least maximum_concurrency + 2."
  type        = bool
  default     = false
}

variable "feedback_topic_arn" {
  description = "An SNS topic SES already publishes bounces and complaints to, in this account and region: the queue NAME-feedback is created and subscribed to it, and no topic is created. null: see create_feedback_queue."
  type        = string
  default     = null

  validation {
    condition     = var.feedback_topic_arn == null ? true : can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.feedback_topic_arn))
    error_message = "feedback_topic_arn must be an SNS topic ARN, e.g. arn:aws:sns:eu-west-1:123456789012:ses-feedback."
  }
}

# --- alarms --------------------------------------------------------------------------------------------------------

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (AWS sends a confirmation email first); null: no subscription."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null ? true : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an email address."
  }
}

variable "backlog_alarm_threshold" {
  description = "The backlog alarm fires when more messages than this wait in the input queue for backlog_alarm_periods 5-minute periods in a row."
  type        = number
  default     = 1000

  validation {
    condition     = var.backlog_alarm_threshold >= 1
    error_message = "backlog_alarm_threshold must be at least 1."
  }
}

variable "backlog_alarm_periods" {
  description = "5-minute periods the backlog must stay above backlog_alarm_threshold before the alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.backlog_alarm_periods >= 1 && var.backlog_alarm_periods <= 288 && floor(var.backlog_alarm_periods) == var.backlog_alarm_periods
    error_message = "backlog_alarm_periods must be a whole number from 1 to 288 (a day)."
  }
}

variable "oldest_message_alarm_seconds" {
  description = "The age alarm fires when the oldest message in the input queue is older than this (a relay down, or retries backing off)."
  type        = number
  default     = 3600

  validation {
    condition     = var.oldest_message_alarm_seconds >= 60
    error_message = "oldest_message_alarm_seconds must be at least 60."
  }
}

# --- Delivery events -------------------------------------------------------------------------------------------------

variable "create_events_topic" {
  description = "Also create the SNS topic NAME-events, which the Lambda and `ion serve` workers publish every delivery event to (Ion:Aws:EventsTopicArn), for other services to subscribe to. Implied by webhooks."
  type        = bool
  default     = false
}

variable "webhooks" {
  description = "Names of webhooks (Ion:Events:Webhooks:NAME, whose Url and Secret are set on the `ion serve` workers): each gets a queue NAME-webhook-WEBHOOK on the events topic, and a NAME-webhook-WEBHOOK-dead for events never taken (Ion:Aws:WebhookQueueUrls:WEBHOOK in worker_environment). The Lambda sends no webhooks."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for w in var.webhooks : can(regex("^[A-Za-z0-9_-]{1,40}$", w))])
    error_message = "Each webhook name must be 1 to 40 letters, digits, '-' or '_'."
  }
}

# --- Large messages -------------------------------------------------------------------------------------------------

variable "create_payload_bucket" {
  description = "Also create the S3 bucket NAME-payloads-ACCOUNT-REGION for messages over SNS's 256 KB (Ion:Aws:PayloadBucket): ion keeps them there with a pointer on the topic, up to Ion:MaxMessageBytes (10 MiB), and grants the Lambda and the workers what they need on it. Without it, such a message is refused on AWS."
  type        = bool
  default     = false
}
