/**
 * Composes the DuckDB SQL that turns one input stream into typed rows per a dataset contract.
 *
 * Every source value is first read as text (CSV `all_varchar`, JSON values via json_extract_string),
 * then cleaned (trim, null markers, case), cast with TRY_* functions and checked. A row with any
 * violation is excluded from the Parquet; the same expressions, re-run in a second pass only when the
 * first one dropped rows, list every violation of every bad row for the quarantine.
 */
import { permanent } from '../errors';
import type { ColumnSpec, DatasetContract } from '../contracts/dataset';
import { normaliseHeader } from '../contracts/dataset';
import { duckdbType, isScalar } from '../contracts/types';
import type { InputFormat } from './format';

export const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export interface Lineage {
  sourceUri: string;
  generation: string;
  ingestedAt: string;
}

export interface ReadSpec {
  format: InputFormat;
  /** CSV only: the header fields as they appear in the file. */
  header?: string[];
  delimiter?: string;
  maxLineBytes: number;
  /** CSV only, filled by buildConversionSql: DuckDB type per header position. */
  csvTypes?: string[];
  /** CSV only: the contract column read from each header position, if any. */
  csvContractColumns?: (string | undefined)[];
  /** CSV only: contract-wide null markers, handed to DuckDB's reader. */
  nullValues?: string[];
}

interface Bound {
  col: ColumnSpec;
  /** CSV only: DuckDB parses the value natively (typed read_csv column; cast errors become DuckDB rejects). */
  native?: boolean;
  /** SQL yielding the raw text value (NULL when absent). */
  rawExpr: string;
}

/** Column position in the CSV header for each contract column (after normalisation and aliases). */
export function bindCsvColumns(
  contract: DatasetContract,
  header: string[],
): { bound: Map<string, number>; unknown: string[] } {
  const norm = header.map(normaliseHeader);
  const bound = new Map<string, number>();
  const used = new Set<number>();
  for (const col of contract.columns) {
    const candidates = [col.name, ...(col.aliases ?? [])].map(normaliseHeader);
    const idx = candidates.map((c) => norm.indexOf(c)).find((i) => i >= 0);
    if (idx !== undefined) {
      bound.set(col.name, idx);
      used.add(idx);
    }
  }
  const unknown = header.filter((h, i) => !used.has(i) && normaliseHeader(h) !== '');
  return { bound, unknown };
}

/**
 * Columns DuckDB's CSV reader can type itself — about 3× faster than reading text and casting in SQL,
 * and its reject table then reports each cast error with line and column. Columns with a strptime format
 * or their own null markers, and types DuckDB would read differently (int64, bool, numeric, nested), stay text.
 */
export function nativeCsvType(col: ColumnSpec): string | undefined {
  if (col.format !== undefined || (col.nullValues?.length ?? 0) > 0) return undefined;
  switch (col.type) {
    // int64 stays text: DuckDB's CSV reader rounds "8.5" into a BIGINT instead of rejecting it.
    case 'float64':
      return 'DOUBLE';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'TIMESTAMPTZ';
    default:
      return undefined;
  }
}

/** `rejects` names the tables DuckDB records structural rejects in; without it, the first one fails the read. */
function readerSql(spec: ReadSpec, path: string, rejects?: { table: string; scan: string }): string {
  // DuckDB's CSV buffer defaults to 16 × max_line_size (128 MiB for 8 MiB lines) and the reader holds
  // several: keep it just above the longest line it must hold (it dominates peak RSS).
  const maxLine = Math.max(spec.maxLineBytes, 1024);
  const common = `max_line_size=${maxLine}, buffer_size=${Math.max(maxLine + 1024 * 1024, 4 * 1024 * 1024)}`;
  if (spec.format === 'csv') {
    const n = spec.header?.length ?? 0;
    const cols = Array.from(
      { length: n },
      (_, i) => `${lit('c' + i)}: ${lit(spec.csvTypes?.[i] ?? 'VARCHAR')}`,
    ).join(', ');
    const nulls = ['', ...(spec.nullValues ?? [])].map(lit).join(', ');
    return `read_csv(${lit(path)}, header=true, columns={${cols}}, nullstr=[${nulls}], delim=${lit(spec.delimiter ?? ',')}, quote='"', escape='"', auto_detect=false, strict_mode=true, ${store(rejects)}${common}, encoding='utf-8')`;
  }
  if (spec.format === 'ndjson')
    // One record per line read as text: a bad line becomes one rejected row instead of failing the file.
    return `read_csv(${lit(path)}, header=false, columns={'j': 'VARCHAR'}, delim=E'\\x1f', quote='', escape='', auto_detect=false, strict_mode=false, ${store(rejects)}${common}, encoding='utf-8')`;
  return `(SELECT json::VARCHAR AS j FROM read_json_objects(${lit(path)}, format='array', maximum_object_size=${Math.max(spec.maxLineBytes, 1024)}))`;
}

const store = (rejects?: { table: string; scan: string }): string =>
  rejects
    ? `store_rejects=true, rejects_table=${lit(rejects.table)}, rejects_scan=${lit(rejects.scan)}, `
    : '';

/** The raw-text expression of each contract column for the given format. */
function bindRaw(contract: DatasetContract, spec: ReadSpec): { bound: Bound[]; fileProblems: string[] } {
  const fileProblems: string[] = [];
  const bound: Bound[] = [];
  if (spec.format === 'csv') {
    const header = spec.header ?? [];
    const { bound: pos, unknown } = bindCsvColumns(contract, header);
    spec.csvTypes = header.map(() => 'VARCHAR');
    spec.csvContractColumns = header.map(() => undefined);
    spec.nullValues = contract.nullValues ?? [];
    if (contract.unknownColumns === 'reject' && unknown.length)
      fileProblems.push(`unknown column(s) in header: ${unknown.join(', ')}`);
    for (const col of contract.columns) {
      const i = pos.get(col.name);
      if (i === undefined) {
        if (col.required && col.default === undefined)
          fileProblems.push(`required column "${col.name}" is missing from the header`);
        bound.push({ col, rawExpr: 'NULL::VARCHAR' });
      } else {
        const native = nativeCsvType(col);
        if (native) spec.csvTypes[i] = native;
        spec.csvContractColumns[i] = col.name;
        bound.push({ col, rawExpr: q('c' + i), ...(native ? { native: true } : {}) });
      }
    }
    return { bound, fileProblems };
  }
  // JSON: one parse per record for all scalar paths, one for nested paths.
  contract.columns.forEach((col) => {
    const keys = [col.name, ...(col.aliases ?? [])];
    const exprs = keys.map((k) => {
      const path = lit(`$."${k.replace(/"/g, '\\"')}"`);
      return isScalar(col.type) && col.type !== 'json'
        ? `json_extract_string(_o, ${path})`
        : `json_extract(_o, ${path})::VARCHAR`;
    });
    bound.push({ col, rawExpr: exprs.length === 1 ? (exprs[0] as string) : `coalesce(${exprs.join(', ')})` });
  });
  return { bound, fileProblems };
}

/**
 * trim() copies every string it sees (it was a third of the contract's cost on the benchmark CSV); most
 * values have nothing to trim, so call it only when an edge is a space or the value is not plain ASCII
 * (trim() also strips Unicode space separators). DuckDB's common-subexpression pass evaluates `v` once.
 */
function trimmed(v: string): string {
  return `(CASE WHEN starts_with(${v}, ' ') OR ends_with(${v}, ' ') OR strlen(${v}) <> length(${v}) THEN trim(${v}) ELSE ${v} END)`;
}

function cleaned(b: Bound, contract: DatasetContract): string {
  if (b.native) return b.rawExpr;
  const nulls = [...(contract.nullValues ?? []), ...(b.col.nullValues ?? [])];
  let v = b.col.trim === false || !isScalar(b.col.type) ? b.rawExpr : trimmed(b.rawExpr);
  const markers = ["''", ...nulls.map(lit)];
  v =
    markers.length === 1
      ? `nullif(${v}, '')`
      : `(CASE WHEN ${v} IN (${markers.join(', ')}) THEN NULL ELSE ${v} END)`;
  if (b.col.type === 'string' && b.col.case) v = `${b.col.case}(${v})`;
  return v;
}

function castExpr(col: ColumnSpec, r: string): string {
  const t = col.type;
  if (!isScalar(t)) return `TRY_CAST(TRY_CAST(${r} AS JSON) AS ${duckdbType(t)})`;
  switch (t) {
    case 'string':
      return r;
    case 'int64':
      // TRY_CAST rounds '1.5' to 2: accept only values that are whole numbers.
      return `(CASE WHEN TRY_CAST(${r} AS DOUBLE) = TRY_CAST(${r} AS BIGINT) THEN TRY_CAST(${r} AS BIGINT) END)`;
    case 'float64':
      return `TRY_CAST(${r} AS DOUBLE)`;
    case 'numeric':
      return `TRY_CAST(${r} AS DECIMAL(38,9))`;
    case 'bool':
      return `(CASE WHEN lower(${r}) IN ('true','t','yes','y','1') THEN true WHEN lower(${r}) IN ('false','f','no','n','0') THEN false END)`;
    case 'date':
      return col.format ? `TRY_STRPTIME(${r}, ${lit(col.format)})::DATE` : `TRY_CAST(${r} AS DATE)`;
    case 'timestamp':
      // Naive timestamps are taken as UTC (the session time zone is UTC).
      return col.format
        ? `TRY_STRPTIME(${r}, ${lit(col.format)})::TIMESTAMPTZ`
        : `TRY_CAST(${r} AS TIMESTAMPTZ)`;
    case 'json':
      return `(CASE WHEN json_valid(${r}) THEN ${r}::JSON END)`;
  }
}

function defaultLiteral(col: ColumnSpec): string {
  const d = col.default;
  if (d === undefined) return 'NULL';
  return `CAST(${lit(String(d))} AS ${duckdbType(col.type)})`;
}

export interface ConversionSql {
  /**
   * Pass 1: valid rows, typed, with lineage → Parquet. With `storeRejects` false a structurally bad row
   * (wrong column count, a value DuckDB cannot type, a line over the limit) fails the query instead of
   * being recorded — about 8% faster for the clean files that are the rule; run it again with rejects.
   */
  valid(inPath: string, outPath: string, opts: { rowGroupRows: number; storeRejects?: boolean }): string;
  /** Pass 2: invalid rows with every reason → NDJSON. */
  rejects(inPath: string, outPath: string): string;
  rejectsTable: string;
  rejectsScan: string;
  outputColumns: { name: string; type: string }[];
}

/** One possible violation: the SQL condition that detects it and the SQL text of its reason. */
interface Check {
  cond: string;
  column: string | null;
  reason: string;
}

export function buildConversionSql(
  contract: DatasetContract,
  spec: ReadSpec,
  lineage: Lineage,
  id: string,
): ConversionSql {
  const { bound, fileProblems } = bindRaw(contract, spec);
  if (fileProblems.length)
    throw permanent(
      'BAD_DATA',
      `File does not match the ${contract.dataset} contract: ${fileProblems.join('; ')}`,
      { details: { problems: fileProblems } },
    );
  const rejectsTable = `rejects_${id}`;
  const rejectsScan = `rejects_scan_${id}`;
  const checks = contractChecks(contract, bound, spec.format !== 'csv');
  // Three-valued OR is true as soon as one check is: one coalesce over the disjunction equals one per check.
  const bad = checks.length ? `coalesce(${checks.map((c) => `(${c.cond})`).join(' OR ')}, false)` : 'false';
  const staged = stagedQuery(contract, spec, bound, { table: rejectsTable, scan: rejectsScan });
  const out = [
    ...contract.columns.map((c, i) => `t_${i}::${duckdbType(c.type)} AS ${q(c.name)}`),
    ...lineageColumns(lineage),
  ];
  return {
    rejectsTable,
    rejectsScan,
    outputColumns: outputColumns(contract),
    valid: (inPath, outPath, opts) => `COPY (
      SELECT ${out.join(', ')}
      FROM (${staged(inPath, false, opts.storeRejects ?? true)}) WHERE NOT (${bad})
    ) TO ${lit(outPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${opts.rowGroupRows})`,
    rejects: (inPath, outPath) => `COPY (
        SELECT _rec AS record, ${violationsList(checks)} AS violations, ${rawRecord(spec, bound)}
        FROM (${staged(inPath, true, true)}) WHERE ${bad}
      ) TO ${lit(outPath)} (FORMAT json)`,
  };
}

/** The Parquet schema: contract columns, then lineage. */
function outputColumns(contract: DatasetContract): { name: string; type: string }[] {
  return [
    ...contract.columns.map((c) => ({ name: c.name, type: duckdbType(c.type) })),
    { name: '_source_uri', type: 'VARCHAR' },
    { name: '_source_generation', type: 'BIGINT' },
    { name: '_ingested_at', type: 'TIMESTAMP WITH TIME ZONE' },
  ];
}

function lineageColumns(lineage: Lineage): string[] {
  return [
    `${lit(lineage.sourceUri)} AS _source_uri`,
    `${lineage.generation}::BIGINT AS _source_generation`,
    `${lit(lineage.ingestedAt)}::TIMESTAMPTZ AS _ingested_at`,
  ];
}

/** Strings and natively typed CSV columns need no cast (and never fail to convert). */
const identity = (b: Bound): boolean => b.native === true || b.col.type === 'string';

/**
 * The staged read: src (reader) → obj (JSON: the record as an object) → raw (r_<i>: cleaned text) →
 * typed (t_<i>: typed value, after default). `numbered` adds `_rec`, the record's position.
 */
function stagedQuery(
  contract: DatasetContract,
  spec: ReadSpec,
  bound: Bound[],
  rejects: { table: string; scan: string },
): (path: string, numbered: boolean, storeRejects: boolean) => string {
  const isJson = spec.format !== 'csv';
  const rawCols = bound.map((b, i) => `${cleaned(b, contract)} AS r_${i}`);
  if (isJson) rawCols.unshift('j AS _j', '_o');
  // Without a default a NULL stays NULL. Keeping these expressions minimal matters: they run for every
  // value of every file.
  const typedCols = bound.map((b, i) => {
    const cast = identity(b) ? `r_${i}` : castExpr(b.col, `r_${i}`);
    return b.col.default === undefined
      ? `${cast} AS t_${i}`
      : `CASE WHEN r_${i} IS NULL THEN ${defaultLiteral(b.col)} ELSE ${cast} END AS t_${i}`;
  });
  // NDJSON blank lines are not records.
  const skipBlank = spec.format === 'ndjson' ? ` WHERE j IS NOT NULL AND trim(j) <> ''` : '';
  // JSON functions raise on invalid input: only records that parse as objects reach the extractors.
  const objects = isJson
    ? `, obj AS (SELECT *, CASE WHEN coalesce(json_valid(j), false) THEN (CASE WHEN json_type(j) = 'OBJECT' THEN j END) END AS _o FROM src${skipBlank})`
    : '';
  return (path, numbered, storeRejects) => `
    WITH src AS (SELECT ${numbered ? 'row_number() OVER () AS _rec, ' : ''}* FROM ${readerSql(spec, path, storeRejects ? rejects : undefined)})${objects},
    raw AS (SELECT ${numbered ? '_rec, ' : ''}${rawCols.join(', ')} FROM ${isJson ? 'obj' : 'src'}),
    typed AS (SELECT *, ${typedCols.join(', ')} FROM raw)
    SELECT * FROM typed`;
}

/** One (condition, reason) pair per possible violation: record-level (JSON), then per column. */
function contractChecks(contract: DatasetContract, bound: Bound[], isJson: boolean): Check[] {
  const checks: Check[] = isJson ? recordChecks(contract) : [];
  bound.forEach((b, i) => {
    const columnChecks = valueChecks(b, i);
    // Field checks only make sense for objects: skip them for records already rejected as a whole.
    if (isJson) for (const c of columnChecks) c.cond = `_o IS NOT NULL AND (${c.cond})`;
    checks.push(...columnChecks);
  });
  return checks;
}

function recordChecks(contract: DatasetContract): Check[] {
  const checks: Check[] = [
    { cond: `NOT coalesce(json_valid(_j), false)`, column: null, reason: `'not valid JSON'` },
    {
      cond: `_o IS NULL AND coalesce(json_valid(_j), false)`,
      column: null,
      reason: `'record is not a JSON object'`,
    },
  ];
  if (contract.unknownColumns === 'reject') {
    const known = contract.columns.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    const unknown = `list_filter(json_keys(_o), k -> NOT list_contains([${known.map(lit).join(', ')}], k))`;
    checks.push({
      cond: `len(${unknown}) > 0`,
      column: null,
      reason: `'unknown field(s): ' || array_to_string(${unknown}, ', ')`,
    });
  }
  return checks;
}

function valueChecks(b: Bound, i: number): Check[] {
  const c = b.col;
  const checks: Check[] = [];
  // Natively typed CSV columns never hold an unconvertible value (DuckDB rejected that row already),
  // and a string always converts.
  if (!identity(b))
    checks.push({
      cond: `r_${i} IS NOT NULL AND t_${i} IS NULL`,
      column: c.name,
      reason: `'cannot convert ' || to_json(r_${i})::VARCHAR || ' to ${typeof c.type === 'string' ? c.type : duckdbType(c.type).toLowerCase()}'`,
    });
  // A default fills a missing value; a present but unconvertible one is reported above.
  if (c.required && c.default === undefined)
    checks.push({ cond: `r_${i} IS NULL`, column: c.name, reason: `'missing required value'` });
  if (c.accepted?.length) {
    const vals = c.accepted.map((v) => (typeof v === 'number' ? String(v) : lit(v))).join(', ');
    checks.push({
      cond: `t_${i} IS NOT NULL AND t_${i} NOT IN (${vals})`,
      column: c.name,
      reason: `'value ' || to_json(t_${i})::VARCHAR || ' is not one of the accepted values'`,
    });
  }
  if (c.min !== undefined)
    checks.push({
      cond: `t_${i} < ${c.min}`,
      column: c.name,
      reason: `'value ' || t_${i}::VARCHAR || ' is below the minimum ${c.min}'`,
    });
  if (c.max !== undefined)
    checks.push({
      cond: `t_${i} > ${c.max}`,
      column: c.name,
      reason: `'value ' || t_${i}::VARCHAR || ' is above the maximum ${c.max}'`,
    });
  return checks;
}

/** Pass 2: the list of {column, reason} of every check a row fails. */
function violationsList(checks: Check[]): string {
  const reasons = checks.map(
    (c) =>
      `CASE WHEN coalesce(${c.cond}, false) THEN {'column': ${c.column ? lit(c.column) : 'NULL::VARCHAR'}, 'reason': ${c.reason}} END`,
  );
  return `list_filter([${reasons.join(', ')}], x -> x IS NOT NULL)`;
}

/** Pass 2: the record as read — JSON as its text, CSV as an object of its cleaned values. */
function rawRecord(spec: ReadSpec, bound: Bound[]): string {
  return spec.format !== 'csv'
    ? `_j AS raw`
    : `to_json({${bound.map((b, i) => `${lit(b.col.name)}: r_${i}`).join(', ')}})::VARCHAR AS raw`;
}
