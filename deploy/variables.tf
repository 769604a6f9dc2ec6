# ---------------------------------------------------------------------------------------------
# Where and what
# ---------------------------------------------------------------------------------------------
variable "project" {
  description = "GCP project id to deploy into."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a GCP project id."
  }
}

variable "region" {
  description = "Region of the functions, buckets, Eventarc triggers and push subscriptions' endpoints."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, service accounts, topics, buckets). Keep it short: service account ids are at most 30 characters."
  type        = string
  default     = "smelter"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,9}$", var.name_prefix))
    error_message = "name_prefix: 2-10 characters of a-z, 0-9 and -, starting with a letter."
  }
}

variable "dataset_prefix" {
  description = "BigQuery dataset prefix (SMELTER_DATASET_PREFIX): datasets are <prefix>_bronze, _silver, _gold, _events. Default: name_prefix with - replaced by _."
  type        = string
  default     = null
  validation {
    condition     = var.dataset_prefix == null || can(regex("^[A-Za-z_][A-Za-z0-9_]{0,900}$", var.dataset_prefix))
    error_message = "dataset_prefix: letters, digits and _."
  }
}

variable "bq_location" {
  description = "BigQuery location (SMELTER_BQ_LOCATION). Default: the options table's default. Must be compatible with region for loads from the buckets (e.g. EU with europe-west1)."
  type        = string
  default     = null
}

variable "labels" {
  description = "Extra labels on every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------
variable "runtime" {
  description = "Cloud Functions runtime. nodejs20 was decommissioned on 2026-10-30; nodejs22 is supported until 2027-10-31, nodejs24 until 2028-10-31."
  type        = string
  default     = "nodejs22"
  validation {
    condition     = can(regex("^nodejs(2[2-9]|[3-9][0-9])$", var.runtime))
    error_message = "runtime must be nodejs22 or newer."
  }
}

variable "function_overrides" {
  description = "Per-function overrides of the manifest defaults, keyed by function name (raw-to-bronze, ingest-http, route-event, load-warehouse). cpu defaults to 1 when concurrency > 1 (Cloud Run requires it), otherwise to the platform default for the memory size."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    max_instances   = optional(number)
    min_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}
}

variable "http_invokers" {
  description = "Members allowed to call each HTTP function, keyed by function name, e.g. { \"ingest-http\" = [\"user:ana@example.com\", \"serviceAccount:uploader@p.iam.gserviceaccount.com\"] }. Public access is refused."
  type        = map(list(string))
  default     = {}
  validation {
    condition = alltrue(flatten([
      for members in values(var.http_invokers) : [
        for m in members : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", m))
      ]
    ]))
    error_message = "http_invokers: members must be user:, group:, serviceAccount:, domain:, principal: or principalSet: identities; allUsers and allAuthenticatedUsers are not allowed."
  }
}

variable "http_ingress" {
  description = "Ingress of HTTP functions (IAM is required either way): ALLOW_INTERNAL_AND_GCLB (default: the VPC and an external HTTPS load balancer), ALLOW_INTERNAL_ONLY, or ALLOW_ALL to accept authenticated calls from anywhere. Event-driven functions are always internal-only."
  type        = string
  default     = "ALLOW_INTERNAL_AND_GCLB"
  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.http_ingress)
    error_message = "http_ingress: ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "extra_env" {
  description = "Extra environment variables for every function (e.g. SMELTER_BATCH_MAX_ROWS). Cannot override the backend, project, bucket, topic or dataset variables Terraform sets."
  type        = map(string)
  default     = {}
  validation {
    condition     = !contains(keys(var.extra_env), "SMELTER_PII_HASH_KEY")
    error_message = "extra_env: SMELTER_PII_HASH_KEY comes from Secret Manager (deploy/README.md, Governance), never from a plain variable."
  }
}

variable "build_service_account" {
  description = "Service account Cloud Build uses to build the functions (projects/P/serviceAccounts/EMAIL). null = a dedicated <name_prefix>-build account created here (source read, image push, log write only)."
  type        = string
  default     = null
}

variable "build_images_kept" {
  description = "Function images kept in the Artifact Registry repository (older ones are deleted after 7 days)."
  type        = number
  default     = 5
}

variable "source_archive" {
  description = "Zip of the function sources. null = deploy/.build/source.zip, written by deploy.sh (deploy/scripts/pack-source.ts) from `gcloud meta list-files-for-upload`, so .gcloudignore applies exactly as in `gcloud functions deploy`."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub delivery
# ---------------------------------------------------------------------------------------------
variable "retry_minimum_backoff" {
  description = "Push subscriptions: first redelivery delay after a failed delivery."
  type        = string
  default     = "10s"
}

variable "retry_maximum_backoff" {
  description = "Push subscriptions: longest redelivery delay (at most 600s)."
  type        = string
  default     = "600s"
}

variable "subscription_retention" {
  description = "How long the function subscriptions keep unacknowledged messages."
  type        = string
  default     = "604800s"
}

variable "dead_letter_retention" {
  description = "How long the dead-letter hold subscription keeps parked messages (at most 31 days)."
  type        = string
  default     = "2678400s"
}

variable "events_topic_retention" {
  description = "Retention on the events topic, so a subscription can be seeked back to replay events after a fix. null disables it."
  type        = string
  default     = "86400s"
}

# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------
variable "kms_key_name" {
  description = "Optional CMEK (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the buckets, topics and datasets. The key must be in a location compatible with region / bq_location."
  type        = string
  default     = null
}

variable "raw_nearline_after_days" {
  description = "Raw objects move to Nearline after this many days (they are the replay source, so they are kept)."
  type        = number
  default     = 30
}

variable "raw_coldline_after_days" {
  description = "Raw objects move to Coldline after this many days."
  type        = number
  default     = 90
}

variable "raw_soft_delete_days" {
  description = "Deleted or overwritten raw objects stay restorable this many days (GCS soft delete; 7-90, 0 disables). Raw files are the replay source of every layer."
  type        = number
  default     = 30
  validation {
    condition     = var.raw_soft_delete_days == 0 || (var.raw_soft_delete_days >= 7 && var.raw_soft_delete_days <= 90)
    error_message = "raw_soft_delete_days: 0, or 7 to 90."
  }
}

variable "raw_versioning" {
  description = "Keep noncurrent generations of raw objects (object versioning). Soft delete already covers deletes and overwrites; versioning keeps every generation until a lifecycle rule removes it."
  type        = bool
  default     = false
}

variable "raw_delete_after_days" {
  description = "Delete raw objects after this many days. null keeps them forever."
  type        = number
  default     = null
}

variable "bronze_nearline_after_days" {
  description = "Bronze Parquet moves to Nearline after this many days (it is loaded into BigQuery within minutes)."
  type        = number
  default     = 30
}

variable "quarantine_delete_after_days" {
  description = "Delete quarantined rows and files after this many days."
  type        = number
  default     = 90
}

variable "archive_coldline_after_days" {
  description = "Event archive objects move to Coldline after this many days."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets and datasets (their contents are lost). Set to true only to tear down."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect BigQuery tables from deletion and from replacement by a schema change Terraform cannot apply in place. Set to false only to tear down."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Scheduling and monitoring
# ---------------------------------------------------------------------------------------------
variable "refresh_schedule" {
  description = "Cron schedule of the warehouse refresh (a message on the refresh topic)."
  type        = string
  default     = "*/15 * * * *"
}

variable "refresh_time_zone" {
  description = "Time zone of refresh_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "refresh_message" {
  description = "JSON body of the scheduled refresh message."
  type        = string
  default     = "{\"reason\":\"schedule\"}"
}

variable "scheduler_region" {
  description = "Cloud Scheduler region. null = region."
  type        = string
  default     = null
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) for the alert policies."
  type        = list(string)
  default     = []
}

variable "error_rate_threshold" {
  description = "Alert when more than this fraction of a function's requests fail (5xx) over 5 minutes."
  type        = number
  default     = 0.05
}

variable "quarantine_alert_threshold" {
  description = "Alert when more than this many loads or batches send rows to quarantine within an hour."
  type        = number
  default     = 10
}

variable "exclude_success_request_logs" {
  description = "Exclude the platform's per-request logs of successful calls to Smelter functions from Cloud Logging (at 10,000 events/s they cost more than everything else). Errors are always kept."
  type        = bool
  default     = true
}
