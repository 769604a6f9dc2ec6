/**
 * Wiring of the dashboard for a configuration: the warehouse it reads (the stack's own engine inside
 * `smelter up`, the DuckDB file opened read-only by `smelter dashboard`, BigQuery on GCP) as `analyst`
 * (personal data masked), the pipeline state of the overview (local buckets and parked deliveries) and
 * the event tables.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { storeHealth, type HealthSource } from '../dashboard/health';
import { DashboardService, type DashboardWarehouse } from '../dashboard/service';
import { listDatasets, loadDatasetContract } from '../contracts/dataset';
import { analystWarehouse } from '../dashboard/analyst';
import { EventContractRegistry, type EventContract } from '../events/contract';
import { maskedColumns } from '../governance/masking';
import { listParked } from '../local/delivery';
import { bigQueryEngine, createObjectStore } from './services';

export interface DashboardWiring {
  service: DashboardService;
  close(): Promise<void>;
}

/** `<name>` of every `<dir>/<name>.json`. */
function listFiles(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Tables holding `mask` columns: Bronze/Silver of datasets and the event tables that declare some. */
function maskedTables(contractsDir: string, events: readonly EventContract[]): Set<string> {
  const out = new Set<string>();
  for (const d of listDatasets(contractsDir)) {
    let masked = false;
    try {
      masked = maskedColumns(loadDatasetContract(contractsDir, d)).length > 0;
    } catch {
      masked = true; // unreadable: assume the worst (its panels fail rather than show clear values)
    }
    if (masked) for (const layer of ['bronze', 'silver']) out.add(`${layer}.${d}`);
  }
  for (const c of events) if (maskedColumns(c).length) out.add(`events.${c.table}`);
  return out;
}

/**
 * The dashboard for `cfg`. `warehouse` overrides the engine (the running stack passes its own, since
 * DuckDB lets one process open the file read-write).
 */
export async function createDashboard(
  cfg: Config,
  opts: { warehouse?: DashboardWarehouse; health?: HealthSource } = {},
): Promise<DashboardWiring> {
  let warehouse = opts.warehouse;
  let close = async (): Promise<void> => undefined;
  if (!warehouse) {
    if (cfg.backend === 'gcp') {
      const engine = bigQueryEngine(cfg);
      warehouse = engine;
      close = () => engine.close();
    } else {
      /* eslint-disable @typescript-eslint/no-require-imports -- loaded lazily: DuckDB is not needed on gcp */
      const { ReadOnlyDuckDb } =
        require('../adapters/warehouse/duckdb-readonly') as typeof import('../adapters/warehouse/duckdb-readonly');
      const { warehouseFile } =
        require('../adapters/warehouse/duckdb-local') as typeof import('../adapters/warehouse/duckdb-local');
      /* eslint-enable @typescript-eslint/no-require-imports */
      const ro = new ReadOnlyDuckDb(warehouseFile(cfg.home));
      warehouse = ro;
      close = () => ro.close();
    }
  }
  // Locally the overview also reads the buckets and the stack's parked deliveries; the deployed
  // dashboard's service account reads the Gold dataset only.
  const health =
    opts.health ??
    (cfg.backend === 'local'
      ? storeHealth({
          store: createObjectStore(cfg),
          bronzeBucket: cfg.bronzeBucket,
          quarantineBucket: cfg.quarantineBucket,
          sources: () => listFiles(path.join(cfg.contractsDir, 'sources')),
          parked: () =>
            listParked(path.join(cfg.home, 'state', 'eventarc')).map((p) => ({
              parkedAt: p.parkedAt,
              id: p.event.id,
              ...(p.event.subject ? { subject: p.event.subject } : {}),
              target: p.target,
              attempts: p.attempts,
              lastError: p.lastError,
            })),
        })
      : undefined);
  const events = new EventContractRegistry(cfg.contractsDir).all();
  const service = new DashboardService({
    warehouse: analystWarehouse(warehouse, maskedTables(cfg.contractsDir, events)),
    ...(health ? { health } : {}),
    eventTables: events.map((c) => c.table),
    // On BigQuery every version check is a billed query (10 MB minimum): at most one per 30 s.
    versionTtlMs: cfg.backend === 'gcp' ? 30_000 : 250,
  });
  return { service, close };
}
