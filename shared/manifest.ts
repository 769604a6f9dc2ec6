/**
 * The trigger manifest: which function listens to which bucket or topic. One source of truth for the
 * local stack (`smelter up` wires watchers and subscriptions from it) and for deploy/ (the Terraform
 * generator and its tests read it).
 */
import type { Config } from './config';

export type BucketRef = 'raw' | 'bronze' | 'quarantine' | 'archive';
export type TopicRef = 'events' | 'refresh' | 'deadLetter' | 'pull';

export type Trigger =
  | { kind: 'storage.finalized'; bucket: BucketRef; eventType: 'google.cloud.storage.object.v1.finalized' }
  | {
      kind: 'pubsub';
      topic: TopicRef;
      eventType: 'google.cloud.pubsub.topic.v1.messagePublished';
      /** Delivery attempts before the subscription's dead-letter policy parks the message. */
      maxDeliveryAttempts: number;
      ackDeadlineSeconds: number;
    }
  | { kind: 'http'; public: false };

export interface FunctionSpec {
  /** Deployed function name (kebab-case). */
  name: string;
  /** Exported handler name registered with functions-framework. */
  entryPoint: 'rawToBronze' | 'ingestHttp' | 'routeEvent' | 'loadWarehouse' | 'pullSource' | 'dashboard';
  signature: 'cloudevent' | 'http';
  /** One or more triggers; each becomes an Eventarc trigger or a Terraform-owned push subscription. */
  triggers: Trigger[];
  /** Defaults for deploy (overridable per function in tfvars). */
  memory: string;
  timeoutSeconds: number;
  maxInstances: number;
  concurrency: number;
  /** Buckets the function reads / writes, topics it publishes to: drives least-privilege IAM. */
  reads: BucketRef[];
  writes: BucketRef[];
  /**
   * Written buckets where every write is create-if-absent (`ifGenerationMatch: 0`): the function gets
   * objectCreator + objectViewer there instead of objectUser, so it can never delete or overwrite.
   */
  createOnly?: BucketRef[];
  publishes: TopicRef[];
  bigquery: 'none' | 'bronze-write' | 'events-write' | 'warehouse' | 'gold-read';
  /** Reads the secrets of the API sources (Secret Manager, one per source). */
  sourceSecrets?: boolean;
  /** Node/V8 flags of the deployed function (`NODE_OPTIONS`). */
  nodeOptions?: string;
  /**
   * Hashes `hash` columns/fields (shared/governance): deploy/ mounts the per-deployment key from Secret
   * Manager as SMELTER_PII_HASH_KEY and lets only this function's account read it.
   */
  piiHashKey?: boolean;
  description: string;
}

const finalized = (bucket: BucketRef): Trigger => ({
  kind: 'storage.finalized',
  bucket,
  eventType: 'google.cloud.storage.object.v1.finalized',
});

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'raw-to-bronze',
    entryPoint: 'rawToBronze',
    signature: 'cloudevent',
    triggers: [finalized('raw')],
    memory: '1Gi',
    timeoutSeconds: 540,
    maxInstances: 20,
    concurrency: 1,
    reads: ['raw'],
    writes: ['bronze', 'quarantine'],
    // Parquet and manifest are written ifAbsent; quarantine records are rewritten on a retry.
    createOnly: ['bronze'],
    publishes: [],
    bigquery: 'none',
    piiHashKey: true,
    description: 'Converts each file dropped in the raw bucket to Parquet in the bronze bucket.',
  },
  {
    name: 'ingest-http',
    entryPoint: 'ingestHttp',
    signature: 'http',
    triggers: [{ kind: 'http', public: false }],
    memory: '512Mi',
    timeoutSeconds: 300,
    maxInstances: 10,
    concurrency: 8,
    reads: [],
    writes: ['raw'],
    createOnly: ['raw'],
    publishes: [],
    bigquery: 'none',
    description: 'Private HTTP upload: streams a posted file into the raw bucket.',
  },
  {
    name: 'route-event',
    entryPoint: 'routeEvent',
    signature: 'cloudevent',
    triggers: [
      {
        kind: 'pubsub',
        topic: 'events',
        eventType: 'google.cloud.pubsub.topic.v1.messagePublished',
        maxDeliveryAttempts: 5,
        ackDeadlineSeconds: 60,
      },
    ],
    memory: '512Mi',
    timeoutSeconds: 60,
    maxInstances: 50,
    concurrency: 80,
    reads: [],
    writes: ['archive'],
    publishes: ['deadLetter'],
    bigquery: 'events-write',
    piiHashKey: true,
    description:
      'Validates backend events and routes them to per-type tables, the archive and the dead letter.',
  },
  {
    name: 'load-warehouse',
    entryPoint: 'loadWarehouse',
    signature: 'cloudevent',
    triggers: [
      finalized('bronze'),
      {
        kind: 'pubsub',
        topic: 'refresh',
        eventType: 'google.cloud.pubsub.topic.v1.messagePublished',
        maxDeliveryAttempts: 5,
        ackDeadlineSeconds: 600,
      },
    ],
    memory: '1Gi',
    timeoutSeconds: 540,
    maxInstances: 5,
    concurrency: 1,
    reads: ['bronze'],
    writes: ['quarantine'],
    publishes: [],
    bigquery: 'warehouse',
    description: 'Loads Bronze Parquet into BigQuery, merges Silver and rebuilds affected Gold partitions.',
  },
  {
    name: 'pull-source',
    entryPoint: 'pullSource',
    signature: 'cloudevent',
    triggers: [
      {
        kind: 'pubsub',
        topic: 'pull',
        eventType: 'google.cloud.pubsub.topic.v1.messagePublished',
        maxDeliveryAttempts: 5,
        ackDeadlineSeconds: 600,
      },
    ],
    memory: '512Mi',
    timeoutSeconds: 540,
    maxInstances: 5,
    concurrency: 1,
    // Bronze holds the pull state and run records (`_pull/<source>/…`) beside the manifests.
    reads: ['bronze'],
    writes: ['raw', 'bronze'],
    // Parts are created with ifGenerationMatch=0; the state and run records in bronze are replaced.
    createOnly: ['raw'],
    publishes: [],
    bigquery: 'none',
    sourceSecrets: true,
    // Keeps V8's young generation at 2 × 4 MB: it would otherwise grow to 32 MB under the page churn
    // (npm run bench:pull — peak RSS flat in the number of records either way, 25 MB lower).
    nodeOptions: '--max-semi-space-size=4',
    description: 'Pulls API sources page by page into gzipped NDJSON parts in the raw bucket, on a schedule.',
  },
  {
    name: 'dashboard',
    entryPoint: 'dashboard',
    signature: 'http',
    triggers: [{ kind: 'http', public: false }],
    memory: '512Mi',
    timeoutSeconds: 60,
    maxInstances: 3,
    concurrency: 40,
    reads: [],
    writes: [],
    publishes: [],
    // Reads the Gold dataset only (its overview's ops/events panels say so on GCP).
    bigquery: 'gold-read',
    description: 'Private read-only web dashboard over the Gold dataset (charts + fixed-query JSON API).',
  },
];

export function bucketName(cfg: Config, ref: BucketRef): string {
  switch (ref) {
    case 'raw':
      return cfg.rawBucket;
    case 'bronze':
      return cfg.bronzeBucket;
    case 'quarantine':
      return cfg.quarantineBucket;
    case 'archive':
      return cfg.archiveBucket;
  }
}

export function topicName(cfg: Config, ref: TopicRef): string {
  switch (ref) {
    case 'events':
      return cfg.eventsTopic;
    case 'refresh':
      return cfg.refreshTopic;
    case 'deadLetter':
      return cfg.deadLetterTopic;
    case 'pull':
      return cfg.pullTopic;
  }
}

export function functionSpec(entryPoint: FunctionSpec['entryPoint']): FunctionSpec {
  const f = FUNCTIONS.find((x) => x.entryPoint === entryPoint);
  if (!f) throw new Error(`No function ${entryPoint} in the manifest`);
  return f;
}
