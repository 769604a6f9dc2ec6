# Shared wiring. Per-function resources (service accounts, IAM, functions, push subscriptions) are in
# generated/functions.tf.json and the BigQuery tables in generated/bigquery_tables.tf.json, both written
# by deploy/scripts/generate.ts from shared/manifest.ts, shared/config.ts and contracts/.

data "google_project" "this" {
  project_id = var.project
}

# Creates the Cloud Storage service agent if it does not exist yet.
data "google_storage_project_service_account" "gcs" {
  project = var.project
}

locals {
  bucket_base    = "${var.project}-${var.name_prefix}"
  dataset_prefix = coalesce(var.dataset_prefix, replace(var.name_prefix, "-", "_"))
  bq_location    = coalesce(var.bq_location, local.config_defaults.bq_location)
  source_archive = coalesce(var.source_archive, "${path.module}/.build/source.zip")

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  gcs_service_agent    = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"

  # Manifest defaults (generated) with the per-function overrides applied.
  function_concurrency = {
    for name, d in local.function_defaults :
    name => coalesce(try(var.function_overrides[name].concurrency, null), d.concurrency)
  }
  functions = {
    for name, d in local.function_defaults : name => {
      memory          = coalesce(try(var.function_overrides[name].memory, null), d.memory)
      timeout_seconds = coalesce(try(var.function_overrides[name].timeout_seconds, null), d.timeout_seconds)
      max_instances   = coalesce(try(var.function_overrides[name].max_instances, null), d.max_instances)
      min_instances   = coalesce(try(var.function_overrides[name].min_instances, null), 0)
      concurrency     = local.function_concurrency[name]
      # Cloud Run serves more than one request per instance only with at least 1 vCPU; null = the
      # platform default for the memory size. (try() falls back when coalesce finds no override.)
      cpu = try(coalesce(var.function_overrides[name].cpu), local.function_concurrency[name] > 1 ? "1" : null)
    }
  }
}

# Fails the plan on a typo in function_overrides / http_invokers instead of silently ignoring it.
resource "terraform_data" "check_function_names" {
  lifecycle {
    precondition {
      condition     = length(setsubtract(keys(var.function_overrides), keys(local.function_defaults))) == 0
      error_message = "function_overrides has unknown function names: ${join(", ", setsubtract(keys(var.function_overrides), keys(local.function_defaults)))}."
    }
    precondition {
      condition     = length(setsubtract(keys(var.http_invokers), keys(local.function_defaults))) == 0
      error_message = "http_invokers has unknown function names: ${join(", ", setsubtract(keys(var.http_invokers), keys(local.function_defaults)))}."
    }
  }
}

# The function source: a zip of exactly the files `gcloud functions deploy` would upload (.gcloudignore
# applied), built by deploy.sh. Its md5 is in the name, so a change rebuilds the functions.
resource "google_storage_bucket_object" "source" {
  name   = "functions/source-${filemd5(local.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = local.source_archive
}
