# Datasets <prefix>_bronze, _silver, _gold, _events and _ops: one per warehouse layer
# (shared/warehouse/tables.ts LAYERS), named as the functions derive them from SMELTER_DATASET_PREFIX. Bronze, Silver, event and dead-letter tables are generated from the
# contracts into generated/bigquery_tables.tf.json. Gold tables are created by loadWarehouse at run
# time from the SQL models (models/<dataset>/gold/*.sql), so only their dataset is declared here.
# Dataset-level roles for the functions are generated from the manifest.

locals {
  bq_cmek = var.kms_key_name == null ? [] : [var.kms_key_name]
}

resource "google_bigquery_dataset" "bronze" {
  dataset_id                 = "${local.dataset_prefix}_bronze"
  location                   = local.bq_location
  description                = "Smelter Bronze: files as ingested (Parquet loads), may hold duplicates."
  delete_contents_on_destroy = var.force_destroy

  dynamic "default_encryption_configuration" {
    for_each = local.bq_cmek
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.bigquery_agent]
}

resource "google_bigquery_dataset" "silver" {
  dataset_id                 = "${local.dataset_prefix}_silver"
  location                   = local.bq_location
  description                = "Smelter Silver: deduplicated on the contract's primary key, typed and cleaned."
  delete_contents_on_destroy = var.force_destroy

  dynamic "default_encryption_configuration" {
    for_each = local.bq_cmek
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.bigquery_agent]
}

resource "google_bigquery_dataset" "gold" {
  dataset_id                 = "${local.dataset_prefix}_gold"
  location                   = local.bq_location
  description                = "Smelter Gold: business tables built by loadWarehouse from the SQL models."
  delete_contents_on_destroy = var.force_destroy

  dynamic "default_encryption_configuration" {
    for_each = local.bq_cmek
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.bigquery_agent]
}

resource "google_bigquery_dataset" "events" {
  dataset_id                 = "${local.dataset_prefix}_events"
  location                   = local.bq_location
  description                = "Smelter events: one table per event contract, plus dead_letter."
  delete_contents_on_destroy = var.force_destroy

  dynamic "default_encryption_configuration" {
    for_each = local.bq_cmek
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.bigquery_agent]
}

# The loader's own bookkeeping: load ledger, watermarks, audit results, staging tables.
resource "google_bigquery_dataset" "ops" {
  dataset_id                 = "${local.dataset_prefix}_ops"
  location                   = local.bq_location
  description                = "Smelter operations: load ledger, watermarks, audit results (loadWarehouse)."
  delete_contents_on_destroy = var.force_destroy

  dynamic "default_encryption_configuration" {
    for_each = local.bq_cmek
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.bigquery_agent]
}
