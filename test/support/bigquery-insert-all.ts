/**
 * BigQuery's streaming insert (`tabledata.insertAll`) at the client's HTTP boundary: `Table#request` of
 * @google-cloud/bigquery is stubbed, so the real client builds the request and reads the answer. No
 * BigQuery emulator exists for our machines; this answers as the documented service does, on the tables
 * deploy creates (bigqueryTableSpec):
 * - a table that does not exist → HTTP 404;
 * - a body holding text JSON cannot carry (an unpaired UTF-16 surrogate) → HTTP 400 for the whole request;
 * - a row with a field the table lacks, a REQUIRED field missing, or an unparseable TIMESTAMP → `invalid`;
 *   with skipInvalidRows false the other rows of the request come back `stopped` and nothing is stored;
 * - an insertId already stored is not stored again (BigQuery's best-effort dedup, here without expiry);
 * - `failNext(err)` makes the next request fail with `err` (an outage).
 */
import sinon from 'sinon';
import { Table } from '@google-cloud/bigquery';
import type { BigQueryField } from '../../shared/contracts/types';
import type { BigQueryTableSpec } from '../../shared/events/schema';

interface InsertAllRequest {
  method: string;
  uri: string;
  json: {
    rows: { insertId?: string; json: Record<string, unknown> }[];
    skipInvalidRows?: boolean;
    ignoreUnknownValues?: boolean;
  };
}

interface InsertError {
  index: number;
  errors: { reason: string; message: string }[];
}

interface FakeTable {
  schema: Map<string, BigQueryField>;
  rows: Record<string, unknown>[];
  insertIds: Set<string>;
}

export class FakeInsertAll {
  private readonly tables = new Map<string, FakeTable>();
  private readonly failures: unknown[] = [];
  /** Every request, in order: `<dataset>.<table>` and its body. */
  readonly requests: { table: string; body: InsertAllRequest['json'] }[] = [];
  private stub: sinon.SinonStub | undefined;

  /** The tables deploy creates in `dataset`. */
  constructor(
    readonly dataset: string,
    specs: readonly BigQueryTableSpec[],
  ) {
    for (const s of specs)
      this.tables.set(`${dataset}.${s.table}`, {
        schema: new Map(s.schema.map((f) => [f.name, f])),
        rows: [],
        insertIds: new Set(),
      });
  }

  /** Routes every Table#request of the process here until `uninstall()`. */
  install(): this {
    const handle = (where: string, opts: unknown) => this.handle(where, opts as InsertAllRequest);
    this.stub = sinon.stub(Table.prototype, 'request').callsFake(function (this: Table, opts: unknown) {
      return handle(`${this.dataset.id}.${this.id}`, opts);
    });
    return this;
  }

  uninstall(): void {
    this.stub?.restore();
    this.stub = undefined;
  }

  failNext(err: unknown): void {
    this.failures.push(err);
  }

  /** The rows stored in `table` of this dataset, as BigQuery would return them. */
  rows(table: string): Record<string, unknown>[] {
    return this.tables.get(`${this.dataset}.${table}`)?.rows ?? [];
  }

  private async handle(where: string, req: InsertAllRequest): Promise<[Record<string, unknown>]> {
    if (req.method !== 'POST' || req.uri !== '/insertAll')
      throw new Error(`FakeInsertAll: unexpected ${req.method} ${req.uri}`);
    this.requests.push({ table: where, body: req.json });
    const failure = this.failures.shift();
    if (failure) throw failure;
    // JSON.stringify escapes an unpaired surrogate, and only that, as \uD800–\uDFFF.
    if (/\\ud[89a-f][0-9a-f]{2}/i.test(JSON.stringify(req.json)))
      throw Object.assign(new Error('Invalid JSON payload received. Invalid \\u escape.'), {
        code: 400,
        errors: [{ reason: 'invalid', message: 'Invalid JSON payload received.' }],
      });
    const t = this.tables.get(where);
    if (!t)
      throw Object.assign(new Error(`Not found: Table smelter-test:${where.replace('.', ':')}`), {
        code: 404,
      });
    const errors: InsertError[] = [];
    req.json.rows.forEach((r, index) => {
      const problems = rowProblems(t.schema, r.json, req.json.ignoreUnknownValues === true);
      if (problems.length)
        errors.push({ index, errors: problems.map((message) => ({ reason: 'invalid', message })) });
    });
    if (errors.length && !req.json.skipInvalidRows) {
      const invalid = new Set(errors.map((e) => e.index));
      req.json.rows.forEach((_, index) => {
        if (!invalid.has(index)) errors.push({ index, errors: [{ reason: 'stopped', message: '' }] });
      });
      return [{ kind: 'bigquery#tableDataInsertAllResponse', insertErrors: errors }];
    }
    const invalid = new Set(errors.map((e) => e.index));
    req.json.rows.forEach((r, index) => {
      if (invalid.has(index)) return;
      if (r.insertId !== undefined) {
        if (t.insertIds.has(r.insertId)) return;
        t.insertIds.add(r.insertId);
      }
      t.rows.push(r.json);
    });
    return [
      {
        kind: 'bigquery#tableDataInsertAllResponse',
        ...(errors.length ? { insertErrors: errors } : {}),
      },
    ];
  }
}

/** What BigQuery would refuse in a row: top-level fields only (enough for schema drift and bad values). */
function rowProblems(
  schema: Map<string, BigQueryField>,
  row: Record<string, unknown>,
  ignoreUnknown: boolean,
): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(row)) {
    const f = schema.get(name);
    if (!f) {
      if (!ignoreUnknown) problems.push(`no such field: ${name}.`);
      continue;
    }
    if (f.type === 'TIMESTAMP' && value != null && !Number.isFinite(Date.parse(String(value))))
      problems.push(
        `Could not parse '${String(value)}' as a timestamp. Required format is YYYY-MM-DD HH:MM[:SS[.SSSSSS]]`,
      );
  }
  for (const f of schema.values())
    if (f.mode === 'REQUIRED' && row[f.name] == null) problems.push(`Missing required field: ${f.name}.`);
  return problems;
}
