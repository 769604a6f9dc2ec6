# Buckets: uniform bucket-level access, public access prevention enforced, optional CMEK, lifecycle
# rules per role. Regional (var.region) so the Eventarc storage triggers live in the same region.

locals {
  bucket_cmek = var.kms_key_name == null ? [] : [var.kms_key_name]
}

resource "google_storage_bucket" "raw" {
  name                        = "${local.bucket_base}-raw"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy

  dynamic "encryption" {
    for_each = local.bucket_cmek
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Raw files are the replay source: a deleted or overwritten object stays restorable.
  soft_delete_policy {
    retention_duration_seconds = var.raw_soft_delete_days * 86400
  }
  versioning {
    enabled = var.raw_versioning
  }

  # Raw files are the replay source: cheaper classes as they age, deleted only if asked.
  lifecycle_rule {
    condition {
      age                   = var.raw_nearline_after_days
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
  lifecycle_rule {
    condition {
      age                   = var.raw_coldline_after_days
      matches_storage_class = ["NEARLINE"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }
  dynamic "lifecycle_rule" {
    for_each = var.raw_delete_after_days == null ? [] : [var.raw_delete_after_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

resource "google_storage_bucket" "bronze" {
  name                        = "${local.bucket_base}-bronze"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy

  dynamic "encryption" {
    for_each = local.bucket_cmek
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.bronze_nearline_after_days
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

resource "google_storage_bucket" "quarantine" {
  name                        = "${local.bucket_base}-quarantine"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy

  dynamic "encryption" {
    for_each = local.bucket_cmek
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      age = var.quarantine_delete_after_days
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

resource "google_storage_bucket" "archive" {
  name                        = "${local.bucket_base}-archive"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy

  dynamic "encryption" {
    for_each = local.bucket_cmek
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Batches are written hot (Standard has the cheapest writes) and cooled once nobody reads them.
  lifecycle_rule {
    condition {
      age                   = var.archive_coldline_after_days
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

# Function source archives; only Cloud Functions' build reads them.
resource "google_storage_bucket" "source" {
  name                        = "${local.bucket_base}-source"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  dynamic "encryption" {
    for_each = local.bucket_cmek
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}
