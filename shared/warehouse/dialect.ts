/**
 * One model source, two engines. Models are written in the common subset of BigQuery Standard SQL
 * and DuckDB SQL, plus a few `@macros` for the places where the two differ (documented in
 * models/README.md). This module renders macros and generates the DDL/DML the runner needs (MERGE,
 * partition-scoped replace, CREATE TABLE … PARTITION BY/CLUSTER BY) for each engine.
 */
import { permanent } from '../errors';
import type { ScalarType } from '../contracts/types';
import { LAYERS, parseTableRef, type TableRef } from './tables';

export type DialectName = 'duckdb' | 'bigquery';

export interface TimeRange {
  /** Inclusive start and exclusive end, as `YYYY-MM-DD` dates (ranges are always whole days). */
  startDate: string;
  endDate: string;
}

export const UNBOUNDED: TimeRange = { startDate: '0001-01-01', endDate: '9999-12-31' };
export const isUnbounded = (r: TimeRange): boolean =>
  r.startDate <= UNBOUNDED.startDate && r.endDate >= UNBOUNDED.endDate;

export interface RenderContext {
  /** Rendered name for `@this` (the model's target, or the relation an audit checks). */
  self?: string;
  range?: TimeRange;
  /** `@batch(<input>)` predicates, by input key (`bronze.rainfall`); absent → TRUE. */
  batch?: Record<string, string>;
  /** Restricts `@ref(...)` to these keys (a model's declared inputs + its target). */
  allowedRefs?: ReadonlySet<string>;
  where?: string;
}

export interface ColumnDef {
  name: string;
  /** Engine-native type text (DuckDB `DECIMAL(38,9)`, BigQuery `NUMERIC`). */
  type: string;
  notNull?: boolean;
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

const GRAINS = { day: 'DAY', week: 'ISOWEEK', month: 'MONTH', quarter: 'QUARTER', year: 'YEAR' } as const;
export type Grain = keyof typeof GRAINS;

export abstract class Dialect {
  abstract readonly name: DialectName;
  abstract table(ref: TableRef): string;
  abstract ident(name: string): string;
  abstract scalarType(t: ScalarType): string;
  abstract timestampLiteral(isoOrDate: string): string;
  protected abstract macro(name: string, args: string[], ctx: RenderContext): string | undefined;
  abstract createSchemas(): string[];
  abstract transaction(statements: string[]): string;
  abstract createTableAs(
    target: TableRef,
    select: string,
    opts: { partitionBy?: string; clusterBy?: string[]; replace?: boolean; empty?: boolean },
  ): string;
  abstract dropTable(ref: TableRef): string;

  dateLiteral(d: string): string {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new Error(`not a date: ${d}`);
    return `DATE '${d}'`;
  }

  /** DuckDB: standard SQL ('' doubles a quote, backslashes are plain characters). */
  stringLiteral(s: string): string {
    return `'${s.replace(/'/g, "''")}'`;
  }

  tableName(ref: string): string {
    return this.table(parseTableRef(ref));
  }

  createTable(
    target: TableRef,
    columns: ColumnDef[],
    opts: { partitionBy?: string; clusterBy?: string[] } = {},
  ): string {
    const cols = columns
      .map((c) => `${this.ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}`)
      .join(', ');
    return `CREATE TABLE IF NOT EXISTS ${this.table(target)} (${cols})${this.tableOptions(opts)}`;
  }

  protected tableOptions(_opts: { partitionBy?: string; clusterBy?: string[] }): string {
    return '';
  }

  /** A scratch table holding one model run's output until it is audited and applied. */
  createStage(stage: TableRef, select: string): string {
    return `CREATE TABLE ${this.table(stage)} AS ${select}`;
  }

  createView(target: TableRef, select: string): string {
    return `CREATE OR REPLACE VIEW ${this.table(target)} AS ${select}`;
  }

  addColumn(target: TableRef, col: ColumnDef): string {
    return `ALTER TABLE ${this.table(target)} ADD COLUMN IF NOT EXISTS ${this.ident(col.name)} ${col.type}`;
  }

  insertSelect(target: TableRef, columns: string[], from: string): string {
    const cols = columns.map((c) => this.ident(c)).join(', ');
    return `INSERT INTO ${this.table(target)} (${cols}) SELECT ${cols} FROM ${from}`;
  }

  deleteWhere(target: TableRef, predicate: string): string {
    return `DELETE FROM ${this.table(target)} WHERE ${predicate}`;
  }

  /** `col >= DATE 'a' AND col < DATE 'b'` (unbounded sides omitted). */
  dateRangePredicate(column: string, r: TimeRange, alias?: string): string {
    const c = (alias ? `${alias}.` : '') + this.ident(column);
    const parts: string[] = [];
    if (r.startDate > UNBOUNDED.startDate) parts.push(`${c} >= ${this.dateLiteral(r.startDate)}`);
    if (r.endDate < UNBOUNDED.endDate) parts.push(`${c} < ${this.dateLiteral(r.endDate)}`);
    return parts.length ? parts.join(' AND ') : 'TRUE';
  }

  /**
   * MERGE of a staged relation into a target. With a version, an incoming row replaces the existing
   * one only if it is at least as new, so files and events may arrive in any order.
   */
  merge(m: MergeSpec): string {
    const T = 't';
    const S = 's';
    const q = (c: string): string => this.ident(c);
    const on = m.key.map((k) => `${T}.${q(k)} = ${S}.${q(k)}`);
    if (m.targetFilter) on.push(m.targetFilter);
    const newer = m.version?.length ? this.versionNewer(m.version, T, S) : undefined;
    const nonKey = m.columns.filter((c) => !m.key.includes(c));
    const updates = m.updates ?? {};
    const hasCustom = Object.keys(updates).length > 0;
    let matched: string;
    if (nonKey.length === 0) matched = '';
    else if (hasCustom || !newer) {
      const sets = nonKey.map((c) => {
        const custom = updates[c];
        if (custom !== undefined) return `${q(c)} = ${custom}`;
        return newer
          ? `${q(c)} = CASE WHEN ${newer} THEN ${S}.${q(c)} ELSE ${T}.${q(c)} END`
          : `${q(c)} = ${S}.${q(c)}`;
      });
      matched = ` WHEN MATCHED THEN UPDATE SET ${sets.join(', ')}`;
    } else {
      matched = ` WHEN MATCHED AND ${newer} THEN UPDATE SET ${nonKey.map((c) => `${q(c)} = ${S}.${q(c)}`).join(', ')}`;
    }
    const cols = m.columns.map(q).join(', ');
    const vals = m.columns.map((c) => `${S}.${q(c)}`).join(', ');
    return (
      `MERGE INTO ${this.table(m.target)} AS ${T} USING ${this.table(m.source)} AS ${S} ON ${on.join(' AND ')}` +
      `${matched} WHEN NOT MATCHED THEN INSERT (${cols}) VALUES (${vals})`
    );
  }

  /** (s.v1, s.v2, …) >= (t.v1, t.v2, …), NULLs oldest. */
  versionNewer(version: string[], t: string, s: string): string {
    const q = (c: string): string => this.ident(c);
    const build = (i: number): string => {
      const c = version[i] as string;
      const sv = `${s}.${q(c)}`;
      const tv = `${t}.${q(c)}`;
      const gt = `(${sv} IS NOT NULL AND (${tv} IS NULL OR ${sv} > ${tv}))`;
      const eq = `((${sv} IS NULL AND ${tv} IS NULL) OR ${sv} = ${tv})`;
      if (i === version.length - 1) return `(${gt} OR ${eq})`;
      return `(${gt} OR (${eq} AND ${build(i + 1)}))`;
    };
    return build(0);
  }

  /** Renders every `@macro` of a model or audit. */
  render(sql: string, ctx: RenderContext = {}): string {
    return renderMacros(sql, (name, args) => this.expand(name, args, ctx), ctx.where ?? 'SQL');
  }

  private expand(name: string, rawArgs: string[] | undefined, ctx: RenderContext): string {
    const where = ctx.where ?? 'SQL';
    const args = (rawArgs ?? []).map((a) => this.render(a, ctx).trim());
    const arity = (n: number | [number, number]): void => {
      const [lo, hi] = typeof n === 'number' ? [n, n] : n;
      if (rawArgs === undefined && lo > 0) throw macroError(where, name, `needs arguments: @${name}(…)`);
      if (args.length < lo || args.length > hi)
        throw macroError(
          where,
          name,
          `takes ${lo === hi ? lo : `${lo}–${hi}`} argument(s), got ${args.length}`,
        );
    };
    const range = ctx.range ?? UNBOUNDED;
    switch (name) {
      case 'ref': {
        arity(1);
        const key = args[0] as string;
        const ref = parseTableRef(key, `${where}: @ref`);
        if (ctx.allowedRefs && !ctx.allowedRefs.has(`${ref.layer}.${ref.name}`))
          throw macroError(where, name, `${key} is not declared in the header's inputs`);
        return this.table(ref);
      }
      case 'this':
        arity(0);
        if (!ctx.self) throw macroError(where, name, '@this is only defined for models and audits');
        return ctx.self;
      case 'start':
        arity(0);
        return this.timestampLiteral(range.startDate);
      case 'end':
        arity(0);
        return this.timestampLiteral(range.endDate);
      case 'start_date':
        arity(0);
        return this.dateLiteral(range.startDate);
      case 'end_date':
        arity(0);
        return this.dateLiteral(range.endDate);
      case 'batch': {
        arity(1);
        const key = args[0] as string;
        parseTableRef(key, `${where}: @batch`);
        if (ctx.allowedRefs && !ctx.allowedRefs.has(key))
          throw macroError(where, name, `${key} is not declared in the header's inputs`);
        return `(${ctx.batch?.[key] ?? 'TRUE'})`;
      }
      case 'to_date':
        arity(1);
        return `CAST(${args[0]} AS DATE)`;
      case 'date_trunc':
      case 'date_add':
      case 'date_diff':
      case 'cast':
      case 'safe_cast':
      case 'safe_divide':
      case 'unnest':
      case 'star_except': {
        if (name === 'date_add' || name === 'date_diff') arity(3);
        else if (name === 'star_except') arity([1, 64]);
        else arity(2);
        const out = this.macro(name, args, ctx);
        if (out === undefined) throw macroError(where, name, 'unsupported');
        return out;
      }
      default:
        throw macroError(where, name, `unknown macro (known: ${MACROS.join(', ')})`);
    }
  }

  protected grain(
    unit: string | undefined,
    where: string,
    allowed: Grain[] = Object.keys(GRAINS) as Grain[],
  ): Grain {
    const g = (unit ?? '').toLowerCase() as Grain;
    if (!allowed.includes(g))
      throw macroError(where, 'date_trunc', `unit must be one of ${allowed.join(', ')}, got ${unit}`);
    return g;
  }

  protected castType(t: string | undefined, where: string): string {
    const s = (t ?? '').toLowerCase();
    if (!SCALARS.includes(s as ScalarType))
      throw macroError(where, 'cast', `type must be one of ${SCALARS.join(', ')}, got ${t}`);
    return this.scalarType(s as ScalarType);
  }
}

const SCALARS: ScalarType[] = ['string', 'int64', 'float64', 'numeric', 'bool', 'date', 'timestamp', 'json'];
export const MACROS = [
  'ref',
  'this',
  'start',
  'end',
  'start_date',
  'end_date',
  'batch',
  'to_date',
  'date_trunc',
  'date_add',
  'date_diff',
  'cast',
  'safe_cast',
  'safe_divide',
  'unnest',
  'star_except',
];

function macroError(where: string, name: string, msg: string): Error {
  return permanent('MODEL_FAILED', `${where}: @${name}: ${msg}`);
}

export class DuckDbDialect extends Dialect {
  readonly name = 'duckdb' as const;

  table(ref: TableRef): string {
    return `${ref.layer}.${ref.name}`;
  }

  ident(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
  }

  scalarType(t: ScalarType): string {
    const map: Record<ScalarType, string> = {
      string: 'VARCHAR',
      int64: 'BIGINT',
      float64: 'DOUBLE',
      numeric: 'DECIMAL(38,9)',
      bool: 'BOOLEAN',
      date: 'DATE',
      timestamp: 'TIMESTAMPTZ',
      json: 'JSON',
    };
    return map[t];
  }

  timestampLiteral(d: string): string {
    return `TIMESTAMPTZ '${isoTimestamp(d)}'`;
  }

  protected macro(name: string, a: string[], ctx: RenderContext): string | undefined {
    const where = ctx.where ?? 'SQL';
    switch (name) {
      case 'date_trunc':
        // DuckDB truncates to TIMESTAMP; models expect a DATE as BigQuery returns. 'week' is ISO (Monday).
        return `CAST(date_trunc('${this.grain(a[1], where)}', ${a[0]}) AS DATE)`;
      case 'date_add':
        return `CAST(${a[0]} + INTERVAL (${a[1]}) ${this.grain(a[2], where, ['day', 'month', 'year']).toUpperCase()} AS DATE)`;
      case 'date_diff': {
        const g = this.grain(a[2], where, ['day', 'week', 'month', 'year']);
        // BigQuery counts ISO week boundaries; DuckDB's 'week' counts whole 7-day spans: truncate first.
        if (g === 'week')
          return `date_diff('week', date_trunc('week', ${a[1]}), date_trunc('week', ${a[0]}))`;
        return `date_diff('${g}', ${a[1]}, ${a[0]})`;
      }
      case 'cast':
        return `CAST(${a[0]} AS ${this.castType(a[1], where)})`;
      case 'safe_cast':
        return `TRY_CAST(${a[0]} AS ${this.castType(a[1], where)})`;
      case 'safe_divide':
        return `(CAST(${a[0]} AS DOUBLE) / NULLIF(CAST(${a[1]} AS DOUBLE), 0))`;
      case 'unnest':
        return `UNNEST(${a[0]}) AS _unnest_${a[1]}(${a[1]})`;
      case 'star_except':
        return `* EXCLUDE (${a.join(', ')})`;
    }
    return undefined;
  }

  createSchemas(): string[] {
    return LAYERS.map((l) => `CREATE SCHEMA IF NOT EXISTS ${l}`);
  }

  transaction(statements: string[]): string {
    return ['BEGIN TRANSACTION', ...statements, 'COMMIT'].join(';\n') + ';';
  }

  createTableAs(
    target: TableRef,
    select: string,
    opts: { partitionBy?: string; clusterBy?: string[]; replace?: boolean; empty?: boolean },
  ): string {
    const head = opts.replace ? 'CREATE OR REPLACE TABLE' : 'CREATE TABLE IF NOT EXISTS';
    // DuckDB has no partitions; ordering the first load by the partition column helps its zone maps.
    const body = opts.empty ? `SELECT * FROM (${select}) AS _q LIMIT 0` : select;
    return `${head} ${this.table(target)} AS ${body}`;
  }

  dropTable(ref: TableRef): string {
    return `DROP TABLE IF EXISTS ${this.table(ref)}`;
  }
}

export class BigQueryDialect extends Dialect {
  readonly name = 'bigquery' as const;
  constructor(
    readonly project: string,
    readonly prefix: string,
    readonly location = 'EU',
  ) {
    super();
  }

  dataset(layer: TableRef['layer']): string {
    return `${this.prefix}_${layer}`;
  }

  table(ref: TableRef): string {
    return `\`${this.project}.${this.dataset(ref.layer)}.${ref.name}\``;
  }

  ident(name: string): string {
    return `\`${name.replace(/`/g, '\\`')}\``;
  }

  scalarType(t: ScalarType): string {
    const map: Record<ScalarType, string> = {
      string: 'STRING',
      int64: 'INT64',
      float64: 'FLOAT64',
      numeric: 'NUMERIC',
      bool: 'BOOL',
      date: 'DATE',
      timestamp: 'TIMESTAMP',
      json: 'JSON',
    };
    return map[t];
  }

  timestampLiteral(d: string): string {
    return `TIMESTAMP '${isoTimestamp(d)}'`;
  }

  /** BigQuery escapes with backslashes and allows no raw newline in a quoted string. */
  override stringLiteral(s: string): string {
    const esc = s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    return `'${esc}'`;
  }

  protected macro(name: string, a: string[], ctx: RenderContext): string | undefined {
    const where = ctx.where ?? 'SQL';
    switch (name) {
      case 'date_trunc':
        return `DATE_TRUNC(${a[0]}, ${GRAINS[this.grain(a[1], where)]})`;
      case 'date_add':
        return `DATE_ADD(${a[0]}, INTERVAL ${a[1]} ${GRAINS[this.grain(a[2], where, ['day', 'month', 'year'])]})`;
      case 'date_diff':
        return `DATE_DIFF(${a[0]}, ${a[1]}, ${GRAINS[this.grain(a[2], where, ['day', 'week', 'month', 'year'])]})`;
      case 'cast':
        return `CAST(${a[0]} AS ${this.castType(a[1], where)})`;
      case 'safe_cast':
        return `SAFE_CAST(${a[0]} AS ${this.castType(a[1], where)})`;
      case 'safe_divide':
        return `SAFE_DIVIDE(${a[0]}, ${a[1]})`;
      case 'unnest':
        return `UNNEST(${a[0]}) AS ${a[1]}`;
      case 'star_except':
        return `* EXCEPT (${a.join(', ')})`;
    }
    return undefined;
  }

  /**
   * On BigQuery the datasets belong to Terraform (deploy/bigquery.tf): creating one needs a project-level
   * permission the least-privilege loader does not have, even with IF NOT EXISTS. See schemaDdl().
   */
  createSchemas(): string[] {
    return [];
  }

  /** The DDL Terraform's datasets correspond to (documentation, and for projects managed by hand). */
  schemaDdl(): string[] {
    return LAYERS.map(
      (l) =>
        `CREATE SCHEMA IF NOT EXISTS \`${this.project}.${this.dataset(l)}\` OPTIONS (location = ${this.stringLiteral(this.location)})`,
    );
  }

  // Stages expire on their own if a crashed run leaves one behind.
  override createStage(stage: TableRef, select: string): string {
    return `CREATE TABLE ${this.table(stage)} OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS ${select}`;
  }

  transaction(statements: string[]): string {
    return ['BEGIN TRANSACTION', ...statements, 'COMMIT TRANSACTION'].join(';\n') + ';';
  }

  protected override tableOptions(opts: { partitionBy?: string; clusterBy?: string[] }): string {
    let s = '';
    if (opts.partitionBy) s += ` PARTITION BY ${this.ident(opts.partitionBy)}`;
    if (opts.clusterBy?.length) s += ` CLUSTER BY ${opts.clusterBy.map((c) => this.ident(c)).join(', ')}`;
    return s;
  }

  createTableAs(
    target: TableRef,
    select: string,
    opts: { partitionBy?: string; clusterBy?: string[]; replace?: boolean; empty?: boolean },
  ): string {
    const head = opts.replace ? 'CREATE OR REPLACE TABLE' : 'CREATE TABLE IF NOT EXISTS';
    const body = opts.empty ? `SELECT * FROM (${select}) WHERE FALSE` : select;
    return `${head} ${this.table(target)}${this.tableOptions(opts)} AS ${body}`;
  }

  dropTable(ref: TableRef): string {
    return `DROP TABLE IF EXISTS ${this.table(ref)}`;
  }
}

function isoTimestamp(d: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(d)) return `${d} 00:00:00+00`;
  const t = new Date(d);
  if (Number.isNaN(t.getTime())) throw new Error(`not a timestamp: ${d}`);
  return t.toISOString().replace('T', ' ').replace('Z', '+00');
}

/**
 * Finds `@name` and `@name(args)` outside string literals, quoted identifiers and comments, and
 * replaces them with `expand(name, args)`; arguments are split on top-level commas.
 */
export function renderMacros(
  sql: string,
  expand: (name: string, args: string[] | undefined) => string,
  where = 'SQL',
): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i] as string;
    if (ch === "'" || ch === '"' || ch === '`') {
      const end = skipQuoted(sql, i, ch);
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '@') {
      const m = /^@([a-z_][a-z0-9_]*)/.exec(sql.slice(i, i + 64));
      if (m) {
        const name = m[1] as string;
        let j = i + m[0].length;
        let args: string[] | undefined;
        if (sql[j] === '(') {
          const close = matchParen(sql, j, where);
          args = splitArgs(sql.slice(j + 1, close));
          j = close + 1;
        }
        out += expand(name, args);
        i = j;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return out;
}

function skipQuoted(sql: string, i: number, q: string): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql[j];
    if (c === '\\' && q !== '"') {
      j += 2;
      continue;
    }
    if (c === q) {
      if (sql[j + 1] === q) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return sql.length;
}

function matchParen(sql: string, open: number, where: string): number {
  let depth = 0;
  let j = open;
  while (j < sql.length) {
    const c = sql[j] as string;
    if (c === "'" || c === '"' || c === '`') {
      j = skipQuoted(sql, j, c);
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return j;
    }
    j++;
  }
  throw permanent('MODEL_FAILED', `${where}: unbalanced parentheses after a macro at offset ${open}`);
}

export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let j = 0; j < s.length; j++) {
    const c = s[j] as string;
    if (c === "'" || c === '"' || c === '`') {
      const end = skipQuoted(s, j, c);
      cur += s.slice(j, end);
      j = end - 1;
      continue;
    }
    if (c === '(' || c === '[') depth++;
    if (c === ')' || c === ']') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim() || out.length) out.push(cur.trim());
  return out;
}

export function dialectFor(
  name: DialectName,
  opts: { project?: string; prefix?: string; location?: string } = {},
): Dialect {
  return name === 'duckdb'
    ? new DuckDbDialect()
    : new BigQueryDialect(opts.project ?? 'smelter-local', opts.prefix ?? 'smelter', opts.location ?? 'EU');
}
