/**
 * The BigQuery warehouse engine. Bronze objects are loaded by load jobs straight from GCS (PARQUET,
 * list inference on, WRITE_APPEND, ALLOW_FIELD_ADDITION) under a deterministic job id derived from
 * bucket/name/generation: a duplicate delivery's job fails with 409 "already exists", which means the
 * first one did (or is doing) the work — we wait for it and reuse its result. Everything else is SQL
 * (query jobs) rendered by the BigQuery dialect.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { permanent, SmelterError, transient } from '../../errors';
import { BigQueryDialect } from '../../warehouse/dialect';
import type {
  QueryParams,
  ColumnInfo,
  LoadResult,
  ParquetLoad,
  TypeFamily,
  WarehouseEngine,
} from '../../warehouse/engine';
import type { TableRef } from '../../warehouse/tables';

export interface BigQueryField {
  name: string;
  type?: string;
  mode?: string;
  fields?: BigQueryField[];
}

export interface BigQueryJobLike {
  id?: string;
  metadata?: {
    status?: { state?: string; errorResult?: { reason?: string; message?: string } };
    statistics?: {
      load?: { outputRows?: string | number };
      query?: { schema?: { fields?: BigQueryField[] } };
    };
  };
  promise(): Promise<unknown[]>;
  getQueryResults(opts?: Record<string, unknown>): Promise<unknown[]>;
  getMetadata(): Promise<unknown[]>;
}

/** The part of `@google-cloud/bigquery`'s client this adapter uses (stubbed with sinon in tests). */
export interface BigQueryClientLike {
  createJob(opts: Record<string, unknown>): Promise<unknown[]>;
  createQueryJob(opts: Record<string, unknown>): Promise<unknown[]>;
  job(id: string, opts?: { location?: string }): BigQueryJobLike;
  dataset(id: string): { table(id: string): { getMetadata(): Promise<unknown[]> } };
}

export interface BigQueryEngineOptions {
  projectId: string;
  location: string;
  prefix: string;
  client?: BigQueryClientLike;
}

export class BigQueryEngine implements WarehouseEngine {
  readonly dialect: BigQueryDialect;
  readonly client: BigQueryClientLike;

  constructor(private readonly opts: BigQueryEngineOptions) {
    this.dialect = new BigQueryDialect(opts.projectId, opts.prefix, opts.location);
    this.client =
      opts.client ??
      (new BigQuery({ projectId: opts.projectId, location: opts.location }) as unknown as BigQueryClientLike);
  }

  private queryOptions(sql: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      query: sql,
      location: this.opts.location,
      useLegacySql: false,
      jobPrefix: 'smelter_',
      labels: { app: 'smelter' },
      ...extra,
    };
  }

  private async run(
    sql: string,
    params?: QueryParams,
  ): Promise<{ job: BigQueryJobLike; rows: Record<string, unknown>[] }> {
    let job: BigQueryJobLike;
    try {
      const opts = params
        ? this.queryOptions(bigqueryParams(sql), { params: { ...params } })
        : this.queryOptions(sql);
      [job] = (await this.client.createQueryJob(opts)) as [BigQueryJobLike];
      const [rows] = (await job.getQueryResults({ wrapIntegers: true })) as [Record<string, unknown>[]];
      return { job, rows: rows ?? [] };
    } catch (err) {
      throw classify(err, sql);
    }
  }

  async query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
    const { rows } = await this.run(sql, params);
    return rows.map((r) => normalise(r) as T);
  }

  async queryTable(sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
    const { job, rows } = await this.run(sql);
    let fields = job.metadata?.statistics?.query?.schema?.fields;
    if (!fields) {
      const [meta] = (await job.getMetadata().catch(() => [undefined])) as [BigQueryJobLike['metadata']];
      fields = meta?.statistics?.query?.schema?.fields;
    }
    const columns = fields?.map((f) => f.name) ?? Object.keys(rows[0] ?? {});
    return { columns, rows: rows.map((r) => columns.map((c) => normalise(r[c]))) };
  }

  async exec(sql: string): Promise<void> {
    await this.run(sql);
  }

  async columns(table: TableRef): Promise<ColumnInfo[] | undefined> {
    try {
      const [meta] = (await this.client
        .dataset(this.dialect.dataset(table.layer))
        .table(table.name)
        .getMetadata()) as [{ schema?: { fields?: BigQueryField[] } }];
      return (meta.schema?.fields ?? []).map(bigqueryColumn);
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw classify(err, `tables.get ${this.dialect.table(table)}`);
    }
  }

  async queryColumns(sql: string): Promise<ColumnInfo[]> {
    try {
      const [job] = (await this.client.createQueryJob(this.queryOptions(sql, { dryRun: true }))) as [
        BigQueryJobLike,
      ];
      return (job.metadata?.statistics?.query?.schema?.fields ?? []).map(bigqueryColumn);
    } catch (err) {
      throw classify(err, sql);
    }
  }

  /** The load job configuration for a Bronze object (exported for tests and docs). */
  loadJobConfig(load: ParquetLoad): Record<string, unknown> {
    return {
      configuration: {
        load: {
          // No `#generation` suffix: BigQuery rejects generation-qualified URIs.
          sourceUris: [`gs://${load.bucket}/${load.name}`],
          sourceFormat: 'PARQUET',
          parquetOptions: { enableListInference: true },
          writeDisposition: 'WRITE_APPEND',
          createDisposition: 'CREATE_IF_NEEDED',
          schemaUpdateOptions: ['ALLOW_FIELD_ADDITION'],
          destinationTable: {
            projectId: this.opts.projectId,
            datasetId: this.dialect.dataset(load.table.layer),
            tableId: load.table.name,
          },
          ...(load.timePartitioningField
            ? { timePartitioning: { type: 'DAY', field: load.timePartitioningField } }
            : {}),
          ...(load.clusterFields?.length ? { clustering: { fields: load.clusterFields } } : {}),
        },
        labels: { app: 'smelter', kind: 'bronze-load' },
      },
      jobId: load.jobId,
      location: this.opts.location,
    };
  }

  async loadParquet(load: ParquetLoad): Promise<LoadResult> {
    let job: BigQueryJobLike;
    let reused = false;
    try {
      [job] = (await this.client.createJob(this.loadJobConfig(load))) as [BigQueryJobLike];
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw classifyLoad(err, load);
      // Same id = same object generation: a duplicate delivery. Wait for the first job and reuse it.
      job = this.client.job(load.jobId, { location: this.opts.location });
      reused = true;
    }
    let meta: BigQueryJobLike['metadata'];
    try {
      [meta] = (await job.promise()) as [BigQueryJobLike['metadata']];
    } catch (err) {
      throw classifyLoad(err, load);
    }
    const rows = Number(meta?.statistics?.load?.outputRows ?? 0);
    if (load.ledgerSql) await this.exec(load.ledgerSql.replace(/\{rows\}/g, String(rows)));
    return { rows, jobId: load.jobId, reused };
  }

  async tableStats(
    layers: readonly string[],
  ): Promise<{ layer: string; table: string; rows: number; kind: 'table' | 'view' }[]> {
    const out: { layer: string; table: string; rows: number; kind: 'table' | 'view' }[] = [];
    for (const layer of layers) {
      try {
        const rows = await this.query<{ table_id: string; row_count: unknown; type: unknown }>(
          `SELECT table_id, row_count, type FROM \`${this.opts.projectId}.${this.dialect.dataset(layer as TableRef['layer'])}.__TABLES__\` WHERE NOT STARTS_WITH(table_id, '_stage_') ORDER BY table_id`,
        );
        for (const r of rows)
          out.push({
            layer,
            table: r.table_id,
            rows: Number(r.row_count ?? 0),
            kind: Number(r.type) === 2 ? 'view' : 'table',
          });
      } catch {
        /* dataset not created yet */
      }
    }
    return out;
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {}
}

const TRANSIENT_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'jobRateLimitExceeded',
  'quotaExceeded',
  'jobBackendError',
  'tableUnavailable',
]);

function reasonOf(err: unknown): { code?: number; reason?: string; message: string } {
  const e = err as {
    code?: number;
    errors?: { reason?: string; message?: string }[];
    message?: string;
    response?: { status?: { errorResult?: { reason?: string } } };
  };
  return {
    code: typeof e.code === 'number' ? e.code : undefined,
    reason: e.errors?.[0]?.reason ?? e.response?.status?.errorResult?.reason,
    message: e.message ?? String(err),
  };
}

function isTransient(code: number | undefined, reason: string | undefined, message: string): boolean {
  if (reason && TRANSIENT_REASONS.has(reason)) return true;
  if (code !== undefined && (code === 429 || code >= 500)) return true;
  // Concurrent DML on one table: BigQuery asks the caller to retry.
  if (/could not serialize access|concurrent update|ECONNRESET|ETIMEDOUT|socket hang up/i.test(message))
    return true;
  return false;
}

/** Query errors: transient ones are retried; SQL errors surface to the runner, which names the model. */
function classify(err: unknown, sql: string): Error {
  if (err instanceof SmelterError) return err;
  const { code, reason, message } = reasonOf(err);
  if (isTransient(code, reason, message))
    return transient('WAREHOUSE_UNAVAILABLE', `BigQuery: ${message}`, {
      cause: err,
      details: { reason, query: sql.slice(0, 4000) },
    });
  const e = new Error(`BigQuery: ${message}`, { cause: err }) as Error & { query?: string; reason?: string };
  e.query = sql;
  if (reason) e.reason = reason;
  return e;
}

function classifyLoad(err: unknown, load: ParquetLoad): Error {
  if (err instanceof SmelterError) return err;
  const { code, reason, message } = reasonOf(err);
  const where = `gs://${load.bucket}/${load.name}`;
  if (isTransient(code, reason, message))
    return transient('WAREHOUSE_UNAVAILABLE', `BigQuery load of ${where} failed, will retry: ${message}`, {
      cause: err,
      details: { reason, jobId: load.jobId },
    });
  if (/schema|changed type|does not match|incompatible|missing required|Field .* has changed/i.test(message))
    return new SmelterError('SCHEMA_INCOMPATIBLE', `BigQuery rejected ${where}: ${message}`, {
      kind: 'permanent',
      cause: err,
      details: { reason, jobId: load.jobId },
    });
  if (code === 404 || reason === 'notFound')
    return permanent('NOT_FOUND', `BigQuery load of ${where}: ${message}`, {
      cause: err,
      details: { jobId: load.jobId },
    });
  // accessDenied and unknown errors may be fixed by an operator (IAM): retry rather than lose the file.
  return transient('WAREHOUSE_UNAVAILABLE', `BigQuery load of ${where} failed: ${message}`, {
    cause: err,
    details: { reason, jobId: load.jobId },
  });
}

/** BigQuery schema field → comparable column info. */
export function bigqueryColumn(f: BigQueryField): ColumnInfo {
  const { family, signature, ddl } = fieldType(f);
  return { name: f.name, type: ddl, family, signature, nullable: f.mode !== 'REQUIRED' };
}

function fieldType(f: BigQueryField): { family: TypeFamily; signature: string; ddl: string } {
  const base = ((): { family: TypeFamily; signature: string; ddl: string } => {
    const t = (f.type ?? 'STRING').toUpperCase();
    if (t === 'RECORD' || t === 'STRUCT') {
      const inner = (f.fields ?? []).map((x) => ({ name: x.name, ...fieldType(x) }));
      return {
        family: 'struct',
        signature: `struct<${inner.map((x) => `${x.name}:${x.signature}`).join(',')}>`,
        ddl: `STRUCT<${inner.map((x) => `\`${x.name}\` ${x.ddl}`).join(', ')}>`,
      };
    }
    const map: Record<string, [TypeFamily, string, string]> = {
      STRING: ['string', 'string', 'STRING'],
      INTEGER: ['int64', 'int64', 'INT64'],
      INT64: ['int64', 'int64', 'INT64'],
      FLOAT: ['float64', 'float64', 'FLOAT64'],
      FLOAT64: ['float64', 'float64', 'FLOAT64'],
      NUMERIC: ['numeric', 'numeric', 'NUMERIC'],
      BIGNUMERIC: ['numeric', 'bignumeric', 'BIGNUMERIC'],
      BOOLEAN: ['bool', 'bool', 'BOOL'],
      BOOL: ['bool', 'bool', 'BOOL'],
      DATE: ['date', 'date', 'DATE'],
      TIMESTAMP: ['timestamp', 'timestamp', 'TIMESTAMP'],
      DATETIME: ['timestamp', 'datetime', 'DATETIME'],
      JSON: ['json', 'json', 'JSON'],
    };
    const hit = map[t];
    return hit
      ? { family: hit[0], signature: hit[1], ddl: hit[2] }
      : { family: 'other', signature: t.toLowerCase(), ddl: t };
  })();
  if (f.mode === 'REPEATED')
    return { family: 'array', signature: `array<${base.signature}>`, ddl: `ARRAY<${base.ddl}>` };
  return base;
}

/** BigQuery client values (BigQueryInt/Date/Timestamp wrappers, Big numerics, Buffers) → JSON-safe values. */
export function normalise(v: unknown): unknown {
  if (v === null || v === undefined) return v ?? null;
  if (Array.isArray(v)) return v.map(normalise);
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('value' in o && o.constructor?.name?.startsWith('BigQuery')) return normalise(o.value);
    if (o.constructor?.name === 'Big') return String(v);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = normalise(x);
    return out;
  }
  return v;
}

/**
 * `$name` placeholders (the engine-neutral spelling) → BigQuery's `@name`, outside string literals,
 * quoted identifiers and comments.
 */
export function bigqueryParams(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length;) {
    const ch = sql[i] as string;
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      while (j < sql.length && sql[j] !== ch) j += sql[j] === '\\' ? 2 : 1;
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    const m = ch === '$' ? /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i, i + 130)) : null;
    if (m) {
      out += `@${m[1] as string}`;
      i += m[0].length;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}
