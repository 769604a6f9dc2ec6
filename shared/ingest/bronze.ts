/**
 * Raw → Bronze: the domain flow behind `rawToBronze`, independent of how the event arrived.
 *
 * Idempotency: output names are derived from the source object and generation. The manifest, written
 * last and create-only, is the commit marker: if it exists the event is a duplicate. A crash at any
 * point before it leaves either nothing or a complete Parquet object (writes are atomic), and a retry
 * finishes the job without producing a second output.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { pipeline, Readable, Transform } from 'node:stream';
import type { Config } from '../config';
import { DATASET_NAME, loadDatasetContract, type DatasetContract } from '../contracts/dataset';
import { errorMessage, isSmelterError, permanent, SmelterError, transient } from '../errors';
import type { Logger } from '../log';
import { gsUri, readObjectJson, type ObjectMeta, type ObjectStore } from '../storage/object-store';
import { hmacSetupSql } from '../governance/hmac';
import { hasHashColumns, piiHashKey } from '../governance/key';
import { csvDelimiterFor, parseCsvHeader } from './format';
import type { ConversionEngines, EngineOptions, EngineSession } from './ports';
import {
  countFileRecords,
  recordGuard,
  RecordScanner,
  type RecordGuardOptions,
  type RecordTally,
} from './records';
import { classifySourceError, openSource, type OpenedSource } from './source';
import { unwrapRecords } from './unwrap';
import { buildConversionSql, lit, type ConversionSql, type Lineage, type ReadSpec } from './sql';

export interface SourceRef {
  bucket: string;
  name: string;
  generation: string;
  contentType?: string;
}

export interface BronzeNames {
  dataset: string;
  parquet: string;
  manifest: string;
  rejects: string;
  failed: string;
}

export interface BronzeManifest {
  dataset: string;
  source: {
    bucket: string;
    name: string;
    generation: string;
    uri: string;
    bytes: number;
    format: string;
    gzip: boolean;
  };
  output: { bucket: string; name: string; uri: string; generation?: string; bytes?: number };
  rows: number;
  rejected: number;
  rowsIn: number;
  quarantine?: { bucket: string; name: string; uri: string };
  schema: { name: string; type: string }[];
  engine: { name: 'duckdb'; version: string };
  contract?: string;
  ingestedAt: string;
  durationMs: number;
}

export type BronzeOutcome =
  | { status: 'converted'; manifest: BronzeManifest }
  | { status: 'duplicate'; manifest?: BronzeManifest; reason: string }
  | { status: 'quarantined'; error: SmelterError; quarantine: { bucket: string; name: string } }
  | { status: 'skipped'; reason: string };

export interface BronzeDeps {
  cfg: Config;
  store: ObjectStore;
  log: Logger;
  /** The SQL engine that reads raw files (DuckDB). */
  engines: ConversionEngines;
  /** Called with decompressed bytes read so far (for CLI progress). */
  onProgress?: (bytes: number) => void;
  /** The clock: ingest and quarantine times, durations. */
  now?: () => Date;
}

/** `rainfall/2024/obs.csv.gz` → dataset `rainfall`, base `obs`. */
export function bronzeNames(source: SourceRef): BronzeNames {
  const dataset = source.name.split('/')[0] ?? '';
  const base =
    path.posix
      .basename(source.name)
      .replace(/\.(gz|gzip)$/i, '')
      .replace(/\.(csv|tsv|txt|ndjson|jsonl|json)$/i, '')
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 80) || 'object';
  const hash = createHash('sha256').update(`${source.bucket}/${source.name}`).digest('hex').slice(0, 8);
  // The generation is a µs timestamp of the object's creation: a deterministic ingest date.
  const micros = BigInt(source.generation);
  const date = new Date(Number(micros / 1000n));
  const day =
    Number.isFinite(date.getTime()) && micros > 10n ** 12n ? date.toISOString().slice(0, 10) : '1970-01-01';
  const stem = `${DATASET_NAME.test(dataset) ? dataset : '_unknown'}/ingest_date=${day}/${base}-${hash}-g${source.generation}`;
  return {
    dataset,
    parquet: `${stem}.parquet`,
    manifest: `${stem}.manifest.json`,
    rejects: `${stem}.rejects.ndjson`,
    failed: `_failed/${DATASET_NAME.test(dataset) ? dataset : '_unknown'}/${base}-${hash}-g${source.generation}`,
  };
}

/**
 * A DuckDB query reading a FIFO blocks the libuv worker thread that runs it (4 by default). Bounding
 * concurrent conversions per process keeps threads free for the I/O that feeds and drains the pipes;
 * Cloud Functions runs rawToBronze one event per instance anyway.
 */
const MAX_CONCURRENT_CONVERSIONS = 2;
let activeConversions = 0;
const conversionWaiters: (() => void)[] = [];

async function withConversionSlot<T>(fn: () => Promise<T>): Promise<T> {
  while (activeConversions >= MAX_CONCURRENT_CONVERSIONS)
    await new Promise<void>((r) => conversionWaiters.push(r));
  activeConversions++;
  try {
    return await fn();
  } finally {
    activeConversions--;
    conversionWaiters.shift()?.();
  }
}

/** One conversion: the source, its output names and contract, and the services it runs with. */
interface BronzeJob {
  source: SourceRef;
  names: BronzeNames;
  contract: DatasetContract;
  stat: ObjectMeta;
  lineage: Lineage;
  cfg: Config;
  store: ObjectStore;
  log: Logger;
  engines: ConversionEngines;
  now: () => Date;
  /** Epoch ms at which the flow started (for durationMs). */
  started: number;
  onProgress?: (bytes: number) => void;
}

/** What quarantining a whole file needs: the job before (or without) a contract. */
type FileRef = Pick<BronzeJob, 'source' | 'names' | 'cfg' | 'store' | 'log' | 'now' | 'started'> & {
  stat?: ObjectMeta;
};

export async function rawToBronzeFlow(source: SourceRef, deps: BronzeDeps): Promise<BronzeOutcome> {
  const { cfg, store, log } = deps;
  const now = deps.now ?? ((): Date => new Date());
  const names = bronzeNames(source);
  const rlog = log.child({ dataset: names.dataset, object: source.name, generation: source.generation });
  const file: FileRef = { source, names, cfg, store, log, now, started: now().getTime() };

  // Duplicate delivery: the commit marker is there.
  const existing = await store.stat(cfg.bronzeBucket, names.manifest);
  if (existing) {
    const manifest = await readObjectJson<BronzeManifest>(store, cfg.bronzeBucket, names.manifest);
    rlog.info('duplicate event: already converted', { output: names.parquet });
    return { status: 'duplicate', reason: 'manifest exists', ...(manifest ? { manifest } : {}) };
  }

  let contract: DatasetContract;
  try {
    if (names.dataset === source.name)
      throw permanent('UNKNOWN_DATASET', 'Object is not inside a dataset folder (<dataset>/<file>)');
    contract = loadDatasetContract(cfg.contractsDir, names.dataset);
  } catch (err) {
    return quarantineFile(file, err);
  }

  const stat = await liveSource(file);
  if (!('size' in stat)) return stat;
  file.stat = stat;

  const job: BronzeJob = {
    ...file,
    source: { ...source, ...(stat.contentType ? { contentType: stat.contentType } : {}) },
    contract,
    stat,
    lineage: {
      sourceUri: gsUri(source.bucket, source.name),
      generation: source.generation,
      ingestedAt: now().toISOString(),
      ...windowEnd(stat),
    },
    log: rlog,
    engines: deps.engines,
    ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
  };
  try {
    const manifest = await withConversionSlot(() => convert(job));
    rlog.info('converted to bronze', {
      rows: manifest.rows,
      rejected: manifest.rejected,
      output: manifest.output.uri,
      durationMs: manifest.durationMs,
      bytes: manifest.source.bytes,
    });
    return { status: 'converted', manifest };
  } catch (err0) {
    const err = classifySourceError(err0);
    if (isSmelterError(err, 'PRECONDITION_FAILED'))
      // A concurrent delivery of this event committed first: the retry finds its manifest.
      throw transient('INTERNAL', `A concurrent delivery of this event wrote first: ${err.message}`, {
        cause: err,
      });
    if (isSmelterError(err) && err.kind === 'permanent') return quarantineFile(file, err);
    throw err;
  }
}

/**
 * The source's metadata if this generation can be converted; else what to answer. Names the store
 * cannot use (an empty segment, a control character) are permanent: quarantined, never retried.
 */
async function liveSource(file: FileRef): Promise<ObjectMeta | BronzeOutcome> {
  const { source, cfg } = file;
  let stat: ObjectMeta | undefined;
  try {
    stat = await file.store.stat(source.bucket, source.name);
  } catch (err) {
    if (isSmelterError(err) && err.kind === 'permanent') return quarantineFile(file, err);
    throw err;
  }
  if (!stat || stat.generation !== source.generation) {
    // A newer generation has its own event; this one can never be read again.
    file.log.warn('source generation is no longer live; skipping', {
      object: source.name,
      generation: source.generation,
      live: stat?.generation,
    });
    return { status: 'skipped', reason: 'generation superseded or deleted' };
  }
  if (stat.size > cfg.maxObjectBytes)
    return quarantineFile(
      { ...file, stat },
      permanent(
        'OBJECT_TOO_LARGE',
        `Object is ${stat.size} bytes; SMELTER_MAX_OBJECT_BYTES is ${cfg.maxObjectBytes}`,
      ),
    );
  return stat;
}

/**
 * Reads the source once into the Parquet (twice when a structurally bad row needs recording), a
 * second time only when the contract dropped rows, then writes the rejects and the manifest.
 */
async function convert(job: BronzeJob): Promise<BronzeManifest> {
  const input = await openInput(job);
  try {
    return await convertInput(job, input);
  } finally {
    input.close();
  }
}

async function convertInput(job: BronzeJob, input: Input): Promise<BronzeManifest> {
  const id = randomId();
  const sql = buildConversionSql(job.contract, input.spec, job.lineage, id);
  const engine = await job.engines(engineOptions(job.cfg));
  const { version } = engine;
  const conn = await engine.connect();
  await setupHashing(conn, job);
  const profile = path.join(os.tmpdir(), `smelter-profile-${id}.json`);
  const progress = job.onProgress
    ? setInterval(() => job.onProgress?.(input.src.counters.bytes), 250).unref()
    : undefined;
  try {
    // The progress bar probes the input's size, which blocks forever on a FIFO: keep it off.
    await conn.run(
      `SET enable_progress_bar = false; PRAGMA enable_profiling='json'; PRAGMA profiling_output=${lit(profile)}`,
    );
    const written = await writeValidRows(job, conn, sql, input);
    await conn.run('PRAGMA disable_profiling');
    job.onProgress?.(input.src.counters.bytes);
    const scanned = (await conn.scannedRows(profile)) ?? written;
    const structural = await structuralRejects(conn, sql.rejectsTable, input.spec, job);
    // Second pass only when rows were dropped by contract checks: list every violation of each.
    const pass2 = scanned > written ? await contractRejects(job, input) : [];
    const rejects = mergeRejects(structural, pass2, input.spec);
    await checkBalance(job, input, written, rejects.length);
    const quarantine = await writeRejects(job, rejects);
    const manifest = await buildManifest(job, {
      format: input.src.format,
      gzip: input.src.gzip,
      written,
      rejected: rejects.length,
      schema: sql.outputColumns,
      version,
      ...(quarantine ? { quarantine } : {}),
    });
    await commitManifest(job, manifest);
    return manifest;
  } finally {
    if (progress) clearInterval(progress);
    conn.close();
    await rm(profile, { force: true });
  }
}

const engineOptions = (cfg: Config, ordered = false): EngineOptions =>
  ordered
    ? { memoryLimit: cfg.duckdbMemoryLimit, threads: 1, preserveOrder: true }
    : { memoryLimit: cfg.duckdbMemoryLimit, threads: cfg.duckdbThreads, preserveOrder: cfg.preserveRowOrder };

/** One read of the source, with the records the Node side counted in it (once it has ended). */
interface Read {
  src: OpenedSource;
  /** None for a JSON array or an empty file. */
  tally: RecordTally | undefined;
  /**
   * The source as a local file DuckDB may scan itself, on every thread, while the Node side reads the
   * same bytes into `scanner` only to count them (`tally` is then its tally); absent where DuckDB must
   * be fed the stream (remote or gzipped objects, unwrapped documents, JSON arrays, or once the file
   * proved to need the guard).
   */
  file?: string;
  scanner?: RecordScanner;
}

/** The source as read now; `open` reads it again from the start (same generation). */
interface Input extends Read {
  spec: ReadSpec;
  open: () => Promise<Read>;
  /** Never hand DuckDB the file again: it needs the record guard's cuts, or records it cannot split. */
  streamOnly: boolean;
  /** Releases the local files of every read. */
  close: () => void;
}

/** Opens the source and derives how DuckDB reads it (for CSV: the header, parsed in Node). */
async function openInput(job: BronzeJob): Promise<Input> {
  const files: { release: () => void }[] = [];
  const close = (): void => files.forEach((f) => f.release());
  const first = await openRaw(job, files);
  try {
    return openedInput(job, first, files, close);
  } catch (err) {
    close();
    throw err;
  }
}

function openedInput(
  job: BronzeJob,
  first: OpenedSource,
  files: { release: () => void }[],
  close: () => void,
): Input {
  const { cfg } = job;
  const spec: ReadSpec = {
    // Unwrapped documents reach DuckDB as NDJSON (see recordsOf).
    format: first.format === 'empty' || unwraps(job, first.format) ? 'ndjson' : first.format,
    maxLineBytes: cfg.maxLineBytes,
  };
  if (first.format === 'csv') {
    const delimiter = csvDelimiterFor(job.source.name, job.contract.csv?.delimiter);
    const header = parseCsvHeader(first.head, delimiter, '"', true);
    if (header?.unterminatedQuote)
      throw permanent(
        'BAD_DATA',
        'CSV header has an unterminated quote: the file cannot be split into records',
      );
    if (!header || header.bytes > cfg.maxLineBytes)
      throw permanent(
        'LINE_TOO_LONG',
        `CSV header line is longer than SMELTER_MAX_LINE_BYTES (${cfg.maxLineBytes})`,
      );
    spec.header = header.fields;
    spec.delimiter = delimiter;
  }
  const input: Input = {
    ...guarded(spec, first, true),
    spec,
    open: async () => guarded(spec, await openRaw(job, files), !input.streamOnly),
    streamOnly: false,
    close,
  };
  return input;
}

/** One read of the source's records (wrapped documents unwrapped into NDJSON); its local file goes to `files`. */
async function openRaw(job: BronzeJob, files: { release: () => void }[]): Promise<OpenedSource> {
  const { cfg } = job;
  const src = await openSource(
    job.store,
    { ...job.source, size: job.stat.size },
    {
      maxObjectBytes: cfg.maxObjectBytes,
      maxDecompressedBytes: cfg.maxDecompressedBytes,
      maxDecompressionRatio: cfg.maxDecompressionRatio,
      maxLineBytes: cfg.maxLineBytes,
    },
  );
  if (src.file) files.push(src.file);
  return recordsOf(job, src);
}

/**
 * Every read goes through the record guard: pass 2 must see records cut as pass 1 did. When DuckDB
 * scans the local file instead, the guard's scanner still reads every byte of it, to count records
 * independently and to find what would need the guard (see scanned).
 */
function guarded(spec: ReadSpec, src: OpenedSource, direct: boolean): Read {
  if (src.format === 'empty' || spec.format === 'json-array') return { src, tally: undefined };
  const opts: RecordGuardOptions = {
    format: spec.format,
    maxRecordBytes: spec.maxLineBytes,
    ...(spec.delimiter ? { delimiter: spec.delimiter } : {}),
    quote: '"',
    emptyRecordIsRow: spec.header?.length === 1,
  };
  const guard = recordGuard(opts);
  // pipeline (not pipe): a source error must fail the guarded stream, or DuckDB would see a clean EOF.
  const stream = pipeline(src.stream, guard, () => undefined);
  const file = direct && src.file && src.format === spec.format ? src.file.path : undefined;
  if (!file) return { src: { ...src, stream }, tally: guard.tally };
  // The guarded stream stays for a reader that needs it (pass 2); the count reads the file (scanned).
  const scanner = new RecordScanner(opts);
  return { src: { ...src, stream }, tally: scanner.tally, file, scanner };
}

/**
 * The manifest's rowsIn must equal the records the Node side fed DuckDB. Fewer means records were lost
 * on the way: the file is quarantined rather than half-published — no manifest is written, so its
 * Parquet (already written, and left: rawToBronze may only create in Bronze) is never loaded; loads
 * follow manifests (shared/warehouse/commit.ts). More can only come from a malformed CSV whose quoting
 * the two readers split differently (DuckDB's rejects hold its bytes): logged.
 */
async function checkBalance(job: BronzeJob, input: Input, written: number, rejected: number): Promise<void> {
  if (!input.tally) return;
  const records = input.tally.records - (input.spec.format === 'csv' ? 1 : 0);
  const accounted = written + rejected;
  if (records === accounted) return;
  const details = { records, rows: written, rejected };
  if (accounted > records) {
    job.log.warn('DuckDB accounted for more records than were read (malformed quoting?)', details);
    return;
  }
  throw permanent(
    'COUNT_MISMATCH',
    `Read ${records} records but DuckDB accounted for ${accounted} (${written} rows, ${rejected} rejects)`,
    { details },
  );
}

const NDJSON_NAME = /\.(ndjson|jsonl)(\.gz|\.gzip)?$/i;

/**
 * A contract's `records` path applies to JSON documents; NDJSON files (.ndjson/.jsonl, as pullSource
 * writes) hold one record per line already.
 */
function unwraps(job: BronzeJob, format: OpenedSource['format']): boolean {
  return (
    job.contract.records !== undefined &&
    (format === 'json-array' || (format === 'ndjson' && !NDJSON_NAME.test(job.source.name)))
  );
}

/** The source's records as NDJSON, streamed out of wrapped documents by unwrapRecords (never held whole). */
function recordsOf(job: BronzeJob, src: OpenedSource): OpenedSource {
  if (!unwraps(job, src.format)) return src;
  const path = (job.contract.records as string).split('.');
  const records = unwrapRecords(src.stream, path, { maxRecordBytes: job.cfg.maxLineBytes });
  const { file: _file, ...rest } = src; // DuckDB reads the unwrapped records, not the file
  return { ...rest, stream: Readable.from(records, { objectMode: false }) };
}

/** The end of the pull window an object holds (pullSource's `window_to` metadata), if valid. */
function windowEnd(stat: ObjectMeta): { windowEnd?: string } {
  const v = stat.metadata?.window_to;
  return v && Number.isFinite(Date.parse(v)) ? { windowEnd: new Date(Date.parse(v)).toISOString() } : {};
}

/**
 * Pass 1: valid rows → Parquet; returns how many were written. Optimistic first: most files have no
 * structurally bad row, and recording rejects costs ~8%. A bad row fails that read before anything is
 * committed (the Parquet write is aborted); the file is then read again with DuckDB recording every
 * such row for the quarantine (`input` is then that second read).
 */
async function writeValidRows(
  job: BronzeJob,
  conn: EngineSession,
  sql: ConversionSql,
  input: Input,
): Promise<number> {
  const { cfg } = job;
  // A complete Parquet from an earlier, interrupted attempt is kept: re-run only for the counts.
  const parquetExists = (await job.store.stat(cfg.bronzeBucket, job.names.parquet)) !== undefined;
  const consume = (out: Readable): Promise<unknown> => (parquetExists ? drain(out) : writeParquet(job, out));
  let storeRejects = false;
  for (;;) {
    const query = (i: string, o: string): string =>
      sql.valid(i, o, {
        rowGroupRows: cfg.rowGroupRows,
        storeRejects,
        // Narrow rows (CSV) stay under it; wide JSON records would otherwise outgrow the memory limit.
        ...(cfg.preserveRowOrder ? {} : { rowGroupBytes: '16MB' }),
      });
    try {
      if (input.src.format === 'empty') return (await conn.piped(query, Readable.from([]), consume)).count;
      if (input.file && input.scanner) {
        const count = await scanned(
          conn,
          { ...input, file: input.file, scanner: input.scanner },
          query,
          consume,
        );
        job.log.debug('DuckDB scanned the local file itself', { rows: count });
        return count;
      }
      return (await conn.piped(query, input.src.stream, consume)).count;
    } catch (err) {
      if (err instanceof NeedsRecordGuard) {
        job.log.debug('the file needs the record guard: DuckDB reads the guarded stream', {
          cut: input.tally?.cut.length,
          quotedLineBreak: input.tally?.quotedLineBreak,
        });
        input.streamOnly = true;
        Object.assign(input, { file: undefined }, await input.open());
        continue;
      }
      // (A JSON array has no reject tables: its error is final.)
      if (
        storeRejects ||
        !isSmelterError(err, 'BAD_DATA') ||
        !(err.cause instanceof Error) ||
        input.spec.format === 'json-array'
      )
        throw err;
      storeRejects = true;
      Object.assign(input, { file: undefined }, await input.open());
    }
  }
}

/** The file holds what only the streamed read handles: DuckDB's result from the file is discarded. */
class NeedsRecordGuard extends Error {}

/**
 * DuckDB scans the local file itself (in parallel: a pipe is read by one thread) while the Node side
 * reads the same bytes into the record guard's scanner to count them (countFileRecords). DuckDB's
 * output is committed only once that read has ended and found nothing DuckDB cannot be trusted with on
 * a file: a record over the line limit (it must be cut to be rejected, or it may vanish) or a line
 * break inside quotes (a scan starting mid-file could take it for a record's end). Either makes the
 * conversion start over on the guarded stream.
 */
async function scanned(
  conn: EngineSession,
  read: Read & { file: string; scanner: RecordScanner },
  query: (inFifo: string, outFifo: string) => string,
  consume: (out: Readable) => Promise<unknown>,
): Promise<number> {
  const { tally, file, scanner, src } = read;
  const needsGuard = (): boolean => tally !== undefined && (tally.cut.length > 0 || tally.quotedLineBreak);
  const counting = (async () => {
    src.stream.destroy(); // (unread: its object stream closes with it; the file stays pinned)
    await countFileRecords(file, scanner, {
      stop: needsGuard,
      onBytes: (n) => (src.counters.storedBytes = src.counters.bytes = n),
    });
    if (needsGuard()) throw new NeedsRecordGuard();
  })();
  counting.catch(() => undefined);
  try {
    const r = await conn.piped(
      (_i, o) => query(file, o),
      undefined,
      (out) => consume(afterCounting(out, counting)),
    );
    await counting;
    return r.count;
  } catch (err) {
    read.src.stream.destroy();
    const why = await counting.then(
      () => undefined,
      (e: unknown) => e,
    );
    throw why instanceof NeedsRecordGuard ? why : err;
  }
}

/** `out`, failing as soon as `counting` fails and ending only once it has succeeded. */
function afterCounting(out: Readable, counting: Promise<void>): Readable {
  const gate = new Transform({
    transform: (chunk: Buffer, _e, cb) => cb(null, chunk),
    flush: (cb) => void counting.then(() => cb(), cb),
  });
  counting.catch((e: unknown) => gate.destroy(e as Error));
  return pipeline(out, gate, () => undefined);
}

async function drain(out: Readable): Promise<undefined> {
  for await (const _ of out) void _;
  return undefined;
}

async function writeParquet(job: BronzeJob, out: Readable): Promise<ObjectMeta> {
  try {
    return await job.store.write(job.cfg.bronzeBucket, job.names.parquet, out, {
      ifAbsent: true,
      contentType: 'application/vnd.apache.parquet',
      metadata: { source: job.lineage.sourceUri, sourceGeneration: job.source.generation },
    });
  } catch (err) {
    if (isSmelterError(err, 'PRECONDITION_FAILED'))
      throw transient('INTERNAL', 'Another delivery of this event is converting it; retry later', {
        cause: err,
      });
    throw err;
  }
}

/**
 * Pass 2: every contract violation of every dropped row. It numbers records with row_number() OVER ():
 * that needs input order, so it runs on a single-threaded, order-preserving engine (rare: only files
 * with contract violations).
 */
async function contractRejects(job: BronzeJob, input: Input): Promise<QuarantineRow[]> {
  const { spec } = input;
  const { src } = await input.open();
  const ordered = await job.engines(engineOptions(job.cfg, true));
  const conn = await ordered.connect();
  try {
    await setupHashing(conn, job);
    const sql = buildConversionSql(job.contract, spec, job.lineage, randomId());
    const rows: QuarantineRow[] = [];
    await conn.piped(
      (i, o) => sql.rejects(i, o),
      src.stream,
      async (out) => {
        for await (const line of ndjsonLines(out))
          rows.push(pass2Row(JSON.parse(line) as Pass2Line, job.lineage.sourceUri));
      },
    );
    return rows;
  } finally {
    conn.close();
  }
}

async function writeRejects(
  job: BronzeJob,
  rejects: QuarantineRow[],
): Promise<BronzeManifest['quarantine'] | undefined> {
  if (!rejects.length) return undefined;
  const { cfg, names } = job;
  await job.store.write(
    cfg.quarantineBucket,
    names.rejects,
    Readable.from(rejects.map((r) => JSON.stringify(r) + '\n')),
    { contentType: 'application/x-ndjson' },
  );
  return {
    bucket: cfg.quarantineBucket,
    name: names.rejects,
    uri: gsUri(cfg.quarantineBucket, names.rejects),
  };
}

async function buildManifest(
  job: BronzeJob,
  r: {
    format: OpenedSource['format'];
    gzip: boolean;
    written: number;
    rejected: number;
    schema: BronzeManifest['schema'];
    version: string;
    quarantine?: BronzeManifest['quarantine'];
  },
): Promise<BronzeManifest> {
  const { cfg, names, source, contract } = job;
  const out = await job.store.stat(cfg.bronzeBucket, names.parquet);
  return {
    dataset: contract.dataset,
    source: {
      bucket: source.bucket,
      name: source.name,
      generation: source.generation,
      uri: job.lineage.sourceUri,
      bytes: job.stat.size,
      format: r.format,
      gzip: r.gzip,
    },
    output: {
      bucket: cfg.bronzeBucket,
      name: names.parquet,
      uri: gsUri(cfg.bronzeBucket, names.parquet),
      ...(out ? { generation: out.generation, bytes: out.size } : {}),
    },
    rows: r.written,
    rejected: r.rejected,
    rowsIn: r.written + r.rejected,
    ...(r.quarantine ? { quarantine: r.quarantine } : {}),
    schema: r.schema,
    engine: { name: 'duckdb', version: r.version },
    ...(contract.file ? { contract: path.basename(contract.file) } : {}),
    ingestedAt: job.lineage.ingestedAt,
    durationMs: job.now().getTime() - job.started,
  };
}

/** The commit marker, create-only: a concurrent delivery that wrote it first wrote the same thing. */
async function commitManifest(job: BronzeJob, manifest: BronzeManifest): Promise<void> {
  try {
    await job.store.write(
      job.cfg.bronzeBucket,
      job.names.manifest,
      JSON.stringify(manifest, null, 2) + '\n',
      { ifAbsent: true, contentType: 'application/json' },
    );
  } catch (err) {
    if (!isSmelterError(err, 'PRECONDITION_FAILED')) throw err;
  }
}

const contractType = (duck: string): string =>
  ({
    BIGINT: 'int64',
    DOUBLE: 'float64',
    DATE: 'date',
    'TIMESTAMP WITH TIME ZONE': 'timestamp',
    TIMESTAMPTZ: 'timestamp',
  })[duck] ?? duck.toLowerCase();

export interface QuarantineRow {
  source: string;
  line?: number;
  record?: number;
  column?: string | null;
  reason: string;
  error_type: string;
  violations?: { column: string | null; reason: string }[];
  raw?: unknown;
}

interface Pass2Line {
  record: number;
  violations: { column: string | null; reason: string }[];
  raw: unknown;
}

/** `hash` columns are hashed inside DuckDB with the key's pads held in session variables. */
async function setupHashing(conn: EngineSession, job: Pick<BronzeJob, 'contract' | 'cfg'>): Promise<void> {
  if (hasHashColumns(job.contract.columns)) await conn.run(hmacSetupSql(piiHashKey(job.cfg)));
}

function pass2Row(l: Pass2Line, sourceUri: string): QuarantineRow {
  const v = l.violations ?? [];
  return {
    source: sourceUri,
    record: Number(l.record),
    column: v[0]?.column ?? null,
    reason: v.map((x) => (x.column ? `${x.column}: ${x.reason}` : x.reason)).join('; '),
    error_type: 'CONTRACT',
    violations: v,
    raw: parseRaw(l.raw),
  };
}

/** Rows arrive as a JSON object of their mapped columns' cleaned values. */
function parseRaw(raw: unknown): unknown {
  if (typeof raw !== 'string' || !raw.startsWith('{')) return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

async function structuralRejects(
  conn: EngineSession,
  table: string,
  spec: ReadSpec,
  job: Pick<BronzeJob, 'lineage' | 'cfg' | 'contract'>,
): Promise<QuarantineRow[]> {
  if (spec.format === 'json-array') return [];
  const sensitiveNames = new Set(
    job.contract.columns.filter((c) => c.sensitive && c.sensitive.policy !== 'mask').map((c) => c.name),
  );
  const mapped = spec.csvContractColumns ?? [];
  const lineIsStorable =
    sensitiveNames.size === 0 &&
    (spec.header ?? []).every((_, i) => mapped[i] !== undefined && mapped[i] !== null);
  try {
    const found = await conn.rows<Record<string, string | null>>(
      `SELECT line, arg_min(column_idx, coalesce(column_idx, 0)) AS column_idx, arg_min(column_name, coalesce(column_idx, 0)) AS column_name, string_agg(DISTINCT error_type, ', ') AS error_type,
              arg_min(error_message, coalesce(column_idx, 0)) AS error_message, any_value(csv_line) AS csv_line
       FROM ${table} GROUP BY line ORDER BY line`,
    );
    // DuckDB names columns by our positional aliases (c0, c1, …): report the file's own header names.
    return found.map((x) => {
      // column_name is our positional alias (c<N>); column_idx is not consistently 0-based across error types.
      const alias = /^c(\d+)$/.exec(x.column_name ?? '');
      const idx = alias ? Number(alias[1]) : x.column_idx === null ? undefined : Number(x.column_idx);
      const contractCol = idx === undefined ? undefined : spec.csvContractColumns?.[idx];
      const message = String(x.error_message ?? x.error_type);
      // DuckDB's cast message names our positional alias (c3) and its own type names: say it in contract terms.
      const cast = /Could not convert string "(.*)" to '(\w+)'/s.exec(message);
      const secret = contractCol !== undefined && sensitiveNames.has(contractCol);
      // A record cut by the record guard may also miss columns: its length is the reason, for no column.
      const tooLong = String(x.error_type).split(', ').includes('LINE SIZE OVER MAXIMUM');
      const reason =
        x.error_type === 'CAST' && cast && contractCol
          ? `${contractCol}: cannot convert ${secret ? '(redacted)' : JSON.stringify(cast[1])} to ${contractType(cast[2] as string)}`
          : tooLong
            ? // DuckDB's "actual size" is of the record as cut by the record guard.
              `record is longer than SMELTER_MAX_LINE_BYTES (${job.cfg.maxLineBytes} bytes)`
            : message;
      return {
        source: job.lineage.sourceUri,
        line: Number(x.line),
        column: tooLong ? null : (contractCol ?? (idx === undefined ? null : (spec.header?.[idx] ?? null))),
        reason,
        error_type: tooLong ? 'LINE SIZE OVER MAXIMUM' : String(x.error_type),
        // The line as read holds every field of the record: kept only when each one is mapped and storable.
        raw: lineIsStorable ? x.csv_line : null,
      };
    });
  } catch {
    return [];
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
}

/**
 * DuckDB numbers structural rejects by line (one per record, the header being line 1); pass-2 rows are
 * numbered among the records that parsed. Merging the two recovers each pass-2 row's line.
 */
export function mergeRejects(
  structural: QuarantineRow[],
  pass2: QuarantineRow[],
  spec: ReadSpec,
): QuarantineRow[] {
  const source = pass2[0]?.source ?? '';
  for (const s of structural) s.source = s.source || source;
  if (spec.format === 'json-array') return pass2;
  const headerLines = spec.format === 'csv' ? 1 : 0;
  const sLines = structural.map((s) => Number(s.line)).sort((a, b) => a - b);
  let k = 0;
  for (const row of pass2) {
    if (spec.format === 'ndjson') {
      // NDJSON records are numbered per physical line already (blank lines included).
      row.line = row.record;
      continue;
    }
    const r = row.record ?? 0;
    let idx = r + k;
    while (k < sLines.length && (sLines[k] as number) - headerLines <= idx) {
      k++;
      idx = r + k;
    }
    row.line = idx + headerLines;
  }
  return [...structural, ...pass2].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

async function* ndjsonLines(stream: Readable): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of stream) {
    rest += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim()) yield line;
    }
  }
  if (rest.trim()) yield rest;
}

const COPY_ORIGINAL_MAX = 256 * 1024 ** 2;

/**
 * A copy of the original would hold every field the source sent, including what the contract drops or
 * never maps: datasets that declare personal data keep only the record (raw keeps the original).
 */
function declaresPersonalData(contractsDir: string, dataset: string): boolean {
  try {
    return loadDatasetContract(contractsDir, dataset).columns.some((c) => c.sensitive);
  } catch {
    return false;
  }
}

/**
 * Records a source object as failed, for a failure the flow did not record itself (the delivery
 * policy's record: a permanent error that escaped, or a transient one past SMELTER_MAX_EVENT_AGE_MS).
 */
export function quarantineSource(
  source: SourceRef,
  deps: Pick<BronzeDeps, 'cfg' | 'store' | 'log' | 'now'>,
  err: unknown,
): Promise<BronzeOutcome> {
  const now = deps.now ?? ((): Date => new Date());
  const { cfg, store, log } = deps;
  return quarantineFile(
    { source, names: bronzeNames(source), cfg, store, log, now, started: now().getTime() },
    err,
  );
}

/**
 * A permanent, whole-file failure: record the reason (and a copy of the original when small enough) in
 * the quarantine bucket, then acknowledge. Deterministic names make this idempotent too.
 */
async function quarantineFile(file: FileRef, err0: unknown): Promise<BronzeOutcome> {
  const { cfg, store, log, source, names } = file;
  const err =
    err0 instanceof SmelterError ? err0 : permanent('BAD_DATA', errorMessage(err0), { cause: err0 });
  const meta = file.stat ?? (await store.stat(source.bucket, source.name).catch(() => undefined));
  let copied: string | undefined;
  if (
    meta &&
    !declaresPersonalData(cfg.contractsDir, names.dataset) &&
    meta.generation === source.generation &&
    meta.size <= COPY_ORIGINAL_MAX &&
    err.code !== 'OBJECT_TOO_LARGE'
  ) {
    try {
      const original = `${names.failed}/${path.posix.basename(source.name)}`;
      await store.write(
        cfg.quarantineBucket,
        original,
        await store.read(source.bucket, source.name, { generation: source.generation }),
        {
          ...(meta.contentType ? { contentType: meta.contentType } : {}),
        },
      );
      copied = original;
    } catch (e) {
      if (isSmelterError(e) && e.kind === 'transient') throw e;
    }
  }
  const now = file.now();
  const record = {
    source: {
      bucket: source.bucket,
      name: source.name,
      generation: source.generation,
      uri: gsUri(source.bucket, source.name),
    },
    error: { code: err.code, message: err.message, ...err.details },
    copy: copied ? gsUri(cfg.quarantineBucket, copied) : null,
    quarantinedAt: now.toISOString(),
    durationMs: now.getTime() - file.started,
  };
  const errorName = `${names.failed}/error.json`;
  await store.write(cfg.quarantineBucket, errorName, JSON.stringify(record, null, 2) + '\n', {
    contentType: 'application/json',
  });
  log.warn(`quarantined: ${err.message}`, {
    dataset: names.dataset,
    object: source.name,
    generation: source.generation,
    code: err.code,
    quarantine: gsUri(cfg.quarantineBucket, errorName),
  });
  return { status: 'quarantined', error: err, quarantine: { bucket: cfg.quarantineBucket, name: errorName } };
}

function randomId(): string {
  return randomBytes(6).toString('hex');
}
