# Governance of personal data (contracts declare it per column: shared/governance/sensitivity.ts).
# - The key of `hash` columns: a Secret Manager secret with no version here (the value never passes
#   through Terraform or its state); the operator adds one (deploy/README.md "Governance"). The functions
#   that hash get it as SMELTER_PII_HASH_KEY and are its only accessors (generated/functions.tf.json).
# - Readers: `analysts` and `pii_readers` read Silver and Gold and run queries (jobUser); only the
#   functions' accounts write. The dashboard's account reads as an analyst (masked reader, never the
#   fine-grained reader): generated/functions.tf.json.

variable "analysts" {
  description = "Members who read Silver and Gold with personal data masked (BigQuery masked reader on the data policies), e.g. [\"group:analysts@example.com\"]. Public principals are refused."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.analysts : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", m))])
    error_message = "analysts: members must be user:, group:, serviceAccount:, domain:, principal: or principalSet: identities; allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "pii_readers" {
  description = "Members who read Silver and Gold with personal data in clear (fine-grained reader on the policy tags), e.g. [\"group:support-leads@example.com\"]. Public principals are refused."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.pii_readers : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", m))])
    error_message = "pii_readers: members must be user:, group:, serviceAccount:, domain:, principal: or principalSet: identities; allUsers and allAuthenticatedUsers are not allowed."
  }
}

locals {
  # Data Catalog names locations in lower case (EU → eu); policy tags must live where the tables do.
  governance_location = lower(local.bq_location)
  # Both roles read the same tables; what they see of `mask` columns is decided by the policy tags.
  warehouse_readers = setunion(var.analysts, var.pii_readers)
}

resource "google_secret_manager_secret" "pii_hash_key" {
  secret_id = "${var.name_prefix}-pii-hash-key"
  labels    = { "smelter-governance" = "pii-hash-key" }
  replication {
    auto {}
  }
}

# Read-only and dataset-scoped: Bronze (as ingested), events and ops stay with the functions.
resource "google_bigquery_dataset_iam_member" "readers_silver" {
  for_each   = local.warehouse_readers
  dataset_id = google_bigquery_dataset.silver.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

resource "google_bigquery_dataset_iam_member" "readers_gold" {
  for_each   = local.warehouse_readers
  dataset_id = google_bigquery_dataset.gold.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

# Readers query with their own identity, and a query is a BigQuery job: jobUser exists only at project
# level (it grants running jobs, not reading data; the dataset grants above and the policy tags decide
# what a query can read).
resource "google_project_iam_member" "readers_job_user" {
  for_each = local.warehouse_readers
  project  = var.project
  role     = "roles/bigquery.jobUser"
  member   = each.value
}

# Column-level security: one policy tag per sensitivity class (generated/governance.tf.json, with the
# data policies and reader grants); tables put the tag on `mask` columns (generated/bigquery_tables.tf.json).
resource "google_data_catalog_taxonomy" "personal_data" {
  region                 = local.governance_location
  display_name           = "${var.name_prefix} personal data"
  description            = "Smelter: personal data classes of the contracts' mask columns (shared/governance/sensitivity.ts)."
  activated_policy_types = ["FINE_GRAINED_ACCESS_CONTROL"]
}
