terraform {
  # optional() object attributes (1.3) and terraform_data (1.4); tested with 1.11 (fmt only).
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8.0"
    }
  }

  # Partial configuration: deploy.sh passes -backend-config="bucket=…" -backend-config="prefix=…".
  backend "gcs" {}
}

provider "google" {
  project        = var.project
  region         = var.region
  default_labels = merge({ app = "smelter", smelter-deployment = var.name_prefix }, var.labels)
}
