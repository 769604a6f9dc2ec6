/**
 * How the trigger manifest and the options table map onto Terraform addresses. The generator and the
 * deploy tests both go through this module, so a bucket or topic ref has exactly one Terraform name.
 */
import { OPTIONS, type Config } from '../../shared/config';
import type { Layer } from '../../shared/warehouse/tables';
import {
  FUNCTIONS,
  bucketName,
  topicName,
  type BucketRef,
  type FunctionSpec,
  type TopicRef,
  type Trigger,
} from '../../shared/manifest';

/** Exhaustive lists of the refs (a missing or extra key is a type error). */
const BUCKETS: Record<BucketRef, true> = { raw: true, bronze: true, quarantine: true, archive: true };
const TOPICS: Record<TopicRef, true> = { events: true, refresh: true, deadLetter: true, pull: true };
export const BUCKET_REFS = Object.keys(BUCKETS) as BucketRef[];
export const TOPIC_REFS = Object.keys(TOPICS) as TopicRef[];

/** Warehouse layers; on BigQuery each is the dataset `<prefix>_<layer>` (shared/warehouse/dialect.ts). */
export { LAYERS as BQ_LAYERS } from '../../shared/warehouse/tables';
export type BqLayer = Layer;

/** `deadLetter` → `dead_letter`, `raw-to-bronze` → `raw_to_bronze`. */
export function snake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();
}

export const bucketAddress = (ref: BucketRef): string => `google_storage_bucket.${snake(ref)}`;
export const topicAddress = (ref: TopicRef): string => `google_pubsub_topic.${snake(ref)}`;
export const datasetAddress = (layer: BqLayer): string => `google_bigquery_dataset.${layer}`;
export const functionKey = (f: FunctionSpec): string => snake(f.name);
export const functionAddress = (f: FunctionSpec): string =>
  `google_cloudfunctions2_function.${functionKey(f)}`;
/** The identity a function runs as. */
export const runtimeSaAddress = (f: FunctionSpec): string => `google_service_account.fn_${functionKey(f)}`;
/** The identity Eventarc and the push subscriptions use to invoke a function (run.invoker on it only). */
export const invokerSaAddress = (f: FunctionSpec): string => `google_service_account.inv_${functionKey(f)}`;
export const subscriptionKey = (f: FunctionSpec, topic: TopicRef): string =>
  `${functionKey(f)}_${snake(topic)}`;

export const ref = (address: string, attr: string): string => `\${${address}.${attr}}`;

export type StorageTrigger = Extract<Trigger, { kind: 'storage.finalized' }>;
export type PubsubTrigger = Extract<Trigger, { kind: 'pubsub' }>;
export const storageTriggers = (f: FunctionSpec): StorageTrigger[] =>
  f.triggers.filter((t): t is StorageTrigger => t.kind === 'storage.finalized');
export const pubsubTriggers = (f: FunctionSpec): PubsubTrigger[] =>
  f.triggers.filter((t): t is PubsubTrigger => t.kind === 'pubsub');
export const isHttp = (f: FunctionSpec): boolean => f.triggers.some((t) => t.kind === 'http');
export const hasEventTrigger = (f: FunctionSpec): boolean =>
  storageTriggers(f).length + pubsubTriggers(f).length > 0;

/**
 * The options-table key behind a bucket or topic ref, found by running the manifest's own mapper over
 * a config whose every value is its key — so this module never restates that mapping.
 */
const keyConfig = new Proxy({}, { get: (_t, key) => key }) as unknown as Config;
export function bucketOption(refName: BucketRef): keyof typeof OPTIONS {
  return bucketName(keyConfig, refName) as keyof typeof OPTIONS;
}
export function topicOption(refName: TopicRef): keyof typeof OPTIONS {
  return topicName(keyConfig, refName) as keyof typeof OPTIONS;
}

/** Environment every deployed function gets: backend, project, every bucket and topic, BigQuery naming. */
export function functionEnvironment(): Record<string, string> {
  const env: Record<string, string> = {
    [OPTIONS.backend.env]: 'gcp',
    [OPTIONS.project.env]: '${var.project}',
  };
  for (const b of BUCKET_REFS) env[OPTIONS[bucketOption(b)].env] = ref(bucketAddress(b), 'name');
  for (const t of TOPIC_REFS) env[OPTIONS[topicOption(t)].env] = ref(topicAddress(t), 'name');
  env[OPTIONS.datasetPrefix.env] = '${local.dataset_prefix}';
  // deploy/scripts/render-sources.ts names each source's secret <name_prefix>-source-<source>.
  env[OPTIONS.sourceSecretPrefix.env] = '${var.name_prefix}-source-';
  env[OPTIONS.bigqueryLocation.env] = '${local.bq_location}';
  return env;
}

/** The Secret Manager secret holding the key of `hash` columns (deploy/governance.tf; no version in Terraform). */
export const PII_HASH_KEY_SECRET = 'google_secret_manager_secret.pii_hash_key';
/** The variable the functions read it from (shared/governance/key.ts). */
export const PII_HASH_KEY_ENV = 'SMELTER_PII_HASH_KEY';

/** The personal-data taxonomy (deploy/governance.tf) and, per sensitivity class, its tag and data policy. */
export const TAXONOMY = 'google_data_catalog_taxonomy.personal_data';
export const policyTagAddress = (cls: string): string => `google_data_catalog_policy_tag.${cls}`;
export const dataPolicyAddress = (cls: string): string => `google_bigquery_datapolicy_data_policy.${cls}`;
/**
 * Functions that read `mask` columns in clear: the warehouse loader MERGEs Bronze into Silver and runs
 * the audits, so it holds fine-grained reader on the whole taxonomy (a masked read would corrupt Silver).
 */
export const readsClearPersonalData = (f: FunctionSpec): boolean => f.bigquery === 'warehouse';
/**
 * Functions that read as an analyst: the dashboard holds masked reader on every data policy, so a
 * `mask` column it may ever read shows masked (it never gets the fine-grained reader).
 */
export const readsMaskedPersonalData = (f: FunctionSpec): boolean => f.bigquery === 'gold-read';

export type StorageRole =
  'roles/storage.objectViewer' | 'roles/storage.objectCreator' | 'roles/storage.objectUser';
/**
 * Bucket roles from the manifest: read-only buckets get objectViewer; create-only buckets objectCreator
 * plus objectViewer (the functions stat and read what they wrote to stay idempotent, but cannot delete
 * or overwrite); other written buckets objectUser (GCS needs delete permission to overwrite an object).
 */
export function bucketRoles(f: FunctionSpec): { bucket: BucketRef; role: StorageRole }[] {
  const rolesFor = (bucket: BucketRef): StorageRole[] => {
    if (!f.writes.includes(bucket)) return ['roles/storage.objectViewer'];
    if (f.createOnly?.includes(bucket)) return ['roles/storage.objectCreator', 'roles/storage.objectViewer'];
    return ['roles/storage.objectUser'];
  };
  return BUCKET_REFS.filter((b) => f.reads.includes(b) || f.writes.includes(b)).flatMap((bucket) =>
    rolesFor(bucket).map((role) => ({ bucket, role })),
  );
}

export type DatasetRole = 'roles/bigquery.dataEditor' | 'roles/bigquery.dataViewer';
/**
 * BigQuery access from the manifest's `bigquery` field. Only functions that run jobs (load, query,
 * MERGE) get roles/bigquery.jobUser, which exists only at project level; the router streams rows
 * (tabledata.insertAll / Storage Write API), which needs table-level data access only.
 */
export const BIGQUERY_ACCESS: Record<
  FunctionSpec['bigquery'],
  { datasets: { layer: BqLayer; role: DatasetRole }[]; jobUser: boolean }
> = {
  none: { datasets: [], jobUser: false },
  'bronze-write': { datasets: [{ layer: 'bronze', role: 'roles/bigquery.dataEditor' }], jobUser: true },
  'events-write': { datasets: [{ layer: 'events', role: 'roles/bigquery.dataEditor' }], jobUser: false },
  // The dashboard: reads Gold tables and their metadata (__TABLES__ for cache versions), runs queries.
  'gold-read': { datasets: [{ layer: 'gold', role: 'roles/bigquery.dataViewer' }], jobUser: true },
  warehouse: {
    datasets: [
      { layer: 'bronze', role: 'roles/bigquery.dataEditor' },
      { layer: 'silver', role: 'roles/bigquery.dataEditor' },
      { layer: 'gold', role: 'roles/bigquery.dataEditor' },
      { layer: 'events', role: 'roles/bigquery.dataViewer' },
      // Load ledger, watermarks, audit results and staging tables (shared/warehouse/tables.ts OPS).
      { layer: 'ops', role: 'roles/bigquery.dataEditor' },
    ],
    jobUser: true,
  },
};

export { FUNCTIONS };
export type { FunctionSpec, BucketRef, TopicRef };
