/**
 * The conversion engine port: what Bronze conversions and contract inference need from the SQL engine
 * that reads raw files (DuckDB, in shared/adapters/ingest/). The domain builds the SQL; the engine
 * runs it, feeding the source through one pipe and handing the output of a second one back.
 */
import type { Readable } from 'node:stream';

export interface EngineOptions {
  memoryLimit: string;
  threads: number;
  /**
   * Keep output rows in input order. Off, DuckDB's casts, filters and Parquet encoding run on every
   * thread even though a pipe is scanned by one (about 2× faster on 2 vCPUs); on, they serialise.
   */
  preserveOrder?: boolean;
  tempDir?: string;
}

export interface PipedQueryResult<T> {
  /** First row of the query's own result (e.g. COPY's Count). */
  count: number;
  output: T;
}

/** One connection: statements run one after another. */
export interface EngineSession {
  run(sql: string): Promise<void>;
  /** Rows as JSON-safe objects (BIGINT/DECIMAL as strings). */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /**
   * Runs `sql` (which reads `inFifo` and writes `outFifo`) while feeding `input` into the first pipe
   * and handing the second to `consume`; a failure on any side cancels the others. Without `input`
   * the query reads its files itself (`inFifo` is '').
   */
  piped<T>(
    sql: (inFifo: string, outFifo: string) => string,
    input: Readable | undefined,
    consume: (out: Readable) => Promise<T>,
  ): Promise<PipedQueryResult<T>>;
  /** Rows scanned by the reader of the last query profiled into `profileFile` (undefined if unknown). */
  scannedRows(profileFile: string): Promise<number | undefined>;
  close(): void;
}

export interface ConversionEngine {
  readonly name: 'duckdb';
  readonly version: string;
  connect(): Promise<EngineSession>;
}

/** Hands out an engine per option set (instances are shared by the conversions of a process). */
export type ConversionEngines = (opts: EngineOptions) => Promise<ConversionEngine>;
