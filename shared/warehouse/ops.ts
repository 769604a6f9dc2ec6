/**
 * The loader's own tables in the `ops` layer: the load ledger (what was loaded, so a duplicate
 * delivery is a no-op), watermarks of the incremental refresh, audit results, model runs and the
 * per-dataset state (a dataset stopped by an incompatible schema change).
 */
import type { ScalarType } from '../contracts/types';
import type { AuditOutcome } from './audits';
import type { Dialect } from './dialect/core';
import type { WarehouseEngine } from './engine';
import { timestampOf } from './ranges';
import { OPS, type TableRef } from './tables';

type Cols = [string, ScalarType][];

export const OPS_TABLES: { ref: TableRef; columns: Cols }[] = [
  {
    ref: OPS.ledger,
    columns: [
      ['bucket', 'string'],
      ['name', 'string'],
      ['generation', 'string'],
      ['dataset', 'string'],
      ['rows', 'int64'],
      ['job_id', 'string'],
      ['status', 'string'],
      ['error', 'string'],
      ['loaded_at', 'timestamp'],
      ['updated_at', 'timestamp'],
    ],
  },
  {
    ref: OPS.watermarks,
    columns: [
      ['model', 'string'],
      ['watermark', 'timestamp'],
      ['updated_at', 'timestamp'],
    ],
  },
  {
    ref: OPS.audits,
    columns: [
      ['model', 'string'],
      ['audit', 'string'],
      ['status', 'string'],
      ['failing_rows', 'int64'],
      ['query', 'string'],
      ['trigger', 'string'],
      ['checked_at', 'timestamp'],
    ],
  },
  {
    ref: OPS.runs,
    columns: [
      ['model', 'string'],
      ['trigger', 'string'],
      ['range_start', 'date'],
      ['range_end', 'date'],
      ['rows', 'int64'],
      ['status', 'string'],
      ['error', 'string'],
      ['duration_ms', 'int64'],
      ['finished_at', 'timestamp'],
    ],
  },
  {
    ref: OPS.datasets,
    columns: [
      ['dataset', 'string'],
      ['status', 'string'],
      ['reason', 'string'],
      ['object', 'string'],
      ['since', 'timestamp'],
    ],
  },
];

export type LedgerStatus = 'loaded' | 'done' | 'pending' | 'blocked' | 'failed' | 'skipped';

export interface LedgerRow {
  bucket: string;
  name: string;
  generation: string;
  dataset: string;
  rows: number;
  job_id: string;
  status: LedgerStatus;
  error?: string | null;
  loaded_at?: string | null;
}

export class OpsStore {
  private readonly d: Dialect;
  constructor(private readonly engine: WarehouseEngine) {
    this.d = engine.dialect;
  }

  async ensure(): Promise<void> {
    const stmts = [
      ...this.d.createSchemas(),
      ...OPS_TABLES.map((t) =>
        this.d.createTable(
          t.ref,
          t.columns.map(([name, type]) => ({ name, type: this.d.scalarType(type) })),
        ),
      ),
    ];
    await this.engine.exec(stmts.join(';\n') + ';');
  }

  lit(v: string | number | null | undefined): string {
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'NULL';
    return this.d.stringLiteral(v);
  }

  private t(ref: TableRef): string {
    return this.d.table(ref);
  }

  // ---- ledger
  async ledger(bucket: string, name: string, generation: string): Promise<LedgerRow | undefined> {
    const rows = await this.engine.query<LedgerRow>(
      `SELECT bucket, name, generation, dataset, CAST(rows AS ${this.d.scalarType('float64')}) AS rows, job_id, status, error FROM ${this.t(OPS.ledger)} ` +
        `WHERE bucket = ${this.lit(bucket)} AND name = ${this.lit(name)} AND generation = ${this.lit(generation)} LIMIT 1`,
    );
    const r = rows[0];
    return r ? { ...r, rows: Number(r.rows ?? 0) } : undefined;
  }

  /** SQL inserting a ledger row; `{rows}` is replaced by the engine after the load. */
  ledgerInsertSql(row: Omit<LedgerRow, 'rows'> & { rows: number | '{rows}' }): string {
    const rows = row.rows === '{rows}' ? '{rows}' : this.lit(row.rows);
    return (
      `INSERT INTO ${this.t(OPS.ledger)} (bucket, name, generation, dataset, rows, job_id, status, error, loaded_at, updated_at) VALUES (` +
      [
        this.lit(row.bucket),
        this.lit(row.name),
        this.lit(row.generation),
        this.lit(row.dataset),
        rows,
        this.lit(row.job_id),
        this.lit(row.status),
        this.lit(row.error ?? null),
      ].join(', ') +
      `, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`
    );
  }

  async ledgerUpsert(row: LedgerRow): Promise<void> {
    const existing = await this.ledger(row.bucket, row.name, row.generation);
    if (!existing) return this.engine.exec(this.ledgerInsertSql(row));
    await this.ledgerSetStatus(row, row.status, row.error ?? null, row.rows);
  }

  async ledgerSetStatus(
    ref: { bucket: string; name: string; generation: string },
    status: LedgerStatus,
    error: string | null = null,
    rows?: number,
  ): Promise<void> {
    await this.engine.exec(
      `UPDATE ${this.t(OPS.ledger)} SET status = ${this.lit(status)}, error = ${this.lit(error?.slice(0, 8000) ?? null)}, ` +
        (rows !== undefined ? `rows = ${this.lit(rows)}, ` : '') +
        `updated_at = CURRENT_TIMESTAMP WHERE bucket = ${this.lit(ref.bucket)} AND name = ${this.lit(ref.name)} AND generation = ${this.lit(ref.generation)}`,
    );
  }

  async ledgerByStatus(dataset: string | undefined, statuses: LedgerStatus[]): Promise<LedgerRow[]> {
    return this.engine.query<LedgerRow>(
      `SELECT bucket, name, generation, dataset, rows, job_id, status, error FROM ${this.t(OPS.ledger)} WHERE status IN (${statuses.map((s) => this.lit(s)).join(', ')})` +
        (dataset ? ` AND dataset = ${this.lit(dataset)}` : '') +
        ` ORDER BY generation, name`,
    );
  }

  // ---- dataset state
  async blocked(dataset: string): Promise<{ reason: string; object: string; since: string } | undefined> {
    const rows = await this.engine.query<{ reason: string; object: string; since: unknown }>(
      `SELECT reason, object, since FROM ${this.t(OPS.datasets)} WHERE dataset = ${this.lit(dataset)} AND status = 'blocked' LIMIT 1`,
    );
    const r = rows[0];
    return r
      ? { reason: r.reason, object: r.object, since: timestampOf(r.since) ?? String(r.since) }
      : undefined;
  }

  async block(dataset: string, reason: string, object: string): Promise<void> {
    await this.engine.exec(
      this.d.transaction([
        `DELETE FROM ${this.t(OPS.datasets)} WHERE dataset = ${this.lit(dataset)}`,
        `INSERT INTO ${this.t(OPS.datasets)} (dataset, status, reason, object, since) VALUES (${this.lit(dataset)}, 'blocked', ${this.lit(reason.slice(0, 8000))}, ${this.lit(object)}, CURRENT_TIMESTAMP)`,
      ]),
    );
  }

  async unblock(dataset: string): Promise<void> {
    await this.engine.exec(`DELETE FROM ${this.t(OPS.datasets)} WHERE dataset = ${this.lit(dataset)}`);
  }

  // ---- watermarks
  async watermark(model: string): Promise<string | undefined> {
    const rows = await this.engine.query<{ watermark: unknown }>(
      `SELECT watermark FROM ${this.t(OPS.watermarks)} WHERE model = ${this.lit(model)} LIMIT 1`,
    );
    return timestampOf(rows[0]?.watermark);
  }

  async setWatermark(model: string, watermark: string): Promise<void> {
    await this.engine.exec(
      this.d.transaction([
        `DELETE FROM ${this.t(OPS.watermarks)} WHERE model = ${this.lit(model)}`,
        `INSERT INTO ${this.t(OPS.watermarks)} (model, watermark, updated_at) VALUES (${this.lit(model)}, ${this.d.timestampLiteral(watermark)}, CURRENT_TIMESTAMP)`,
      ]),
    );
  }

  // ---- audit results and runs
  async recordAudits(rows: AuditOutcome[]): Promise<void> {
    if (!rows.length) return;
    const values = rows
      .map(
        (r) =>
          `(${this.lit(r.model)}, ${this.lit(r.audit)}, ${this.lit(r.status)}, ${this.lit(r.failing_rows)}, ${this.lit(r.query.slice(0, 8000))}, ${this.lit(r.trigger)}, CURRENT_TIMESTAMP)`,
      )
      .join(', ');
    await this.engine.exec(
      `INSERT INTO ${this.t(OPS.audits)} (model, audit, status, failing_rows, query, trigger, checked_at) VALUES ${values}`,
    );
  }

  async recordRun(r: {
    model: string;
    trigger: string;
    rangeStart?: string;
    rangeEnd?: string;
    rows: number;
    status: 'ok' | 'failed';
    error?: string;
    durationMs: number;
  }): Promise<void> {
    const date = (d?: string): string => (d ? this.d.dateLiteral(d) : 'NULL');
    await this.engine.exec(
      `INSERT INTO ${this.t(OPS.runs)} (model, trigger, range_start, range_end, rows, status, error, duration_ms, finished_at) VALUES (` +
        `${this.lit(r.model)}, ${this.lit(r.trigger)}, ${date(r.rangeStart)}, ${date(r.rangeEnd)}, ${this.lit(r.rows)}, ${this.lit(r.status)}, ${this.lit(r.error?.slice(0, 8000) ?? null)}, ${this.lit(Math.round(r.durationMs))}, CURRENT_TIMESTAMP)`,
    );
  }
}
