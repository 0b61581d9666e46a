# ion as a Lambda behind an SNS topic, delivering through Amazon SES's SMTP interface. See ../../modules/ion/README.md
# for the steps: build the package, put the SMTP password in SSM, then terraform init / plan / apply here.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "alarm_email" {
  description = "Who gets the alarms (confirm the subscription email AWS sends); null for nobody."
  type        = string
  default     = null
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      app = "ion"
    }
  }
}

module "ion" {
  source = "../../modules/ion"

  name         = "ion-mail"
  package_path = "${path.module}/../../../lambda/dist/ion-lambda-arm64.zip"
  architecture = "arm64"

  smtp_host     = "email-smtp.${var.region}.amazonaws.com"
  smtp_username = "your-ses-smtp-user-name" # SES's SMTP credentials, not your AWS keys
  # Created beforehand: aws ssm put-parameter --name /ion/smtp-password --type SecureString --value '…'
  smtp_password_parameter_name = "/ion/smtp-password"
  default_sender               = "noreply@example.com"

  alarm_email = var.alarm_email
}

output "topic_arn" {
  description = "Publish messages here."
  value       = module.ion.topic_arn
}

output "queue_url" {
  description = "The input queue."
  value       = module.ion.queue_url
}

output "dead_letter_queue_url" {
  description = "The dead-letter queue."
  value       = module.ion.dead_letter_queue_url
}

output "function_name" {
  description = "The Lambda."
  value       = module.ion.function_name
}

output "log_group_name" {
  description = "The Lambda's log: aws logs tail --follow <this>."
  value       = module.ion.log_group_name
}

output "alarm_topic_arn" {
  description = "Where the alarms go."
  value       = module.ion.alarm_topic_arn
}

output "worker_environment" {
  description = "Settings for `ion` commands against this store (e.g. ion dead-letters list)."
  value       = module.ion.worker_environment
}
