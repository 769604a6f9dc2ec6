/**
 * The services a runtime hands out and how each is built per backend. This file (with runtime.ts) is
 * the only place that names adapters: domain code receives ports, function roots ask the runtime.
 *
 * | service        | backend=local                                         | backend=gcp                          |
 * | -------------- | ----------------------------------------------------- | ------------------------------------ |
 * | store          | FsObjectStore (`<home>/buckets/<bucket>/…`)           | GcsObjectStore                       |
 * | engines        | in-process DuckDB (file conversions)                  | same                                 |
 * | warehouse      | DuckDB file `<home>/warehouse/smelter.duckdb`         | BigQuery `<prefix>_*` datasets       |
 * | eventWarehouse | DuckDB `events.<table>`                               | BigQuery `<prefix>_events.<table>`   |
 * | eventArchive   | ObjectStore archive bucket                            | same                                 |
 * | deadLetters    | Pub/Sub emulator if PUBSUB_EMULATOR_HOST is set, else `<home>/state/topics/<topic>.ndjson` | Pub/Sub |
 * | eventRouter    | the router over the event services above              | same                                 |
 * | localDuckDb    | opener of the DuckDB file (shared by the warehouse and event tables) | unused                |
 * | pubsub         | Pub/Sub clients (emulator when given its host)        | Pub/Sub                              |
 *
 * SDK-backed adapters are required lazily so the local backend never pays for the Google clients'
 * start-up (and vice versa for DuckDB's native module).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type { Config } from '../config';
import { config } from '../config';
import { EventContractRegistry, type ContractLookup } from '../events/contract';
import type { DeadLetterPublisher, EventArchive, EventWarehouse } from '../events/ports';
import { EventRouter, type RouterOptions } from '../events/router';
import { piiHashKey } from '../governance/key';
import type { ConversionEngines } from '../ingest/ports';
import { createLogger, type Logger } from '../log';
import type { ObjectStore } from '../storage/object-store';
import type { WarehouseEngine } from '../warehouse/engine';
import { Warehouse } from '../warehouse/service';
import type { PubsubClient } from '../adapters/pubsub/client';
import type { LocalWarehouse, LocalWarehouseOptions } from '../adapters/warehouse/duckdb-local';

type Adapters = {
  fs: typeof import('../adapters/storage/fs');
  gcs: typeof import('../adapters/storage/gcs');
  duckdbLocal: typeof import('../adapters/warehouse/duckdb-local');
  duckdbEngine: typeof import('../adapters/warehouse/duckdb');
  bigquery: typeof import('../adapters/warehouse/bigquery');
  ingestEngine: typeof import('../adapters/ingest/duckdb-engine');
  eventsDuckdb: typeof import('../adapters/events/duckdb-warehouse');
  eventsBigquery: typeof import('../adapters/events/bigquery-warehouse');
  archive: typeof import('../adapters/events/archive-store');
  deadLetterFile: typeof import('../adapters/events/dead-letter-file');
  deadLetterPubsub: typeof import('../adapters/events/dead-letter-pubsub');
  pubsub: typeof import('../adapters/pubsub/client');
};
const load = {
  fs: () => require('../adapters/storage/fs') as Adapters['fs'],
  gcs: () => require('../adapters/storage/gcs') as Adapters['gcs'],
  duckdbLocal: () => require('../adapters/warehouse/duckdb-local') as Adapters['duckdbLocal'],
  duckdbEngine: () => require('../adapters/warehouse/duckdb') as Adapters['duckdbEngine'],
  bigquery: () => require('../adapters/warehouse/bigquery') as Adapters['bigquery'],
  ingestEngine: () => require('../adapters/ingest/duckdb-engine') as Adapters['ingestEngine'],
  eventsDuckdb: () => require('../adapters/events/duckdb-warehouse') as Adapters['eventsDuckdb'],
  eventsBigquery: () => require('../adapters/events/bigquery-warehouse') as Adapters['eventsBigquery'],
  archive: () => require('../adapters/events/archive-store') as Adapters['archive'],
  deadLetterFile: () => require('../adapters/events/dead-letter-file') as Adapters['deadLetterFile'],
  deadLetterPubsub: () => require('../adapters/events/dead-letter-pubsub') as Adapters['deadLetterPubsub'],
  pubsub: () => require('../adapters/pubsub/client') as Adapters['pubsub'],
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Opens the local DuckDB file (one instance per process and file; the first opener's options win). */
export type LocalDuckDb = (opts?: LocalWarehouseOptions) => Promise<LocalWarehouse>;

/** A Pub/Sub client for the configured project: real Pub/Sub, or the emulator at `emulatorHost`. */
export type PubsubClients = (opts?: { emulatorHost?: string }) => PubsubClient;

export interface Services {
  config: Config;
  log: Logger;
  store: ObjectStore;
  /** The SQL engine reading raw files (Bronze conversions, contract inference). */
  engines: ConversionEngines;
  /** The Bronze/Silver/Gold warehouse (opened once; ops tables ensured). */
  warehouse: Promise<Warehouse>;
  eventContracts: ContractLookup;
  eventWarehouse: EventWarehouse;
  eventArchive: EventArchive;
  deadLetters: DeadLetterPublisher;
  /** routeEvent's router: one per runtime, so concurrent invocations share its batcher. */
  eventRouter: EventRouter;
  localDuckDb: LocalDuckDb;
  /** Publishing and subscription set-up (the CLI, the local stack); clients are closed with the runtime. */
  pubsub: PubsubClients;
}

export type ServiceName = keyof Services;

/** What a factory can ask of the runtime building it. */
export interface ServiceContext {
  get<K extends ServiceName>(name: K): Services[K];
}

/** A built service and how to release it. */
export interface Built<T> {
  value: T;
  close?: () => Promise<void>;
}

type Factories = { [K in ServiceName]: (rt: ServiceContext) => Built<Services[K]> };

/** Services are closed in this order: users of a resource before the resource. */
export const CLOSE_ORDER: readonly ServiceName[] = [
  'eventRouter',
  'eventWarehouse',
  'deadLetters',
  'eventArchive',
  'warehouse',
  'eventContracts',
  'pubsub',
  'engines',
  'localDuckDb',
  'store',
  'log',
  'config',
];

export function routerOptions(cfg: Config): RouterOptions {
  return {
    maxEventBytes: cfg.maxEventBytes,
    maxEventAgeMs: cfg.maxEventAgeMs,
    batchMaxRows: cfg.batchMaxRows,
    batchMaxMs: cfg.batchMaxMs,
    // DuckDB has one writer: serial flushes group-commit. BigQuery round trips overlap well.
    flushConcurrency: cfg.backend === 'gcp' ? 4 : 1,
  };
}

export function createObjectStore(cfg: Config): ObjectStore {
  if (cfg.backend === 'local') return new (load.fs().FsObjectStore)(cfg.home);
  return new (load.gcs().GcsObjectStore)({ projectId: cfg.project });
}

export function createDeadLetterPublisher(
  cfg: Config,
  env: NodeJS.ProcessEnv = process.env,
): DeadLetterPublisher {
  if (cfg.backend === 'gcp' || env.PUBSUB_EMULATOR_HOST)
    return new (load.deadLetterPubsub().PubSubDeadLetterPublisher)({
      projectId: cfg.project,
      topic: cfg.deadLetterTopic,
      createTopic: cfg.backend === 'local',
    });
  return new (load.deadLetterFile().FileDeadLetterPublisher)(cfg.home, cfg.deadLetterTopic);
}

function createEventWarehouse(rt: ServiceContext): EventWarehouse {
  const cfg = rt.get('config');
  if (cfg.backend === 'local') {
    const open = rt.get('localDuckDb');
    return new (load.eventsDuckdb().DuckDbEventWarehouse)(() => open(localWarehouseOptions(cfg)), undefined, {
      dedupWindowMs: cfg.eventsDedupWindowMs,
    });
  }
  return new (load.eventsBigquery().BigQueryEventWarehouse)({
    projectId: cfg.project,
    datasetId: `${cfg.datasetPrefix}_events`,
    location: cfg.bigqueryLocation,
  });
}

const localWarehouseOptions = (cfg: Config): LocalWarehouseOptions => ({
  memoryLimit: cfg.warehouseMemoryLimit,
  memoryMax: cfg.warehouseMemoryMax,
  threads: cfg.warehouseThreads,
  storageVersion: cfg.warehouseStorageVersion,
});

/** The warehouse engine on GCP (the dashboard reads through it without opening the Warehouse). */
export function bigQueryEngine(cfg: Config): WarehouseEngine {
  return new (load.bigquery().BigQueryEngine)({
    projectId: cfg.project,
    location: cfg.bigqueryLocation,
    prefix: cfg.datasetPrefix,
  });
}

async function createWarehouseEngine(rt: ServiceContext): Promise<WarehouseEngine> {
  const cfg = rt.get('config');
  if (cfg.backend === 'gcp') return bigQueryEngine(cfg);
  const { FsObjectStore } = load.fs();
  const store = rt.get('store');
  // DuckDB reads Bronze Parquet straight from the bucket folder: it needs the filesystem driver.
  const files = store instanceof FsObjectStore ? store : new FsObjectStore(cfg.home);
  const local = await rt.get('localDuckDb')(localWarehouseOptions(cfg));
  return new (load.duckdbEngine().DuckDbEngine)(local, files);
}

/** Closes whatever the returned value was, once (a rejected promise has nothing to close). */
const closing =
  <T>(p: Promise<T>, close: (v: T) => Promise<void>) =>
  async (): Promise<void> => {
    const v = await p.then(
      (x) => x,
      () => undefined,
    );
    if (v !== undefined) await close(v);
  };

export const FACTORIES: Factories = {
  config: () => ({ value: config() }),
  log: () => {
    // Functions log JSON for Cloud Logging; the local stack may ask for text (SMELTER_LOG_FORMAT).
    return { value: createLogger() };
  },
  store: (rt) => ({ value: createObjectStore(rt.get('config')) }),
  engines: () => ({ value: load.ingestEngine().duckdbConversionEngines }),
  localDuckDb: (rt) => {
    const home = rt.get('config').home;
    const opened = new Set<Promise<LocalWarehouse>>();
    return {
      value: (opts) => {
        const p = load.duckdbLocal().getLocalWarehouse(home, opts);
        opened.add(p);
        return p;
      },
      close: async () => {
        for (const p of opened) await closing(p, (w) => w.close())();
        opened.clear();
      },
    };
  },
  warehouse: (rt) => {
    const cfg = rt.get('config');
    const value = (async () =>
      Warehouse.open({
        engine: await createWarehouseEngine(rt),
        contractsDir: cfg.contractsDir,
        modelsDir: cfg.modelsDir,
        latenessMs: cfg.lateness,
        log: rt.get('log'),
      }))();
    return { value, close: closing(value, (w) => w.engine.close()) };
  },
  eventContracts: (rt) => {
    const log = rt.get('log').child({ function: 'routeEvent' });
    return {
      value: new EventContractRegistry(rt.get('config').contractsDir, {
        onProblem: (err) =>
          log.error('event contract unusable; events of this type are retried until it is fixed', {
            error: err,
          }),
      }),
    };
  },
  eventWarehouse: (rt) => {
    const value = createEventWarehouse(rt);
    return { value, close: () => value.close() };
  },
  eventArchive: (rt) => ({
    value: new (load.archive().ObjectStoreArchive)(rt.get('store'), rt.get('config').archiveBucket),
  }),
  deadLetters: (rt) => {
    const value = createDeadLetterPublisher(rt.get('config'));
    return { value, close: () => value.close() };
  },
  pubsub: (rt) => {
    const clients = new Set<PubsubClient>();
    return {
      value: (opts = {}) => {
        const c = new (load.pubsub().PubsubClient)({ projectId: rt.get('config').project, ...opts });
        clients.add(c);
        return c;
      },
      close: async () => {
        await Promise.allSettled([...clients].map((c) => c.close()));
        clients.clear();
      },
    };
  },
  eventRouter: (rt) => {
    const value = new EventRouter(
      {
        contracts: rt.get('eventContracts'),
        warehouse: rt.get('eventWarehouse'),
        archive: rt.get('eventArchive'),
        deadLetters: rt.get('deadLetters'),
        log: rt.get('log').child({ function: 'routeEvent' }),
        piiKey: cachedPiiKey(rt.get('config')),
      },
      routerOptions(rt.get('config')),
    );
    return { value, close: () => value.close() };
  },
};

/** The key of `hash` fields, read once it is first needed (and again after a failure: it may be fixed). */
function cachedPiiKey(cfg: Config): () => string {
  let key: string | undefined;
  return () => (key ??= piiHashKey(cfg));
}
