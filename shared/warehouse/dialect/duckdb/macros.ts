/** DuckDB's SQL for the macros whose text differs between engines (see ../macros.ts). */
import type { ScalarType } from '../../../contracts/types';
import type { DialectMacros } from '../macros';

export function duckdbMacros(type: (t: ScalarType) => string): DialectMacros {
  return {
    // DuckDB truncates to TIMESTAMP; models expect a DATE as BigQuery returns. 'week' is ISO (Monday).
    date_trunc: (d, unit) => `CAST(date_trunc('${unit}', ${d}) AS DATE)`,
    date_add: (d, n, unit) => `CAST(${d} + INTERVAL (${n}) ${unit.toUpperCase()} AS DATE)`,
    date_diff: (a, b, unit) =>
      // BigQuery counts ISO week boundaries; DuckDB's 'week' counts whole 7-day spans: truncate first.
      unit === 'week'
        ? `date_diff('week', date_trunc('week', ${b}), date_trunc('week', ${a}))`
        : `date_diff('${unit}', ${b}, ${a})`,
    cast: (x, t) => `CAST(${x} AS ${type(t)})`,
    safe_cast: (x, t) => `TRY_CAST(${x} AS ${type(t)})`,
    safe_divide: (a, b) => `(CAST(${a} AS DOUBLE) / NULLIF(CAST(${b} AS DOUBLE), 0))`,
    unnest: (arr, x) => `UNNEST(${arr}) AS _unnest_${x}(${x})`,
    star_except: (cols) => `* EXCLUDE (${cols.join(', ')})`,
    key_hash: (values) => `hash(${values.join(', ')})`,
  };
}
