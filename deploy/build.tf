# Builds: a dedicated Cloud Build identity and the Artifact Registry repository the function images go
# to. The project's default build service account is often an Editor; this one can read the source
# bucket, write images to this repository and write build logs, nothing else.

locals {
  create_build_sa       = var.build_service_account == null
  build_service_account = local.create_build_sa ? google_service_account.build[0].id : var.build_service_account
}

resource "google_service_account" "build" {
  count        = local.create_build_sa ? 1 : 0
  account_id   = "${var.name_prefix}-build"
  display_name = "Smelter function builds"
  description  = "Cloud Build identity for the Smelter functions: reads the source bucket, pushes images to the functions repository, writes logs."
}

resource "google_artifact_registry_repository" "functions" {
  repository_id = "${var.name_prefix}-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the Smelter functions (one per deploy)."

  # Every deploy pushes a new image; old ones are never run again.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.build_images_kept
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "604800s"
    }
  }
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  count  = local.create_build_sa ? 1 : 0
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build[0].email}"
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  count      = local.create_build_sa ? 1 : 0
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build[0].email}"
}

# Build logs: Cloud Logging offers no narrower scope than the project.
resource "google_project_iam_member" "build_log_writer" {
  count   = local.create_build_sa ? 1 : 0
  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build[0].email}"
}
