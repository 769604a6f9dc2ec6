/**
 * `npm run bench:ingest` — Raw → Bronze throughput and memory, on the same deterministic CSV, in one run:
 *
 *   smelter    the full rawToBronze path on the local backend (fs buckets, contract SQL, FIFOs, manifest)
 *   ceiling    DuckDB file → file COPY to Parquet (ZSTD), no contract, no streaming: the upper bound
 *   baseline   a straightforward parquetjs-lite conversion (the plan the product started with)
 *
 * Each variant runs in its own child process, which reports its peak RSS. Options:
 *   --sizes 100,1024   input sizes in MB (default 100,1024)      --quick   10 MB only
 *   --baseline-max 100 largest size (MB) the slow baseline is run on (its rate is extrapolated above)
 *   --runs 3           runs of smelter and ceiling per size, alternating; the median run is reported
 *                      (the baseline runs once: it is 20× slower and its noise does not matter)
 * Prints a table and ends with one JSON line of the figures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckdbConversionEngines } from '../shared/adapters/ingest/duckdb-engine';
import { FsObjectStore } from '../shared/adapters/storage/fs';
import { config, resetConfig } from '../shared/config';
import { rawToBronzeFlow } from '../shared/ingest/bronze';
import { createLogger } from '../shared/log';
import { median, reportResult, runChild, type RunFigures } from './child';
import { rainfallCsvStream, rainfallOptionsForBytes } from '../shared/samples/rainfall';

const MB = 1024 * 1024;
const here = __filename;
const repo = path.resolve(__dirname, '..', __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '');
const dataDir = path.join(repo, 'bench', '.data');

interface ChildResult extends RunFigures {
  rows: number;
  outBytes: number;
}

/** What a variant produced, and when its timed part started. */
interface VariantRun {
  rows: number;
  outBytes: number;
  start: bigint;
}

/** The full rawToBronze path on the local backend; the copy into the raw bucket is not timed. */
async function runSmelter(file: string, work: string): Promise<VariantRun> {
  process.env.SMELTER_HOME = work;
  process.env.SMELTER_LOG_FORMAT = 'silent';
  resetConfig();
  const cfg = config();
  const store = new FsObjectStore(work);
  for (const b of [cfg.rawBucket, cfg.bronzeBucket, cfg.quarantineBucket]) await store.ensureBucket(b);
  // Put the file in the raw bucket (hard link: instant, not timed as part of the conversion).
  const dest = await store.objectPath(cfg.rawBucket, 'rainfall/bench.csv');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.linkSync(file, dest);
  const meta = await store.stat(cfg.rawBucket, 'rainfall/bench.csv');
  if (!meta) throw new Error('raw object missing');
  const start = process.hrtime.bigint();
  const out = await rawToBronzeFlow(
    { bucket: cfg.rawBucket, name: meta.name, generation: meta.generation },
    { cfg, store, log: createLogger({ format: 'silent' }), engines: duckdbConversionEngines },
  );
  if (out.status !== 'converted') throw new Error(`conversion ${out.status}`);
  return { rows: out.manifest.rows, outBytes: out.manifest.output.bytes ?? 0, start };
}

/** DuckDB file → file COPY to Parquet: the upper bound. */
async function runCeiling(file: string, work: string, t0: bigint): Promise<VariantRun> {
  const db = await DuckDBInstance.create(':memory:', { threads: String(os.availableParallelism()) });
  const c = await db.connect();
  const out = path.join(work, 'out.parquet');
  const r = await c.runAndReadAll(
    `COPY (SELECT * FROM read_csv('${file}')) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`,
  );
  const rows = Number(Object.values(r.getRowObjectsJson()[0] ?? {})[0]);
  return { rows, outBytes: fs.statSync(out).size, start: t0 };
}

interface ParquetjsLite {
  ParquetSchema: new (s: unknown) => unknown;
  ParquetWriter: {
    openFile(
      schema: unknown,
      file: string,
    ): Promise<{ appendRow(r: unknown): Promise<void>; close(): Promise<void> }>;
  };
}

/** parquetjs-lite, a row at a time from a hand-split CSV: the plan the product started with. */
async function runBaseline(file: string, work: string, t0: bigint): Promise<VariantRun> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const parquet = require('parquetjs-lite') as ParquetjsLite;
  const schema = new parquet.ParquetSchema({
    station_id: { type: 'UTF8' },
    station_name: { type: 'UTF8' },
    region: { type: 'UTF8' },
    lat: { type: 'DOUBLE' },
    lon: { type: 'DOUBLE' },
    date: { type: 'DATE' },
    rain_mm: { type: 'DOUBLE', optional: true },
    measured_at: { type: 'TIMESTAMP_MILLIS' },
  });
  const out = path.join(work, 'out.parquet');
  const writer = await parquet.ParquetWriter.openFile(schema, out);
  let rows = 0;
  let rest = '';
  let header = true;
  for await (const chunk of fs.createReadStream(file, { encoding: 'utf8', highWaterMark: MB })) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (header) {
        header = false;
        continue;
      }
      if (!line) continue;
      const f = line.split(',');
      await writer.appendRow({
        station_id: f[0],
        station_name: f[1],
        region: f[2],
        lat: Number(f[3]),
        lon: Number(f[4]),
        date: new Date(`${f[5]}T00:00:00Z`),
        ...(f[6] ? { rain_mm: Number(f[6]) } : {}),
        measured_at: new Date(f[7] as string),
      });
      rows++;
    }
  }
  await writer.close();
  return { rows, outBytes: fs.statSync(out).size, start: t0 };
}

const VARIANTS: Record<string, (file: string, work: string, t0: bigint) => Promise<VariantRun>> = {
  smelter: runSmelter,
  ceiling: runCeiling,
  baseline: runBaseline,
};

/** A child process: runs one variant in a scratch folder and reports its figures on stdout. */
async function child(variant: string, file: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `smelter-bench-${variant}-`));
  try {
    const run = VARIANTS[variant];
    if (!run) throw new Error(`unknown variant ${variant}`);
    const r = await run(file, work, t0);
    report(variant, r.rows, r.start, r.outBytes);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function report(variant: string, rows: number, start: bigint, outBytes: number): void {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  const r: ChildResult = { variant, rows, seconds, maxRssMB, outBytes };
  reportResult(r);
}

function runVariant(variant: string, file: string): ChildResult {
  const args = here.endsWith('.ts') ? ['--import', 'tsx', here] : [here];
  return runChild<ChildResult>(variant, [...args, '--child', variant, file], 64 * MB);
}

async function ensureInput(sizeMB: number): Promise<string> {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, `rainfall-${sizeMB}MB.csv`);
  if (!fs.existsSync(file)) {
    process.stderr.write(`generating ${file} …\n`);
    await pipeline(
      rainfallCsvStream({ ...rainfallOptionsForBytes(sizeMB * MB), seed: 42 }),
      fs.createWriteStream(file + '.tmp'),
    );
    fs.renameSync(file + '.tmp', file);
  }
  return file;
}

interface IngestBenchOptions {
  sizes: number[];
  /** Largest size (MB) the slow baseline runs on. */
  baselineMax: number;
  runs: number;
}

function parseOptions(argv: readonly string[]): IngestBenchOptions {
  const flag = (n: string): string | undefined => {
    const i = argv.indexOf(`--${n}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    sizes: argv.includes('--quick') ? [10] : (flag('sizes') ?? '100,1024').split(',').map(Number),
    baselineMax: Number(flag('baseline-max') ?? 100),
    runs: Math.max(1, Number(flag('runs') ?? 3)),
  };
}

interface VariantFigures {
  seconds: number;
  MBps: number;
  peakRssMB: number;
  parquetMB: number;
}

interface SizeFigures {
  inputMB: number;
  rows: number;
  smelter: VariantFigures;
  ceiling: VariantFigures;
  baseline: VariantFigures | null;
  ratioToCeiling: number;
  speedupOverBaseline: number | null;
}

/** One input size: smelter and the ceiling alternately `runs` times (median each), the baseline once. */
async function measureSize(size: number, o: IngestBenchOptions): Promise<SizeFigures> {
  const file = await ensureInput(size);
  const mb = fs.statSync(file).size / MB;
  // Alternate the two so a noisy moment on the machine hits both, and report each one's median run.
  const sm: ChildResult[] = [];
  const ce: ChildResult[] = [];
  for (let i = 0; i < o.runs; i++) {
    sm.push(runVariant('smelter', file));
    ce.push(runVariant('ceiling', file));
  }
  const smelter = median(sm);
  const ceiling = median(ce);
  const baseline = size <= o.baselineMax ? runVariant('baseline', file) : undefined;
  const rate = (r: ChildResult): number => mb / r.seconds;
  const figures = (r: ChildResult, rateDigits: number): VariantFigures => ({
    seconds: +r.seconds.toFixed(2),
    MBps: +rate(r).toFixed(rateDigits),
    peakRssMB: Math.round(r.maxRssMB),
    parquetMB: +(r.outBytes / MB).toFixed(1),
  });
  if (smelter.rows !== ceiling.rows || (baseline && baseline.rows !== smelter.rows))
    throw new Error(
      `row counts differ: smelter ${smelter.rows}, ceiling ${ceiling.rows}, baseline ${baseline?.rows}`,
    );
  return {
    inputMB: Math.round(mb),
    rows: smelter.rows,
    smelter: figures(smelter, 1),
    ceiling: figures(ceiling, 1),
    baseline: baseline ? figures(baseline, 2) : null,
    ratioToCeiling: +(rate(smelter) / rate(ceiling)).toFixed(2),
    speedupOverBaseline: baseline ? +(rate(smelter) / rate(baseline)).toFixed(1) : null,
  };
}

/** The printed table's rows of one size. */
function tableRows(f: SizeFigures): Record<string, unknown>[] {
  const variants = [
    ['smelter rawToBronze', f.smelter],
    ['duckdb COPY (ceiling)', f.ceiling],
    ['parquetjs-lite', f.baseline],
  ] as const;
  return variants.flatMap(([name, r]) =>
    r
      ? [
          {
            input: `${f.inputMB} MB`,
            variant: name,
            seconds: r.seconds,
            'MB/s': r.MBps,
            'peak RSS MB': r.peakRssMB,
            'parquet MB': r.parquetMB,
          },
        ]
      : [],
  );
}

/** The targets over every size: speed against the ceiling and the baseline, peak RSS, and its growth. */
function targetsOf(sz: readonly SizeFigures[]) {
  const first = sz[0];
  const last = sz[sz.length - 1];
  const t = {
    ratioToCeilingMin: Math.min(...sz.map((s) => s.ratioToCeiling)),
    speedupOverBaselineMin: Math.min(
      ...sz.filter((s) => s.speedupOverBaseline !== null).map((s) => s.speedupOverBaseline as number),
    ),
    peakRssMaxMB: Math.max(...sz.map((s) => s.smelter.peakRssMB)),
    rssGrowth: first && last ? +(last.smelter.peakRssMB / first.smelter.peakRssMB).toFixed(2) : null,
  };
  return {
    ...t,
    met: {
      ceiling: t.ratioToCeilingMin >= 0.6,
      baseline: t.speedupOverBaselineMin >= 20,
      rss: t.peakRssMaxMB <= 300,
      flat: (t.rssGrowth as number) <= 1.2,
    },
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1] as string, argv[2] as string);
  const o = parseOptions(argv);
  const rows: Record<string, unknown>[] = [];
  const sizes: Record<string, SizeFigures> = {};
  for (const size of o.sizes) {
    const f = await measureSize(size, o);
    sizes[`${size}MB`] = f;
    rows.push(...tableRows(f));
  }
  const targets = targetsOf(Object.values(sizes));
  const figures = {
    machine: { cpus: os.availableParallelism(), node: process.version },
    sizes,
    targets,
  };
  console.table(rows);
  console.log(
    `targets: ≥0.6× ceiling → ${targets.ratioToCeilingMin}×; ≥20× parquetjs-lite → ${targets.speedupOverBaselineMin}×; peak RSS ≤300 MB → ${targets.peakRssMaxMB} MB; flat (≤1.2×) → ${targets.rssGrowth}×`,
  );
  console.log(JSON.stringify({ bench: 'ingest', ...figures }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
