/**
 * The local warehouse: one DuckDB database file (`<home>/warehouse/smelter.duckdb`) shared by every
 * function served in one process. DuckDB allows a single read-write process per file, so the process
 * running `smelter up` owns it; other processes (the CLI) go through the stack's admin endpoint or open
 * it themselves when no stack is running.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { OPTIONS } from '../../config';
import { RELEASE_MEMORY } from '../duckdb-memory';
import { SCRATCH_CATALOG } from '../../warehouse/dialect';

export interface LocalWarehouse {
  readonly file: string;
  readonly instance: DuckDBInstance;
  /** A fresh connection (cheap); close it when done. */
  connect(): Promise<DuckDBConnection>;
  /** Runs statements one after another on a dedicated connection. */
  run(sql: string): Promise<void>;
  /** Runs a query and returns rows as JSON-safe objects (BIGINT/DECIMAL as strings); `$name` params bound. */
  query<T = Record<string, unknown>>(sql: string, params?: Record<string, string | number>): Promise<T[]>;
  /** DuckDB threads the instance runs with. */
  readonly threads: number;
  /** Its memory_limit and how far `constrained` may raise it, in bytes. */
  readonly memoryLimitBytes: number;
  readonly memoryMaxBytes: number;
  /**
   * Runs `fn` with the instance on one thread and, if given, a higher memory_limit. Each thread of a
   * large hash aggregate holds its own partitions, and their number grows with the input: under a
   * small limit two threads run out where one spills and completes, and a very large batch needs more.
   */
  constrained<T>(fn: () => Promise<T>, memoryBytes?: number): Promise<T>;
  /** Registers a cleanup to run before the instance closes (e.g. closing long-lived connections). */
  onClose(fn: () => void): void;
  close(): Promise<void>;
}

const open = new Map<string, Promise<LocalWarehouse>>();

export function warehouseFile(home: string): string {
  return path.join(home, 'warehouse', 'smelter.duckdb');
}

export interface LocalWarehouseOptions {
  memoryLimit?: string;
  /** See SMELTER_WAREHOUSE_MEMORY_MAX. */
  memoryMax?: string;
  threads?: number;
  /** See SMELTER_WAREHOUSE_STORAGE_VERSION. */
  storageVersion?: string;
}

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** A DuckDB size (`64MB`, `1.5GiB`) in bytes, as DuckDB reads it (MB decimal, MiB binary). */
export function sizeBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(size.trim());
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a DuckDB size: ${size}`);
  return Math.round(Number(m[1]) * unit);
}

/** The DuckDB instance of the warehouse file, bounded and in UTC. */
async function openInstance(
  home: string,
  file: string,
  opts: LocalWarehouseOptions,
): Promise<DuckDBInstance> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // DuckDB creates only the last level of temp_directory, and needs it as soon as work spills.
  const tempDir = path.join(home, 'tmp', 'duckdb');
  fs.mkdirSync(tempDir, { recursive: true });
  const instance = await DuckDBInstance.create(file, {
    memory_limit: memoryLimitOf(opts),
    threads: String(threadsOf(opts)),
    temp_directory: tempDir,
    // Loads and model stages need not keep their input's order (a table has none; queries that care
    // say ORDER BY): kept, an INSERT … SELECT buffers rows to keep it, and a 160 MB file's Silver
    // stage ran out of a 64 MB limit instead of spilling.
    preserve_insertion_order: 'false',
    // DuckDB's default is the v0.10.2 format, for old readers; the installed version's own format writes
    // a table ~20 % faster (mostly its strings). A file keeps the format it was created with.
    storage_compatibility_version: opts.storageVersion ?? (OPTIONS.warehouseStorageVersion.default as string),
    ...RELEASE_MEMORY,
  });
  // TimeZone cannot be passed to create() (the built-in icu extension is not loaded yet at that point).
  // GLOBAL so every later connection truncates timestamps to UTC dates, as BigQuery does.
  const c = await instance.connect();
  try {
    await c.run("SET GLOBAL TimeZone = 'UTC'");
    // Model stages live here (see SCRATCH_CATALOG): attached once, seen by every connection.
    await c.run(`ATTACH ':memory:' AS ${SCRATCH_CATALOG}`);
  } finally {
    c.closeSync();
  }
  return instance;
}

const threadsOf = (opts: LocalWarehouseOptions): number =>
  opts.threads ?? Math.max(1, os.availableParallelism());
const memoryLimitOf = (opts: LocalWarehouseOptions): string =>
  opts.memoryLimit ?? (OPTIONS.warehouseMemoryLimit.default as string);

export function getLocalWarehouse(home: string, opts: LocalWarehouseOptions = {}): Promise<LocalWarehouse> {
  const file = warehouseFile(home);
  let p = open.get(file);
  if (!p) {
    p = (async () => {
      const instance = await openInstance(home, file, opts);
      const closers = new Set<() => void>();
      let closed = false;
      const threads = threadsOf(opts);
      const memoryLimitBytes = sizeBytes(memoryLimitOf(opts));
      const memoryMaxBytes = Math.max(
        memoryLimitBytes,
        sizeBytes(opts.memoryMax ?? (OPTIONS.warehouseMemoryMax.default as string)),
      );
      // Settings are the instance's: constrained runs overlap, the largest limit wins until the last ends.
      const active = new Map<symbol, number>();
      const settle = async (): Promise<void> => {
        if (closed) return;
        const raised = Math.max(memoryLimitBytes, ...active.values());
        const c = await instance.connect();
        try {
          await c.run(
            `SET GLOBAL threads = ${active.size ? 1 : threads}; SET GLOBAL memory_limit = '${Math.round(raised / 1024)}KiB'`,
          );
        } finally {
          c.closeSync();
        }
      };
      const wh: LocalWarehouse = {
        file,
        instance,
        threads,
        memoryLimitBytes,
        memoryMaxBytes,
        async constrained(fn, memoryBytes) {
          const id = Symbol('constrained');
          active.set(id, Math.min(memoryBytes ?? memoryLimitBytes, memoryMaxBytes));
          try {
            await settle();
            return await fn();
          } finally {
            active.delete(id);
            await settle();
          }
        },
        connect: () => instance.connect(),
        async run(sql) {
          const c = await instance.connect();
          try {
            await c.run(sql);
          } finally {
            c.closeSync();
          }
        },
        async query<T>(sql: string, params?: Record<string, string | number>) {
          const c = await instance.connect();
          try {
            const r = await (params ? c.runAndReadAll(sql, params) : c.runAndReadAll(sql));
            return r.getRowObjectsJson() as T[];
          } finally {
            c.closeSync();
          }
        },
        onClose(fn) {
          closers.add(fn);
        },
        async close() {
          // Idempotent: the runtime and a test may both close it; a newer instance of the file stays open.
          if (closed) return;
          closed = true;
          if (open.get(file) === p) open.delete(file);
          for (const fn of closers) {
            try {
              fn();
            } catch {
              // A cleanup failing must not keep the file open.
            }
          }
          closers.clear();
          instance.closeSync();
        },
      };
      return wh;
    })();
    open.set(file, p);
    p.catch(() => open.delete(file));
  }
  return p;
}
