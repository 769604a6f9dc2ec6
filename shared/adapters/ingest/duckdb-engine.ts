/**
 * DuckDB as the conversion engine, streaming end to end through named pipes: the source bytes are fed
 * into one FIFO that `read_csv`/`read_json` reads, and `COPY … TO` a second FIFO streams the output
 * straight into the object write stream. Nothing holds the file in memory or on local disk (on Cloud
 * Functions gen2 /tmp *is* memory); DuckDB is bounded by memory_limit and one thread per vCPU.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { option } from '../../config';
import { permanent, SmelterError, transient } from '../../errors';
import { RELEASE_MEMORY } from '../duckdb-memory';
import type {
  ConversionEngine,
  ConversionEngines,
  EngineOptions,
  EngineSession,
  PipedQueryResult,
} from '../../ingest/ports';

const execFileP = promisify(execFile);

type Engine = { db: DuckDBInstance; version: string; sessions: number; closed: boolean };
const engines = new Map<string, Promise<Engine>>();
/** The instance each entry of `engines` resolved to (to drop exactly that entry when it is closed). */
const live = new Map<string, Engine>();
/** How long an instance with no open session is kept for the next conversion before it is closed. */
const IDLE_CLOSE_MS = 100;

function engineKey(opts: EngineOptions): string {
  return JSON.stringify([opts.memoryLimit, opts.threads, opts.preserveOrder ?? true, opts.tempDir]);
}

/**
 * One in-memory DuckDB instance per process and option set, shared by concurrent conversions (each
 * gets its own connection). It is closed once no conversion has used it for IDLE_CLOSE_MS: closing
 * is what returns its buffer pool, and an idle conversion engine would otherwise hold ~100 MB while
 * the warehouse loads the file it just wrote.
 */
export function getEngine(opts: EngineOptions): Promise<Engine> {
  const key = engineKey(opts);
  let engine = engines.get(key);
  if (!engine) {
    engine = (async () => {
      const tempDir = opts.tempDir ?? path.join(os.tmpdir(), 'smelter-duckdb');
      const db = await DuckDBInstance.create(':memory:', {
        memory_limit: opts.memoryLimit,
        threads: String(opts.threads),
        temp_directory: tempDir,
        preserve_insertion_order: String(opts.preserveOrder ?? true),
        // Conversions read each file once, some through /proc/self/fd paths whose numbers are reused.
        enable_external_file_cache: 'false',
        ...RELEASE_MEMORY,
      });
      const c = await db.connect();
      // ICU is statically linked but cannot be configured at creation: set the zone once, globally.
      await c.run(`SET GLOBAL TimeZone = 'UTC'`);
      const r = await c.runAndReadAll('SELECT version() AS v');
      c.closeSync();
      const e: Engine = {
        db,
        version: String((r.getRowObjectsJson()[0] as { v?: string } | undefined)?.v ?? 'unknown'),
        sessions: 0,
        closed: false,
      };
      live.set(key, e);
      closeWhenIdle(opts, e);
      return e;
    })();
    engines.set(key, engine);
    engine.catch(() => engines.delete(key));
  }
  return engine;
}

/** A connection on an open instance of this option set, counted so an idle instance can be closed. */
async function acquire(opts: EngineOptions): Promise<{ e: Engine; conn: DuckDBConnection }> {
  for (;;) {
    const e = await getEngine(opts);
    if (e.closed) continue; // closed while we waited: its entry is gone, getEngine makes a new one
    e.sessions++;
    try {
      return { e, conn: await e.db.connect() };
    } catch (err) {
      release(opts, e);
      throw err;
    }
  }
}

function release(opts: EngineOptions, e: Engine): void {
  e.sessions--;
  closeWhenIdle(opts, e);
}

function closeWhenIdle(opts: EngineOptions, e: Engine): void {
  if (e.sessions > 0) return;
  setTimeout(() => {
    if (e.sessions > 0 || e.closed) return;
    e.closed = true;
    const key = engineKey(opts);
    if (live.get(key) === e) {
      live.delete(key);
      engines.delete(key);
    }
    e.db.closeSync();
  }, IDLE_CLOSE_MS).unref();
}

/** The conversion-engine port over DuckDB: one shared instance per option set, a connection per session. */
export const duckdbConversionEngines: ConversionEngines = async (opts) => {
  const { version } = await getEngine(opts);
  const engine: ConversionEngine = {
    name: 'duckdb',
    version,
    async connect() {
      const { e, conn } = await acquire(opts);
      let open = true;
      const session: EngineSession = {
        run: async (sql) => void (await conn.run(sql)),
        rows: async <T>(sql: string) => (await conn.runAndReadAll(sql)).getRowObjectsJson() as T[],
        piped: (sql, input, consume) => runPiped(conn, sql, input, consume),
        scannedRows,
        close: () => {
          if (!open) return;
          open = false;
          conn.closeSync();
          release(opts, e);
        },
      };
      return session;
    },
  };
  return engine;
};

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

/** Waits until some fd of this process other than our own `ours` fds has `fifo` open (DuckDB runs in-process). */
async function waitForPeer(fifo: string, ours: number, stop: () => boolean): Promise<void> {
  for (let i = 0; !stop(); i++) {
    let n = 0;
    try {
      for (const fd of await fsp.readdir('/proc/self/fd')) {
        const target = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '');
        if (target === fifo) n++;
      }
    } catch {
      return; // no /proc: nothing to wait for
    }
    if (n > ours) return;
    await new Promise((r) => setTimeout(r, Math.min(20, 1 + i)));
  }
}

/**
 * Opens both FIFOs without ever blocking and without the libuv thread pool: each side is opened
 * O_NONBLOCK together with a "dummy" peer fd we hold ourselves, and the real fd is driven by a
 * net.Socket (event-driven pipe I/O). Blocking fs streams on FIFOs would park thread-pool threads in
 * open(2)/write(2), and a few concurrent conversions would deadlock the pool.
 */
function openPipes(
  inFifo: string | undefined,
  outFifo: string,
): { writer: net.Socket | undefined; reader: net.Socket; release: () => void } {
  const C = fs.constants;
  const inDummyReader = inFifo === undefined ? undefined : fs.openSync(inFifo, C.O_RDONLY | C.O_NONBLOCK);
  const writer =
    inFifo === undefined
      ? undefined
      : new net.Socket({
          fd: fs.openSync(inFifo, C.O_WRONLY | C.O_NONBLOCK),
          readable: false,
          writable: true,
        });
  const reader = new net.Socket({
    fd: fs.openSync(outFifo, C.O_RDONLY | C.O_NONBLOCK),
    readable: true,
    writable: false,
  });
  // Holding a writer on the output keeps the reader from seeing EOF before DuckDB has even opened it.
  const outDummyWriter = fs.openSync(outFifo, C.O_WRONLY | C.O_NONBLOCK);
  let released = false;
  return {
    writer,
    reader,
    release() {
      if (released) return;
      released = true;
      fs.closeSync(outDummyWriter);
      if (inDummyReader !== undefined) fs.closeSync(inDummyReader);
    },
  };
}

/**
 * Runs `sql` (which reads `inFifo` and writes `outFifo`) while feeding `input` into the first pipe and
 * handing the second to `consume`. Failures on any side cancel the others; the error reported is the
 * root cause: a source error, else DuckDB's own error (never the EPIPE it causes), else the consumer's.
 * Without `input` there is no input pipe (the query reads files itself; `inFifo` is '').
 */
export async function runPiped<T>(
  conn: DuckDBConnection,
  sql: (inFifo: string, outFifo: string) => string,
  input: Readable | undefined,
  consume: (out: Readable) => Promise<T>,
): Promise<PipedQueryResult<T>> {
  const pipes = await PipeDir.create();
  try {
    const inFifo = input ? await pipes.fifo('in') : undefined;
    const outFifo = await pipes.fifo('out');
    const run = new PipedRun(conn, input, inFifo, outFifo);
    const feed = run.feed();
    const query = run.query(sql(inFifo ?? '', outFifo));
    const consumed = run.consume(consume);
    if (option('debugPipes')) debugStates({ feed, query, consumed });
    return outcome(run, await Promise.allSettled([feed, query, consumed]));
  } finally {
    await pipes.remove();
  }
}

/** The three sides of one piped query (source → DuckDB → consumer) and how each cancels the others. */
class PipedRun {
  private readonly writer: net.Socket | undefined;
  private readonly reader: net.Socket;
  private readonly release: () => void;
  /** What the consumer reads: on cancellation it can be failed while the FIFO is still drained. */
  private readonly toConsumer = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly endInput: Writable | undefined;
  private cancelled = false;
  /** DuckDB's query has finished (it has closed its ends of both FIFOs). */
  private settled = false;
  /** The source failed mid-way (reported before anything else). */
  sourceError: unknown;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly input: Readable | undefined,
    private readonly inFifo: string | undefined,
    outFifo: string,
  ) {
    ({ writer: this.writer, reader: this.reader, release: this.release } = openPipes(inFifo, outFifo));
    this.reader.on('error', () => undefined);
    this.toConsumer.on('error', () => undefined);
    this.reader.pipe(this.toConsumer);
    const { writer } = this;
    if (writer) {
      writer.on('error', () => undefined);
      const endInput = this.inputEnd(writer);
      this.endInput = endInput;
      writer.on('error', (e) => endInput.destroy(e));
    }
  }

  /**
   * The write side of the input FIFO. Closing our write end before DuckDB has opened the FIFO would
   * leave its open(2) waiting for a writer forever (small inputs fit in the pipe buffer and are
   * "written" at once): the last write is held until DuckDB holds the pipe, then the socket is destroyed
   * so DuckDB sees EOF now (a finished net.Socket is not necessarily closed before GC).
   */
  private inputEnd(writer: net.Socket): Writable {
    return new Writable({
      write(chunk: Buffer, _e, cb) {
        if (!writer.write(chunk)) writer.once('drain', () => cb());
        else cb();
      },
      final: (cb) => {
        void this.peerOpened().then(() => {
          writer.end(() => {
            writer.destroy();
            cb();
          });
        });
      },
    });
  }

  private peerOpened(): Promise<void> {
    return this.inFifo === undefined ? Promise.resolve() : waitForPeer(this.inFifo, 2, () => this.settled);
  }

  /** Source → input FIFO. A source failure cancels the run: DuckDB would see a clean EOF and write a truncated file. */
  feed(): Promise<void> {
    if (!this.input || !this.endInput) return Promise.resolve();
    return pipeline(this.input, this.endInput).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE' && !this.cancelled && !this.settled) {
        this.sourceError = e;
        this.cancel(asError(e));
      }
      throw e;
    });
  }

  /** DuckDB's query; resolves to the first value of its result (e.g. COPY's count). */
  query(text: string): Promise<number> {
    return this.conn.runAndReadAll(text).then(
      (r) => {
        this.done();
        return Number(Object.values(r.getRowObjectsJson()[0] ?? {})[0] ?? 0);
      },
      (e: unknown) => {
        this.done();
        this.cancel(asError(e));
        throw e;
      },
    );
  }

  consume<T>(consume: (out: Readable) => Promise<T>): Promise<T> {
    return consume(this.toConsumer).catch((e: unknown) => {
      this.cancel(asError(e));
      throw e;
    });
  }

  /** DuckDB has closed its ends: let the reader reach EOF and stop a writer DuckDB no longer reads. */
  private done(): void {
    this.settled = true;
    this.release();
    if (this.writer && !this.writer.writableFinished) this.writer.destroy();
  }

  private cancel(why: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.conn.interrupt();
    this.input?.destroy();
    // pipeline() waits for 'end' from an input that had already ended (EOF pushed, not yet drained)
    // when destroyed: fail the feed's far side too, so the feed settles.
    this.endInput?.destroy();
    this.reader.unpipe(this.toConsumer);
    this.toConsumer.destroy(why);
    this.reader.resume();
    // Close our write end so a DuckDB read blocked on the FIFO sees EOF (interrupt cannot wake a
    // blocking read) — but only once DuckDB has opened it, or its open would block instead.
    void this.peerOpened().then(() => this.writer?.destroy());
  }
}

/** The run's result, or its root-cause error (see runPiped). */
function outcome<T>(
  run: PipedRun,
  [f, qr, c]: [PromiseSettledResult<void>, PromiseSettledResult<number>, PromiseSettledResult<T>],
): PipedQueryResult<T> {
  if (run.sourceError !== undefined) throw run.sourceError;
  if (qr.status === 'rejected') {
    if (c.status === 'rejected' && isInterrupt(qr.reason)) throw c.reason;
    throw engineError(qr.reason);
  }
  if (c.status === 'rejected') throw c.reason;
  if (f.status === 'rejected') throw engineError(f.reason);
  return { count: qr.value, output: c.value };
}

/** SMELTER_DEBUG_PIPES: prints which side of a piped query is still pending after 2 s. */
function debugStates(sides: Record<string, Promise<unknown>>): void {
  const state: Record<string, string> = {};
  for (const [name, p] of Object.entries(sides)) {
    state[name] = 'pending';
    void p.then(
      () => (state[name] = 'ok'),
      (e) => (state[name] = 'err ' + String(e)),
    );
  }
  setTimeout(() => console.error('runPiped state', state), 2000).unref();
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
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
  if (
    /Invalid Input Error|Conversion Error|Parser Error|Malformed JSON|JSON|CSV|unicode|UTF-8|line size|maximum_object_size/i.test(
      msg,
    )
  )
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
