/**
 * Warehouse benchmark (`npm run bench:warehouse`, or `npx tsx bench/warehouse.ts`), on the local
 * backend (filesystem buckets + DuckDB). Prints a table, then ONE final JSON line with the figures.
 *
 * 1. Drop → Gold latency for 10 MB and 100 MB rainfall CSVs: rawToBronze (the real flow: CSV → Bronze
 *    Parquet) then loadWarehouse's work (Bronze registration, Silver MERGE, every rainfall Gold model), each
 *    into a fresh warehouse.
 * 2. Incremental cost as history grows: with 1×, 10× and 100× files of history already loaded, the
 *    time to load one more file (one day of every station) into Bronze, Silver and Gold. Partition-
 *    scoped merges and rebuilds should keep it nearly flat; the ratio 100×/1× is reported. History is
 *    bulk-loaded as one Bronze file (same tables, much faster to prepare than 100 loads).
 *
 * 3. (first) The whole chain as a user runs it, `smelter drop FILE --wait` in a child process, side by side
 *    with DuckDB doing the same two steps in one process (bench/chain.ts): speed ratio and peak RSS for a
 *    file and one 4× larger.
 *
 * Options: --chain 100,400 (MB; empty to skip), --chain-repeat 3, --sizes 10,100 (MB), --history 1,10,100, --stations 5000 (rows per incremental file),
 * --repeat 3 (incremental samples, median), --quick (2 MB and 1,5×, for a smoke run).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { duckdbConversionEngines } from '../shared/adapters/ingest/duckdb-engine';
import { FsObjectStore } from '../shared/adapters/storage/fs';
import { DuckDbEngine } from '../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse } from '../shared/adapters/warehouse/duckdb-local';
import { loadConfig, type Config } from '../shared/config';
import { loadDatasetContract } from '../shared/contracts/dataset';
import { rawToBronzeFlow } from '../shared/ingest/bronze';
import { createLogger } from '../shared/log';
import { packageRoot } from '../shared/paths';
import { bronzeObjectName, writeBronzeParquet } from '../shared/samples/bronze';
import { rainfallRows } from '../shared/samples/domains';
import { rainfallCsvStream, rainfallOptionsForBytes } from '../shared/samples/rainfall';
import { Warehouse } from '../shared/warehouse/service';
import { chainVsCeiling, type ChainFigures } from './chain';

const MB = 1024 * 1024;
const log = createLogger({ format: 'silent' });

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}
const quick = process.argv.includes('--quick');
const sizes = arg('sizes', quick ? '2' : '10,100')
  .split(',')
  .filter(Boolean)
  .map(Number);
const histories = arg('history', quick ? '1,5' : '1,10,100')
  .split(',')
  .filter(Boolean)
  .map(Number);
const stations = Number(arg('stations', quick ? '500' : '5000'));
const repeat = Number(arg('repeat', '3'));
const chainSizes = arg('chain', quick ? '10,40' : '100,400')
  .split(',')
  .filter(Boolean)
  .map(Number);
const chainRepeat = Number(arg('chain-repeat', quick ? '1' : '3'));

interface Env {
  home: string;
  cfg: Config;
  store: FsObjectStore;
  wh: Warehouse;
  close(): Promise<void>;
}

async function env(): Promise<Env> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-bench-wh-'));
  // The product's defaults (SMELTER_DUCKDB_MEMORY_LIMIT etc.), as a user gets them.
  const cfg = loadConfig(process.env, { home, backend: 'local' });
  const store = new FsObjectStore(home);
  for (const b of [cfg.rawBucket, cfg.bronzeBucket, cfg.quarantineBucket]) await store.ensureBucket(b);
  const local = await getLocalWarehouse(home, {
    memoryLimit: cfg.warehouseMemoryLimit,
    threads: cfg.warehouseThreads,
  });
  const wh = await Warehouse.open({
    engine: new DuckDbEngine(local, store),
    contractsDir: path.join(packageRoot, 'contracts'),
    modelsDir: path.join(packageRoot, 'models'),
    latenessMs: cfg.lateness,
    log,
  });
  return {
    home,
    cfg,
    store,
    wh,
    async close() {
      await local.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round = (x: number): number => Math.round(x);

async function dropToGold(mb: number): Promise<{
  mb: number;
  rows: number;
  csvBytes: number;
  rawToBronzeMs: number;
  loadToGoldMs: number;
  totalMs: number;
}> {
  const e = await env();
  try {
    const name = `rainfall/bench-${mb}mb.csv`;
    await e.store.write(e.cfg.rawBucket, name, rainfallCsvStream(rainfallOptionsForBytes(mb * MB)), {
      contentType: 'text/csv',
    });
    const raw = await e.store.stat(e.cfg.rawBucket, name);
    if (!raw) throw new Error('raw object missing');
    const t0 = performance.now();
    const out = await rawToBronzeFlow(
      { bucket: raw.bucket, name, generation: raw.generation, contentType: 'text/csv' },
      { cfg: e.cfg, store: e.store, log, engines: duckdbConversionEngines },
    );
    const t1 = performance.now();
    if (out.status !== 'converted') throw new Error(`rawToBronze: ${out.status}`);
    const bronze = await e.store.stat(out.manifest.output.bucket, out.manifest.output.name);
    if (!bronze) throw new Error('bronze object missing');
    const res = await e.wh.loadObject({
      bucket: bronze.bucket,
      name: bronze.name,
      generation: bronze.generation,
    });
    const t2 = performance.now();
    if (res.status !== 'loaded') throw new Error(`load: ${res.status}`);
    return {
      mb,
      rows: res.rows,
      csvBytes: raw.size,
      rawToBronzeMs: round(t1 - t0),
      loadToGoldMs: round(t2 - t1),
      totalMs: round(t2 - t0),
    };
  } finally {
    await e.close();
  }
}

async function incremental(history: number): Promise<{
  history: number;
  historyRows: number;
  fileRows: number;
  samplesMs: number[];
  medianMs: number;
}> {
  const e = await env();
  try {
    const contract = loadDatasetContract(path.join(packageRoot, 'contracts'), 'rainfall');
    let gen = BigInt(Date.parse('2024-06-01T00:00:00Z')) * 1000n;
    const write = async (
      rows: ReturnType<typeof rainfallRows>,
      base: string,
    ): Promise<{ bucket: string; name: string; generation: string }> => {
      gen += 1_000_000n;
      const name = bronzeObjectName('rainfall', base, gen.toString());
      await writeBronzeParquet({
        contract,
        rows,
        file: await e.store.objectPath(e.cfg.bronzeBucket, name),
        sourceUri: `gs://${e.cfg.rawBucket}/rainfall/${base}.csv`,
        generation: gen.toString(),
        ingestedAt: new Date(Number(gen / 1000n) + 1000).toISOString(),
      });
      const st = await e.store.stat(e.cfg.bronzeBucket, name);
      return { bucket: e.cfg.bronzeBucket, name, generation: st?.generation ?? gen.toString() };
    };
    // History: `history` files of one day each, bulk-loaded as one object.
    const hist = rainfallRows({ stations, days: history, start: '2020-01-01' });
    const h = await e.wh.loadObject(await write(hist, 'history'));
    if (h.status !== 'loaded') throw new Error('history load failed');
    const samples: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const day = new Date(Date.parse('2020-01-01T00:00:00Z') + (history + i) * 86_400_000)
        .toISOString()
        .slice(0, 10);
      const rows = rainfallRows({ stations, days: 1, start: day, seed: 100 + i });
      const o = await write(rows, `day-${day}`);
      const t0 = performance.now();
      const r = await e.wh.loadObject(o);
      samples.push(round(performance.now() - t0));
      if (r.status !== 'loaded') throw new Error('incremental load failed');
    }
    return {
      history,
      historyRows: hist.length,
      fileRows: stations,
      samplesMs: samples,
      medianMs: median(samples),
    };
  } finally {
    await e.close();
  }
}

/** Section 3: `smelter drop --wait` against the DuckDB ceiling, and its memory as the file grows 4×. */
async function chain(): Promise<Record<string, unknown> | undefined> {
  if (!chainSizes.length) return undefined;
  const runs: ChainFigures[] = [];
  for (const mb of chainSizes) {
    const r = await chainVsCeiling(mb, chainRepeat);
    runs.push(r);
    console.log(
      `drop --wait ${String(mb).padStart(4)} MB: ${r.rows} rows  chain ${r.chain.ms} ms (after result ${r.chain.afterResultMs} ms, peak RSS ${r.chain.peakRssMB} MB)  ceiling ${r.ceiling.ms} ms (peak RSS ${r.ceiling.peakRssMB} MB)  → ${r.ratioToCeiling}× ceiling`,
    );
  }
  const first = runs[0];
  const last = runs[runs.length - 1];
  const rssGrowth =
    first && last ? Math.round((last.chain.peakRssMB / first.chain.peakRssMB) * 100) / 100 : 1;
  const worstRatio = Math.min(...runs.map((r) => r.ratioToCeiling));
  const peak = Math.max(...runs.map((r) => r.chain.peakRssMB));
  console.log(
    `targets: ≥0.6× ceiling → ${worstRatio}×; peak RSS ≤300 MB → ${peak} MB; flat (${last?.mb ?? 0}/${first?.mb ?? 0} MB ≤1.2×) → ${rssGrowth}×`,
  );
  return { runs, worstRatio, peakRssMB: peak, rssGrowth };
}

async function main(): Promise<void> {
  const chainFigures = await chain();
  const drops = [];
  for (const mb of sizes) {
    const r = await dropToGold(mb);
    drops.push(r);
    console.log(
      `drop→Gold ${String(mb).padStart(4)} MB: ${r.rows} rows  rawToBronze ${r.rawToBronzeMs} ms  load+Silver+Gold ${r.loadToGoldMs} ms  total ${r.totalMs} ms`,
    );
  }
  const inc = [];
  for (const hx of histories) {
    const r = await incremental(hx);
    inc.push(r);
    console.log(
      `one more file (${r.fileRows} rows) with ${String(hx).padStart(3)}× history (${r.historyRows} rows): median ${r.medianMs} ms  [${r.samplesMs.join(', ')}]`,
    );
  }
  const first = inc[0]?.medianMs ?? 1;
  const last = inc[inc.length - 1];
  const ratio = last ? Math.round((last.medianMs / first) * 100) / 100 : 1;
  console.log(`incremental cost ratio ${last?.history ?? 0}× / ${inc[0]?.history ?? 0}× history: ${ratio}`);
  console.log(
    JSON.stringify({
      bench: 'warehouse',
      node: process.version,
      cpus: os.availableParallelism(),
      rawToBronzeMemoryLimit: loadConfig(process.env).duckdbMemoryLimit,
      ...(chainFigures ? { chain: chainFigures } : {}),
      dropToGold: drops,
      incremental: {
        fileRows: stations,
        runs: inc.map((r) => ({ history: r.history, historyRows: r.historyRows, medianMs: r.medianMs })),
        ratio,
      },
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
