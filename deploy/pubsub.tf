# Topics and dead-lettering. The push subscriptions that deliver to the functions (with their
# dead_letter_policy) are generated from the manifest into generated/functions.tf.json.

resource "google_pubsub_topic" "events" {
  name                       = "${var.name_prefix}-events"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.events_topic_retention
  depends_on                 = [google_kms_crypto_key_iam_member.pubsub_agent]
}

resource "google_pubsub_topic" "refresh" {
  name         = "${var.name_prefix}-refresh"
  kms_key_name = var.kms_key_name
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# Pull requests for API sources: one Cloud Scheduler job per source (generated/sources.tf.json)
# publishes {"source": "<name>"}; pullSource's push subscription carries the dead-letter policy.
resource "google_pubsub_topic" "pull" {
  name         = "${var.name_prefix}-pull"
  kms_key_name = var.kms_key_name
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# Receives both the events routeEvent rejects (published by the function, with reasons) and the
# messages Pub/Sub parks after max_delivery_attempts failed deliveries (with CloudPubSubDeadLetter*
# attributes naming the source subscription).
resource "google_pubsub_topic" "dead_letter" {
  name         = "${var.name_prefix}-events-dead-letter"
  kms_key_name = var.kms_key_name
  depends_on   = [google_kms_crypto_key_iam_member.pubsub_agent]
}

# Dead-lettering publishes as the Pub/Sub service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_pubsub_agent" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

# Holds dead letters for inspection and replay (a topic without a subscription drops messages).
resource "google_pubsub_subscription" "dead_letter_hold" {
  name                       = "${var.name_prefix}-events-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# Eventarc storage triggers: Cloud Storage publishes object notifications to an Eventarc-managed
# topic whose name is not known in advance, so the Cloud Storage service agent needs
# roles/pubsub.publisher on the project. This is the one project-level grant GCP requires for it
# (documented in deploy/README.md, allow-listed in test/deploy).
resource "google_project_iam_member" "gcs_service_agent_pubsub_publisher" {
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = local.gcs_service_agent
}
