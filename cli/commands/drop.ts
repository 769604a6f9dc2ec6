import fs from 'node:fs';
import path from 'node:path';
import { DATASET_NAME, loadDatasetContract } from '../../shared/contracts/dataset';
import { isSmelterError } from '../../shared/errors';
import { bronzeNames, type BronzeManifest } from '../../shared/ingest/bronze';
import { inferContract } from '../../shared/ingest/infer';
import { progressBus, type ProgressEvent } from '../../shared/ingest/progress';
import { listParked } from '../../shared/local/delivery';
import { runningStack, type StackInfo as RunningStack } from '../../shared/local/stack';
import type { Runtime } from '../../shared/composition/runtime';
import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/log';
import {
  guessContentType,
  LocalFile,
  readObjectJson,
  type ObjectStore,
} from '../../shared/storage/object-store';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import type { LocalStack } from '../local/stack';

const fmtBytes = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(2)} GB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MB`
      : `${(n / 1024).toFixed(0)} KB`;

const USAGE = 'usage: smelter drop FILE --dataset NAME [--wait] [--json]';

/** What `drop` was asked to do, checked before anything is written. */
interface DropOptions {
  file: string;
  size: number;
  dataset: string;
  json: boolean;
  wait: boolean;
  infer: boolean;
  name: string;
  timeoutMs: number;
}

/** One drop in flight: its options, the services it uses and the object it wrote. */
interface DropJob {
  o: DropOptions;
  cfg: Config;
  store: ObjectStore;
  say: (line: string) => void;
  out: (line: string) => void;
  err: (line: string) => void;
  /** The stack another process runs, if any. */
  running: RunningStack | undefined;
  /** The stack this process started for --wait, if any. */
  local: LocalStack | undefined;
  rt: Runtime;
  source: { bucket: string; name: string; generation: string };
  started: number;
  now: () => number;
}

interface FailedRecord {
  error: { code: string; message: string };
}

function parseDropOptions(args: string[], flags: Record<string, string | boolean>): DropOptions {
  const file = args[0];
  const dataset = flagString(flags, 'dataset');
  if (!file || !dataset) throw new Error(USAGE);
  if (!DATASET_NAME.test(dataset))
    throw new Error(`invalid dataset name "${dataset}" (lower-case letters, digits, _)`);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new Error(`no such file: ${file}`);
  return {
    file,
    size: st.size,
    dataset,
    json: Boolean(flags.json),
    wait: Boolean(flags.wait),
    infer: Boolean(flags.infer),
    name: flagString(flags, 'name') ?? `${dataset}/${path.basename(file)}`,
    timeoutMs: Number(flagString(flags, 'timeout') ?? 3600) * 1000,
  };
}

/** --infer writes a contract sniffed from the file unless one exists; then the dataset must have one. */
async function ensureContract(
  o: DropOptions,
  cfg: Config,
  rt: Runtime,
  say: (line: string) => void,
): Promise<void> {
  if (o.infer) {
    const target = path.join(cfg.contractsDir, 'datasets', `${o.dataset}.json`);
    if (fs.existsSync(target)) say(`contract exists, not overwriting: ${target}`);
    else {
      const engine = await rt.get('engines')({
        memoryLimit: cfg.duckdbMemoryLimit,
        threads: cfg.duckdbThreads,
      });
      const contract = await inferContract(o.file, o.dataset, engine);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, JSON.stringify(contract, null, 2) + '\n');
      say(`inferred a contract → ${target} (review types, required columns and the primary key)`);
    }
  }
  try {
    loadDatasetContract(cfg.contractsDir, o.dataset);
  } catch (e) {
    if (isSmelterError(e, 'UNKNOWN_DATASET'))
      throw new Error(`${e.message}\n  (create it, or run with --infer to sniff one from the file)`);
    throw e;
  }
}

/** Without --wait: say how the file will be converted (or print its source object) and stop. */
function reportDropped(job: DropJob): number {
  if (!job.running) job.say('no stack is running: start one with `npm start`, or pass --wait to convert now');
  if (job.o.json) job.out(JSON.stringify({ source: job.source }));
  return 0;
}

/** Bronze's manifest, or failing that the quarantine's error record, or neither yet. */
async function readOutcome(
  job: DropJob,
  names: ReturnType<typeof bronzeNames>,
): Promise<{ manifest?: BronzeManifest; failed?: FailedRecord } | undefined> {
  const { store, cfg } = job;
  const manifest = await readObjectJson<BronzeManifest>(store, cfg.bronzeBucket, names.manifest);
  if (manifest) return { manifest };
  const failed = await readObjectJson<FailedRecord>(
    store,
    cfg.quarantineBucket,
    `${names.failed}/error.json`,
  );
  return failed ? { failed } : undefined;
}

/** What the warehouse made of the Bronze file. */
interface LoadOutcome {
  status: 'loaded' | 'failed';
  rows?: number;
  error?: string;
}

/**
 * Once the in-process stack is idle, whether loadWarehouse loaded the file: its ledger row, or the
 * event its trigger parked after the last retry (a load that never succeeded leaves no ledger row).
 */
async function warehouseOutcome(
  job: DropJob,
  local: LocalStack,
  manifest: BronzeManifest,
  manifestName: string,
): Promise<LoadOutcome | undefined> {
  await local.triggers.idle();
  const { bucket, name, generation } = manifest.output;
  const wh = await job.rt.get('warehouse');
  const row = generation ? await wh.ops.ledger(bucket, name, generation) : undefined;
  if (row?.status === 'loaded' || row?.status === 'done') return { status: 'loaded', rows: row.rows };
  if (row?.status === 'failed') return { status: 'failed', error: row.error ?? 'failed' };
  const parked = parkedEvent(job, local.ctx.endpoints.loadWarehouse, manifestName);
  if (parked)
    return { status: 'failed', error: `gave up after ${parked.attempts} attempts: ${parked.lastError}` };
  return undefined;
}

function reportOutcome(
  job: DropJob,
  names: ReturnType<typeof bronzeNames>,
  { manifest, failed }: { manifest?: BronzeManifest; failed?: FailedRecord },
  load?: LoadOutcome,
): number {
  const { cfg, out } = job;
  const result = {
    source: job.source,
    output: manifest ? { bucket: manifest.output.bucket, name: manifest.output.name } : null,
    rows: manifest?.rows ?? 0,
    rejected: manifest?.rejected ?? 0,
    quarantine: manifest?.quarantine
      ? { bucket: manifest.quarantine.bucket, name: manifest.quarantine.name }
      : failed
        ? { bucket: cfg.quarantineBucket, name: `${names.failed}/error.json`, error: failed.error }
        : null,
    durationMs: manifest?.durationMs ?? job.now() - job.started,
    ...(job.local ? { warehouse: load ?? null } : {}),
  };
  if (job.o.json) out(JSON.stringify(result));
  else if (manifest) {
    out(`bronze: ${manifest.output.uri}`);
    out(
      `rows: ${manifest.rows} written, ${manifest.rejected} rejected${manifest.quarantine ? ` → ${manifest.quarantine.uri}` : ''}  (${manifest.durationMs} ms)`,
    );
  } else out(`quarantined: ${failed?.error.code}: ${failed?.error.message}`);
  if (!job.o.json && load)
    out(
      load.status === 'loaded'
        ? `warehouse: ${load.rows ?? 0} rows loaded`
        : `warehouse: load failed: ${load.error}`,
    );
  return failed ? 3 : load?.status === 'failed' ? 4 : 0;
}

/** The event a local trigger parked (gave up on) for `target` about object `name`, if any. */
function parkedEvent(
  job: DropJob,
  target: string | undefined,
  name: string,
): ReturnType<typeof listParked>[number] | undefined {
  return listParked(path.join(job.cfg.home, 'state', 'eventarc')).find(
    (p) => p.event.subject === `objects/${name}` && p.target === target,
  );
}

/** Throws once the trigger parked this object's event (rawToBronze gave up) or the wait timed out. */
function checkGaveUp(job: DropJob): void {
  const { o } = job;
  const parked = parkedEvent(
    job,
    job.running?.endpoints.rawToBronze ?? job.local?.ctx.endpoints.rawToBronze,
    o.name,
  );
  if (parked) throw new Error(`rawToBronze gave up after ${parked.attempts} attempts: ${parked.lastError}`);
  if (job.now() - job.started > o.timeoutMs)
    throw new Error(`timed out after ${o.timeoutMs / 1000} s waiting for Bronze output`);
}

/** Polls for the Bronze manifest or a quarantine record, showing progress meanwhile. */
async function waitForBronze(job: DropJob): Promise<number> {
  const { o } = job;
  const names = bronzeNames(job.source);
  const uri = `gs://${job.source.bucket}/${job.source.name}`;
  let lastBytes = 0;
  const onProgress = (p: ProgressEvent): void => {
    if (p.uri === uri) lastBytes = p.bytes;
  };
  progressBus.on('progress', onProgress);
  const tty = process.stderr.isTTY && !o.json;
  let lastLine = 0;
  try {
    for (;;) {
      const outcome = await readOutcome(job, names);
      if (outcome) {
        if (tty) process.stderr.write('\r\x1b[K');
        const load =
          job.local && outcome.manifest
            ? await warehouseOutcome(job, job.local, outcome.manifest, names.manifest)
            : undefined;
        return reportOutcome(job, names, outcome, load);
      }
      checkGaveUp(job);
      const now = job.now();
      const pct = lastBytes && o.size ? ` ${fmtBytes(lastBytes)} read` : '';
      const secs = (now - job.started) / 1000;
      if (tty) process.stderr.write(`\r\x1b[Kconverting…${pct} ${secs.toFixed(1)} s`);
      else if (!o.json && now - lastLine > 5000 && now - job.started > 2000) {
        lastLine = now;
        job.err(`converting…${pct} ${secs.toFixed(0)} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    progressBus.off('progress', onProgress);
    if (job.local) await job.local.stop();
  }
}

/** The in-process stack for --wait, started while `writing` copies the file; its triggers wait for the copy. */
async function startWhileWriting(
  cfg: Config,
  log: Logger,
  rt: Runtime,
  writing: Promise<unknown>,
): Promise<LocalStack> {
  try {
    // Required here: the stack's modules load while the file is copied, not before the copy starts.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startLocalStack } = require('../local/stack') as typeof import('../local/stack');
    return await startLocalStack({
      cfg,
      log: log.child({}),
      ephemeral: true,
      pollMs: 200,
      beforeTriggers: () => {
        // The conversion runs in this process: load its engine while the file is still being copied.
        rt.get('engines');
        return writing;
      },
    });
  } catch (err) {
    await writing.catch(() => undefined); // no write left running behind the error
    throw err;
  }
}

export const dropCommand: Command = {
  name: 'drop',
  summary:
    'Copy a file into the raw bucket (optionally infer its contract, wait for Bronze; without a running stack, also for its warehouse load: exit 3 quarantined, 4 load failed)',
  usage: 'drop FILE --dataset NAME [--name OBJECT] [--infer] [--wait] [--json] [--timeout SECONDS]',
  async run({ args, flags, out, err }) {
    const o = parseDropOptions(args, flags);
    const { cfg, log, rt } = cliEnv();
    const say = o.json ? (): void => undefined : out;
    await ensureContract(o, cfg, rt, say);

    const { store } = rt;
    if (!o.name.startsWith(o.dataset + '/')) throw new Error(`--name must start with "${o.dataset}/"`);
    const running = runningStack(cfg.home);
    // Checked before the copy, which the stack start runs beside (startLocalStack would say it too).
    if (o.wait && !running && store.driver !== 'fs')
      throw new Error('--wait without a running stack needs the local stack: SMELTER_BACKEND=local');
    await store.ensureBucket(cfg.rawBucket);
    const now = Date.now;
    const started = now();
    const writing = store.write(cfg.rawBucket, o.name, new LocalFile(o.file), {
      contentType: guessContentType(o.file),
    });
    writing.catch(() => undefined); // awaited below: a failure while the stack starts is not unhandled
    // Without a running stack, --wait brings the functions up in this process, while the file is
    // copied (the copy and its md5 run off the main thread).
    const local = o.wait && !running ? await startWhileWriting(cfg, log, rt, writing) : undefined;
    const meta = await writing;
    say(
      `dropped ${o.file} (${fmtBytes(o.size)}) → gs://${cfg.rawBucket}/${o.name} (generation ${meta.generation})`,
    );
    const source = { bucket: cfg.rawBucket, name: o.name, generation: meta.generation };
    const job: DropJob = { o, cfg, store, say, out, err, running, local, rt, source, started, now };
    return o.wait ? waitForBronze(job) : reportDropped(job);
  },
};
