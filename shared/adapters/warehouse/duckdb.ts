/**
 * The local warehouse engine: the process's DuckDB file (duckdb-local.ts). Bronze objects are read
 * straight from the filesystem bucket with `read_parquet` (the local object store is plain files).
 */
import fs from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { permanent, transient } from '../../errors';
import type { FsObjectStore } from '../storage/fs';
import { DuckDbDialect, SCRATCH_CATALOG } from '../../warehouse/dialect';
import {
  Mutex,
  type ColumnInfo,
  type LoadResult,
  type ParquetLoad,
  type QueryParams,
  type TableStat,
  type TypeFamily,
  type WarehouseEngine,
} from '../../warehouse/engine';
import type { TableRef } from '../../warehouse/tables';
import type { LocalWarehouse } from './duckdb-local';

const locks = new Map<string, Mutex>();

export class DuckDbEngine implements WarehouseEngine {
  readonly dialect = new DuckDbDialect();
  private readonly lock: Mutex;

  constructor(
    readonly wh: LocalWarehouse,
    private readonly store?: FsObjectStore,
  ) {
    let l = locks.get(wh.file);
    if (!l) locks.set(wh.file, (l = new Mutex()));
    this.lock = l;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
    return this.spillable(sql, async () => {
      try {
        return await this.wh.query<T>(sql, params);
      } catch (err) {
        throw classify(err, sql);
      }
    });
  }

  async exec(sql: string): Promise<void> {
    return this.spillable(sql, async () => {
      const c = await this.wh.connect();
      try {
        await c.run(sql);
      } catch (err) {
        // A failed statement inside BEGIN … COMMIT leaves the transaction aborted.
        await c.run('ROLLBACK').catch(() => undefined);
        throw classify(err, sql);
      } finally {
        c.closeSync();
      }
    });
  }

  /**
   * Runs a statement again when it ran out of memory: first on one thread, then with twice the memory
   * limit, and twice again, up to SMELTER_WAREHOUSE_MEMORY_MAX. The limit is sized for the common
   * batch; a batch many times larger (24 M rows: its Silver audit's hash aggregate needs ~96 MB on one
   * thread) completes instead of failing on every retry. Statements are whole transactions (exec rolls
   * back on failure), so running one again is safe.
   */
  private async spillable<T>(sql: string, fn: () => Promise<T>): Promise<T> {
    const wh = this.wh;
    let err: unknown;
    try {
      return await fn();
    } catch (e) {
      if (!isOutOfMemory(e)) throw e;
      err = e;
    }
    const limits: (number | undefined)[] = wh.threads > 1 ? [undefined] : [];
    for (let b = wh.memoryLimitBytes * 2; b < wh.memoryMaxBytes * 2; b *= 2)
      limits.push(Math.min(b, wh.memoryMaxBytes));
    for (const bytes of limits) {
      try {
        return await wh.constrained(fn, bytes);
      } catch (e) {
        if (!isOutOfMemory(e)) throw e;
        err = e;
      }
    }
    throw outOfMemory(err, sql, wh.memoryMaxBytes);
  }

  async columns(table: TableRef): Promise<ColumnInfo[] | undefined> {
    const rows = await this.query<{ column_name: string; data_type: string; is_nullable: string }>(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE ${
        table.scratch
          ? `table_catalog = '${SCRATCH_CATALOG}' AND table_schema = 'main'`
          : `table_schema = '${table.layer}'`
      } AND table_name = '${table.name.replace(/'/g, "''")}' ORDER BY ordinal_position`,
    );
    if (rows.length === 0) return undefined;
    return rows.map((r) => duckColumn(r.column_name, r.data_type, r.is_nullable !== 'NO'));
  }

  async queryColumns(sql: string): Promise<ColumnInfo[]> {
    const rows = await this.query<{ column_name: string; column_type: string; null: string }>(
      `DESCRIBE ${sql}`,
    );
    return rows.map((r) => duckColumn(r.column_name, r.column_type, r.null !== 'NO'));
  }

  async parquetPath(bucket: string, name: string): Promise<string> {
    if (!this.store) throw new Error('DuckDbEngine: no filesystem object store to read Bronze objects from');
    return this.store.objectPath(bucket, name);
  }

  async fileColumns(bucket: string, name: string): Promise<ColumnInfo[]> {
    const p = await this.parquetPath(bucket, name);
    return this.queryColumns(`SELECT * FROM ${readParquet(p)}`);
  }

  async queryTable(sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
    const c = await this.wh.connect();
    try {
      const r = await c.runAndReadAll(sql);
      return { columns: r.columnNames(), rows: r.getRowsJson() as unknown[][] };
    } catch (err) {
      throw classify(err, sql);
    } finally {
      c.closeSync();
    }
  }

  async tableStats(layers: readonly string[]): Promise<TableStat[]> {
    const list = await this.query<{ s: string; t: string; k: string }>(
      `SELECT table_schema AS s, table_name AS t, table_type AS k FROM information_schema.tables WHERE table_schema IN (${layers.map(sqlString).join(', ')}) AND NOT starts_with(table_name, '_stage_') ORDER BY 1, 2`,
    );
    if (!list.length) return [];
    // A Bronze view is counted from its files' footers as loaded, those still in the bucket: a vanished
    // object would fail a COUNT(*) over the view (and it is reported rather than hidden).
    const files = new Map<string, { rows: number; missing: number }>();
    const registry = list.some((r) => r.k === 'VIEW')
      ? await this.query(
          "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'ops' AND table_name = 'bronze_files'",
        )
      : [];
    if (registry.length)
      for (const f of await this.query<{ t: string; bucket: string; name: string; rows: unknown }>(
        `SELECT bronze_table AS t, bucket, name, rows FROM ${BRONZE_FILES}`,
      )) {
        const e = files.get(f.t) ?? { rows: 0, missing: 0 };
        if (fs.existsSync(await this.parquetPath(f.bucket, f.name))) e.rows += Number(f.rows);
        else e.missing++;
        files.set(f.t, e);
      }
    const key = (r: { s: string; t: string }): string => `${r.s}.${r.t}`;
    const counted = list.filter((r) => !(r.k === 'VIEW' && files.has(key(r))));
    const counts = counted.length
      ? await this.query<{ s: string; t: string; n: unknown }>(
          counted
            .map(
              (r) =>
                `SELECT ${sqlString(r.s)} AS s, ${sqlString(r.t)} AS t, COUNT(*) AS n FROM ${r.s}."${r.t.replace(/"/g, '""')}"`,
            )
            .join(' UNION ALL '),
        )
      : [];
    const n = new Map(counts.map((c) => [key(c), Number(c.n)]));
    return list.map((r) => {
      const f = r.k === 'VIEW' ? files.get(key(r)) : undefined;
      return {
        layer: r.s,
        table: r.t,
        rows: f ? f.rows : (n.get(key(r)) ?? 0),
        kind: r.k === 'VIEW' ? 'view' : 'table',
        ...(f?.missing ? { missingObjects: f.missing } : {}),
      };
    });
  }

  /**
   * Bronze stays where rawToBronze wrote it: a dataset's Bronze table is a view over the Parquet objects
   * loaded so far (registered in ops.bronze_files), so a load writes no row — a DuckDB table write costs
   * as much as the conversion that made the file. A warehouse that already holds a Bronze *table* (made
   * before) keeps appending to it.
   */
  async loadParquet(load: ParquetLoad): Promise<LoadResult> {
    // One transaction, rolled back on failure: safe to run again on one thread.
    return this.spillable(`load ${load.name} into ${this.dialect.table(load.table)}`, () =>
      this.loadOnce(load),
    );
  }

  private async loadOnce(load: ParquetLoad): Promise<LoadResult> {
    const p = await this.parquetPath(load.bucket, load.name);
    const t = this.dialect.table(load.table);
    const src = readParquet(p);
    const c = await this.wh.connect();
    try {
      await c.run(BRONZE_FILES_DDL);
      const kind = await this.tableType(load.table);
      // (Also fails here, as NOT_FOUND below, if the object is gone.)
      const fileCols = await this.queryColumns(`SELECT * FROM ${src}`);
      const tableCols = kind === 'BASE TABLE' ? ((await this.columns(load.table)) ?? []) : [];
      await c.run('BEGIN TRANSACTION');
      let rows: number;
      if (kind === 'BASE TABLE') {
        // A Bronze table made before Bronze views: the file's new columns are added before INSERT … BY NAME.
        for (const col of fileCols)
          if (!tableCols.some((x) => x.name === col.name))
            await c.run(`ALTER TABLE ${t} ADD COLUMN ${this.dialect.ident(col.name)} ${col.type}`);
        const r = await c.runAndReadAll(`INSERT INTO ${t} BY NAME SELECT * FROM ${src}`);
        rows = Number((r.getRows()[0]?.[0] as bigint | number | undefined) ?? 0);
      } else {
        // COUNT(*) of one Parquet file reads its footer only.
        const r = await c.runAndReadAll(`SELECT COUNT(*) FROM ${src}`);
        rows = Number((r.getRows()[0]?.[0] as bigint | number | undefined) ?? 0);
        // Its columns and types in order: objects with equal signatures read as one schema.
        const sig = fileCols.map((col) => `${col.name} ${col.type}`).join(', ');
        await c.run(
          `INSERT INTO ${BRONZE_FILES} (bronze_table, bucket, name, signature, rows, loaded_at) VALUES (${sqlString(t)}, ${sqlString(load.bucket)}, ${sqlString(load.name)}, ${sqlString(sig)}, ${rows}, now())
           ON CONFLICT (bronze_table, bucket, name) DO UPDATE SET signature = excluded.signature, rows = excluded.rows, loaded_at = excluded.loaded_at, missing_since = NULL`,
        );
        await c.run(await this.bronzeView(c, t));
      }
      if (load.ledgerSql) await c.run(load.ledgerSql.replace(/\{rows\}/g, String(rows)));
      await c.run('COMMIT');
      return { rows, jobId: load.jobId, reused: false };
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      const msg = (err as Error).message ?? '';
      if (/No files found|does not exist|No such file/i.test(msg))
        throw permanent('NOT_FOUND', `Bronze object gs://${load.bucket}/${load.name} is gone: ${msg}`, {
          cause: err,
        });
      throw classify(err, `load ${src} into ${t}`);
    } finally {
      c.closeSync();
    }
  }

  /** `BASE TABLE`, `VIEW`, or undefined when the table does not exist. */
  private async tableType(table: TableRef): Promise<string | undefined> {
    const [row] = await this.query<{ k: string }>(
      `SELECT table_type AS k FROM information_schema.tables WHERE table_schema = ${sqlString(table.layer)} AND table_name = ${sqlString(table.name)}`,
    );
    return row?.k;
  }

  async batchRelation(table: TableRef, o: { bucket: string; name: string }): Promise<string | undefined> {
    if ((await this.tableType(table)) !== 'VIEW') return undefined;
    // With the view's columns (a file may lack one a later file added: it reads NULL, as in the view).
    const src = readParquet(await this.parquetPath(o.bucket, o.name));
    const t = this.dialect.table(table);
    return `(SELECT * FROM ${t} WHERE FALSE UNION ALL BY NAME SELECT * FROM ${src})`;
  }

  /**
   * The view over a Bronze table's objects, at their paths in the bucket now (the registry names them
   * by bucket and name: a moved SMELTER_HOME is picked up at the next load). Objects gone from the
   * bucket are left out (and marked, for `status`) rather than failing every query of the dataset; one
   * that comes back is read again. Objects of one schema are read as one (the first's columns, matched
   * by name); only when a later one added a column are they unioned by name, which reads every
   * object's schema at each query.
   */
  private async bronzeView(c: DuckDBConnection, t: string): Promise<string> {
    const files = (
      await c.runAndReadAll(
        `SELECT bucket, name, signature, missing_since IS NOT NULL FROM ${BRONZE_FILES} WHERE bronze_table = ${sqlString(t)} ORDER BY loaded_at, bucket, name`,
      )
    ).getRows() as [string, string, string, boolean][];
    const present: { path: string; sig: string }[] = [];
    for (const [bucket, name, sig, wasMissing] of files) {
      const path = await this.parquetPath(bucket, name);
      const here = fs.existsSync(path);
      if (here) present.push({ path, sig });
      if (here === wasMissing)
        await c.run(
          `UPDATE ${BRONZE_FILES} SET missing_since = ${here ? 'NULL' : 'now()'} WHERE bronze_table = ${sqlString(t)} AND bucket = ${sqlString(bucket)} AND name = ${sqlString(name)}`,
        );
    }
    const list = `[${present.map((f) => sqlString(f.path)).join(', ')}]`;
    const union = new Set(present.map((f) => f.sig)).size > 1 ? ', union_by_name = true' : '';
    return `CREATE OR REPLACE VIEW ${t} AS SELECT * FROM read_parquet(${list}, hive_partitioning = false${union})`;
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  async close(): Promise<void> {
    /* the LocalWarehouse is shared by the process; its owner closes it */
  }
}

/** Engine-private: the Parquet objects each Bronze view reads (see loadParquet). */
const BRONZE_FILES = 'ops.bronze_files';
const BRONZE_FILES_DDL = `CREATE SCHEMA IF NOT EXISTS ops; CREATE TABLE IF NOT EXISTS ${BRONZE_FILES} (
  bronze_table VARCHAR NOT NULL, bucket VARCHAR NOT NULL, name VARCHAR NOT NULL, signature VARCHAR NOT NULL,
  rows BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL, missing_since TIMESTAMPTZ,
  PRIMARY KEY (bronze_table, bucket, name))`;

/** `ingest_date=…/` in Bronze names must not become a (hive partition) column. */
function readParquet(p: string): string {
  return `read_parquet(${sqlString(p)}, hive_partitioning = false)`;
}

export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const isOutOfMemory = (err: unknown): boolean => /out of memory/i.test(rootMessage(err));

/** DuckDB's own first line (classify wraps it; its advice is about settings users do not set here). */
function rootMessage(err: unknown): string {
  let e = err;
  while (e instanceof Error && e.cause !== undefined) e = e.cause;
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

/** Still transient (a concurrent query may have held the memory), but saying which setting helps. */
function outOfMemory(err: unknown, sql: string, maxBytes: number): Error {
  return transient(
    'WAREHOUSE_UNAVAILABLE',
    `DuckDB ran out of memory even on one thread with ${Math.round(maxBytes / 1e6)} MB; raise SMELTER_WAREHOUSE_MEMORY_MAX (${rootMessage(err)})`,
    { cause: err, details: { query: sql.slice(0, 4000) } },
  );
}

/** DuckDB errors: conflicts and I/O are worth a retry; SQL/binder/conversion errors are not. */
function classify(err: unknown, sql: string): Error {
  const msg = (err as Error)?.message ?? String(err);
  if (
    /Conflict|could not set lock|IO Error|Could not (open|read)|out of memory|TransactionContext/i.test(msg)
  )
    return transient('WAREHOUSE_UNAVAILABLE', `DuckDB: ${msg}`, {
      cause: err,
      details: { query: sql.slice(0, 4000) },
    });
  const e = new Error(`DuckDB: ${msg}`, { cause: err }) as Error & { query?: string; sqlError?: boolean };
  e.query = sql;
  e.sqlError = true;
  return e;
}

export function duckColumn(name: string, type: string, nullable: boolean): ColumnInfo {
  const { family, signature } = duckSignature(type);
  return { name, type, family, signature, nullable };
}

/** Normalises DuckDB type text (`STRUCT("a" BIGINT, b VARCHAR)[]`) to a family and comparable signature. */
export function duckSignature(type: string): { family: TypeFamily; signature: string } {
  const t = type.trim();
  if (t.endsWith('[]')) {
    const inner = duckSignature(t.slice(0, -2));
    return { family: 'array', signature: `array<${inner.signature}>` };
  }
  const u = t.toUpperCase();
  if (u.startsWith('STRUCT(') && u.endsWith(')')) {
    const fields = splitTop(t.slice(7, -1)).map((f) => {
      const m = /^\s*("(?:[^"]|"")*"|[^\s]+)\s+([\s\S]+)$/.exec(f);
      const fname = (m?.[1] ?? f).replace(/^"|"$/g, '').replace(/""/g, '"');
      return `${fname}:${duckSignature(m?.[2] ?? 'VARCHAR').signature}`;
    });
    return { family: 'struct', signature: `struct<${fields.join(',')}>` };
  }
  if (u.startsWith('DECIMAL') || u.startsWith('NUMERIC')) return { family: 'numeric', signature: 'numeric' };
  const simple: Record<string, [TypeFamily, string]> = {
    VARCHAR: ['string', 'string'],
    TEXT: ['string', 'string'],
    STRING: ['string', 'string'],
    BIGINT: ['int64', 'int64'],
    INT8: ['int64', 'int64'],
    HUGEINT: ['int64', 'int128'],
    INTEGER: ['int64', 'int32'],
    INT: ['int64', 'int32'],
    INT4: ['int64', 'int32'],
    SMALLINT: ['int64', 'int16'],
    TINYINT: ['int64', 'int8'],
    UBIGINT: ['int64', 'uint64'],
    UINTEGER: ['int64', 'uint32'],
    USMALLINT: ['int64', 'uint16'],
    UTINYINT: ['int64', 'uint8'],
    DOUBLE: ['float64', 'float64'],
    FLOAT8: ['float64', 'float64'],
    FLOAT: ['float64', 'float32'],
    REAL: ['float64', 'float32'],
    BOOLEAN: ['bool', 'bool'],
    BOOL: ['bool', 'bool'],
    DATE: ['date', 'date'],
    'TIMESTAMP WITH TIME ZONE': ['timestamp', 'timestamp'],
    TIMESTAMPTZ: ['timestamp', 'timestamp'],
    TIMESTAMP: ['timestamp', 'datetime'],
    TIMESTAMP_NS: ['timestamp', 'datetime'],
    TIMESTAMP_MS: ['timestamp', 'datetime'],
    JSON: ['json', 'json'],
  };
  const hit = simple[u];
  if (hit) return { family: hit[0], signature: hit[1] };
  return { family: 'other', signature: u.toLowerCase() };
}

function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  let inQ = false;
  for (const ch of s) {
    if (ch === '"') inQ = !inQ;
    if (!inQ && ch === '(') depth++;
    if (!inQ && ch === ')') depth--;
    if (!inQ && depth === 0 && ch === ',') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}
