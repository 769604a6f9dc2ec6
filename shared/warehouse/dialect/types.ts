/** Vocabulary shared by the dialect core, the macro table and every dialect. */
import type { TableRef } from '../tables';

export type DialectName = 'duckdb' | 'bigquery';

export interface TimeRange {
  /** Inclusive start and exclusive end, as `YYYY-MM-DD` dates (ranges are always whole days). */
  startDate: string;
  endDate: string;
}

export const UNBOUNDED: TimeRange = { startDate: '0001-01-01', endDate: '9999-12-31' };
export const isUnbounded = (r: TimeRange): boolean =>
  r.startDate <= UNBOUNDED.startDate && r.endDate >= UNBOUNDED.endDate;

/** Units of `@date_trunc`/`@date_add`/`@date_diff` and of a model's `grain`. */
export const GRAINS = ['day', 'week', 'month', 'quarter', 'year'] as const;
export type Grain = (typeof GRAINS)[number];

export interface RenderContext {
  /** Rendered name for `@this` (the model's target, or the relation an audit checks). */
  self?: string;
  range?: TimeRange;
  /** `@batch(<input>)` predicates, by input key (`bronze.rainfall`); absent → TRUE. */
  batch?: Record<string, string>;
  /**
   * Relations holding exactly the batch of an input, by input key (local Bronze: its Parquet object):
   * in a batch run `@ref(<input>)` reads that rather than the whole table (the `@batch` filter keeps it).
   */
  batchFrom?: Record<string, string>;
  /** Restricts `@ref(...)` to these keys (a model's declared inputs + its target). */
  allowedRefs?: ReadonlySet<string>;
  /** The model or audit file (or `query`), named by every error. */
  where?: string;
}

export interface ColumnDef {
  name: string;
  /** Engine-native type text (DuckDB `DECIMAL(38,9)`, BigQuery `NUMERIC`). */
  type: string;
  notNull?: boolean;
}

export interface TableLayout {
  partitionBy?: string;
  clusterBy?: string[];
}

export interface CreateTableAsOptions extends TableLayout {
  /** CREATE OR REPLACE (else CREATE … IF NOT EXISTS). */
  replace?: boolean;
  /** Only the SELECT's columns, no rows. */
  empty?: boolean;
}

export interface MergeSpec {
  target: TableRef;
  source: TableRef;
  key: string[];
  columns: string[];
  /** Lexicographic version: the newer row wins; missing → the source always wins. */
  version?: string[];
  /** Per-column update expressions over `t.` (existing) and `s.` (incoming). */
  updates?: Record<string, string>;
  /** Constant predicate on the target restricting the rows MERGE reads (partition pruning). */
  targetFilter?: string;
}
