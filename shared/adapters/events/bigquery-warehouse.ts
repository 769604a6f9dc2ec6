/**
 * Event tables on BigQuery: streaming inserts (`tabledata.insertAll`) into `<prefix>_events.<table>`
 * with `event_id` as the insert id (`raw: true` rows `{insertId, json}`), so a redelivered event
 * within BigQuery's best-effort dedup window (about a minute) is stored once; Silver removes the rest.
 * Dead letters go to `<prefix>_events.dead_letter` with a hash of (message_id, publish_time) as the
 * insert id (the same key as the local table: a redelivery is one row, a reused id is not). Tables are
 * created by deploy (partitioned by DATE(partition column), clustered — see bigqueryTableSpec).
 *
 * Error mapping:
 * - partial failure, rows with reason `invalid` (the table refused the row, e.g. schema drift between
 *   contract and table, a partition outside the streaming range): returned as rejections → the router
 *   dead-letters them (code `warehouse_rejected`) — retrying the same row cannot succeed;
 * - partial failure, rows `stopped` (not inserted only because others were invalid): re-inserted once
 *   at once, without the invalid rows;
 * - the whole request refused for what it carries (HTTP 400, 413 — e.g. text BigQuery cannot parse):
 *   bisected, so only the rows refused on their own are rejected and their batch-mates stored;
 * - anything else — 5xx, 429, network errors, quota, 403, 404 (table or dataset missing: deploy has not
 *   created it) — throws a transient WAREHOUSE_UNAVAILABLE, so the platform redelivers until it heals.
 */
import { BigQuery, type Table } from '@google-cloud/bigquery';
import { transient } from '../../errors';
import type { EventContract } from '../../events/contract';
import type { DeadLetterRecord, EventRow, EventWarehouse, WarehouseRejection } from '../../events/ports';
import { DEAD_LETTER_TABLE, deadLetterInsertId } from '../../events/schema';

/** insertAll limits: 50,000 rows and 10 MB per request; Google recommends ≤ 500 rows. */
const MAX_ROWS_PER_REQUEST = 500;
const MAX_BYTES_PER_REQUEST = 8 * 1024 * 1024;

export interface BigQueryEventWarehouseOptions {
  projectId?: string;
  /** `<prefix>_events` */
  datasetId: string;
  location?: string;
  /** An existing client (tests pass one whose HTTP boundary is stubbed). */
  client?: BigQuery;
}

interface RawRow {
  insertId: string;
  json: Record<string, unknown>;
}

interface InsertErrorEntry {
  row?: RawRow;
  errors?: { reason?: string; message?: string }[];
}

export class BigQueryEventWarehouse implements EventWarehouse {
  readonly kind = 'bigquery';
  readonly client: BigQuery;
  private readonly tables = new Map<string, Table>();

  constructor(readonly opts: BigQueryEventWarehouseOptions) {
    this.client =
      opts.client ??
      new BigQuery({
        ...(opts.projectId ? { projectId: opts.projectId } : {}),
        ...(opts.location ? { location: opts.location } : {}),
      });
  }

  table(name: string): Table {
    let t = this.tables.get(name);
    if (!t) {
      t = this.client.dataset(this.opts.datasetId).table(name);
      this.tables.set(name, t);
    }
    return t;
  }

  async insertEvents(contract: EventContract, rows: readonly EventRow[]): Promise<WarehouseRejection[]> {
    const raw = rows.map((r) => ({ insertId: String(r.event_id), json: r as Record<string, unknown> }));
    return this.insertAll(contract.table, raw);
  }

  async insertDeadLetters(rows: readonly DeadLetterRecord[]): Promise<void> {
    const raw = rows.map((r) => ({
      insertId: deadLetterInsertId(r),
      json: { ...r } as Record<string, unknown>,
    }));
    const rejected = await this.insertAll(DEAD_LETTER_TABLE, raw);
    // A dead letter that BigQuery refuses has nowhere else to go: retry (and alert through the logs).
    if (rejected.length)
      throw transient(
        'WAREHOUSE_UNAVAILABLE',
        `BigQuery refused ${rejected.length} dead-letter rows: ${rejected[0]?.reason}`,
        {
          details: { table: `${this.opts.datasetId}.${DEAD_LETTER_TABLE}` },
        },
      );
  }

  async close(): Promise<void> {
    this.tables.clear();
  }

  private async insertAll(table: string, rows: RawRow[]): Promise<WarehouseRejection[]> {
    const rejected: WarehouseRejection[] = [];
    let start = 0;
    while (start < rows.length) {
      // Requests of at most 500 rows and ~8 MB.
      let end = start;
      let bytes = 0;
      while (end < rows.length && end - start < MAX_ROWS_PER_REQUEST) {
        const size = JSON.stringify((rows[end] as RawRow).json).length + 64;
        if (end > start && bytes + size > MAX_BYTES_PER_REQUEST) break;
        bytes += size;
        end++;
      }
      const chunk = rows.slice(start, end);
      for (const r of await this.insertChunk(table, chunk, true))
        rejected.push({ index: start + r.index, reason: r.reason });
      start = end;
    }
    return rejected;
  }

  private async insertChunk(
    table: string,
    rows: RawRow[],
    retryStopped: boolean,
  ): Promise<WarehouseRejection[]> {
    const where = `${this.opts.datasetId}.${table}`;
    try {
      // partialRetries 0: the client would otherwise resend invalid rows together with the stopped ones.
      await this.table(table).insert(rows, {
        raw: true,
        partialRetries: 0,
        skipInvalidRows: false,
        ignoreUnknownValues: false,
      });
      return [];
    } catch (err) {
      const e = err as Error & { name?: string; code?: unknown; errors?: InsertErrorEntry[] };
      if (e.code === 400 || e.code === 413) return this.bisect(table, rows, err);
      if (e.name !== 'PartialFailureError' || !Array.isArray(e.errors)) throw mapError(err, where);
      const index = new Map(rows.map((r, i) => [r, i]));
      const byId = new Map(rows.map((r, i) => [r.insertId, i]));
      const rejected: WarehouseRejection[] = [];
      const stopped: number[] = [];
      for (const entry of e.errors) {
        const i = entry.row ? (index.get(entry.row) ?? byId.get(entry.row.insertId)) : undefined;
        if (i === undefined) throw mapError(err, where);
        const reasons = entry.errors ?? [];
        if (reasons.some((x) => x.reason === 'invalid'))
          rejected.push({
            index: i,
            reason: `BigQuery refused the row for ${where}: ${reasons.map((x) => x.message ?? x.reason).join('; ')}`,
          });
        else if (reasons.every((x) => x.reason === 'stopped')) stopped.push(i);
        // Any other per-row reason (backendError, timeout…) is transient.
        else throw mapError(err, where);
      }
      if (stopped.length) {
        if (!retryStopped) throw mapError(err, where);
        const again = await this.insertChunk(
          table,
          stopped.map((i) => rows[i] as RawRow),
          false,
        );
        for (const r of again) rejected.push({ index: stopped[r.index] as number, reason: r.reason });
      }
      return rejected;
    }
  }

  /**
   * BigQuery refused the whole request for what it carries (400: e.g. text it cannot parse; 413: too
   * large): the halves go separately, so only the rows it refuses on their own are rejected.
   */
  private async bisect(table: string, rows: RawRow[], err: unknown): Promise<WarehouseRejection[]> {
    if (rows.length === 1) {
      const e = err as Error & { code?: unknown };
      return [
        {
          index: 0,
          reason: `BigQuery refused the row for ${this.opts.datasetId}.${table} (HTTP ${String(e.code)}): ${e.message.slice(0, 500)}`,
        },
      ];
    }
    const mid = Math.ceil(rows.length / 2);
    const rejected = await this.insertChunk(table, rows.slice(0, mid), true);
    for (const r of await this.insertChunk(table, rows.slice(mid), true))
      rejected.push({ index: mid + r.index, reason: r.reason });
    return rejected;
  }
}

function mapError(err: unknown, where: string): Error {
  const e = err as Error & { code?: unknown; errors?: { reason?: string; message?: string }[] };
  const status = typeof e.code === 'number' ? e.code : undefined;
  const reason = Array.isArray(e.errors) ? e.errors[0]?.reason : undefined;
  const hint =
    status === 404
      ? ` — the table or dataset does not exist; deploy creates ${where} from the event contracts`
      : '';
  return transient(
    'WAREHOUSE_UNAVAILABLE',
    `BigQuery insert into ${where} failed${status ? ` (HTTP ${status})` : ''}: ${e.message}${hint}`,
    {
      cause: err,
      details: { table: where, status, reason, code: typeof e.code === 'string' ? e.code : undefined },
    },
  );
}
