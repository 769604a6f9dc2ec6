# Optional customer-managed encryption: the service agents that encrypt on our behalf get
# encrypter/decrypter on that one key (key-scoped, never project-wide).

data "google_bigquery_default_service_account" "bq" {
  count   = var.kms_key_name == null ? 0 : 1
  project = var.project
}

resource "google_kms_crypto_key_iam_member" "gcs_agent" {
  count         = var.kms_key_name == null ? 0 : 1
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.gcs_service_agent
}

resource "google_kms_crypto_key_iam_member" "pubsub_agent" {
  count         = var.kms_key_name == null ? 0 : 1
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_service_agent
}

resource "google_kms_crypto_key_iam_member" "bigquery_agent" {
  count         = var.kms_key_name == null ? 0 : 1
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_bigquery_default_service_account.bq[0].email}"
}
