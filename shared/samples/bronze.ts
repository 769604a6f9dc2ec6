/**
 * Writes warehouse inputs without the rest of the pipeline: Bronze Parquet exactly as rawToBronze
 * lays it out (contract columns in order, then `_source_uri`, `_source_generation`, `_ingested_at`),
 * and local event tables as routeEvent creates them (envelope, contract fields, metadata). Used by
 * the warehouse tests and benchmark, and by `smelter` samples.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import type { DatasetContract } from '../contracts/dataset';
import { duckdbType, type ColumnType, type FieldSpec } from '../contracts/types';
import type { EventFieldSpec } from '../events/contract';
import { protect, sensitiveFields, storedEventFields } from '../events/privacy';

const q = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

function columnsArg(fields: { name: string; type: ColumnType }[]): string {
  return `{${fields.map((f) => `${q(f.name)}: ${q(duckdbType(f.type))}`).join(', ')}}`;
}

function writeNdjson(rows: readonly Record<string, unknown>[]): string {
  const file = path.join(os.tmpdir(), `smelter-rows-${process.pid}-${randomBytes(6).toString('hex')}.ndjson`);
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

export interface BronzeFile {
  contract: DatasetContract;
  rows: readonly Record<string, unknown>[];
  /** Output file path. */
  file: string;
  sourceUri: string;
  /** Raw object generation (µs) — also embedded in the Bronze object name. */
  generation: string;
  ingestedAt: string;
  /** Extra columns (schema-evolution tests): appended after the contract's columns. */
  extraColumns?: FieldSpec[];
  /** Replace column types (schema-evolution tests). */
  typeOverrides?: Record<string, ColumnType>;
  /** Drop columns (schema-evolution tests). */
  dropColumns?: string[];
}

let shared: Promise<DuckDBInstance> | undefined;
const instance = (): Promise<DuckDBInstance> =>
  (shared ??= DuckDBInstance.create(':memory:', { threads: '2' }));

/** Writes one Bronze Parquet file (ZSTD) for `rows`. */
export async function writeBronzeParquet(b: BronzeFile): Promise<void> {
  const cols = b.contract.columns
    .filter((c) => !b.dropColumns?.includes(c.name))
    .map((c) => ({ name: c.name, type: b.typeOverrides?.[c.name] ?? c.type }))
    .concat((b.extraColumns ?? []).map((c) => ({ name: c.name, type: c.type })));
  const tmp = writeNdjson(b.rows.length ? b.rows : [{}]);
  fs.mkdirSync(path.dirname(b.file), { recursive: true });
  const c = await (await instance()).connect();
  try {
    await c.run("SET TimeZone = 'UTC'");
    const select = cols.map((x) => ident(x.name)).join(', ');
    const where = b.rows.length ? '' : ' WHERE FALSE';
    await c.run(
      `COPY (SELECT ${select}, ${q(b.sourceUri)} AS _source_uri, ${BigInt(b.generation).toString()}::BIGINT AS _source_generation, ` +
        `${q(b.ingestedAt)}::TIMESTAMPTZ AS _ingested_at FROM read_json(${q(tmp)}, format = 'newline_delimited', columns = ${columnsArg(cols)})${where}) ` +
        `TO ${q(b.file)} (FORMAT parquet, COMPRESSION zstd)`,
    );
  } finally {
    c.closeSync();
    fs.rmSync(tmp, { force: true });
  }
}

/** The Bronze object name rawToBronze would give a raw object (`<dataset>/ingest_date=…/<base>-<hash8>-g<gen>.parquet`). */
export function bronzeObjectName(dataset: string, base: string, generation: string): string {
  const micros = BigInt(generation);
  const date = new Date(Number(micros / 1000n)).toISOString().slice(0, 10);
  const hash = Buffer.from(`${dataset}/${base}`).toString('hex').slice(0, 8).padEnd(8, '0');
  return `${dataset}/ingest_date=${date}/${base}-${hash}-g${generation}.parquet`;
}

export interface EventTableContract {
  table: string;
  fields: EventFieldSpec[];
}

/** Key of `hash` fields in rows written here (samples and tests; the router uses the deployment's). */
export const SAMPLE_PII_KEY = 'smelter-sample-pii-key';

/**
 * Envelope and metadata columns around an event contract's fields, as routeEvent stores them (`drop`
 * fields left out, `hash` fields as strings).
 */
export function eventTableFields(c: EventTableContract): FieldSpec[] {
  return [
    { name: 'event_id', type: 'string' },
    { name: 'event_type', type: 'string' },
    { name: 'event_time', type: 'timestamp' },
    ...storedEventFields(c.fields),
    { name: '_message_id', type: 'string' },
    { name: '_publish_time', type: 'timestamp' },
    { name: '_processed_at', type: 'timestamp' },
  ];
}

export function readEventContracts(contractsDir: string): EventTableContract[] {
  const dir = path.join(contractsDir, 'events');
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as EventTableContract);
}

/** DDL creating `events.<table>` in DuckDB for an event contract. */
export function eventTableDdl(c: EventTableContract): string {
  return `CREATE TABLE IF NOT EXISTS events.${ident(c.table)} (${eventTableFields(c)
    .map((f) => `${ident(f.name)} ${duckdbType(f.type)}`)
    .join(', ')})`;
}

/** SQL inserting rows (through a temp NDJSON file) into `events.<table>`; returns the SQL and a cleanup. */
export function eventInsertSql(
  c: EventTableContract,
  rows: readonly Record<string, unknown>[],
): { sql: string; cleanup: () => void } {
  const fields = eventTableFields(c);
  // As the router stores them: drop and hash applied.
  const sensitive = sensitiveFields(c);
  const stored = sensitive.length
    ? rows.map((r) => {
        const copy = structuredClone(r);
        protect(copy, sensitive, () => SAMPLE_PII_KEY);
        return copy;
      })
    : rows;
  const tmp = writeNdjson(stored);
  return {
    sql: `INSERT INTO events.${ident(c.table)} BY NAME SELECT * FROM read_json(${q(tmp)}, format = 'newline_delimited', columns = ${columnsArg(fields)})`,
    cleanup: () => fs.rmSync(tmp, { force: true }),
  };
}
