/**
 * Local event tables in the shared DuckDB file (schema `events`): one table per contract, created
 * from it on first use (STRUCT / LIST columns; partitioning and clustering have no local equivalent),
 * new contract fields added as columns, plus `events.dead_letter`.
 *
 * Insert-id dedup: `event_id` is the table's PRIMARY KEY and rows go in with INSERT OR IGNORE, so a
 * redelivered event is stored once — forever locally, which is stricter than BigQuery's best-effort
 * window of about a minute (the Silver layer removes what BigQuery lets through). Dead letters are
 * keyed the same way by `message_id`.
 *
 * A batch is one statement: the rows travel as one JSON parameter and DuckDB casts them with
 * `from_json_strict` to the table's types.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { transient } from '../../errors';
import { type ColumnType, duckdbType, type FieldSpec, isScalar } from '../../contracts/types';
import type { EventContract } from '../../events/contract';
import type { DeadLetterRecord, EventRow, EventWarehouse, WarehouseRejection } from '../../events/ports';
import { DEAD_LETTER_FIELDS, DEAD_LETTER_TABLE, eventTableFields } from '../../events/schema';
import type { LocalWarehouse } from '../warehouse/duckdb-local';

export const LOCAL_EVENTS_SCHEMA = 'events';

const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The `from_json` structure of a column: JSON columns travel as text and are cast on insert. */
function shapeOf(t: ColumnType): unknown {
  if (isScalar(t)) return t === 'json' ? 'VARCHAR' : duckdbType(t);
  if ('struct' in t) return Object.fromEntries(t.struct.map((f) => [f.name, shapeOf(f.type)]));
  return [shapeOf(t.array)];
}

interface TablePlan {
  insertSql: string;
}

export class DuckDbEventWarehouse implements EventWarehouse {
  readonly kind = 'duckdb';
  private readonly plans = new Map<string, Promise<TablePlan>>();

  /** `open` returns the process-wide warehouse (getLocalWarehouse); this adapter never closes it. */
  constructor(
    private readonly open: () => Promise<LocalWarehouse>,
    readonly schema = LOCAL_EVENTS_SCHEMA,
  ) {}

  /** Creates every contract's table and the dead-letter table, so they can be queried before the first event. */
  async prepare(contracts: readonly EventContract[]): Promise<void> {
    await this.deadLetterPlan();
    for (const c of contracts) await this.eventPlan(c);
  }

  async insertEvents(contract: EventContract, rows: readonly EventRow[]): Promise<WarehouseRejection[]> {
    if (rows.length === 0) return [];
    const plan = await this.eventPlan(contract);
    await this.exec(plan.insertSql, JSON.stringify(rows), contract.table);
    return [];
  }

  async insertDeadLetters(rows: readonly DeadLetterRecord[]): Promise<void> {
    if (rows.length === 0) return;
    const plan = await this.deadLetterPlan();
    await this.exec(plan.insertSql, JSON.stringify(rows), DEAD_LETTER_TABLE);
  }

  async close(): Promise<void> {
    this.plans.clear();
  }

  private eventPlan(c: EventContract): Promise<TablePlan> {
    return this.plan(c.table, c.hash ?? JSON.stringify(c.fields), eventTableFields(c), 'event_id');
  }

  private deadLetterPlan(): Promise<TablePlan> {
    return this.plan(DEAD_LETTER_TABLE, 'v1', DEAD_LETTER_FIELDS, 'message_id');
  }

  /** Creates (or extends) the table once per contract version and prepares its insert statement. */
  private plan(
    table: string,
    version: string,
    fields: readonly FieldSpec[],
    key: string,
  ): Promise<TablePlan> {
    const k = `${table}\0${version}`;
    let p = this.plans.get(k);
    if (!p) {
      p = this.ensure(table, fields, key);
      this.plans.set(k, p);
      p.catch(() => this.plans.delete(k));
    }
    return p;
  }

  private async ensure(table: string, fields: readonly FieldSpec[], key: string): Promise<TablePlan> {
    const fq = `${q(this.schema)}.${q(table)}`;
    const cols = fields.map((f) => {
      const base = `${q(f.name)} ${duckdbType(f.type)}`;
      return f.name === key ? `${base} PRIMARY KEY` : base;
    });
    await this.withConnection(table, async (c) => {
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${q(this.schema)}`);
      await c.run(`CREATE TABLE IF NOT EXISTS ${fq} (${cols.join(', ')})`);
      // A contract that gained fields gets the columns (existing rows read NULL).
      const r = await c.runAndReadAll(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
        [this.schema, table],
      );
      const have = new Set(r.getRowObjectsJson().map((x) => String(x.column_name)));
      for (const f of fields)
        if (!have.has(f.name)) await c.run(`ALTER TABLE ${fq} ADD COLUMN ${q(f.name)} ${duckdbType(f.type)}`);
    });
    const shape = JSON.stringify([Object.fromEntries(fields.map((f) => [f.name, shapeOf(f.type)]))]).replace(
      /'/g,
      "''",
    );
    return {
      insertSql: `INSERT OR IGNORE INTO ${fq} BY NAME SELECT r.* FROM (SELECT unnest(from_json_strict($1, '${shape}')) AS r)`,
    };
  }

  private async exec(sql: string, json: string, table: string): Promise<void> {
    await this.withConnection(table, (c) => c.run(sql, [json]).then(() => undefined));
  }

  private async withConnection<T>(table: string, fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    let c: DuckDBConnection | undefined;
    try {
      const wh = await this.open();
      c = await wh.connect();
      return await fn(c);
    } catch (err) {
      throw transient(
        'WAREHOUSE_UNAVAILABLE',
        `Local warehouse write to ${this.schema}.${table} failed: ${(err as Error).message}`,
        {
          cause: err,
          details: { table: `${this.schema}.${table}` },
        },
      );
    } finally {
      c?.closeSync();
    }
  }
}
