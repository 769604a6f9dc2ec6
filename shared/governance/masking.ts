/**
 * Reader roles over the warehouse, the same on both engines:
 * - `owner` and `pii_reader` see `mask` columns in clear;
 * - `analyst` sees them through the class's masking rule.
 * On BigQuery the rules are data policies on policy tags (deploy/) and IAM decides who sees what. Locally
 * the same rules are SQL expressions in views: `masked_<layer>.<table>`, and an analyst's query is
 * pointed at those schemas. (Locally this is a faithful preview, not a security boundary: whoever can
 * open the DuckDB file can read it.)
 */
import type { DatasetContract } from '../contracts/dataset';
import { MASKING_RULE, type MaskingRule, type Sensitivity } from './sensitivity';

export const ROLES = ['owner', 'pii_reader', 'analyst'] as const;
export type Role = (typeof ROLES)[number];

export type Engine = 'duckdb' | 'bigquery';

/** The layers whose tables can hold `mask` columns; their masked views live in `masked_<layer>`. */
export const MASKED_LAYERS = ['bronze', 'silver', 'gold', 'events'] as const;
export const maskedSchema = (layer: string): string => `masked_${layer}`;

type Family = 'string' | 'number' | 'date' | 'timestamp' | 'bool' | 'other';

function family(type: unknown): Family {
  if (type === 'string') return 'string';
  if (type === 'int64' || type === 'float64' || type === 'numeric') return 'number';
  if (type === 'date') return 'date';
  if (type === 'timestamp') return 'timestamp';
  if (type === 'bool') return 'bool';
  return 'other';
}

/** BigQuery's default masking values per type, as DuckDB/BigQuery literals. */
function defaultValue(f: Family, engine: Engine): string {
  switch (f) {
    case 'string':
      return "''";
    case 'number':
      return '0';
    case 'bool':
      return 'false';
    case 'date':
      return engine === 'duckdb' ? "DATE '1970-01-01'" : "DATE '1970-01-01'";
    case 'timestamp':
      return engine === 'duckdb'
        ? "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
        : "TIMESTAMP '1970-01-01 00:00:00+00'";
    default:
      return 'NULL';
  }
}

const sha256Hex = (v: string, engine: Engine): string =>
  engine === 'duckdb' ? `sha256(CAST(${v} AS VARCHAR))` : `TO_HEX(SHA256(CAST(${v} AS STRING)))`;

/**
 * The masked value of column `c` (an identifier already quoted for the engine). Mirrors BigQuery's
 * predefined rules: EMAIL_MASK keeps the domain of a valid address (hashes anything else);
 * LAST_FOUR_CHARACTERS keeps the last four (hashes values of four characters or fewer); DATE_YEAR
 * truncates to the year; DEFAULT_MASKING_VALUE is the type's zero value; SHA256 hashes; ALWAYS_NULL.
 */
export function maskExpr(rule: MaskingRule, c: string, type: unknown, engine: Engine): string {
  const f = family(type);
  const duck = engine === 'duckdb';
  switch (rule) {
    case 'ALWAYS_NULL':
      return 'NULL';
    case 'DEFAULT_MASKING_VALUE':
      return `CASE WHEN ${c} IS NULL THEN NULL ELSE ${defaultValue(f, engine)} END`;
    case 'SHA256':
      return sha256Hex(c, engine);
    case 'DATE_YEAR':
      return duck
        ? `CAST(date_trunc('year', ${c}) AS ${f === 'date' ? 'DATE' : 'TIMESTAMPTZ'})`
        : f === 'date'
          ? `DATE_TRUNC(${c}, YEAR)`
          : `TIMESTAMP_TRUNC(${c}, YEAR)`;
    case 'LAST_FOUR_CHARACTERS': {
      const s = duck ? `CAST(${c} AS VARCHAR)` : `CAST(${c} AS STRING)`;
      const masked = duck ? `'XXXXX' || right(${s}, 4)` : `CONCAT('XXXXX', SUBSTR(${s}, -4))`;
      return `CASE WHEN ${c} IS NULL THEN NULL WHEN ${duck ? `length(${s})` : `LENGTH(${s})`} <= 4 THEN ${sha256Hex(c, engine)} ELSE ${masked} END`;
    }
    case 'EMAIL_MASK': {
      const valid = duck
        ? `regexp_matches(${c}, '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')`
        : `REGEXP_CONTAINS(${c}, r'^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$')`;
      const domain = duck ? `substr(${c}, strpos(${c}, '@'))` : `SUBSTR(${c}, STRPOS(${c}, '@'))`;
      return `CASE WHEN ${c} IS NULL THEN NULL WHEN ${valid} THEN ${duck ? `'XXXXX' || ${domain}` : `CONCAT('XXXXX', ${domain})`} ELSE ${sha256Hex(c, engine)} END`;
    }
  }
}

export interface MaskedColumn {
  name: string;
  rule: MaskingRule;
  type: unknown;
}

/**
 * The `mask` columns of a dataset (Bronze and Silver carry them under the contract's names) or of an
 * event contract (its table carries its top-level fields under their names).
 */
export function maskedColumns(
  contract:
    | Pick<DatasetContract, 'columns'>
    | { fields: readonly { name: string; type: unknown; sensitive?: Sensitivity }[] },
): MaskedColumn[] {
  const cols = 'columns' in contract ? contract.columns : contract.fields;
  return cols.flatMap((c) =>
    c.sensitive?.policy === 'mask'
      ? [{ name: c.name, rule: MASKING_RULE[c.sensitive.class], type: c.type }]
      : [],
  );
}

/**
 * The analyst's view of one table: every column, the `mask` ones through their rule
 * (`SELECT * REPLACE`, which both engines have). `source`/`target` are engine table names.
 */
export function maskedViewSql(
  engine: Engine,
  source: string,
  target: string,
  columns: MaskedColumn[],
  quote: (ident: string) => string,
): string {
  const replace = columns.map(
    (m) => `${maskExpr(m.rule, quote(m.name), m.type, engine)} AS ${quote(m.name)}`,
  );
  const select = replace.length
    ? `SELECT * REPLACE (${replace.join(', ')}) FROM ${source}`
    : `SELECT * FROM ${source}`;
  return `CREATE OR REPLACE VIEW ${target} AS ${select}`;
}

/**
 * Points a query at the masked schemas: `bronze.`, `silver.`, `gold.` and `events.` qualifiers (bare or
 * quoted) outside string literals and comments become `masked_<layer>.`. With `only`, just the
 * references `only(layer, table)` accepts are (the tables that have masked columns): the others, and
 * a CTE or alias that happens to share a layer's name, are left alone.
 */
export function toMaskedSchemas(sql: string, only?: (layer: string, table: string) => boolean): string {
  let out = '';
  let i = 0;
  const layers = new Set<string>(MASKED_LAYERS);
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (ch === "'") {
      const end = endOfQuoted(sql, i, "'");
      out += sql.slice(i, end);
      i = end;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      const end = nl < 0 ? sql.length : nl;
      out += sql.slice(i, end);
      i = end;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      const end = close < 0 ? sql.length : close + 2;
      out += sql.slice(i, end);
      i = end;
    } else if (ch === '"' || /[A-Za-z_]/.test(ch)) {
      const quoted = ch === '"';
      const end = quoted ? endOfQuoted(sql, i, '"') : identEnd(sql, i);
      const word = quoted ? sql.slice(i + 1, end - 1).replace(/""/g, '"') : sql.slice(i, end);
      const prev = out.trimEnd().slice(-1);
      const qualifier =
        sql[end] === '.' &&
        prev !== '.' &&
        layers.has(word.toLowerCase()) &&
        (!only || only(word.toLowerCase(), nextIdent(sql, end + 1)));
      out += qualifier
        ? quoted
          ? `"${maskedSchema(word.toLowerCase())}"`
          : maskedSchema(word.toLowerCase())
        : sql.slice(i, end);
      i = end;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

function endOfQuoted(s: string, start: number, q: string): number {
  let i = start + 1;
  while (i < s.length) {
    if (s[i] === q) {
      if (s[i + 1] === q) i += 2;
      else return i + 1;
    } else i++;
  }
  return s.length;
}

function identEnd(s: string, start: number): number {
  let i = start;
  while (i < s.length && /[A-Za-z0-9_$]/.test(s[i] as string)) i++;
  return i;
}

/** The identifier starting at `i` (bare, or quoted with its quotes removed); '' when none. */
function nextIdent(s: string, i: number): string {
  if (s[i] === '"') return s.slice(i + 1, endOfQuoted(s, i, '"') - 1).replace(/""/g, '"');
  return s.slice(i, identEnd(s, i)).toLowerCase();
}
