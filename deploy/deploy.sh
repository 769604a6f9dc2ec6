#!/usr/bin/env bash
# Deploys Smelter to Google Cloud with Terraform. See deploy/README.md.
#
#   deploy/deploy.sh [plan|apply|destroy|output] [--var-file FILE] [--yes] [--skip-build]
#   npm run deploy -- apply --yes
#
# Environment:
#   TF_STATE_BUCKET       GCS bucket holding the Terraform state (required, except for `output` after init)
#   TF_STATE_PREFIX       state path inside it (default: smelter/<name_prefix>)
#   CREATE_STATE_BUCKET=1 create TF_STATE_BUCKET (versioned, uniform access, no public access) if missing
#   SKIP_ENABLE_APIS=1    do not run `gcloud services enable` for the required APIs
#   DEPLOY_BUILD_DIR      where the source zip and plan are written (default: deploy/.build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_dir="${DEPLOY_BUILD_DIR:-$here/.build}"

action="apply"
var_file="$here/terraform.tfvars"
yes=0
skip_build=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    plan | apply | destroy | output) action="$1" ;;
    --var-file) var_file="$2"; shift ;;
    --var-file=*) var_file="${1#*=}" ;;
    --yes | -y) yes=1 ;;
    --skip-build) skip_build=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "deploy.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "deploy.sh: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

need terraform "https://developer.hashicorp.com/terraform/install, 1.5 or newer"
if [[ "$action" == "output" ]]; then
  exec terraform -chdir="$here" output
fi
need node "Node.js 20 or newer"
need npm "comes with Node.js"
need gcloud "the Google Cloud CLI: lists the files to upload and enables APIs"

[[ -f "$var_file" ]] || die "no tfvars file at $var_file: copy deploy/terraform.tfvars.example to deploy/terraform.tfvars and edit it"
var_file="$(cd "$(dirname "$var_file")" && pwd)/$(basename "$var_file")"
tfvar() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$var_file" | head -n1; }
project="$(tfvar project)"
region="$(tfvar region)"; region="${region:-europe-west1}"
prefix="$(tfvar name_prefix)"; prefix="${prefix:-smelter}"
[[ -n "$project" ]] || die "$var_file does not set project = \"…\""
[[ -n "${TF_STATE_BUCKET:-}" ]] || die "set TF_STATE_BUCKET to the GCS bucket that holds the Terraform state (see deploy/README.md)"
state_prefix="${TF_STATE_PREFIX:-smelter/$prefix}"

if [[ "$action" != "destroy" && "$skip_build" == 0 ]]; then
  step "Building (npm ci && npm run build)"
  (cd "$root" && npm ci && npm run build)
fi

step "Checking that deploy/generated matches the manifest and contracts"
(cd "$root" && npx --no-install tsx deploy/scripts/generate.ts --check)

step "Packaging the function sources (.gcloudignore applied by gcloud)"
(cd "$root" && npx --no-install tsx deploy/scripts/pack-source.ts --out "$build_dir/source.zip")

if [[ "$action" != "destroy" && "${SKIP_ENABLE_APIS:-0}" != 1 ]]; then
  step "Enabling the required APIs on $project"
  gcloud services enable --project="$project" \
    cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com pubsub.googleapis.com \
    storage.googleapis.com bigquery.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
    cloudscheduler.googleapis.com monitoring.googleapis.com logging.googleapis.com iam.googleapis.com \
    cloudresourcemanager.googleapis.com secretmanager.googleapis.com datacatalog.googleapis.com \
    bigquerydatapolicy.googleapis.com
fi

if ! gcloud storage buckets describe "gs://$TF_STATE_BUCKET" --project="$project" --format='value(name)' >/dev/null 2>&1; then
  [[ "${CREATE_STATE_BUCKET:-0}" == 1 ]] || die "state bucket gs://$TF_STATE_BUCKET not found (or not readable); create it or set CREATE_STATE_BUCKET=1"
  step "Creating the state bucket gs://$TF_STATE_BUCKET"
  gcloud storage buckets create "gs://$TF_STATE_BUCKET" --project="$project" --location="$region" \
    --uniform-bucket-level-access --public-access-prevention
  gcloud storage buckets update "gs://$TF_STATE_BUCKET" --versioning
fi

step "terraform init (state: gs://$TF_STATE_BUCKET/$state_prefix)"
terraform -chdir="$here" init -input=false -reconfigure \
  -backend-config="bucket=$TF_STATE_BUCKET" -backend-config="prefix=$state_prefix"

mkdir -p "$build_dir"
plan_file="$build_dir/tfplan"
plan_args=(-input=false -var-file="$var_file" -var="source_archive=$build_dir/source.zip" -out="$plan_file")
[[ "$action" == "destroy" ]] && plan_args+=(-destroy)
step "terraform plan"
terraform -chdir="$here" plan "${plan_args[@]}"

[[ "$action" == "plan" ]] && exit 0
if [[ "$yes" != 1 ]]; then
  [[ -t 0 ]] || die "not a terminal: re-run with --yes to apply the plan above"
  read -r -p "Apply this plan to $project? [y/N] " answer
  [[ "$answer" == y || "$answer" == Y ]] || die "not applied"
fi
step "terraform apply"
terraform -chdir="$here" apply -input=false "$plan_file"
rm -f "$plan_file"
[[ "$action" == "destroy" ]] || terraform -chdir="$here" output
