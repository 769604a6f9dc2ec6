/**
 * A warehouse filled with the bundled samples of every domain (rainfall, store, network, e-commerce),
 * written the way the pipeline leaves them: Bronze Parquet objects loaded through the warehouse service
 * and event rows in the event tables, then one refresh. Used by the dashboard's tests, its benchmark
 * and its screenshots; same options → same tables.
 */
import type { BronzeManifest } from '../ingest/bronze';
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
  // Generations and ingestion times from a fixed clock: same options → same tables.
  let clock = Date.parse('2024-06-01T00:00:00Z') * 1000;
  const bronze: [string, readonly Row[], (typeof SAMPLE_REJECTS)?][] = [
    ['rainfall', data.rainfall, SAMPLE_REJECTS],
    ['store_users', data.store.users],
    ['store_products', data.store.products],
    ['store_carts', data.store.carts],
    ['network_measurements', data.network],
  ];
  for (const [dataset, rows, rejects] of bronze) {
    clock += 1_000_000;
    await loadBronzeSample(t, sampleObject(t, dataset, clock), rows, rejects ?? []);
  }
  await insertEvents(t, {
    orders: data.ecommerce.orders,
    inventory: data.ecommerce.inventory,
    user_activity: data.ecommerce.user_activity,
  });
  await t.wh.refresh({ trigger: 'seed' });
  // The analyst's views (routeEvent and `smelter query --role analyst` make them in a running stack).
  await t.wh.refreshMaskedViews();
}

/** Where and when a sample file was ingested, as rawToBronze would have named it. */
interface SampleObject {
  dataset: string;
  /** The Bronze Parquet object. */
  name: string;
  /** Its name without `.parquet`: the manifest's and rejects' stem. */
  stem: string;
  generation: string;
  ingestedAt: string;
  sourceName: string;
  sourceUri: string;
}

function sampleObject(t: SeedTarget, dataset: string, clockMicros: number): SampleObject {
  const generation = String(clockMicros);
  const base = `${dataset}-sample`;
  const name = bronzeObjectName(dataset, base, generation);
  return {
    dataset,
    name,
    stem: name.replace(/\.parquet$/, ''),
    generation,
    ingestedAt: new Date(clockMicros / 1000 + 2000).toISOString(),
    sourceName: `${dataset}/${base}`,
    sourceUri: `gs://raw/${dataset}/${base}`,
  };
}

/** One sample file through Bronze: its rejects, manifest and Parquet, then the warehouse load. */
async function loadBronzeSample(
  t: SeedTarget,
  o: SampleObject,
  rows: readonly Row[],
  rejects: typeof SAMPLE_REJECTS,
): Promise<void> {
  if (rejects.length)
    await t.store.write(
      t.quarantineBucket,
      `${o.stem}.rejects.ndjson`,
      Buffer.from(
        rejects
          .map((r) => JSON.stringify({ source: o.sourceUri, ...r, error_type: 'CONTRACT', raw: {} }))
          .join('\n') + '\n',
      ),
    );
  await t.store.write(
    t.bronzeBucket,
    `${o.stem}.manifest.json`,
    Buffer.from(JSON.stringify(sampleManifest(t, o, rows.length, rejects.length))),
  );
  await writeBronzeParquet({
    contract: loadDatasetContract(t.contractsDir, o.dataset),
    rows,
    file: await t.store.objectPath(t.bronzeBucket, o.name),
    sourceUri: o.sourceUri,
    generation: o.generation,
    ingestedAt: o.ingestedAt,
  });
  const st = await t.store.stat(t.bronzeBucket, o.name);
  const r = await t.wh.loadObject({
    bucket: t.bronzeBucket,
    name: o.name,
    generation: st?.generation ?? o.generation,
  });
  if (r.status !== 'loaded') throw new Error(`seeding ${o.dataset}: ${JSON.stringify(r)}`);
}

function sampleManifest(t: SeedTarget, o: SampleObject, rows: number, rejected: number): BronzeManifest {
  return {
    dataset: o.dataset,
    source: {
      bucket: 'raw',
      name: o.sourceName,
      generation: o.generation,
      uri: o.sourceUri,
      bytes: 0,
      format: 'json',
      gzip: false,
    },
    output: { bucket: t.bronzeBucket, name: o.name, uri: `gs://${t.bronzeBucket}/${o.name}` },
    rows,
    rejected,
    rowsIn: rows + rejected,
    schema: [],
    engine: { name: 'duckdb', version: 'sample' },
    ingestedAt: o.ingestedAt,
    durationMs: 0,
  };
}

/** Event rows straight into the event tables, as the router would have written them. */
async function insertEvents(t: SeedTarget, tables: Record<string, readonly Row[]>): Promise<void> {
  const contracts = readEventContracts(t.contractsDir);
  for (const [table, rows] of Object.entries(tables)) {
    const c = contracts.find((x) => x.table === table);
    if (!c) throw new Error(`no event contract for ${table}`);
    await t.wh.engine.exec(`CREATE SCHEMA IF NOT EXISTS events; ${eventTableDdl(c)}`);
    const ins = eventInsertSql(c, rows);
    try {
      await t.wh.engine.exec(ins.sql);
    } finally {
      ins.cleanup();
    }
  }
}
