/**
 * What a dialect is: names, types and literals, the macro SQL it writes, and the statements around a
 * model (CREATE TABLE … PARTITION BY/CLUSTER BY, MERGE, partition-scoped replace). Statements that are
 * the same on every engine are written here once from a dialect's parts; each engine's folder
 * (./duckdb, ./bigquery) supplies the same parts, and nothing here knows which one runs.
 */
import { permanent } from '../../errors';
import type { ScalarType } from '../../contracts/types';
import { isDate } from '../ranges';
import { parseTableRef, type TableRef } from '../tables';
import { renderSql, type DialectMacros, type MacroTarget } from './macros';
import {
  UNBOUNDED,
  type ColumnDef,
  type CreateTableAsOptions,
  type DialectName,
  type MergeSpec,
  type RenderContext,
  type TableLayout,
  type TimeRange,
} from './types';

export abstract class Dialect implements MacroTarget {
  abstract readonly name: DialectName;
  abstract readonly macros: DialectMacros;

  // ---- names, types and literals
  abstract table(ref: TableRef): string;
  abstract ident(name: string): string;
  abstract scalarType(t: ScalarType): string;
  abstract timestampLiteral(isoOrDate: string): string;

  // ---- statements whose text differs per engine
  abstract createSchemas(): string[];
  abstract transaction(statements: string[]): string;
  abstract createTableAs(target: TableRef, select: string, opts: CreateTableAsOptions): string;
  abstract dropTable(ref: TableRef): string;
  /**
   * SQL listing stage tables (`s` their layer, `t` their name) a crashed run left in the database;
   * undefined where stages expire.
   */
  abstract leftoverStages(): string | undefined;
  /**
   * The statements that make a stage built beside its target (same layer) the target itself, or
   * undefined where the engine cannot rename one into place (the stage is then copied).
   */
  placeStage(_stage: TableRef, _target: TableRef): string[] | undefined {
    return undefined;
  }
  /**
   * Whether audits may first count distinct `@key_hash` values and group the keys only when that finds
   * a repeat: the engine's hash maps all values its GROUP BY puts together (-0.0 and 0.0, NaNs) to one
   * hash, and grouping costs enough to be worth skipping (DuckDB under its memory limit). Elsewhere the
   * keys are grouped directly.
   */
  readonly keyHashPrecheck: boolean = false;
  /**
   * Rows per statement of a row-count balance whose key holds the partition date: a larger batch is
   * checked a range of dates at a time (exact, as equal keys share their date), so each hash join fits
   * the engine's memory instead of spilling (DuckDB under its 64 MB default). Undefined: one statement.
   */
  readonly balanceChunkRows: number | undefined = undefined;
  /** PARTITION BY / CLUSTER BY clauses (empty where the engine has none). */
  protected abstract tableOptions(layout: TableLayout): string;

  dateLiteral(d: string): string {
    if (!isDate(d)) throw permanent('MODEL_FAILED', `not a date: ${d}`);
    return `DATE '${d}'`;
  }

  /** Standard SQL ('' doubles a quote, backslashes are plain characters). */
  stringLiteral(s: string): string {
    return `'${s.replace(/'/g, "''")}'`;
  }

  tableName(ref: string): string {
    return this.table(parseTableRef(ref));
  }

  /** Renders every `@macro` of a model or audit. */
  render(sql: string, ctx: RenderContext = {}): string {
    return renderSql(this, sql, ctx);
  }

  createTable(target: TableRef, columns: ColumnDef[], layout: TableLayout = {}): string {
    const cols = columns
      .map((c) => `${this.ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}`)
      .join(', ');
    return `CREATE TABLE IF NOT EXISTS ${this.table(target)} (${cols})${this.tableOptions(layout)}`;
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
    const q = (c: string): string => this.ident(c);
    const on = m.key.map((k) => `t.${q(k)} = s.${q(k)}`);
    if (m.targetFilter) on.push(m.targetFilter);
    const cols = m.columns.map(q).join(', ');
    const vals = m.columns.map((c) => `s.${q(c)}`).join(', ');
    return (
      `MERGE INTO ${this.table(m.target)} AS t USING ${this.table(m.source)} AS s ON ${on.join(' AND ')}` +
      `${this.whenMatched(m)} WHEN NOT MATCHED THEN INSERT (${cols}) VALUES (${vals})`
    );
  }

  /** The MERGE's update: per column when some column has its own rule, else one version-guarded SET. */
  private whenMatched(m: MergeSpec): string {
    const q = (c: string): string => this.ident(c);
    const nonKey = m.columns.filter((c) => !m.key.includes(c));
    if (nonKey.length === 0) return '';
    const newer = m.version?.length ? this.versionNewer(m.version, 't', 's') : undefined;
    const updates = m.updates ?? {};
    if (newer && Object.keys(updates).length === 0)
      return ` WHEN MATCHED AND ${newer} THEN UPDATE SET ${nonKey.map((c) => `${q(c)} = s.${q(c)}`).join(', ')}`;
    const sets = nonKey.map((c) => {
      const custom = updates[c];
      if (custom !== undefined) return `${q(c)} = ${custom}`;
      return newer ? `${q(c)} = CASE WHEN ${newer} THEN s.${q(c)} ELSE t.${q(c)} END` : `${q(c)} = s.${q(c)}`;
    });
    return ` WHEN MATCHED THEN UPDATE SET ${sets.join(', ')}`;
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
}

/** `2024-01-01` or an ISO timestamp → `2024-01-01 00:00:00+00` (UTC). */
export function isoTimestamp(d: string): string {
  if (isDate(d)) return `${d} 00:00:00+00`;
  const t = new Date(d);
  if (Number.isNaN(t.getTime())) throw permanent('MODEL_FAILED', `not a timestamp: ${d}`);
  return t.toISOString().replace('T', ' ').replace('Z', '+00');
}
