/**
 * Composes the DuckDB SQL that turns one input stream into typed rows per a dataset contract.
 *
 * Every source value is first read as text (CSV `all_varchar`, JSON values via json_extract_string),
 * then cleaned (trim, null markers, case), cast with TRY_* functions and checked. A row with any
 * violation is excluded from the Parquet; the same expressions, re-run in a second pass only when the
 * first one dropped rows, list every violation of every bad row for the quarantine.
 */
import { hmacSql } from '../governance/hmac';
import { permanent } from '../errors';
import type { ColumnSpec, DatasetContract } from '../contracts/dataset';
import { normaliseHeader } from '../contracts/dataset';
import { type ColumnType, duckdbType, isScalar } from '../contracts/types';
import type { InputFormat } from './format';

export const q = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export interface Lineage {
  sourceUri: string;
  generation: string;
  ingestedAt: string;
  /** The end (exclusive) of the pull window the object holds, when a pull wrote it. */
  windowEnd?: string;
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
  /** JSON only, filled by buildConversionSql: the paths extracted from each record. */
  jsonPaths?: { scalar: string[]; nested: string[]; stringRefs: string[] };
}

interface Bound {
  col: ColumnSpec;
  /** CSV only: DuckDB parses the value natively (typed read_csv column; cast errors become DuckDB rejects). */
  native?: boolean;
  /** SQL yielding the raw text value (NULL when absent); nested types: the value's JSON text. */
  rawExpr: string;
  /** JSON string columns: SQL yielding the JSON type of the value read (json_type's name). */
  jsonKind?: string;
  /** SQL literal of the column's fallback (contract `fallback`), used when the value is missing. */
  fallback?: string;
}

/**
 * JSON key spellings matching a column name or alias: as written, and its words in snake_case,
 * camelCase, PascalCase, kebab-case, UPPER_SNAKE and run together — the conventions APIs use, so
 * `first_name` matches `firstName` over JSON as CSV header normalisation does.
 */
export function keySpellings(name: string): string[] {
  const words = normaliseHeader(name).split('_').filter(Boolean);
  if (words.length === 0) return [name];
  const cap = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1);
  const [head, ...rest] = words as [string, ...string[]];
  return [
    ...new Set([
      name,
      words.join('_'),
      head + rest.map(cap).join(''),
      words.map(cap).join(''),
      words.join('-'),
      words.join('_').toUpperCase(),
      words.join(''),
    ]),
  ];
}

/** At most this many JSON paths per column (spellings of nested paths multiply). */
const MAX_PATHS = 64;

/**
 * JSONPaths (`$."address"."city"`) of a column: its name and each alias, where a dotted alias is a
 * path into nested objects (`address.city`), each segment in every spelling of keySpellings.
 */
export function jsonPaths(names: string[]): string[] {
  const out = new Set<string>();
  for (const name of names) {
    let paths = [''];
    for (const seg of name.split('.')) {
      paths = paths.flatMap((p) => keySpellings(seg).map((k) => `${p}."${k.replace(/"/g, '\\"')}"`));
      if (paths.length > MAX_PATHS) paths = paths.slice(0, MAX_PATHS);
    }
    for (const p of paths) out.add(`$${p}`);
  }
  return [...out];
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
        if (col.required && col.default === undefined && col.fallback === undefined)
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
  // JSON: every path of every column is extracted by one call per record (json_extract_string for
  // scalars into _s, json_extract for nested values into _n), each column taking its first present one.
  const scalarPaths: string[] = [];
  const nestedPaths: string[] = [];
  const stringRefs: string[] = [];
  for (const col of contract.columns) {
    const nested = !isScalar(col.type) || col.type === 'json';
    const list = nested ? nestedPaths : scalarPaths;
    const refs = jsonPaths([col.name, ...(col.aliases ?? [])]).map((p) => {
      list.push(p);
      return `${nested ? '_n' : '_s'}[${list.length}]`;
    });
    const first = refs.length === 1 ? (refs[0] as string) : `coalesce(${refs.join(', ')})`;
    // A JSON null is a missing value (json_extract gives it as the text 'null').
    if (col.type === 'string') stringRefs.push(...refs);
    bound.push({
      col,
      rawExpr: nested ? `nullif(${first}::VARCHAR, 'null')` : first,
      // The kinds (_k) line up with the scalar values (_s): the first path holding a non-null value.
      ...(col.type === 'string'
        ? {
            jsonKind: `list_filter([${refs.map((r) => r.replace('_s', '_k')).join(', ')}], k -> k <> 'NULL')[1]`,
          }
        : {}),
    });
  }
  spec.jsonPaths = { scalar: scalarPaths, nested: nestedPaths, stringRefs };
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

/**
 * Nested values (structs, arrays) are built field by field from the record's JSON: struct fields match
 * keys like columns do (spellings, aliases), and each scalar inside converts like a column. The result
 * is a `{value, bad}` pair; `bad` is true when a present value does not fit (a wrong JSON kind, a field
 * that does not convert), so a nested value is never silently emptied.
 *
 * Every JSON function call site holds an arena of a few MiB per vector whatever its input: a value is
 * parsed by one call per struct (`json_type` plus one list extraction of all its fields) and bound to
 * a lambda variable (`let`) instead of being written out again — DuckDB does not share repeated
 * subexpressions inside CASE or lambdas, and dozens of call sites exceed a 128 MB memory limit.
 * `v` is JSON text or NULL (a JSON null is NULL); `depth` names the lambda variables.
 */
function nestedPair(t: ColumnType, v: string, depth = 0): string {
  const x = `_v${depth}`;
  const let_ = (expr: string, body: string): string => `list_transform([${expr}], ${x} -> ${body})[1]`;
  if (isScalar(t)) {
    if (t === 'json') return `struct_pack(value := (${v})::JSON, bad := false)`;
    if (t === 'string') return `struct_pack(value := json_extract_string(${v}, '$'), bad := false)`;
    const value = castExpr({ name: '_', type: t }, x);
    return let_(
      `json_extract_string(${v}, '$')`,
      `struct_pack(value := ${value}, bad := coalesce(${x} IS NOT NULL AND ${value} IS NULL, false))`,
    );
  }
  if ('struct' in t) {
    const scalar: string[] = [];
    const nested: string[] = [];
    const fields = t.struct.map((f) => {
      const simple = isScalar(f.type) && f.type !== 'json';
      const list = simple ? scalar : nested;
      const refs = jsonPaths([f.name, ...(f.aliases ?? [])]).map((p) => {
        list.push(p);
        return `${x}.${simple ? 's' : 'n'}[${list.length}]`;
      });
      const first = refs.length === 1 ? (refs[0] as string) : `coalesce(${refs.join(', ')})`;
      return { f, simple, raw: simple ? first : `nullif(${first}::VARCHAR, 'null')` };
    });
    const parts = [`k := json_type(${v})`];
    if (scalar.length) parts.push(`s := json_extract_string(${v}, [${scalar.map(lit).join(', ')}])`);
    if (nested.length) parts.push(`n := json_extract(${v}, [${nested.map(lit).join(', ')}])`);
    // Each field's pair once, then the struct and its verdict from the pairs.
    const y = `_p${depth}`;
    const pairs = fields.map(({ f, simple, raw }) => {
      if (!simple) return `${q(f.name)} := ${nestedPair(f.type, raw, depth + 1)}`;
      if (f.type === 'string') return `${q(f.name)} := struct_pack(value := ${raw}, bad := false)`;
      const value = castExpr({ name: f.name, type: f.type }, raw);
      return `${q(f.name)} := struct_pack(value := ${value}, bad := coalesce(${raw} IS NOT NULL AND ${value} IS NULL, false))`;
    });
    const value = `CASE WHEN ${x}.k = 'OBJECT' THEN struct_pack(${fields.map(({ f }) => `${q(f.name)} := ${y}.${q(f.name)}.value`).join(', ')}) END`;
    const bad = `coalesce(${x}.k <> 'OBJECT' OR ${fields.map(({ f }) => `${y}.${q(f.name)}.bad`).join(' OR ')}, false)`;
    return let_(
      `struct_pack(${parts.join(', ')})`,
      `list_transform([struct_pack(${pairs.join(', ')})], ${y} -> struct_pack(value := ${value}, bad := ${bad}))[1]`,
    );
  }
  const e = `_e${depth}`;
  const ps = `_ps${depth}`;
  const elements = `list_transform(${x}.items, ${e} -> ${nestedPair(t.array, `nullif(${e}::VARCHAR, 'null')`, depth + 1)})`;
  return let_(
    `struct_pack(k := json_type(${v}), items := json_extract(${v}, '$[*]'))`,
    `list_transform([${elements}], ${ps} -> struct_pack(` +
      `value := CASE WHEN ${x}.k = 'ARRAY' THEN list_transform(${ps}, _q${depth} -> _q${depth}.value) END, ` +
      `bad := coalesce(${x}.k <> 'ARRAY' OR list_bool_or(list_transform(${ps}, _q${depth} -> _q${depth}.bad)), false)))[1]`,
  );
}

function castExpr(col: Pick<ColumnSpec, 'type' | 'format'> & { name: string }, r: string): string {
  const t = col.type;
  if (!isScalar(t)) return `${r}.value`;
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
  valid(
    inPath: string,
    outPath: string,
    opts: {
      rowGroupRows: number;
      storeRejects?: boolean;
      /**
       * Also close a row group at this in-memory size (e.g. '16MB'). DuckDB buffers a whole group before
       * writing it, and wide records (an API's users, 1–2 KB each) reach rowGroupRows only far beyond a
       * 128 MB memory limit. DuckDB allows it only with preserve_insertion_order off.
       */
      rowGroupBytes?: string;
    },
  ): string;
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
  for (const b of bound) if (b.col.fallback) b.fallback = fallbackLiteral(b.col, lineage);
  const rejectsTable = `rejects_${id}`;
  const rejectsScan = `rejects_scan_${id}`;
  const checks = contractChecks(contract, bound, spec.format !== 'csv');
  // Three-valued OR is true as soon as one check is: one coalesce over the disjunction equals one per check.
  const bad = checks.length ? `coalesce(${checks.map((c) => `(${c.cond})`).join(' OR ')}, false)` : 'false';
  const staged = stagedQuery(contract, spec, bound, { table: rejectsTable, scan: rejectsScan });
  const out = [
    ...contract.columns.flatMap((c, i) => {
      const policy = c.sensitive?.policy;
      if (policy === 'drop') return [];
      if (policy === 'hash') return [`${hmacSql(`t_${i}::VARCHAR`)} AS ${q(c.name)}`];
      return [`t_${i}::${duckdbType(c.type)} AS ${q(c.name)}`];
    }),
    ...lineageColumns(lineage),
  ];
  return {
    rejectsTable,
    rejectsScan,
    outputColumns: outputColumns(contract),
    valid: (inPath, outPath, opts) => `COPY (
      SELECT ${out.join(', ')}
      FROM (${staged(inPath, false, opts.storeRejects ?? true)}) WHERE NOT (${bad})
    ) TO ${lit(outPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${opts.rowGroupRows}${opts.rowGroupBytes ? `, ROW_GROUP_SIZE_BYTES ${lit(opts.rowGroupBytes)}` : ''})`,
    rejects: (inPath, outPath) => `COPY (
        SELECT _rec AS record, ${violationsList(checks)} AS violations, ${rawRecord(bound, spec.format !== 'csv')}
        FROM (${staged(inPath, true, true)}) WHERE ${bad}
      ) TO ${lit(outPath)} (FORMAT json)`,
  };
}

/** The Parquet schema: contract columns, then lineage. */
function outputColumns(contract: DatasetContract): { name: string; type: string }[] {
  return [
    ...contract.columns.flatMap((c) =>
      c.sensitive?.policy === 'drop'
        ? []
        : [{ name: c.name, type: c.sensitive?.policy === 'hash' ? 'VARCHAR' : duckdbType(c.type) }],
    ),
    { name: '_source_uri', type: 'VARCHAR' },
    { name: '_source_generation', type: 'BIGINT' },
    { name: '_ingested_at', type: 'TIMESTAMP WITH TIME ZONE' },
  ];
}

/**
 * A missing event time: `window_end` is the last instant of the pull window the object holds (its end
 * is exclusive), so the record stays in its window's partition; `ingested_at`, or a file no pull
 * wrote, takes the ingestion time.
 */
function fallbackLiteral(col: ColumnSpec, lineage: Lineage): string {
  const end = col.fallback === 'window_end' && lineage.windowEnd ? Date.parse(lineage.windowEnd) : NaN;
  const at = Number.isFinite(end) ? new Date(end - 1).toISOString() : lineage.ingestedAt;
  return `CAST(${lit(at)}::TIMESTAMPTZ AS ${duckdbType(col.type)})`;
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
  // JSON: validity and object-ness as flags; the record's text travels on only in the rejects pass
  // (its `raw`), as every copy of a big record costs memory per row.
  if (isJson) rawCols.unshift('_v', '_o IS NOT NULL AS _isobj');
  if (isJson && contract.unknownColumns === 'reject') rawCols.unshift('_unknown');
  if (isJson && spec.jsonPaths?.stringRefs.length) rawCols.unshift('_k');
  // Without a default a NULL stays NULL. Keeping these expressions minimal matters: they run for every
  // value of every file.
  // Nested columns: their {value, bad} pair (nb_<i>), built once per record.
  const nest = bound
    .flatMap((b, i) => (isScalar(b.col.type) ? [] : [`${nestedPair(b.col.type, `r_${i}`)} AS nb_${i}`]))
    .join(', ');
  const typedCols = bound.map((b, i) => {
    const cast = identity(b) ? `r_${i}` : castExpr(b.col, isScalar(b.col.type) ? `r_${i}` : `nb_${i}`);
    const missing = b.col.default !== undefined ? defaultLiteral(b.col) : b.fallback;
    return missing === undefined
      ? `${cast} AS t_${i}`
      : `CASE WHEN r_${i} IS NULL THEN ${missing} ELSE ${cast} END AS t_${i}`;
  });
  // NDJSON lines of only spaces and tabs are not records (the Node-side record count agrees). A regex
  // finds the first other character without copying the line, as trim() did (8× cheaper).
  const skipBlank = spec.format === 'ndjson' ? ` WHERE j IS NOT NULL AND regexp_matches(j, '[^ \\t]')` : '';
  // JSON functions raise on invalid input: only records that parse as objects reach the extractors.
  // Each JSON call on the whole record holds about twice SMELTER_MAX_LINE_BYTES of DuckDB memory, so
  // the record is parsed by as few calls as possible: its kind (NULL: not valid JSON), then one list
  // extraction for scalar columns and one for nested ones.
  const objects = isJson
    ? `, obj AS (SELECT *, _kind IS NOT NULL AS _v, CASE WHEN _kind = 'OBJECT' THEN j END AS _o FROM (SELECT *, try(json_type(j)) AS _kind FROM src${skipBlank}))` +
      `, ext AS (SELECT *${extractList('json_extract_string', '_s', spec.jsonPaths?.scalar)}${extractList('json_extract', '_n', spec.jsonPaths?.nested)}${unknownKeys(contract)} FROM obj)` +
      kindsOfStrings(spec)
    : '';
  return (path, numbered, storeRejects) => `
    WITH src AS (SELECT ${numbered ? 'row_number() OVER () AS _rec, ' : ''}* FROM ${readerSql(spec, path, storeRejects ? rejects : undefined)})${objects},
    raw AS (SELECT ${numbered ? `_rec, ${isJson ? 'j AS _j, ' : ''}` : ''}${rawCols.join(', ')} FROM ${isJson ? 'kinds' : 'src'}),
    ${nest ? `nest AS (SELECT *, ${nest} FROM raw),` : ''}
    typed AS (SELECT *, ${typedCols.join(', ')} FROM ${nest ? 'nest' : 'raw'})
    SELECT * FROM typed`;
}

/**
 * json_extract_string turns an object, an array or a boolean into text: the JSON kinds (_k) of the
 * scalar paths tell a string column's real value from such text. The record is parsed for them only
 * when a string column's text could be one (CASE evaluates its THEN for those rows alone).
 */
function kindsOfStrings(spec: ReadSpec): string {
  const refs = spec.jsonPaths?.stringRefs ?? [];
  if (!refs.length) return `, kinds AS (SELECT * FROM ext)`;
  const suspicious = refs.map((r) => `left(${r}, 1) IN ('{', '[') OR ${r} IN ('true', 'false')`).join(' OR ');
  return `, kinds AS (SELECT *, CASE WHEN ${suspicious} THEN json_type(_o, [${(spec.jsonPaths?.scalar ?? []).map(lit).join(', ')}]) END AS _k FROM ext)`;
}

/** `unknownColumns: reject`: the record's keys that are no spelling of a column name or alias. */
function unknownKeys(contract: DatasetContract): string {
  if (contract.unknownColumns !== 'reject') return '';
  // A key is known when it is (a spelling of) a column name or the first segment of an alias.
  const known = [
    ...new Set(
      contract.columns.flatMap((c) =>
        [c.name, ...(c.aliases ?? [])].flatMap((a) => keySpellings(a.split('.')[0] as string)),
      ),
    ),
  ];
  return `, list_filter(json_keys(_o), k -> NOT list_contains([${known.map(lit).join(', ')}], k)) AS _unknown`;
}

const extractList = (fn: string, as: string, paths: string[] | undefined): string =>
  paths?.length ? `, ${fn}(_o, [${paths.map(lit).join(', ')}]) AS ${as}` : '';

/** One (condition, reason) pair per possible violation: record-level (JSON), then per column. */
function contractChecks(contract: DatasetContract, bound: Bound[], isJson: boolean): Check[] {
  const checks: Check[] = isJson ? recordChecks(contract) : [];
  bound.forEach((b, i) => {
    const columnChecks = valueChecks(b, i);
    // Field checks only make sense for objects: skip them for records already rejected as a whole.
    if (isJson) for (const c of columnChecks) c.cond = `_isobj AND (${c.cond})`;
    checks.push(...columnChecks);
  });
  return checks;
}

function recordChecks(contract: DatasetContract): Check[] {
  const checks: Check[] = [
    { cond: `NOT _v`, column: null, reason: `'not valid JSON'` },
    {
      cond: `NOT _isobj AND _v`,
      column: null,
      reason: `'record is not a JSON object'`,
    },
  ];
  if (contract.unknownColumns === 'reject')
    checks.push({
      cond: `len(_unknown) > 0`,
      column: null,
      reason: `'unknown field(s): ' || array_to_string(_unknown, ', ')`,
    });
  return checks;
}

function valueChecks(b: Bound, i: number): Check[] {
  const c = b.col;
  const checks: Check[] = [];
  // A reason quotes the value it refuses; a dropped or hashed column's value must not reach quarantine.
  const quoted = (sql: string): string =>
    c.sensitive && c.sensitive.policy !== 'mask' ? "'(redacted)'" : sql;
  // Natively typed CSV columns never hold an unconvertible value (DuckDB rejected that row already),
  // and a string always converts.
  if (!identity(b))
    checks.push({
      // A nested value is also bad when a part of it does not convert.
      cond: isScalar(c.type)
        ? `r_${i} IS NOT NULL AND t_${i} IS NULL`
        : `r_${i} IS NOT NULL AND (t_${i} IS NULL OR nb_${i}.bad)`,
      column: c.name,
      reason: `'cannot convert ' || ${quoted(`to_json(r_${i})::VARCHAR`)} || ' to ${typeof c.type === 'string' ? c.type : duckdbType(c.type).toLowerCase()}'`,
    });
  // json_extract_string turns an object, an array or a boolean into text: for a string column that is
  // the wrong kind of value. The record is parsed again only for values that can be one (CASE
  // evaluates its THEN for those rows alone).
  if (b.jsonKind)
    checks.push({
      cond: `CASE WHEN left(r_${i}, 1) IN ('{', '[') OR lower(r_${i}) IN ('true', 'false') THEN ${b.jsonKind} IN ('OBJECT', 'ARRAY', 'BOOLEAN') ELSE false END`,
      column: c.name,
      reason: `'expected a string, got a JSON ' || lower(${b.jsonKind})`,
    });
  // A default or fallback fills a missing value; a present but unconvertible one is reported above.
  if (c.required && c.default === undefined && c.fallback === undefined)
    checks.push({ cond: `r_${i} IS NULL`, column: c.name, reason: `'missing required value'` });
  if (c.accepted?.length) {
    const vals = c.accepted.map((v) => (typeof v === 'number' ? String(v) : lit(v))).join(', ');
    checks.push({
      cond: `t_${i} IS NOT NULL AND t_${i} NOT IN (${vals})`,
      column: c.name,
      reason: `'value ' || ${quoted(`to_json(t_${i})::VARCHAR`)} || ' is not one of the accepted values'`,
    });
  }
  if (c.min !== undefined)
    checks.push({
      cond: `t_${i} < ${c.min}`,
      column: c.name,
      reason: `'value ' || ${quoted(`t_${i}::VARCHAR`)} || ' is below the minimum ${c.min}'`,
    });
  if (c.max !== undefined)
    checks.push({
      cond: `t_${i} > ${c.max}`,
      column: c.name,
      reason: `'value ' || ${quoted(`t_${i}::VARCHAR`)} || ' is above the maximum ${c.max}'`,
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

/**
 * Pass 2: the record as read, as an object of its mapped columns' cleaned values. Only what the
 * contract maps is quarantined: fields a source sends unmapped (passwords, card numbers) never are,
 * `drop` columns are left out and `hash` columns hashed. A JSON record that is not an object has no
 * mapped columns and no raw copy: its reason, source and line point at it in the raw bucket.
 */
function rawRecord(bound: Bound[], isJson: boolean): string {
  const fields = bound.flatMap((b, i) => {
    const policy = b.col.sensitive?.policy;
    if (policy === 'drop') return [];
    return [`${lit(b.col.name)}: ${policy === 'hash' ? hmacSql(`r_${i}`) : `r_${i}`}`];
  });
  if (!fields.length) return `NULL::VARCHAR AS raw`;
  const obj = `to_json({${fields.join(', ')}})::VARCHAR`;
  return isJson ? `CASE WHEN _isobj THEN ${obj} END AS raw` : `${obj} AS raw`;
}
