/**
 * The warehouse engine port: what the loader and the model runner need from DuckDB (local) or
 * BigQuery (GCP). Adapters live in shared/adapters/warehouse/.
 */
import type { Dialect } from './dialect/core';
import type { TableRef } from './tables';

/** The column type families schema evolution compares (engine types are normalised to these). */
export type TypeFamily =
  | 'string'
  | 'int64'
  | 'float64'
  | 'numeric'
  | 'bool'
  | 'date'
  | 'timestamp'
  | 'json'
  | 'struct'
  | 'array'
  | 'other';

export interface ColumnInfo {
  name: string;
  /** Engine-native type text, usable in DDL (`ALTER TABLE … ADD COLUMN name <type>`). */
  type: string;
  family: TypeFamily;
  /** Comparable form of the type (nested structure included), e.g. `array<struct<a:int64>>`. */
  signature: string;
  nullable: boolean;
}

export interface ParquetLoad {
  bucket: string;
  name: string;
  generation: string;
  table: TableRef;
  /** Deterministic job id (BigQuery: a duplicate id is a conflict, so a duplicate event cannot load twice). */
  jobId: string;
  /** BigQuery: set when the table does not exist yet (created by the load). */
  timePartitioningField?: string;
  clusterFields?: string[];
  /** Recorded with the load (DuckDB: in the same transaction; BigQuery: right after the job). `{rows}` is substituted. */
  ledgerSql?: string;
}

export interface TableStat {
  layer: string;
  table: string;
  rows: number;
  kind: 'table' | 'view';
  /** A view over Parquet objects (local Bronze): objects it loaded that are gone from the bucket. */
  missingObjects?: number;
}

export interface LoadResult {
  rows: number;
  jobId: string;
  /** True when the job already existed (a duplicate delivery raced us): its result is reused. */
  reused: boolean;
}

/**
 * Values bound to `$name` placeholders (written `$name` on every engine; never spliced into the SQL).
 * Strings and numbers only: a filter that is "off" is bound as '' rather than NULL, so no engine has
 * to guess a type.
 */
export type QueryParams = Readonly<Record<string, string | number>>;

export interface WarehouseEngine {
  readonly dialect: Dialect;
  /** Rows as plain JSON-safe objects (int64/numeric as strings or numbers, dates `YYYY-MM-DD`). */
  query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]>;
  /** Runs one statement or a script. */
  exec(sql: string): Promise<void>;
  /** Columns of a table; undefined when it does not exist. */
  columns(table: TableRef): Promise<ColumnInfo[] | undefined>;
  /** Output columns of a SELECT, without running it (DuckDB DESCRIBE, BigQuery dry run). */
  queryColumns(sql: string): Promise<ColumnInfo[]>;
  /** The Parquet file's columns, when the engine can read it before loading (DuckDB). */
  fileColumns?(bucket: string, name: string): Promise<ColumnInfo[]>;
  /**
   * A relation holding just this object's rows, when reading it is cheaper than filtering the Bronze
   * table (DuckDB: a Bronze view over many objects would open every one of them).
   */
  batchRelation?(table: TableRef, o: { bucket: string; name: string }): Promise<string | undefined>;
  /** Appends a Parquet object to a Bronze table (creating it, adding new nullable columns). */
  loadParquet(load: ParquetLoad): Promise<LoadResult>;
  /** Column names and rows as arrays (for `smelter query`). */
  queryTable(sql: string): Promise<{ columns: string[]; rows: unknown[][] }>;
  /** Row counts of every table of the given layers. */
  tableStats(layers: readonly string[]): Promise<TableStat[]>;
  /** Serialises warehouse writes of this process (DuckDB: one writer; BigQuery: a no-op). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Tiny promise queue: one task at a time. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
