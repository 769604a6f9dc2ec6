/**
 * A throwaway local warehouse for tests: temp SMELTER_HOME, filesystem buckets, its own DuckDB file,
 * the repository's models and contracts. Bronze objects are written as rawToBronze lays them out.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../shared/adapters/storage/fs';
import { DuckDbEngine } from '../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, type LocalWarehouse } from '../../shared/adapters/warehouse/duckdb-local';
import { loadDatasetContract } from '../../shared/contracts/dataset';
import { createLogger } from '../../shared/log';
import { packageRoot } from '../../shared/paths';
import {
  bronzeObjectName,
  eventInsertSql,
  eventTableDdl,
  readEventContracts,
  writeBronzeParquet,
  type BronzeFile,
} from '../../shared/samples/bronze';
import type { BronzeObject } from '../../shared/warehouse/loader';
import { Warehouse } from '../../shared/warehouse/service';

export const REPO = packageRoot;
export const BRONZE = 'bronze';

export interface TestWarehouse {
  home: string;
  store: FsObjectStore;
  local: LocalWarehouse;
  engine: DuckDbEngine;
  wh: Warehouse;
  /** Writes a Bronze Parquet object for rows of a dataset and returns its reference. */
  bronze(
    dataset: string,
    rows: readonly Record<string, unknown>[],
    opts?: Partial<Omit<BronzeFile, 'rows' | 'file'>> & { base?: string; at?: number },
  ): Promise<BronzeObject>;
  /**
   * Writes the manifest committing a Bronze object, as rawToBronze does once its counts balance (loads
   * follow manifests); returns the manifest's reference.
   */
  commit(
    o: BronzeObject,
    counts?: { rows: number; rejected?: number; rowsIn?: number },
  ): Promise<BronzeObject>;
  /** Appends rows to an event table (created from contracts/events on first use). */
  events(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  rows(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

let clock = Date.parse('2024-06-01T00:00:00Z') * 1000;

export async function testWarehouse(
  opts: { modelsDir?: string; contractsDir?: string; latenessMs?: number; now?: () => Date } = {},
): Promise<TestWarehouse> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-wh-'));
  const store = new FsObjectStore(home);
  await store.ensureBucket(BRONZE);
  const local = await getLocalWarehouse(home, { threads: 1, memoryLimit: '512MB' });
  const engine = new DuckDbEngine(local, store);
  const contractsDir = opts.contractsDir ?? path.join(REPO, 'contracts');
  const wh = await Warehouse.open({
    engine,
    contractsDir,
    modelsDir: opts.modelsDir ?? path.join(REPO, 'models'),
    latenessMs: opts.latenessMs ?? 2 * 86_400_000,
    log: createLogger({ format: 'silent' }),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const eventContracts = readEventContracts(contractsDir);
  const created = new Set<string>();
  return {
    home,
    store,
    local,
    engine,
    wh,
    async bronze(dataset, rows, o = {}) {
      const contract = o.contract ?? loadDatasetContract(contractsDir, dataset);
      clock += 1_000_000; // 1 s later than the previous object
      const generation = String(o.at ?? clock);
      const base = o.base ?? `${dataset}-${generation}`;
      const name = bronzeObjectName(dataset, base, generation);
      const file = await store.objectPath(BRONZE, name);
      await writeBronzeParquet({
        contract,
        rows,
        file,
        sourceUri: o.sourceUri ?? `gs://raw/${dataset}/${base}.json`,
        generation,
        ingestedAt: o.ingestedAt ?? new Date(Number(BigInt(generation) / 1000n) + 2000).toISOString(),
        ...(o.extraColumns ? { extraColumns: o.extraColumns } : {}),
        ...(o.typeOverrides ? { typeOverrides: o.typeOverrides } : {}),
        ...(o.dropColumns ? { dropColumns: o.dropColumns } : {}),
      });
      const st = await store.stat(BRONZE, name);
      return { bucket: BRONZE, name, generation: st?.generation ?? generation };
    },
    async commit(o, counts) {
      const rows = counts?.rows ?? 0;
      const rejected = counts?.rejected ?? 0;
      const name = o.name.replace(/\.parquet$/, '.manifest.json');
      const manifest = {
        dataset: o.name.split('/')[0],
        output: {
          bucket: o.bucket,
          name: o.name,
          uri: `gs://${o.bucket}/${o.name}`,
          generation: o.generation,
        },
        rows,
        rejected,
        rowsIn: counts?.rowsIn ?? rows + rejected,
      };
      const m = await store.write(o.bucket, name, JSON.stringify(manifest), { ifAbsent: true });
      return { bucket: o.bucket, name, generation: m.generation };
    },
    async events(table, rows) {
      const c = eventContracts.find((x) => x.table === table);
      if (!c) throw new Error(`no event contract for table ${table}`);
      if (!created.has(table)) {
        await engine.exec(`CREATE SCHEMA IF NOT EXISTS events; ${eventTableDdl(c)}`);
        created.add(table);
      }
      if (!rows.length) return;
      const ins = eventInsertSql(c, rows);
      try {
        await engine.exec(ins.sql);
      } finally {
        ins.cleanup();
      }
    },
    rows: (sql) => local.query(sql),
    async close() {
      await local.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
