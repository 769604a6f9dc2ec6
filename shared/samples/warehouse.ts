/**
 * A warehouse filled with the bundled samples of every domain (rainfall, store, network, e-commerce),
 * written the way the pipeline leaves them: Bronze Parquet objects loaded through the warehouse service
 * and event rows in the event tables, then one refresh. Used by the dashboard's tests, its benchmark
 * and its screenshots; same options → same tables.
 */
import type { ObjectStore } from '../storage/object-store';
import type { Warehouse } from '../warehouse/service';
import { loadDatasetContract } from '../contracts/dataset';
import {
  bronzeObjectName,
  eventInsertSql,
  eventTableDdl,
  readEventContracts,
  writeBronzeParquet,
} from './bronze';
import {
  ecommerceSample,
  networkRows,
  rainfallRows,
  storeSample,
  type EcommerceSample,
  type Row,
  type StoreSample,
} from './domains';

export interface SampleData {
  rainfall: Row[];
  store: StoreSample;
  network: Row[];
  ecommerce: EcommerceSample;
}

/** The default sample rows (the same generators as samples/ and the `up` rainfall sample). */
export function sampleData(): SampleData {
  return {
    rainfall: rainfallRows({ stations: 20, days: 60, start: '2024-01-01' }),
    store: storeSample(),
    network: networkRows(),
    ecommerce: ecommerceSample(),
  };
}

export interface SeedTarget {
  wh: Warehouse;
  store: ObjectStore & { objectPath(bucket: string, name: string): Promise<string> };
  bronzeBucket: string;
  quarantineBucket: string;
  contractsDir: string;
}

/** Rows of the sample rainfall file that rawToBronze would have rejected (the overview shows them). */
export const SAMPLE_REJECTS: readonly { line: number; column: string; reason: string }[] = [
  { line: 14, column: 'rain_mm', reason: "rain_mm: cannot convert 'n/a' to float64" },
  { line: 77, column: 'rain_mm', reason: "rain_mm: cannot convert '--' to float64" },
  { line: 231, column: 'date', reason: 'date: missing required value' },
];

/** Loads `data` into the warehouse (Bronze objects + event rows) and refreshes every model. */
export async function seedWarehouse(t: SeedTarget, data: SampleData = sampleData()): Promise<void> {
  await t.store.ensureBucket(t.bronzeBucket);
  await t.store.ensureBucket(t.quarantineBucket);
  let clock = Date.parse('2024-06-01T00:00:00Z') * 1000;
  const load = async (
    dataset: string,
    rows: readonly Row[],
    rejects: typeof SAMPLE_REJECTS = [],
  ): Promise<void> => {
    clock += 1_000_000;
    const generation = String(clock);
    const base = `${dataset}-sample`;
    const name = bronzeObjectName(dataset, base, generation);
    const stem = name.replace(/\.parquet$/, '');
    const ingestedAt = new Date(clock / 1000 + 2000).toISOString();
    const sourceUri = `gs://raw/${dataset}/${base}`;
    if (rejects.length)
      await t.store.write(
        t.quarantineBucket,
        `${stem}.rejects.ndjson`,
        Buffer.from(
          rejects
            .map((r) => JSON.stringify({ source: sourceUri, ...r, error_type: 'CONTRACT', raw: {} }))
            .join('\n') + '\n',
        ),
      );
    await t.store.write(
      t.bronzeBucket,
      `${stem}.manifest.json`,
      Buffer.from(
        JSON.stringify({
          dataset,
          source: {
            bucket: 'raw',
            name: `${dataset}/${base}`,
            generation,
            uri: sourceUri,
            bytes: 0,
            format: 'json',
            gzip: false,
          },
          output: { bucket: t.bronzeBucket, name, uri: `gs://${t.bronzeBucket}/${name}` },
          rows: rows.length,
          rejected: rejects.length,
          rowsIn: rows.length + rejects.length,
          schema: [],
          engine: { name: 'duckdb', version: 'sample' },
          ingestedAt,
          durationMs: 0,
        }),
      ),
    );
    await writeBronzeParquet({
      contract: loadDatasetContract(t.contractsDir, dataset),
      rows,
      file: await t.store.objectPath(t.bronzeBucket, name),
      sourceUri,
      generation,
      ingestedAt,
    });
    const st = await t.store.stat(t.bronzeBucket, name);
    const r = await t.wh.loadObject({
      bucket: t.bronzeBucket,
      name,
      generation: st?.generation ?? generation,
    });
    if (r.status !== 'loaded') throw new Error(`seeding ${dataset}: ${JSON.stringify(r)}`);
  };
  await load('rainfall', data.rainfall, SAMPLE_REJECTS);
  await load('store_users', data.store.users);
  await load('store_products', data.store.products);
  await load('store_carts', data.store.carts);
  await load('network_measurements', data.network);
  const contracts = readEventContracts(t.contractsDir);
  const engine = t.wh.engine;
  for (const [table, rows] of Object.entries({
    orders: data.ecommerce.orders,
    inventory: data.ecommerce.inventory,
    user_activity: data.ecommerce.user_activity,
  })) {
    const c = contracts.find((x) => x.table === table);
    if (!c) throw new Error(`no event contract for ${table}`);
    await engine.exec(`CREATE SCHEMA IF NOT EXISTS events; ${eventTableDdl(c)}`);
    const ins = eventInsertSql(c, rows);
    try {
      await engine.exec(ins.sql);
    } finally {
      ins.cleanup();
    }
  }
  await t.wh.refresh({ trigger: 'seed' });
  // The analyst's views (routeEvent and `smelter query --role analyst` make them in a running stack).
  await t.wh.refreshMaskedViews();
}
