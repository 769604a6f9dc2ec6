import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pullFromConfig } from '../../shared/composition/pull';
import { closeRuntime, runtime } from '../../shared/composition/runtime';
import type { Config } from '../../shared/config';
import { isSmelterError } from '../../shared/errors';
import { bronzeNames, type BronzeManifest } from '../../shared/ingest/bronze';
import { runningStack, type StackInfo } from '../../shared/local/stack';
import type { Logger } from '../../shared/log';
import type { PullSummary } from '../../shared/pull/run';
import { readObjectJson, type ObjectStore } from '../../shared/storage/object-store';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { callAdmin } from '../local/admin';
import { startLocalStack, type LocalStack } from '../local/stack';

/** Written by `smelter up` while it serves the demo API: the source URLs/tokens it points the stack at. */
export const demoApiFile = (home: string): string => path.join(home, 'state', 'demo-api.json');

/** The running stack's demo-API source settings, for variables this process does not set itself. */
function stackSourceEnv(home: string): void {
  try {
    const info = JSON.parse(fs.readFileSync(demoApiFile(home), 'utf8')) as {
      pid: number;
      env: Record<string, string>;
    };
    process.kill(info.pid, 0);
    for (const [k, v] of Object.entries(info.env)) process.env[k] ||= v;
  } catch {
    /* no stack serving the demo API */
  }
}

export interface DatasetRows {
  records: number;
  objects: number;
  /** Bronze rows and rejected records of this pull's parts (after --wait). */
  rows?: number;
  rejected?: number;
  /** Rows of the Silver table after the load (after --wait). */
  silverRows?: number;
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Waits until every part of a pull is in Bronze (manifest or quarantine record) and every Bronze
 * object of it is loaded through Silver and Gold (`done` in the load ledger).
 */
async function waitForPull(
  o: {
    cfg: Config;
    store: ObjectStore;
    summary: PullSummary;
    query: (sql: string) => Promise<{ columns: string[]; rows: unknown[][] }>;
    timeoutMs: number;
    tick?: (what: string) => void;
  },
  out: Record<string, DatasetRows>,
): Promise<void> {
  const { cfg, store, summary } = o;
  const started = Date.now();
  const pending = new Map<string, { dataset: string; manifest: string; failed: string }>();
  for (const [dataset, d] of Object.entries(summary.datasets))
    for (const name of d.objects) {
      const meta = await store.stat(cfg.rawBucket, name);
      if (!meta) throw new Error(`pulled part gs://${cfg.rawBucket}/${name} is gone`);
      const n = bronzeNames({ bucket: cfg.rawBucket, name, generation: meta.generation });
      pending.set(name, { dataset, manifest: n.manifest, failed: `${n.failed}/error.json` });
    }
  const outputs = new Map<string, string>();
  const check = (): void => {
    if (Date.now() - started > o.timeoutMs)
      throw new Error(
        `timed out after ${o.timeoutMs / 1000} s waiting for the pulled records in Silver and Gold`,
      );
  };
  while (pending.size) {
    for (const [name, p] of [...pending]) {
      const m = await readObjectJson<BronzeManifest>(store, cfg.bronzeBucket, p.manifest);
      if (m) {
        const d = out[p.dataset] as DatasetRows;
        d.rows = (d.rows ?? 0) + m.rows;
        d.rejected = (d.rejected ?? 0) + m.rejected;
        outputs.set(m.output.name, p.dataset);
        pending.delete(name);
        continue;
      }
      const failed = await readObjectJson<{ error: { code: string; message: string } }>(
        store,
        cfg.quarantineBucket,
        p.failed,
      );
      if (failed)
        throw new Error(
          `gs://${cfg.rawBucket}/${name} was quarantined: ${failed.error.code}: ${failed.error.message}`,
        );
    }
    if (!pending.size) break;
    check();
    o.tick?.(`converting ${pending.size} part${pending.size === 1 ? '' : 's'} to Bronze`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const names = [...outputs.keys()];
  for (let i = 0; names.length; i++) {
    const res = await o.query(
      `SELECT name, status, error FROM ops.load_ledger WHERE bucket = ${sqlString(cfg.bronzeBucket)} AND name IN (${names.map(sqlString).join(', ')})`,
    );
    const by = new Map(res.rows.map((r) => [String(r[0]), { status: String(r[1]), error: r[2] }]));
    const bad = [...by.entries()].find(([, v]) => v.status === 'failed' || v.status === 'blocked');
    if (bad)
      throw new Error(
        `loading gs://${cfg.bronzeBucket}/${bad[0]} ${bad[1].status}: ${String(bad[1].error ?? '')}`,
      );
    const left = names.filter((n) => by.get(n)?.status !== 'done');
    if (!left.length) break;
    check();
    o.tick?.(`loading ${left.length} Bronze object${left.length === 1 ? '' : 's'} into Silver and Gold`);
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const dataset of Object.keys(out)) {
    try {
      const r = await o.query(`SELECT COUNT(*) AS n FROM silver.${dataset}`);
      out[dataset]!.silverRows = Number(r.rows[0]?.[0] ?? 0);
    } catch {
      /* a dataset without a Silver table */
    }
  }
}

/** One `smelter pull` run: its options, services, the stack it follows and its clock. */
interface PullJob {
  source: string;
  from: string | undefined;
  to: string | undefined;
  json: boolean;
  wait: boolean;
  timeoutMs: number;
  cfg: Config;
  log: Logger;
  store: ObjectStore;
  /** The stack another process runs, if any. */
  running: StackInfo | undefined;
  /** The stack this process started for --wait, if any. */
  local: LocalStack | undefined;
  tty: boolean;
  started: number;
  now: () => number;
}

/** Options, buckets, and (for --wait without a running stack) the functions brought up in this process. */
async function preparePull(
  args: string[],
  flags: Record<string, string | boolean>,
  now: () => number,
): Promise<PullJob> {
  const source = args[0];
  if (!source) throw new Error('usage: smelter pull SOURCE [--from DATE --to DATE] [--wait] [--json]');
  const { cfg, log } = cliEnv();
  const json = Boolean(flags.json);
  const wait = Boolean(flags.wait);
  if (wait && cfg.backend !== 'local')
    throw new Error('--wait follows the local stack; on GCP the deployed functions load the parts');
  const from = flagString(flags, 'from');
  const to = flagString(flags, 'to');
  const { store } = runtime();
  await store.ensureBucket(cfg.rawBucket);
  await store.ensureBucket(cfg.bronzeBucket);
  const running = cfg.backend === 'local' ? runningStack(cfg.home) : undefined;
  if (running) stackSourceEnv(cfg.home);
  // Without a running stack, --wait brings the functions up in this process (as `drop --wait`).
  const local =
    wait && !running
      ? await startLocalStack({ cfg, log: log.child({}), ephemeral: true, pollMs: 200 })
      : undefined;
  const tty = process.stderr.isTTY && !json;
  const timeoutMs = Number(flagString(flags, 'timeout') ?? 3600) * 1000;
  return {
    source,
    from,
    to,
    json,
    wait,
    timeoutMs,
    cfg,
    log,
    store,
    running,
    local,
    tty,
    started: now(),
    now,
  };
}

/** The progress line on a terminal, with the time since the run started. */
const statusLine =
  (job: PullJob) =>
  (line: string): void => {
    if (job.tty) process.stderr.write(`\r\x1b[K${line} ${((job.now() - job.started) / 1000).toFixed(1)} s`);
  };

/** Runs the pull into the raw bucket; a Smelter error surfaces as a plain error carrying its code. */
async function pullParts(job: PullJob): Promise<PullSummary> {
  const { cfg, log, store, source, from, to } = job;
  const stamp = new Date(job.now()).toISOString().replace(/[-:]/g, '').slice(0, 15);
  const run = `cli-${stamp}Z-${randomBytes(3).toString('hex')}`;
  const status = statusLine(job);
  try {
    return await pullFromConfig(
      { cfg, log, store },
      {
        source,
        run,
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        onProgress: (p) =>
          status(`pulling ${source}: ${p.endpoint} ${p.unit} — ${p.pages} pages, ${p.records} records`),
      },
    );
  } catch (e) {
    if (job.tty) process.stderr.write('\r\x1b[K');
    if (isSmelterError(e)) throw Object.assign(new Error(e.message), { code: e.code });
    throw e;
  }
}

/** --wait: follows the parts through Bronze, Silver and Gold, querying the stack's warehouse. */
async function waitForLoad(
  job: PullJob,
  summary: PullSummary,
  datasets: Record<string, DatasetRows>,
): Promise<void> {
  const { running } = job;
  const query = running?.admin
    ? (sql: string) =>
        callAdmin<{ columns: string[]; rows: unknown[][] }>(running.admin as string, 'query', {
          sql,
        })
    : async (sql: string) => (await runtime().get('warehouse')).query(sql);
  const { cfg, store, timeoutMs } = job;
  await waitForPull({ cfg, store, summary, query, timeoutMs, tick: statusLine(job) }, datasets);
  if (job.local) await job.local.triggers.idle();
}

function reportPull(
  job: PullJob,
  summary: PullSummary,
  datasets: Record<string, DatasetRows>,
  { out, err }: { out: (line: string) => void; err: (line: string) => void },
): void {
  if (job.tty) process.stderr.write('\r\x1b[K');
  const result = {
    source: summary.source,
    run: summary.run,
    pages: summary.pages,
    records: summary.records,
    objects: summary.objects,
    existingObjects: summary.existingObjects,
    skippedRecords: summary.skippedRecords,
    windows: summary.windows.length,
    datasets,
    ...(summary.stoppedAt ? { stoppedAt: summary.stoppedAt } : {}),
    durationMs: job.now() - job.started,
  };
  if (job.json) {
    out(JSON.stringify(result));
    return;
  }
  out(
    `pulled ${job.source}: ${summary.pages} pages, ${summary.records} records → ${summary.objects} new parts${summary.existingObjects ? ` (${summary.existingObjects} already there)` : ''}${summary.windows.length ? `, ${summary.windows.length} windows` : ''} in ${(result.durationMs / 1000).toFixed(1)} s`,
  );
  for (const [d, r] of Object.entries(datasets))
    out(
      `  ${d.padEnd(24)} ${String(r.records).padStart(8)} records${r.rows !== undefined ? `  bronze ${r.rows} rows, ${r.rejected} rejected` : ''}${r.silverRows !== undefined ? `  silver ${r.silverRows} rows` : ''}`,
    );
  if (summary.stoppedAt)
    err(`stopped at limits.pagesPerRun before ${summary.stoppedAt}; pull again to continue`);
  if (!job.wait && !job.running && job.cfg.backend === 'local')
    err('no stack is running: start one with `npm start`, or pass --wait to load the parts now');
}

export const pullCommand: Command = {
  name: 'pull',
  summary:
    'Pull an API source now into the raw bucket (contracts/sources/<source>.json); --wait for Silver and Gold',
  usage: 'pull SOURCE [--from YYYY-MM-DD --to YYYY-MM-DD] [--wait] [--json] [--timeout SECONDS]',
  async run({ args, flags, out, err }) {
    const job = await preparePull(args, flags, Date.now);
    try {
      const summary = await pullParts(job);
      const datasets: Record<string, DatasetRows> = {};
      for (const [d, s] of Object.entries(summary.datasets))
        datasets[d] = { records: s.records, objects: s.objects.length };
      if (job.wait) await waitForLoad(job, summary, datasets);
      reportPull(job, summary, datasets, { out, err });
      return 0;
    } finally {
      if (job.local) {
        await job.local.stop();
        await closeRuntime();
      }
    }
  },
};
