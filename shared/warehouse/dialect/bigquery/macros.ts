/** BigQuery's SQL for the macros whose text differs between engines (see ../macros.ts). */
import type { ScalarType } from '../../../contracts/types';
import type { DialectMacros } from '../macros';
import type { Grain } from '../types';

/** BigQuery's date part names; its WEEK starts on Sunday, ISOWEEK on Monday as DuckDB's. */
const PARTS: Record<Grain, string> = {
  day: 'DAY',
  week: 'ISOWEEK',
  month: 'MONTH',
  quarter: 'QUARTER',
  year: 'YEAR',
};

export function bigqueryMacros(type: (t: ScalarType) => string): DialectMacros {
  return {
    date_trunc: (d, unit) => `DATE_TRUNC(${d}, ${PARTS[unit]})`,
    date_add: (d, n, unit) => `DATE_ADD(${d}, INTERVAL ${n} ${PARTS[unit]})`,
    date_diff: (a, b, unit) => `DATE_DIFF(${a}, ${b}, ${PARTS[unit]})`,
    cast: (x, t) => `CAST(${x} AS ${type(t)})`,
    safe_cast: (x, t) => `SAFE_CAST(${x} AS ${type(t)})`,
    safe_divide: (a, b) => `SAFE_DIVIDE(${a}, ${b})`,
    unnest: (arr, x) => `UNNEST(${arr}) AS ${x}`,
    star_except: (cols) => `* EXCEPT (${cols.join(', ')})`,
    // A STRUCT's JSON keeps each value's type apart ('1' and 1 differ) and NULL distinct from 'null'.
    key_hash: (values) => `FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(${values.join(', ')})))`,
  };
}
