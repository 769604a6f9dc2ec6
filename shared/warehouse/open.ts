/**
 * Wiring: the warehouse service for the configured backend, one per process (DuckDB allows a single
 * read-write process per file, so the functions, the admin endpoint and the scheduler of one process
 * share it).
 */
import type { Config } from '../config';
import type { Logger } from '../log';
import type { WarehouseEngine } from './engine';
import { Warehouse } from './service';

const cache = new Map<string, Promise<Warehouse>>();

export function createEngine(cfg: Config): Promise<WarehouseEngine> {
  if (cfg.backend === 'gcp') {
    // Loaded lazily: the local backend never pays for the BigQuery client's start-up.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { BigQueryEngine } =
      require('../adapters/warehouse/bigquery') as typeof import('../adapters/warehouse/bigquery');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return Promise.resolve(
      new BigQueryEngine({
        projectId: cfg.project,
        location: cfg.bigqueryLocation,
        prefix: cfg.datasetPrefix,
      }),
    );
  }
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { getLocalWarehouse } =
    require('../adapters/warehouse/duckdb-local') as typeof import('../adapters/warehouse/duckdb-local');
  const { DuckDbEngine } =
    require('../adapters/warehouse/duckdb') as typeof import('../adapters/warehouse/duckdb');
  const { FsObjectStore } = require('../adapters/storage/fs') as typeof import('../adapters/storage/fs');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return getLocalWarehouse(cfg.home, {
    memoryLimit: cfg.warehouseMemoryLimit,
    threads: cfg.duckdbThreads,
  }).then((wh) => new DuckDbEngine(wh, new FsObjectStore(cfg.home)));
}

/** The process's warehouse for this configuration (opened once; ops tables ensured). */
export function openWarehouse(cfg: Config, log: Logger): Promise<Warehouse> {
  const key = `${cfg.backend}|${cfg.backend === 'gcp' ? `${cfg.project}/${cfg.datasetPrefix}` : cfg.home}|${cfg.modelsDir}|${cfg.contractsDir}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () =>
      Warehouse.open({
        engine: await createEngine(cfg),
        contractsDir: cfg.contractsDir,
        modelsDir: cfg.modelsDir,
        latenessMs: cfg.lateness,
        log,
      }))();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Tests: forget opened warehouses (after closing the DuckDB file). */
export function resetWarehouses(): void {
  cache.clear();
}
