/**
 * Local event tables in the shared DuckDB file (schema `events`): one table per contract, created
 * from it on first use (STRUCT / LIST columns; partitioning and clustering have no local equivalent),
 * new contract fields added as columns, plus `events.dead_letter`.
 *
 * Insert-id dedup, windowed like BigQuery's insertId: an event whose `event_id` was stored in the last
 * SMELTER_EVENTS_DEDUP_WINDOW_MS (default 10 min, Pub/Sub's longest retry backoff) is not stored again;
 * later redeliveries are left to the Silver layer, as on BigQuery (whose window is about a minute). The
 * event tables have no PRIMARY KEY: DuckDB rewrites an ART index at every checkpoint, and with one on
 * event_id the checkpoint pauses grew with the table (100+ ms stalls of every write at 1,000 events/s).
 * Instead each table keeps, in memory, 30-bit hashes of the ids stored in the window (about 16 bytes an
 * id; reloaded from `_processed_at` at first use after a restart); an id whose hash is there is looked
 * up in the table (bounded by its event_time, so DuckDB's zone maps skip older row groups) and dropped
 * only if found — a hash collision costs one lookup, never an event. Writes to one table are serialised
 * so the check and the insert see each other. Event tables of the first layout (PRIMARY KEY event_id)
 * are rebuilt without the key on first use, keeping their rows.
 *
 * Dead letters are keyed by (`message_id`, `publish_time`), a PRIMARY KEY (the table stays small): the
 * emulator numbers messages from "1" again after a restart, so a message id alone is not unique. A
 * dead-letter table of the first layout (keyed by `message_id` alone) is rebuilt with the new key on
 * first use, keeping its rows.
 *
 * Writing: one autocommitted statement per table and flush, on its own connection (the router writes
 * the tables in parallel, which measured faster and cheaper in CPU than one transaction over all of
 * them). The rows travel as one JSON parameter that DuckDB casts with `from_json_strict` to the
 * table's types. It is a plain INSERT — DuckDB's conflict handling in INSERT OR IGNORE costs several ms
 * per statement — and only when it hits a duplicate key (a redelivery) is the batch written again with
 * INSERT OR IGNORE. A statement is atomic, so the failed attempt left nothing behind. When DuckDB refuses
 * a batch for what a row holds (text it cannot parse, a value its column cannot take), the batch is
 * bisected: the refused rows are returned as rejections (the router dead-letters them with DuckDB's
 * reason) and the rest is stored — one bad event never fails its batch-mates.
 *
 * DDL is serialised per database instance: DuckDB fails concurrent `CREATE … IF NOT EXISTS` of the same
 * catalog entry with "Catalog write-write conflict on create", and two flushes may create tables at
 * once on first use. DDL racing other code in the process (the warehouse loader also creates schema
 * `events`) is retried a few times.
 */
import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { transient } from '../../errors';
import { type ColumnType, duckdbType, type FieldSpec, isScalar } from '../../contracts/types';
import type { EventContract } from '../../events/contract';
import { maskedColumns, maskedSchema, maskedViewSql, type MaskedColumn } from '../../governance/masking';
import type { DeadLetterRecord, EventRow, EventWarehouse, WarehouseRejection } from '../../events/ports';
import {
  DEAD_LETTER_FIELDS,
  DEAD_LETTER_KEY,
  DEAD_LETTER_TABLE,
  eventTableFields,
} from '../../events/schema';
import type { LocalWarehouse } from '../warehouse/duckdb-local';

export const LOCAL_EVENTS_SCHEMA = 'events';

const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** The `from_json` structure of a column: JSON columns travel as text and are cast on insert. */
function shapeOf(t: ColumnType): unknown {
  if (isScalar(t)) return t === 'json' ? 'VARCHAR' : duckdbType(t);
  if ('struct' in t) return Object.fromEntries(t.struct.map((f) => [f.name, shapeOf(f.type)]));
  return [shapeOf(t.array)];
}

interface TableSpec {
  table: string;
  fields: readonly FieldSpec[];
  key: readonly string[];
  /** For a rebuild from an older key: SQL filling a key column that old rows left NULL. */
  fill?: Record<string, string>;
  /** Event tables: the `mask` fields, read through `masked_<schema>.<table>` by analysts. */
  masked?: MaskedColumn[];
}

interface TablePlan {
  insertSql: string;
  /** Keyed tables only (dead letters): the same INSERT skipping rows whose key is stored. */
  ignoreSql?: string;
}

/** One DDL chain per DuckDB instance (every adapter on the same file shares it). */
const ddlChains = new WeakMap<object, Promise<unknown>>();

function serialised<T>(owner: object, fn: () => Promise<T>): Promise<T> {
  const run = (ddlChains.get(owner) ?? Promise.resolve()).then(fn, fn);
  ddlChains.set(
    owner,
    run.catch(() => undefined),
  );
  return run;
}

const DDL_ATTEMPTS = 5;
const isCatalogConflict = (err: unknown): boolean => /write-write conflict/i.test(String(err));
/** Against a stored row ("Duplicate key … violates primary key constraint"), or within the batch / at commit. */
const isDuplicateKey = (err: unknown): boolean =>
  /Duplicate key .*violates primary key constraint|PRIMARY KEY or UNIQUE constraint violation/i.test(
    String(err),
  );

/**
 * DuckDB refused what a row holds (malformed JSON text such as an unpaired surrogate, a value its column
 * cannot take) — retrying the same row cannot help. Anything else (I/O, memory, a closed database) is
 * the database's state: transient.
 */
const isRefusedData = (err: unknown): boolean =>
  /^(Invalid Input|Conversion|Out of Range|Mismatch Type) Error:/.test(errorText(err));

const errorText = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 500);

interface Write {
  plan: TablePlan;
  json: string;
  table: string;
}

export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;

function closeQuietly(c: DuckDBConnection): void {
  try {
    c.closeSync();
  } catch {
    // already closed
  }
}

interface Session {
  conn: DuckDBConnection;
  insert: DuckDBPreparedStatement;
  plan: TablePlan;
}

/** FNV-1a over UTF-16 units, folded to 30 bits: always a small integer (V8 stores it unboxed in a Set). */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 30)) & 0x3fffffff;
}

/**
 * Hashes of the event ids stored in the last `windowMs`, in ten time slots so expiry drops whole sets.
 * A hit means "maybe stored" (verify in the table); a miss means "not stored within the window".
 */
export class RecentIds {
  private readonly slotMs: number;
  private readonly slots = new Map<number, Set<number>>();
  private chain: Promise<unknown> = Promise.resolve();
  loaded: Promise<void> | undefined;
  session: Promise<Session> | undefined;

  constructor(private readonly windowMs: number) {
    this.slotMs = Math.max(1, Math.ceil(windowMs / 10));
  }

  add(id: string, at: number): void {
    const slot = Math.floor(at / this.slotMs);
    let set = this.slots.get(slot);
    if (!set) this.slots.set(slot, (set = new Set()));
    set.add(idHash(id));
  }

  mayContain(id: string, now: number): boolean {
    this.expire(now);
    const h = idHash(id);
    for (const set of this.slots.values()) if (set.has(h)) return true;
    return false;
  }

  get size(): number {
    let n = 0;
    for (const set of this.slots.values()) n += set.size;
    return n;
  }

  /** Runs `fn` after every earlier call has finished (check-then-insert must not interleave). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private expire(now: number): void {
    // A slot is dropped once all of it is older than the window.
    const oldest = Math.floor((now - this.windowMs) / this.slotMs);
    for (const slot of this.slots.keys()) if (slot < oldest) this.slots.delete(slot);
  }
}

/** One window per DuckDB instance and table: every adapter on the same file shares it. */
const windows = new WeakMap<object, Map<string, RecentIds>>();

function recentIdsFor(owner: object, table: string, windowMs: number): RecentIds {
  let m = windows.get(owner);
  if (!m) windows.set(owner, (m = new Map()));
  let w = m.get(table);
  if (!w) m.set(table, (w = new RecentIds(windowMs)));
  return w;
}

export class DuckDbEventWarehouse implements EventWarehouse {
  readonly kind = 'duckdb';
  private readonly plans = new Map<string, Promise<TablePlan>>();

  private readonly dedupWindowMs: number;
  private readonly now: () => number;

  /** `open` returns the process-wide warehouse (getLocalWarehouse); this adapter never closes it. */
  constructor(
    private readonly open: () => Promise<LocalWarehouse>,
    readonly schema = LOCAL_EVENTS_SCHEMA,
    opts: { dedupWindowMs?: number; now?: () => number } = {},
  ) {
    this.dedupWindowMs = opts.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Creates every contract's table and the dead-letter table, so they can be queried before the first event. */
  async prepare(contracts: readonly EventContract[]): Promise<void> {
    await Promise.all([this.deadLetterPlan(), ...contracts.map((c) => this.eventPlan(c))]);
  }

  async insertEvents(contract: EventContract, rows: readonly EventRow[]): Promise<WarehouseRejection[]> {
    if (rows.length === 0) return [];
    const plan = await this.eventPlan(contract);
    const wh = await this.opened(contract.table);
    const win = recentIdsFor(wh.instance, `${this.schema}.${contract.table}`, this.dedupWindowMs);
    return win.exclusive(async (): Promise<WarehouseRejection[]> => {
      try {
        // One long-lived connection and prepared INSERT per table: connecting and re-parsing the
        // statement for every flush cost more CPU than the insert of a small batch.
        let session = await (win.session ??= this.openSession(wh, plan));
        if (session.plan !== plan) {
          // The contract changed (new columns): prepare the new INSERT.
          closeQuietly(session.conn);
          session = await (win.session = this.openSession(wh, plan));
        }
        const { conn, insert } = session;
        win.loaded ??= this.loadWindow(conn, contract.table, win);
        await win.loaded;
        const fresh = await this.unseen(conn, contract.table, win, rows);
        if (fresh.length === 0) return [];
        const refused = await this.insertIsolating(insert, fresh);
        const at = this.now();
        for (const r of fresh) if (!refused.has(r)) win.add(String(r.event_id), at);
        if (refused.size === 0) return [];
        // A row stands for every row of the batch with its event_id (unseen keeps the first).
        const reasonOf = new Map([...refused].map(([r, why]) => [String(r.event_id), why]));
        return rows.flatMap((r, index) => {
          const why = reasonOf.get(String(r.event_id));
          return why === undefined
            ? []
            : [{ index, reason: `DuckDB refused the row for ${this.schema}.${contract.table}: ${why}` }];
        });
      } catch (err) {
        // A broken session is rebuilt on the next write; a failed load is retried too.
        const broken = win.session;
        win.session = undefined;
        win.loaded = undefined;
        void broken?.then(
          (s) => closeQuietly(s.conn),
          () => undefined,
        );
        throw this.unavailable(contract.table, err);
      }
    });
  }

  /**
   * Inserts the rows in one statement; when DuckDB refuses it for what a row holds (not for its own
   * state), bisects so the refused rows are isolated and the others stored. A statement is atomic, so a
   * failed attempt left nothing behind. Resolves with the refused rows and DuckDB's reason.
   */
  private async insertIsolating(
    insert: DuckDBPreparedStatement,
    rows: readonly EventRow[],
  ): Promise<Map<EventRow, string>> {
    const refused = new Map<EventRow, string>();
    const attempt = async (part: readonly EventRow[]): Promise<void> => {
      try {
        insert.bindVarchar(1, JSON.stringify(part));
        await insert.run();
      } catch (err) {
        if (!isRefusedData(err)) throw err;
        if (part.length === 1) {
          refused.set(part[0] as EventRow, errorText(err));
          return;
        }
        const mid = Math.ceil(part.length / 2);
        await attempt(part.slice(0, mid));
        await attempt(part.slice(mid));
      }
    };
    await attempt(rows);
    return refused;
  }

  async insertDeadLetters(rows: readonly DeadLetterRecord[]): Promise<void> {
    if (rows.length === 0) return;
    const plan = await this.deadLetterPlan();
    await this.write({ plan, json: JSON.stringify(rows), table: DEAD_LETTER_TABLE });
  }

  async close(): Promise<void> {
    this.plans.clear();
  }

  private eventPlan(c: EventContract): Promise<TablePlan> {
    return this.plan(c.hash ?? JSON.stringify(c.fields), {
      table: c.table,
      fields: eventTableFields(c),
      key: [],
      masked: maskedColumns(c),
    });
  }

  private deadLetterPlan(): Promise<TablePlan> {
    return this.plan('v2', {
      table: DEAD_LETTER_TABLE,
      fields: DEAD_LETTER_FIELDS,
      key: DEAD_LETTER_KEY,
      // Rows of the first layout always had a publish time; if one did not, its dead-letter time stands in.
      fill: { publish_time: `dead_lettered_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'` },
    });
  }

  /** Creates (or extends, or re-keys) the table once per contract version and prepares its statements. */
  private plan(version: string, spec: TableSpec): Promise<TablePlan> {
    const k = `${spec.table}\0${version}`;
    let p = this.plans.get(k);
    if (!p) {
      p = this.ensure(spec);
      this.plans.set(k, p);
      p.catch(() => this.plans.delete(k));
    }
    return p;
  }

  private async ensure(spec: TableSpec): Promise<TablePlan> {
    const wh = await this.opened(spec.table);
    await serialised(wh.instance, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.withConnection(spec.table, (c) => this.ddl(c, spec));
          return;
        } catch (err) {
          if (attempt >= DDL_ATTEMPTS || !isCatalogConflict(err)) throw err;
          await new Promise((r) => setTimeout(r, 10 * attempt));
        }
      }
    });
    const fq = `${q(this.schema)}.${q(spec.table)}`;
    const shape = lit(
      JSON.stringify([Object.fromEntries(spec.fields.map((f) => [f.name, shapeOf(f.type)]))]),
    );
    const select = `SELECT r.* FROM (SELECT unnest(from_json_strict($1, ${shape})) AS r)`;
    return {
      insertSql: `INSERT INTO ${fq} BY NAME ${select}`,
      // DuckDB refuses OR IGNORE on a table without a key (the event tables: windowed dedup instead).
      ...(spec.key.length ? { ignoreSql: `INSERT OR IGNORE INTO ${fq} BY NAME ${select}` } : {}),
    };
  }

  private async ddl(c: DuckDBConnection, spec: TableSpec): Promise<void> {
    const fq = `${q(this.schema)}.${q(spec.table)}`;
    const columns = (fields: readonly FieldSpec[], key: readonly string[]): string =>
      [
        ...fields.map((f) => `${q(f.name)} ${duckdbType(f.type)}`),
        ...(key.length ? [`PRIMARY KEY (${key.map(q).join(', ')})`] : []),
      ].join(', ');
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${q(this.schema)}`);
    await c.run(`CREATE TABLE IF NOT EXISTS ${fq} (${columns(spec.fields, spec.key)})`);
    // A contract that gained fields gets the columns (existing rows read NULL).
    const have = await this.columnsOf(c, spec.table);
    for (const f of spec.fields)
      if (!have.has(f.name)) await c.run(`ALTER TABLE ${fq} ADD COLUMN ${q(f.name)} ${duckdbType(f.type)}`);

    // A table keyed differently (the first dead-letter layout, the first event-table layout) is rebuilt
    // with the new key, in one transaction.
    const pk = await c.runAndReadAll(
      `SELECT constraint_column_names AS cols FROM duckdb_constraints()
        WHERE schema_name = $1 AND table_name = $2 AND constraint_type = 'PRIMARY KEY'`,
      [this.schema, spec.table],
    );
    const current = (pk.getRowObjectsJson()[0]?.cols ?? []) as string[];
    if (spec.masked) {
      // The analyst's view of the table (the dashboard and `smelter query --role analyst` read it).
      const view = `${q(maskedSchema(this.schema))}.${q(spec.table)}`;
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${q(maskedSchema(this.schema))}`);
      await c.run(maskedViewSql('duckdb', fq, view, spec.masked, q));
    }
    if (current.join('\0') === spec.key.join('\0')) return;
    const tmp = `${spec.table}__rekey`;
    const fqTmp = `${q(this.schema)}.${q(tmp)}`;
    const old = await this.columnsOf(c, spec.table);
    const extra = [...old].filter((n) => !spec.fields.some((f) => f.name === n));
    const types = await c.runAndReadAll(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
      [this.schema, spec.table],
    );
    const typeOf = new Map(
      types.getRowObjectsJson().map((r) => [String(r.column_name), String(r.data_type)]),
    );
    const list = [...old].map((n) =>
      spec.fill?.[n] ? `coalesce(${q(n)}, ${spec.fill[n]}) AS ${q(n)}` : q(n),
    );
    await c.run('BEGIN TRANSACTION');
    try {
      await c.run(`DROP TABLE IF EXISTS ${fqTmp}`);
      await c.run(`CREATE TABLE ${fqTmp} (${columns(spec.fields, spec.key)})`);
      for (const n of extra)
        await c.run(`ALTER TABLE ${fqTmp} ADD COLUMN ${q(n)} ${typeOf.get(n) ?? 'VARCHAR'}`);
      await c.run(
        `INSERT ${spec.key.length ? 'OR IGNORE ' : ''}INTO ${fqTmp} BY NAME SELECT ${list.join(', ')} FROM ${fq}`,
      );
      await c.run(`DROP TABLE ${fq}`);
      await c.run(`ALTER TABLE ${fqTmp} RENAME TO ${q(spec.table)}`);
      await c.run('COMMIT');
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  private async openSession(wh: LocalWarehouse, plan: TablePlan): Promise<Session> {
    const conn = await wh.connect();
    try {
      const insert = await conn.prepare(plan.insertSql);
      wh.onClose(() => closeQuietly(conn));
      return { conn, insert, plan };
    } catch (err) {
      conn.closeSync();
      throw err;
    }
  }

  /** After a restart: the ids stored within the window (by `_processed_at`) go back into memory. */
  private async loadWindow(c: DuckDBConnection, table: string, win: RecentIds): Promise<void> {
    const since = new Date(this.now() - this.dedupWindowMs).toISOString();
    const r = await c.runAndReadAll(
      `SELECT event_id, epoch_ms(_processed_at)::DOUBLE AS at FROM ${q(this.schema)}.${q(table)}
        WHERE _processed_at >= ${lit(since)}::TIMESTAMPTZ AND event_id IS NOT NULL`,
    );
    for (const [id, at] of r.getRows()) win.add(String(id), Math.min(Number(at), this.now()));
  }

  /** The rows of the batch not stored within the window (first of each event_id within the batch). */
  private async unseen(
    c: DuckDBConnection,
    table: string,
    win: RecentIds,
    rows: readonly EventRow[],
  ): Promise<EventRow[]> {
    const now = this.now();
    const batch = new Map<string, EventRow>();
    for (const r of rows) {
      const id = String(r.event_id);
      if (!batch.has(id)) batch.set(id, r);
    }
    const suspects = [...batch.values()].filter((r) => win.mayContain(String(r.event_id), now));
    if (suspects.length === 0) return [...batch.values()];
    const fq = `${q(this.schema)}.${q(table)}`;
    const ids = (list: EventRow[]): string => list.map((r) => lit(String(r.event_id))).join(', ');
    // A redelivery has the event_time of the original: bound the lookup by it so zone maps prune.
    const times = suspects.map((r) => String(r.event_time)).sort();
    const found = new Set<string>();
    const hit = await c.runAndReadAll(
      `SELECT DISTINCT event_id FROM ${fq}
        WHERE event_time BETWEEN ${lit(times[0] as string)}::TIMESTAMPTZ AND ${lit(times[times.length - 1] as string)}::TIMESTAMPTZ
          AND event_id IN (${ids(suspects)})`,
    );
    for (const [id] of hit.getRows()) found.add(String(id));
    // Not found there: a hash collision (almost always) or an id reused with another event_time.
    const rest = suspects.filter((r) => !found.has(String(r.event_id)));
    if (rest.length) {
      const again = await c.runAndReadAll(
        `SELECT DISTINCT event_id FROM ${fq} WHERE _processed_at >= ${lit(new Date(now - this.dedupWindowMs).toISOString())}::TIMESTAMPTZ AND event_id IN (${ids(rest)})`,
      );
      for (const [id] of again.getRows()) found.add(String(id));
    }
    return [...batch.values()].filter((r) => !found.has(String(r.event_id)));
  }

  private async columnsOf(c: DuckDBConnection, table: string): Promise<Set<string>> {
    const r = await c.runAndReadAll(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
      [this.schema, table],
    );
    return new Set(r.getRowObjectsJson().map((x) => String(x.column_name)));
  }

  /**
   * Keyed tables (dead letters): a plain INSERT; a redelivered key fails it as a whole, and the batch
   * goes again skipping duplicates.
   */
  private async write(w: Write): Promise<void> {
    await this.withConnection(w.table, async (c) => {
      try {
        await c.run(w.plan.insertSql, [w.json]);
      } catch (err) {
        if (!isDuplicateKey(err) || !w.plan.ignoreSql) throw err;
        await c.run(w.plan.ignoreSql, [w.json]);
      }
    });
  }

  private async opened(table: string): Promise<LocalWarehouse> {
    try {
      return await this.open();
    } catch (err) {
      throw this.unavailable(table, err);
    }
  }

  private async withConnection<T>(table: string, fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    let c: DuckDBConnection | undefined;
    try {
      const wh = await this.open();
      c = await wh.connect();
      return await fn(c);
    } catch (err) {
      throw this.unavailable(table, err);
    } finally {
      c?.closeSync();
    }
  }

  private unavailable(table: string, err: unknown): Error {
    return transient(
      'WAREHOUSE_UNAVAILABLE',
      `Local warehouse write to ${this.schema}.${table} failed: ${(err as Error).message}`,
      {
        cause: err,
        details: { table: `${this.schema}.${table}` },
      },
    );
  }
}
