/**
 * DuckDB as the conversion engine, streaming end to end through named pipes: the source bytes are fed
 * into one FIFO that `read_csv`/`read_json` reads, and `COPY … TO` a second FIFO streams the output
 * straight into the object write stream. Nothing holds the file in memory or on local disk (on Cloud
 * Functions gen2 /tmp *is* memory); DuckDB is bounded by memory_limit and one thread per vCPU.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { permanent, SmelterError, transient } from '../errors';

const execFileP = promisify(execFile);

export interface EngineOptions {
  memoryLimit: string;
  threads: number;
  tempDir?: string;
}

let engine: Promise<{ db: DuckDBInstance; version: string }> | undefined;
let engineKey = '';

/** One in-memory DuckDB instance per process, shared by conversions (each gets its own connection). */
export function getEngine(opts: EngineOptions): Promise<{ db: DuckDBInstance; version: string }> {
  const key = JSON.stringify(opts);
  if (!engine || key !== engineKey) {
    engineKey = key;
    engine = (async () => {
      const tempDir = opts.tempDir ?? path.join(os.tmpdir(), 'smelter-duckdb');
      const db = await DuckDBInstance.create(':memory:', {
        memory_limit: opts.memoryLimit,
        threads: String(opts.threads),
        temp_directory: tempDir,
        preserve_insertion_order: 'true',
      });
      const c = await db.connect();
      // ICU is statically linked but cannot be configured at creation: set the zone once, globally.
      await c.run(`SET GLOBAL TimeZone = 'UTC'`);
      const r = await c.runAndReadAll('SELECT version() AS v');
      c.closeSync();
      return { db, version: String((r.getRowObjectsJson()[0] as { v?: string } | undefined)?.v ?? 'unknown') };
    })();
    engine.catch(() => (engine = undefined));
  }
  return engine;
}

export class PipeDir {
  private constructor(readonly dir: string) {}
  static async create(): Promise<PipeDir> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'smelter-pipe-'));
    return new PipeDir(dir);
  }
  async fifo(name: string): Promise<string> {
    const p = path.join(this.dir, name);
    await execFileP('mkfifo', ['-m', '600', p]);
    return p;
  }
  async remove(): Promise<void> {
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Unblocks a peer stuck in open(2) on a FIFO whose other side will never come (DuckDB failed before
 * opening it): open the missing side non-blocking and close it again.
 */
function unblockFifo(p: string, side: 'reader' | 'writer'): void {
  try {
    const flags = (side === 'reader' ? fs.constants.O_RDONLY : fs.constants.O_WRONLY) | fs.constants.O_NONBLOCK;
    const fd = fs.openSync(p, flags);
    setTimeout(() => fs.closeSync(fd), 50);
  } catch {
    /* nobody waiting, or already gone */
  }
}

export interface PipedQueryResult<T> {
  /** First row of the query's own result (e.g. COPY's Count). */
  count: number;
  output: T;
}

/**
 * Runs `sql` (which reads `inFifo` and writes `outFifo`) while feeding `input` into the first pipe and
 * handing the second to `consume`. Failures on any side cancel the others; the error reported is the
 * root cause: a source error, else DuckDB's own error (never the EPIPE it causes), else the consumer's.
 */
export async function runPiped<T>(
  conn: DuckDBConnection,
  sql: (inFifo: string, outFifo: string) => string,
  input: Readable,
  consume: (out: Readable) => Promise<T>,
): Promise<PipedQueryResult<T>> {
  const pipes = await PipeDir.create();
  try {
    const inFifo = await pipes.fifo('in');
    const outFifo = await pipes.fifo('out');
    let cancelled = false;
    const outStream = fs.createReadStream(outFifo, { highWaterMark: 1024 * 1024 });
    const writer = fs.createWriteStream(inFifo, { highWaterMark: 1024 * 1024 });

    const cancel = (why: Error): void => {
      if (cancelled) return;
      cancelled = true;
      conn.interrupt();
      input.destroy();
      unblockFifo(inFifo, 'reader');
      unblockFifo(outFifo, 'writer');
      outStream.destroy(why);
    };

    let sourceError: unknown;
    const feed = pipeline(input, writer).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE' && !cancelled) {
        sourceError = e;
        // The source failed mid-way: DuckDB would see a clean EOF and write a truncated file.
        cancel(e instanceof Error ? e : new Error(String(e)));
      }
      throw e;
    });
    const query = conn.runAndReadAll(sql(inFifo, outFifo)).then(
      (r) => Number(Object.values(r.getRowObjectsJson()[0] ?? {})[0] ?? 0),
      (e: unknown) => {
        cancel(e instanceof Error ? e : new Error(String(e)));
        throw e;
      },
    );
    const consumed = consume(outStream).catch((e: unknown) => {
      cancel(e instanceof Error ? e : new Error(String(e)));
      throw e;
    });
    const [f, qr, c] = await Promise.allSettled([feed, query, consumed]);
    if (sourceError !== undefined) throw sourceError;
    if (qr.status === 'rejected') {
      if (c.status === 'rejected' && isInterrupt(qr.reason)) throw c.reason;
      throw engineError(qr.reason);
    }
    if (c.status === 'rejected') throw c.reason;
    if (f.status === 'rejected') throw engineError(f.reason);
    return { count: qr.value, output: c.value };
  } finally {
    await pipes.remove();
  }
}

function isInterrupt(e: unknown): boolean {
  return /interrupt/i.test(String((e as Error)?.message ?? e));
}

/** DuckDB errors about the data are permanent; resource exhaustion is transient (retry may get a bigger instance). */
export function engineError(e: unknown): SmelterError {
  if (e instanceof SmelterError) return e;
  const msg = String((e as Error)?.message ?? e);
  if (/out of memory|memory limit|could not allocate|No space left/i.test(msg))
    return transient('ENGINE_FAILED', `DuckDB ran out of resources: ${msg}`, { cause: e });
  if (/Invalid Input Error|Conversion Error|Parser Error|Malformed JSON|JSON|CSV|unicode|UTF-8|line size|maximum_object_size/i.test(msg))
    return permanent('BAD_DATA', `DuckDB could not read the file: ${firstLine(msg)}`, { cause: e });
  return transient('ENGINE_FAILED', `DuckDB failed: ${firstLine(msg)}`, { cause: e });
}

function firstLine(s: string): string {
  const lines = s.split('\n').filter((l) => l.trim());
  return lines.slice(0, 3).join(' ').slice(0, 1000);
}

/** Rows produced by the scan (reader) operator of the last profiled query. */
export async function scannedRows(profileFile: string): Promise<number | undefined> {
  try {
    const tree = JSON.parse(await fsp.readFile(profileFile, 'utf8')) as ProfileNode;
    let found: number | undefined;
    const walk = (n: ProfileNode): void => {
      const name = `${n.operator_type ?? ''} ${n.operator_name ?? ''}`.toUpperCase();
      if (/READ_CSV|READ_JSON|TABLE_SCAN/.test(name) && (n.children?.length ?? 0) === 0)
        found = (found ?? 0) + Number(n.operator_cardinality ?? 0);
      for (const c of n.children ?? []) walk(c);
    };
    walk(tree);
    return found;
  } catch {
    return undefined;
  }
}

interface ProfileNode {
  operator_type?: string;
  operator_name?: string;
  operator_cardinality?: number;
  children?: ProfileNode[];
}

export function randomId(): string {
  return randomBytes(6).toString('hex');
}
