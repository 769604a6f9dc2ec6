# Log-based metrics from the functions' JSON logs (one object per line: severity, message, dataset,
# rows, rejected, durationMs, …), alert policies, and a log exclusion that keeps logging costs flat.

locals {
  service_names = [for name in keys(local.function_defaults) : "${var.name_prefix}-${name}"]
  # Logging query language and Monitoring filter forms of "one of our functions".
  log_services     = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${join(" OR ", [for s in local.service_names : "\"${s}\""])})"
  monitor_services = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = one_of(${join(", ", [for s in local.service_names : "\"${s}\""])})"
}

# Rows written by each stage (rawToBronze: rows converted to Bronze; loadWarehouse: rows loaded).
# Rows in = rows_written + rows_rejected: rawToBronze balances its counts by construction.
resource "google_logging_metric" "rows_written" {
  name            = "${var.name_prefix}_rows_written"
  description     = "Rows written per load or conversion (jsonPayload.rows), by dataset; the function is the service_name resource label."
  filter          = "${local.log_services} AND jsonPayload.rows>=0"
  value_extractor = "EXTRACT(jsonPayload.rows)"
  label_extractors = {
    dataset = "EXTRACT(jsonPayload.dataset)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "dataset"
      value_type = "STRING"
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 2
      scale              = 1
    }
  }
}

resource "google_logging_metric" "rows_rejected" {
  name            = "${var.name_prefix}_rows_rejected"
  description     = "Rows rejected to quarantine per conversion (jsonPayload.rejected), by dataset."
  filter          = "${local.log_services} AND jsonPayload.rejected>=0"
  value_extractor = "EXTRACT(jsonPayload.rejected)"
  label_extractors = {
    dataset = "EXTRACT(jsonPayload.dataset)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key        = "dataset"
      value_type = "STRING"
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 2
      scale              = 1
    }
  }
}

resource "google_logging_metric" "duration" {
  name            = "${var.name_prefix}_duration_ms"
  description     = "Duration of each conversion or load as logged by the function (jsonPayload.durationMs), by dataset."
  filter          = "${local.log_services} AND jsonPayload.durationMs>=0"
  value_extractor = "EXTRACT(jsonPayload.durationMs)"
  label_extractors = {
    dataset = "EXTRACT(jsonPayload.dataset)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "dataset"
      value_type = "STRING"
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 2
      scale              = 1
    }
  }
}

# One count per quarantine write: a conversion with rejected rows, or a whole file quarantined.
resource "google_logging_metric" "quarantine_writes" {
  name        = "${var.name_prefix}_quarantine_writes"
  description = "Log entries reporting rejected rows or a quarantined object, by dataset."
  filter      = "${local.log_services} AND (jsonPayload.rejected>0 OR jsonPayload.quarantine:*)"
  label_extractors = {
    dataset = "EXTRACT(jsonPayload.dataset)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "dataset"
      value_type = "STRING"
    }
  }
}

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  display_name          = "Smelter ${var.name_prefix}: dead letters waiting"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Undelivered messages on ${google_pubsub_subscription.dead_letter_hold.name}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = \"${google_pubsub_subscription.dead_letter_hold.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages were parked on `${google_pubsub_topic.dead_letter.name}`: invalid events (with reasons, also in the `dead_letter` table) or deliveries that failed max_delivery_attempts times (attribute `CloudPubSubDeadLetterSourceSubscription`). Inspect with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter_hold.name} --limit=10`."
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  display_name          = "Smelter ${var.name_prefix}: function error rate"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "5xx ratio above ${var.error_rate_threshold} per function"
    condition_threshold {
      filter             = "${local.monitor_services} AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
      denominator_filter = "${local.monitor_services} AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A Smelter function answers 5xx: transient failures are retried by Eventarc / Pub/Sub, but a persistent rate means a broken dependency or a bug. Check the function's logs (severity>=ERROR)."
  }
}

resource "google_monitoring_alert_policy" "quarantine_growth" {
  display_name          = "Smelter ${var.name_prefix}: quarantine growing"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "More than ${var.quarantine_alert_threshold} quarantine writes per hour"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.quarantine_writes.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.quarantine_alert_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.dataset"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Rows or files are being quarantined in `${google_storage_bucket.quarantine.name}` faster than usual: a producer changed its format or a contract is out of date. Each quarantine object carries the reasons."
  }
}

# The platform logs one request entry per invocation; at high event rates that is the largest bill
# line. Successful ones add nothing the functions' own logs lack, so they are not ingested.
resource "google_logging_project_exclusion" "success_request_logs" {
  count       = var.exclude_success_request_logs ? 1 : 0
  name        = "${var.name_prefix}-success-request-logs"
  description = "Smelter: per-request logs of successful function calls (errors are kept)."
  filter      = "log_id(\"run.googleapis.com/requests\") AND ${local.log_services} AND httpRequest.status<400"
}
