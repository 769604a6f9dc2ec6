/**
 * A SMELTER_HOME whose warehouse holds the bundled samples of every domain, and the dashboard served
 * over it the way `smelter dashboard` does (the DuckDB file opened read-only, on an ephemeral port).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../shared/adapters/storage/fs';
import { DuckDbEngine } from '../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse } from '../../shared/adapters/warehouse/duckdb-local';
import { loadConfig, type Config } from '../../shared/config';
import { createDashboard, type DashboardWiring } from '../../shared/composition/dashboard';
import { dashboardHandler } from '../../shared/dashboard/http';
import { createLogger } from '../../shared/log';
import { packageRoot } from '../../shared/paths';
import { sampleData, seedWarehouse, type SampleData } from '../../shared/samples/warehouse';
import { Warehouse } from '../../shared/warehouse/service';
import { serveDashboard, type ServedDashboard } from '../../cli/local/dashboard';

export interface SeededHome {
  home: string;
  cfg: Config;
  data: SampleData;
  /** Opens the warehouse read-write (the dashboard must be closed: one writer per file), runs fn, closes. */
  write<T>(fn: (wh: Warehouse, store: FsObjectStore) => Promise<T>): Promise<T>;
  remove(): void;
}

export async function seededHome(data: SampleData = sampleData()): Promise<SeededHome> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-dash-'));
  const cfg = loadConfig(
    { SMELTER_HOME: home },
    { contractsDir: path.join(packageRoot, 'contracts'), modelsDir: path.join(packageRoot, 'models') },
  );
  const write = async <T>(fn: (wh: Warehouse, store: FsObjectStore) => Promise<T>): Promise<T> => {
    const store = new FsObjectStore(home);
    const local = await getLocalWarehouse(home, { threads: 1, memoryLimit: '512MB' });
    try {
      const wh = await Warehouse.open({
        engine: new DuckDbEngine(local, store),
        contractsDir: cfg.contractsDir,
        modelsDir: cfg.modelsDir,
        latenessMs: 2 * 86_400_000,
        log: createLogger({ format: 'silent' }),
      });
      return await fn(wh, store);
    } finally {
      await local.close();
    }
  };
  await write((wh, store) =>
    seedWarehouse(
      {
        wh,
        store,
        bronzeBucket: cfg.bronzeBucket,
        quarantineBucket: cfg.quarantineBucket,
        contractsDir: cfg.contractsDir,
      },
      data,
    ),
  );
  return { home, cfg, data, write, remove: () => fs.rmSync(home, { recursive: true, force: true }) };
}

export interface ServedHome {
  url: string;
  wiring: DashboardWiring;
  served: ServedDashboard;
  close(): Promise<void>;
}

export async function serveHome(h: SeededHome): Promise<ServedHome> {
  const wiring = await createDashboard(h.cfg);
  const served = await serveDashboard(dashboardHandler(wiring.service), 0);
  return {
    url: served.url,
    wiring,
    served,
    async close() {
      await served.close();
      await wiring.close();
    },
  };
}
