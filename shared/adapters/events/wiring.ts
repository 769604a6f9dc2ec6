/**
 * Builds an EventRouter from the configuration — the adapters routeEvent runs with:
 *
 * | part          | backend=local                                   | backend=gcp                          |
 * | ------------- | ----------------------------------------------- | ------------------------------------ |
 * | event tables  | DuckDB `events.<table>` (getLocalWarehouse)     | BigQuery `<prefix>_events.<table>`   |
 * | dead letters  | DuckDB `events.dead_letter`                     | BigQuery `<prefix>_events.dead_letter` |
 * | archive       | ObjectStore (fs bucket `<archiveBucket>`)       | ObjectStore (GCS)                    |
 * | dead-letter topic | Pub/Sub emulator if PUBSUB_EMULATOR_HOST is set, else `<home>/state/topics/<topic>.ndjson` | Pub/Sub |
 *
 * Every part can be overridden (tests, the benchmark).
 */
import type { Config } from '../../config';
import type { Logger } from '../../log';
import { EventContractRegistry, type ContractLookup } from '../../events/contract';
import type { DeadLetterPublisher, EventArchive, EventWarehouse } from '../../events/ports';
import { EventRouter, type RouterOptions } from '../../events/router';
import type { ObjectStore } from '../../storage/object-store';
import { getLocalWarehouse } from '../warehouse/duckdb-local';
import { ObjectStoreArchive } from './archive-store';
import { FileDeadLetterPublisher } from './dead-letter-file';
import { DuckDbEventWarehouse } from './duckdb-warehouse';

export interface EventRouterParts {
  contracts?: ContractLookup;
  warehouse?: EventWarehouse;
  archive?: EventArchive;
  deadLetters?: DeadLetterPublisher;
  now?: () => number;
  options?: Partial<RouterOptions>;
}

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

export function createEventWarehouse(cfg: Config): EventWarehouse {
  if (cfg.backend === 'local')
    return new DuckDbEventWarehouse(
      () =>
        getLocalWarehouse(cfg.home, { memoryLimit: cfg.warehouseMemoryLimit, threads: cfg.duckdbThreads }),
      undefined,
      { dedupWindowMs: cfg.eventsDedupWindowMs },
    );
  // Loaded lazily so the local backend never pays for the BigQuery client's start-up.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BigQueryEventWarehouse } = require('./bigquery-warehouse') as typeof import('./bigquery-warehouse');
  return new BigQueryEventWarehouse({
    projectId: cfg.project,
    datasetId: `${cfg.datasetPrefix}_events`,
    location: cfg.bigqueryLocation,
  });
}

export function createDeadLetterPublisher(
  cfg: Config,
  env: NodeJS.ProcessEnv = process.env,
): DeadLetterPublisher {
  if (cfg.backend === 'gcp' || env.PUBSUB_EMULATOR_HOST) {
    type Mod = typeof import('./dead-letter-pubsub');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { PubSubDeadLetterPublisher } = require('./dead-letter-pubsub') as Mod;
    return new PubSubDeadLetterPublisher({
      projectId: cfg.project,
      topic: cfg.deadLetterTopic,
      createTopic: cfg.backend === 'local',
    });
  }
  return new FileDeadLetterPublisher(cfg.home, cfg.deadLetterTopic);
}

export function createEventRouter(
  rt: { cfg: Config; log: Logger; store: ObjectStore },
  parts: EventRouterParts = {},
): EventRouter {
  const { cfg } = rt;
  const log = rt.log.child({ function: 'routeEvent' });
  const contracts =
    parts.contracts ??
    new EventContractRegistry(cfg.contractsDir, {
      onProblem: (err) =>
        log.error('event contract unusable; events of this type are retried until it is fixed', {
          error: err,
        }),
    });
  return new EventRouter(
    {
      contracts,
      warehouse: parts.warehouse ?? createEventWarehouse(cfg),
      archive: parts.archive ?? new ObjectStoreArchive(rt.store, cfg.archiveBucket),
      deadLetters: parts.deadLetters ?? createDeadLetterPublisher(cfg),
      log,
      ...(parts.now ? { now: parts.now } : {}),
    },
    { ...routerOptions(cfg), ...parts.options },
  );
}
