terraform {
  # The oldest Terraform this is written for; what it uses needs no newer (preconditions came in 1.2, endswith() in 1.3).
  # Hence no validation that joins two variables (1.9) and no write-only password argument (1.11).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
