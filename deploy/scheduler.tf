# The scheduled warehouse refresh: a message on the refresh topic, delivered to loadWarehouse by its
# Terraform-owned push subscription (with dead-lettering). Cloud Scheduler publishes as its service
# agent, whose default role (roles/cloudscheduler.serviceAgent) includes pubsub.topics.publish.

resource "google_cloud_scheduler_job" "refresh" {
  name        = "${var.name_prefix}-refresh"
  description = "Smelter: incremental Silver/Gold refresh of event tables."
  region      = coalesce(var.scheduler_region, var.region)
  schedule    = var.refresh_schedule
  time_zone   = var.refresh_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.refresh.id
    data       = base64encode(var.refresh_message)
    attributes = {
      source = "cloud-scheduler"
    }
  }

  retry_config {
    retry_count = 3
  }
}
