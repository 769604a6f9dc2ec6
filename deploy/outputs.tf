# Function URLs and service accounts are generated (generated/functions.tf.json).

output "bucket_names" {
  description = "Buckets, by role."
  value = {
    raw        = google_storage_bucket.raw.name
    bronze     = google_storage_bucket.bronze.name
    quarantine = google_storage_bucket.quarantine.name
    archive    = google_storage_bucket.archive.name
    source     = google_storage_bucket.source.name
  }
}

output "topic_names" {
  description = "Pub/Sub topics, by role."
  value = {
    events      = google_pubsub_topic.events.name
    refresh     = google_pubsub_topic.refresh.name
    dead_letter = google_pubsub_topic.dead_letter.name
    pull        = google_pubsub_topic.pull.name
  }
}

output "dead_letter_subscription" {
  description = "Pull subscription holding dead letters for inspection and replay."
  value       = google_pubsub_subscription.dead_letter_hold.name
}

output "bigquery_datasets" {
  description = "BigQuery datasets, by layer."
  value = {
    bronze = google_bigquery_dataset.bronze.dataset_id
    silver = google_bigquery_dataset.silver.dataset_id
    gold   = google_bigquery_dataset.gold.dataset_id
    events = google_bigquery_dataset.events.dataset_id
    ops    = google_bigquery_dataset.ops.dataset_id
  }
}

output "smelter_env" {
  description = "Environment for running the Smelter CLI against this deployment (SMELTER_BACKEND=gcp …)."
  value       = local.smelter_env
}
