/**
 * The whole local chain as a user runs it — `smelter drop FILE --wait` in a child process (raw → Bronze →
 * Bronze (a view locally) → Silver MERGE → Gold) — side by side with its ceiling: DuckDB doing the same two steps in
 * one process (CSV → Parquet COPY, then load that Parquet into a table of a database file). Runs alternate
 * (chain, ceiling, chain, …) and the median is reported; peak RSS is the worst run (memory is a limit).
 * Each child reports its own peak RSS (`process.resourceUsage().maxRSS`, preloaded with -r) at exit, so the
 * time the process spends after printing its result (closing the warehouse) is part of the chain.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { packageRoot } from '../shared/paths';
import { rainfallCsvStream, rainfallOptionsForBytes } from '../shared/samples/rainfall';

const MB = 1024 * 1024;

export interface ChainRun {
  ms: number;
  peakRssMB: number;
  /** Chain only: from the result line to the process's exit (closing the warehouse). */
  afterResultMs?: number;
}

export interface ChainFigures {
  mb: number;
  rows: number;
  chain: ChainRun;
  ceiling: ChainRun;
  ratioToCeiling: number;
}

/** A preload that writes the process's peak RSS (KB) to $SMELTER_BENCH_RSS_FILE at exit. */
function rssPreload(dir: string): string {
  const file = path.join(dir, 'report-rss.js');
  fs.writeFileSync(
    file,
    "process.on('exit', () => require('fs').writeFileSync(process.env.SMELTER_BENCH_RSS_FILE, String(process.resourceUsage().maxRSS)));\n",
  );
  return file;
}

/** The ceiling: plain DuckDB, default settings, both steps in one process. */
const CEILING = `
const { DuckDBInstance } = require(${JSON.stringify(require.resolve('@duckdb/node-api'))});
(async () => {
  const [csv, dir] = process.argv.slice(1);
  const inst = await DuckDBInstance.create(dir + '/ceiling.duckdb');
  const c = await inst.connect();
  await c.run("COPY (SELECT * FROM read_csv('" + csv + "')) TO '" + dir + "/x.parquet' (FORMAT parquet, COMPRESSION zstd)");
  await c.run("CREATE TABLE rainfall AS SELECT * FROM read_parquet('" + dir + "/x.parquet')");
  c.closeSync();
  inst.closeSync();
})();
`;

function run(
  args: string[],
  env: Record<string, string>,
  rssFile: string,
): Promise<{ ms: number; stdout: string; resultAt?: number; exitAt: number; peakRssMB: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let resultAt: number | undefined;
    let stdout = '';
    const child = spawn(process.execPath, args, {
      cwd: packageRoot,
      env: { ...process.env, ...env, SMELTER_BENCH_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (resultAt === undefined && stdout.includes('\n')) resultAt = performance.now() - t0;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const exitAt = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited ${code}: ${stdout}`));
      const kb = Number(fs.readFileSync(rssFile, 'utf8'));
      resolve({
        ms: exitAt,
        stdout,
        ...(resultAt !== undefined ? { resultAt } : {}),
        exitAt,
        peakRssMB: kb / 1024,
      });
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function chainVsCeiling(mb: number, repeat: number): Promise<ChainFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-bench-chain-'));
  try {
    const csv = path.join(dir, `rainfall-${mb}mb.csv`);
    await pipeline(rainfallCsvStream(rainfallOptionsForBytes(mb * MB)), fs.createWriteStream(csv));
    const preload = rssPreload(dir);
    const rssFile = path.join(dir, 'rss');
    const chains: ChainRun[] = [];
    const ceilings: ChainRun[] = [];
    let rows = 0;
    for (let i = 0; i < repeat; i++) {
      const home = path.join(dir, `home-${i}`);
      const c = await run(
        [
          '-r',
          preload,
          path.join(packageRoot, 'bin', 'smelter.js'),
          'drop',
          csv,
          '--dataset',
          'rainfall',
          '--wait',
          '--json',
        ],
        { SMELTER_HOME: home, SMELTER_LOG_LEVEL: 'ERROR', SMELTER_PUBSUB_EMULATOR: 'off' },
        rssFile,
      );
      rows = Number((JSON.parse(c.stdout.trim().split('\n').pop() ?? '{}') as { rows?: number }).rows ?? 0);
      chains.push({
        ms: c.ms,
        peakRssMB: c.peakRssMB,
        ...(c.resultAt !== undefined ? { afterResultMs: c.exitAt - c.resultAt } : {}),
      });
      fs.rmSync(home, { recursive: true, force: true });
      const cdir = path.join(dir, `ceiling-${i}`);
      fs.mkdirSync(cdir);
      const k = await run(['-r', preload, '-e', CEILING, csv, cdir], {}, rssFile);
      ceilings.push({ ms: k.ms, peakRssMB: k.peakRssMB });
      fs.rmSync(cdir, { recursive: true, force: true });
    }
    const chain: ChainRun = {
      ms: Math.round(median(chains.map((r) => r.ms))),
      peakRssMB: Math.round(Math.max(...chains.map((r) => r.peakRssMB))),
      afterResultMs: Math.round(median(chains.map((r) => r.afterResultMs ?? 0))),
    };
    const ceiling: ChainRun = {
      ms: Math.round(median(ceilings.map((r) => r.ms))),
      peakRssMB: Math.round(Math.max(...ceilings.map((r) => r.peakRssMB))),
    };
    return { mb, rows, chain, ceiling, ratioToCeiling: Math.round((ceiling.ms / chain.ms) * 100) / 100 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
