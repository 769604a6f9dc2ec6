/**
 * One typed table of options, each with its environment variable, default and validator — in the
 * spirit of functions-framework's options table. `loadConfig()` is called once at cold start; an
 * invalid value fails fast with a message naming the variable.
 */
import os from 'node:os';
import path from 'node:path';
import { SmelterError } from './errors';
import { packageRoot } from './paths';

type Parser<T> = (raw: string, env: string) => T;

export interface OptionSpec<T> {
  env: string;
  default: T | ((partial: Record<string, unknown>) => T);
  parse: Parser<T>;
  doc: string;
}

const bad = (env: string, raw: string, expected: string): SmelterError =>
  new SmelterError(
    'CONFIG_INVALID',
    `Invalid value for ${env}: ${JSON.stringify(raw)} (expected ${expected})`,
    {
      details: { variable: env },
    },
  );

export const parsers = {
  oneOf:
    <T extends string>(...values: T[]): Parser<T> =>
    (raw, env) => {
      if ((values as string[]).includes(raw)) return raw as T;
      throw bad(env, raw, `one of ${values.join(', ')}`);
    },
  int:
    (min = 0, max = Number.MAX_SAFE_INTEGER): Parser<number> =>
    (raw, env) => {
      const n = Number(raw);
      if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
        throw bad(env, raw, `an integer in [${min}, ${max}]`);
      return n;
    },
  /** Byte sizes: `1048576`, `512KB`, `64MB`, `5GB` (binary multiples). */
  bytes: (): Parser<number> => (raw, env) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i.exec(raw);
    if (!m) throw bad(env, raw, 'a size such as 1048576, 64MB or 5GB');
    const unit = (m[2] ?? 'b').toLowerCase().replace('i', '');
    const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }[unit] ?? 1;
    return Math.floor(Number(m[1]) * mult);
  },
  str:
    (re?: RegExp, expected = 'a non-empty string'): Parser<string> =>
    (raw, env) => {
      if (raw.length === 0 || (re && !re.test(raw))) throw bad(env, raw, expected);
      return raw;
    },
  bool: (): Parser<boolean> => (raw, env) => {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw bad(env, raw, 'true or false');
  },
  path: (): Parser<string> => (raw, env) => {
    if (!raw) throw bad(env, raw, 'a path');
    return path.resolve(raw);
  },
};

/** A DuckDB memory size (`64MB`, `1.5GiB`). */
const duckdbSize = (example: string): OptionSpec<string>['parse'] =>
  parsers.str(/^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)$/i, `a DuckDB size such as ${example}`);

const bucketName = parsers.str(
  /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/,
  'a bucket name (3-63 chars of a-z, 0-9, ., _, -)',
);
const topicName = parsers.str(/^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$/, 'a Pub/Sub topic name');

export const OPTIONS = {
  backend: {
    env: 'SMELTER_BACKEND',
    default: 'local',
    parse: parsers.oneOf('local', 'gcp'),
    doc: 'Adapters to use: `local` (filesystem buckets, DuckDB, local Pub/Sub) or `gcp` (GCS, BigQuery, Pub/Sub).',
  } as OptionSpec<'local' | 'gcp'>,
  home: {
    env: 'SMELTER_HOME',
    default: () => path.resolve('.smelter'),
    parse: parsers.path(),
    doc: 'Folder holding all local state (buckets, warehouse, event log).',
  } as OptionSpec<string>,
  project: {
    env: 'SMELTER_PROJECT',
    default: () => process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT ?? 'smelter-local',
    parse: parsers.str(/^[a-z][a-z0-9-]{4,29}$/, 'a GCP project id'),
    doc: 'GCP project id (falls back to GOOGLE_CLOUD_PROJECT).',
  } as OptionSpec<string>,
  rawBucket: {
    env: 'SMELTER_RAW_BUCKET',
    default: 'raw',
    parse: bucketName,
    doc: 'Bucket where raw files land.',
  } as OptionSpec<string>,
  bronzeBucket: {
    env: 'SMELTER_BRONZE_BUCKET',
    default: 'bronze',
    parse: bucketName,
    doc: 'Bucket receiving Bronze Parquet.',
  } as OptionSpec<string>,
  quarantineBucket: {
    env: 'SMELTER_QUARANTINE_BUCKET',
    default: 'quarantine',
    parse: bucketName,
    doc: 'Bucket receiving rejected rows and unprocessable files, with reasons.',
  } as OptionSpec<string>,
  archiveBucket: {
    env: 'SMELTER_ARCHIVE_BUCKET',
    default: 'archive',
    parse: bucketName,
    doc: 'Bucket receiving the NDJSON archive of routed events.',
  } as OptionSpec<string>,
  eventsTopic: {
    env: 'SMELTER_EVENTS_TOPIC',
    default: 'events',
    parse: topicName,
    doc: 'Topic of backend events.',
  } as OptionSpec<string>,
  deadLetterTopic: {
    env: 'SMELTER_DEAD_LETTER_TOPIC',
    default: 'events-dead-letter',
    parse: topicName,
    doc: 'Topic receiving invalid events.',
  } as OptionSpec<string>,
  refreshTopic: {
    env: 'SMELTER_REFRESH_TOPIC',
    default: 'refresh',
    parse: topicName,
    doc: 'Topic whose messages trigger a scheduled warehouse refresh.',
  } as OptionSpec<string>,
  pullTopic: {
    env: 'SMELTER_PULL_TOPIC',
    default: 'pull',
    parse: topicName,
    doc: 'Topic whose messages (`{"source": "store"}`, optionally a window) trigger `pullSource` (Cloud Scheduler publishes one per source).',
  } as OptionSpec<string>,
  sourceSecretPrefix: {
    env: 'SMELTER_SOURCE_SECRET_PREFIX',
    default: 'smelter-source-',
    parse: parsers.str(),
    doc: "GCP: Secret Manager id of a source's secret is this prefix + the source name (`SMELTER_SOURCE_<NAME>_TOKEN` takes precedence).",
  } as OptionSpec<string>,
  contractsDir: {
    env: 'SMELTER_CONTRACTS_DIR',
    default: () => path.join(packageRoot, 'contracts'),
    parse: parsers.path(),
    doc: 'Folder of dataset (`datasets/*.json`) and event (`events/*.json`) contracts.',
  } as OptionSpec<string>,
  modelsDir: {
    env: 'SMELTER_MODELS_DIR',
    default: () => path.join(packageRoot, 'models'),
    parse: parsers.path(),
    doc: 'Folder of SQL models (`<dataset>/silver|gold/*.sql`).',
  } as OptionSpec<string>,
  maxEventAgeMs: {
    env: 'SMELTER_MAX_EVENT_AGE_MS',
    default: 6 * 3600_000,
    parse: parsers.int(1000),
    doc: 'Transient failures are retried until the event is this old; then it is recorded (quarantine or dead letter) and acknowledged.',
  } as OptionSpec<number>,
  maxObjectBytes: {
    env: 'SMELTER_MAX_OBJECT_BYTES',
    default: 5 * 1024 ** 3,
    parse: parsers.bytes(),
    doc: 'Largest raw object accepted (bytes as stored, e.g. `5GB`).',
  } as OptionSpec<number>,
  maxDecompressedBytes: {
    env: 'SMELTER_MAX_DECOMPRESSED_BYTES',
    default: 20 * 1024 ** 3,
    parse: parsers.bytes(),
    doc: 'Largest decompressed size of a gzipped object: stops gzip bombs.',
  } as OptionSpec<number>,
  maxDecompressionRatio: {
    env: 'SMELTER_MAX_DECOMPRESSION_RATIO',
    default: 100,
    parse: parsers.int(1),
    doc: 'Largest decompressed ÷ stored size of a gzipped object, checked past the first 16 MiB: stops gzip bombs under the size cap (real CSV and JSON compress 3–20×).',
  } as OptionSpec<number>,
  maxLineBytes: {
    env: 'SMELTER_MAX_LINE_BYTES',
    default: 8 * 1024 ** 2,
    parse: parsers.bytes(),
    doc: 'Longest CSV/NDJSON record accepted; longer ones are rejected.',
  } as OptionSpec<number>,
  duckdbMemoryLimit: {
    env: 'SMELTER_DUCKDB_MEMORY_LIMIT',
    default: '128MB',
    parse: duckdbSize('128MB'),
    doc: "DuckDB's memory_limit for conversions.",
  } as OptionSpec<string>,
  warehouseMemoryLimit: {
    env: 'SMELTER_WAREHOUSE_MEMORY_LIMIT',
    default: '64MB',
    parse: duckdbSize('64MB'),
    doc: "DuckDB's memory_limit for the local warehouse (Bronze loads, Silver merges, Gold rebuilds, event tables): larger work spills to `SMELTER_HOME/tmp/duckdb`.",
  } as OptionSpec<string>,
  warehouseMemoryMax: {
    env: 'SMELTER_WAREHOUSE_MEMORY_MAX',
    default: '512MB',
    parse: duckdbSize('512MB'),
    doc: 'How far the local warehouse may raise its memory_limit, for one statement, when that statement ran out of memory at `SMELTER_WAREHOUSE_MEMORY_LIMIT` even on one thread (a hash aggregate needs memory in proportion to its partitions: a 24 M-row batch needs ~96 MB): it runs again with twice the limit, up to this.',
  } as OptionSpec<string>,
  warehouseStorageVersion: {
    env: 'SMELTER_WAREHOUSE_STORAGE_VERSION',
    default: 'latest',
    parse: parsers.str(/^(latest|v\d+\.\d+\.\d+)$/, 'latest or a DuckDB version such as v1.0.0'),
    doc: "DuckDB storage format the local warehouse writes (`storage_compatibility_version`). `latest` (that of the installed DuckDB) writes tables about 20 % faster than DuckDB's own default (v0.10.2), but an older `duckdb` CLI cannot open the file: set `v0.10.2` to keep it readable by any DuckDB ≥ 0.10. A warehouse file keeps the format it was created with.",
  } as OptionSpec<string>,
  warehouseThreads: {
    env: 'SMELTER_WAREHOUSE_THREADS',
    default: () => Math.max(1, os.availableParallelism()),
    parse: parsers.int(1, 256),
    doc: 'DuckDB threads of the local warehouse (default: one per vCPU).',
  } as OptionSpec<number>,
  piiHashKey: {
    env: 'SMELTER_PII_HASH_KEY',
    default: () => '',
    // Empty means "not set" (the default); a set key must be long enough to be a key.
    parse: (raw, env) => {
      if (raw !== '' && raw.length < 16) throw bad(env, '(hidden)', 'a secret of at least 16 characters');
      return raw;
    },
    doc: 'Key of the HMAC-SHA256 applied to `hash` columns (a secret: Secret Manager on GCP). Locally, when unset, one is generated into `SMELTER_HOME/state/pii-hash-key`. Rotating it changes every hash: re-hash with a backfill.',
  } as OptionSpec<string>,
  duckdbThreads: {
    env: 'SMELTER_DUCKDB_THREADS',
    default: () => Math.max(1, os.availableParallelism()),
    parse: parsers.int(1, 256),
    doc: 'DuckDB threads of conversions (default: one per vCPU).',
  } as OptionSpec<number>,
  preserveRowOrder: {
    env: 'SMELTER_PRESERVE_ROW_ORDER',
    default: false,
    parse: parsers.bool(),
    doc: 'Write Bronze rows in source order. Off, DuckDB transforms and encodes on every thread (about 2× faster); row order is not part of a table anyway.',
  } as OptionSpec<boolean>,
  rowGroupRows: {
    env: 'SMELTER_PARQUET_ROW_GROUP_ROWS',
    default: 122_880,
    parse: parsers.int(1024),
    doc: 'Rows per Parquet row group: bigger groups load faster into BigQuery but DuckDB buffers one group in memory (a group of wide rows also closes at about 16 MB).',
  } as OptionSpec<number>,
  maxHttpUploadBytes: {
    env: 'SMELTER_MAX_UPLOAD_BYTES',
    default: 32 * 1024 ** 2,
    parse: parsers.bytes(),
    doc: 'Largest body accepted by `ingestHttp` (Cloud Run caps requests at 32 MiB; bigger files go to the raw bucket directly).',
  } as OptionSpec<number>,
  maxEventBytes: {
    env: 'SMELTER_MAX_EVENT_BYTES',
    default: 1024 ** 2,
    parse: parsers.bytes(),
    doc: 'Largest event payload accepted by `routeEvent`; larger ones are dead-lettered.',
  } as OptionSpec<number>,
  batchMaxRows: {
    env: 'SMELTER_BATCH_MAX_ROWS',
    default: 500,
    parse: parsers.int(1, 100_000),
    doc: 'Micro-batch flush size for `routeEvent` (1 disables batching).',
  } as OptionSpec<number>,
  eventsDedupWindowMs: {
    env: 'SMELTER_EVENTS_DEDUP_WINDOW_MS',
    default: 600_000,
    parse: parsers.int(1_000, 86_400_000),
    doc: "Local backend: a redelivered event (same event_id) within this window is stored once, like BigQuery's insertId window; Silver removes later duplicates. Costs about 16 bytes of memory per event in the window.",
  } as OptionSpec<number>,
  batchMaxMs: {
    env: 'SMELTER_BATCH_MAX_MS',
    default: 20,
    parse: parsers.int(0, 60_000),
    doc: 'How long `routeEvent` lets events wait for a running flush before taking a free flush slot (flush concurrency > 1, i.e. BigQuery); an idle batcher flushes at once (group commit).',
  } as OptionSpec<number>,
  bigqueryLocation: {
    env: 'SMELTER_BQ_LOCATION',
    default: 'EU',
    parse: parsers.str(),
    doc: 'BigQuery location of the datasets.',
  } as OptionSpec<string>,
  datasetPrefix: {
    env: 'SMELTER_DATASET_PREFIX',
    default: 'smelter',
    parse: parsers.str(/^[A-Za-z_][A-Za-z0-9_]{0,900}$/, 'a BigQuery dataset name prefix'),
    doc: 'Prefix of the BigQuery datasets (`<prefix>_bronze`, `_silver`, `_gold`).',
  } as OptionSpec<string>,
  lateness: {
    env: 'SMELTER_LATENESS_MS',
    default: 3600_000,
    parse: parsers.int(0),
    doc: 'How late an event may arrive and still be included by an incremental refresh.',
  } as OptionSpec<number>,
  localMaxAttempts: {
    env: 'SMELTER_LOCAL_MAX_ATTEMPTS',
    default: 5,
    parse: parsers.int(1, 100),
    doc: 'Local stack: delivery attempts before an event is parked (dead-lettered).',
  } as OptionSpec<number>,
  port: {
    env: 'SMELTER_PORT',
    default: 8080,
    parse: parsers.int(1, 65535),
    doc: 'Local stack: first port; functions are served on consecutive ports.',
  } as OptionSpec<number>,
  refreshIntervalMs: {
    env: 'SMELTER_REFRESH_INTERVAL_MS',
    default: 15_000,
    parse: parsers.int(1000),
    doc: 'Local stack: how often the scheduler publishes a refresh message (Cloud Scheduler does it on GCP).',
  } as OptionSpec<number>,
  localRetryBaseMs: {
    env: 'SMELTER_LOCAL_RETRY_BASE_MS',
    default: 500,
    parse: parsers.int(10, 600_000),
    doc: 'Local stack: first retry delay of a failed delivery (doubles per attempt, capped at 30 s).',
  } as OptionSpec<number>,
  pubsubDelivery: {
    env: 'SMELTER_PUBSUB_DELIVERY',
    default: 'push',
    parse: parsers.oneOf('push', 'relay'),
    doc: 'Local stack with the emulator: its own push subscription (`push`, serial, ~50 events/s) or pull + concurrent push to the same endpoint (`relay`, for high rates).',
  } as OptionSpec<'push' | 'relay'>,
  pubsubEmulator: {
    env: 'SMELTER_PUBSUB_EMULATOR',
    default: 'auto',
    parse: parsers.oneOf('auto', 'on', 'off'),
    doc: 'Local stack: use the Cloud SDK Pub/Sub emulator (`auto` = when installed).',
  } as OptionSpec<'auto' | 'on' | 'off'>,
  logFormat: {
    env: 'SMELTER_LOG_FORMAT',
    default: 'json',
    parse: parsers.oneOf('json', 'text', 'silent'),
    doc: 'Log lines: `json` (one Cloud Logging object per line; the functions), `text` (the CLI sets it) or `silent`.',
  } as OptionSpec<'json' | 'text' | 'silent'>,
  logLevel: {
    env: 'SMELTER_LOG_LEVEL',
    default: 'INFO',
    parse: parsers.oneOf('DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL'),
    doc: 'Lowest severity logged: DEBUG, INFO, NOTICE, WARNING, ERROR or CRITICAL.',
  } as OptionSpec<'DEBUG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR' | 'CRITICAL'>,
  logStderr: {
    env: 'SMELTER_LOG_STDERR',
    default: false,
    parse: parsers.bool(),
    doc: 'Every log line to stderr (the CLI sets it so stdout holds only command output); otherwise only WARNING and above.',
  } as OptionSpec<boolean>,
  debugPipes: {
    env: 'SMELTER_DEBUG_PIPES',
    default: false,
    parse: parsers.bool(),
    doc: 'Debugging: print the state of each DuckDB named-pipe conversion (feed, query, consumer) 2 s after it starts.',
  } as OptionSpec<boolean>,
} as const;

type Options = typeof OPTIONS;
export type Config = { readonly [K in keyof Options]: Options[K] extends OptionSpec<infer T> ? T : never };

/** Parses every option from `env`; throws one CONFIG_INVALID error naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [string, OptionSpec<unknown>][]) {
    if (key in overrides) {
      out[key] = (overrides as Record<string, unknown>)[key];
      continue;
    }
    const raw = env[spec.env];
    if (raw === undefined || raw === '') {
      out[key] =
        typeof spec.default === 'function'
          ? (spec.default as (p: Record<string, unknown>) => unknown)(out)
          : spec.default;
    } else {
      out[key] = spec.parse(raw.trim(), spec.env);
    }
  }
  return Object.freeze(out) as Config;
}

/**
 * One option read straight from the environment, for code that runs before the configuration is read
 * or without it (the logger). An invalid value reads as the default here; `config()` reports it.
 */
export function option<K extends keyof Config>(key: K, env: NodeJS.ProcessEnv = process.env): Config[K] {
  const spec = OPTIONS[key] as unknown as OptionSpec<Config[K]>;
  const fallback = (): Config[K] =>
    typeof spec.default === 'function'
      ? (spec.default as (p: Record<string, unknown>) => Config[K])({})
      : spec.default;
  const raw = env[spec.env];
  if (raw === undefined || raw === '') return fallback();
  try {
    return spec.parse(raw.trim(), spec.env);
  } catch {
    return fallback();
  }
}

let cached: Config | undefined;
/** The process-wide configuration, read once (cold start). */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
/** Tests and the local stack re-read the environment after changing it. */
export function resetConfig(): void {
  cached = undefined;
}

/** Markdown table of every option, for the README (`smelter config --markdown`). */
export function optionsMarkdown(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec<unknown>) => {
    const def = typeof o.default === 'function' ? '(computed)' : JSON.stringify(o.default);
    return `| \`${o.env}\` | ${def} | ${o.doc} |`;
  });
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
