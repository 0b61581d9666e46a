# ion's delivery log: one item per message id (state, attempts, each recipient's outcome), the dead letters listed
# through the dead_letters index, finished messages expired by the TTL on expires_at. ion writes about three times per
# message (queued, claimed, outcome), so on-demand billing costs nothing when idle.

resource "aws_dynamodb_table" "log" {
  name         = "${var.name}-log"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  attribute {
    name = "dead_pk"
    type = "S"
  }

  attribute {
    name = "dead_sk"
    type = "S"
  }

  # Sparse: only dead letters carry dead_pk, so listing them reads nothing else. The projection is what
  # `ion dead-letters list` shows, so a listing needs no read of the table itself.
  global_secondary_index {
    name               = "dead_letters"
    hash_key           = "dead_pk"
    range_key          = "dead_sk"
    projection_type    = "INCLUDE"
    non_key_attributes = ["body", "last_reason", "failure_class", "attempts_used", "created_at", "updated_at", "recipients", "dead_domains"]
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  tags = var.tags
}

# ion's suppression list, in a table of its own: kept for years (a complaint for ever) while the log keeps 30 days, so
# recreating or pruning the log never lifts a suppression. One item per address (key: the address in lower case),
# looked up before every send; the by_address index lists them in order (the API), and the TTL deletes expired bounces.
resource "aws_dynamodb_table" "suppressions" {
  name         = "${var.name}-suppressions"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "address_key"

  attribute {
    name = "address_key"
    type = "S"
  }

  attribute {
    name = "list_pk"
    type = "S"
  }

  global_secondary_index {
    name            = "by_address"
    hash_key        = "list_pk"
    range_key       = "address_key"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  tags = var.tags
}
