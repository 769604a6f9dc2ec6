/**
 * Audits of one model run: the built-in ones of its header (plus the implicit unique/not_null of its
 * key) and the custom audits beside it run on the staged output before anything is applied;
 * row_count_balance runs after the apply, against the target.
 */
import { permanent } from '../errors';
import { isUnbounded, type TimeRange } from './dialect/types';
import type { WarehouseEngine } from './engine';
import type { BuiltinAudit, CustomAudit, Model } from './model';
import { addDays, dateOf, parseDate } from './ranges';
import type { TableRef } from './tables';

export interface AuditOutcome {
  model: string;
  audit: string;
  status: 'pass' | 'fail';
  failing_rows: number;
  query: string;
  trigger: string;
}

/** Runs a query for a model (errors name the model and the query). */
export type ModelQuery = <T>(m: Model, sql: string) => Promise<T[]>;

export class Auditor {
  constructor(
    private readonly engine: WarehouseEngine,
    private readonly customAudits: CustomAudit[],
    private readonly query: ModelQuery,
    private readonly maskedColumnsOf?: (input: string) => string[],
  ) {}

  /**
   * Gold never holds a `mask` value in clear: no string column of a Gold model's output may hold a
   * value of a masked column of its Silver inputs (hash it, or aggregate it away). One query per input.
   */
  private async personalData(
    m: Model,
    stage: string,
    check: (audit: string, sql: string) => Promise<void>,
  ): Promise<void> {
    if (!m.key.startsWith('gold.') || !this.maskedColumnsOf) return;
    const d = this.engine.dialect;
    const strings = (await this.engine.queryColumns(`SELECT * FROM ${stage}`))
      .filter((c) => c.family === 'string')
      .map((c) => d.ident(c.name));
    if (!strings.length) return;
    for (const input of m.inputs.filter((i) => i.startsWith('silver.'))) {
      const masked = this.maskedColumnsOf(input);
      if (!masked.length) continue;
      const [layer, name] = input.split('.') as [TableRef['layer'], string];
      const src = d.table({ layer, name });
      const values = masked
        .map((c) => `SELECT CAST(${d.ident(c)} AS ${d.scalarType('string')}) AS v FROM ${src}`)
        .join(' UNION ALL ');
      // One column of every string value of the output, semi-joined to the masked values: a hash join.
      const outValues = strings.map((c) => `SELECT ${c} AS v FROM ${stage}`).join(' UNION ALL ');
      await check(
        `no_personal_data(${input})`,
        `SELECT COUNT(*) AS n FROM (${outValues}) AS g WHERE g.v IN (SELECT p.v FROM (${values}) AS p WHERE p.v IS NOT NULL AND p.v <> '')`,
      );
    }
  }

  private implicit(m: Model): BuiltinAudit[] {
    const out: BuiltinAudit[] = [];
    if (m.kind === 'merge') {
      out.push({ type: 'not_null', columns: m.uniqueKey }, { type: 'unique', columns: m.uniqueKey });
    }
    if (m.kind === 'incremental_by_time_range' && m.uniqueKey.length)
      out.push({ type: 'unique', columns: m.uniqueKey });
    const declared = new Set(m.audits.map(auditName));
    return out.filter((a) => !declared.has(auditName(a)));
  }

  /** Audits of the staged output, before anything is applied. */
  async stage(m: Model, stage: string, trigger: string): Promise<AuditOutcome[]> {
    const d = this.engine.dialect;
    const q = (c: string): string => d.ident(c);
    const out: AuditOutcome[] = [];
    const count = async (sql: string): Promise<number> =>
      Number((await this.query<{ n: unknown }>(m, sql))[0]?.n ?? 0);
    const record = (audit: string, sql: string, n: number): void => {
      out.push({
        model: m.key,
        audit,
        status: n > 0 ? 'fail' : 'pass',
        failing_rows: n,
        query: sql,
        trigger,
      });
    };
    const check = async (audit: string, sql: string): Promise<void> => record(audit, sql, await count(sql));
    for (const a of [...this.implicit(m), ...m.audits]) {
      switch (a.type) {
        case 'not_null':
          await check(
            auditName(a),
            `SELECT COUNT(*) AS n FROM ${stage} WHERE ${a.columns.map((c) => `${q(c)} IS NULL`).join(' OR ')}`,
          );
          break;
        case 'unique': {
          const cols = a.columns.map(q).join(', ');
          const exact = `SELECT COUNT(*) AS n FROM (SELECT ${cols} FROM ${stage} GROUP BY ${cols} HAVING COUNT(*) > 1) AS dup`;
          // Where rows with equal keys have equal hashes (keyHashPrecheck), as many distinct hashes as
          // rows proves the key unique, at a third of the cost of grouping the keys (6 M rows: 0.45 vs
          // 1.3 s, which spills). Fewer (a duplicate or a collision) runs the exact query, which the
          // outcome names.
          const hashCheck = `SELECT COUNT(*) - COUNT(DISTINCT @key_hash(${cols})) AS n FROM ${stage}`;
          const repeats = d.keyHashPrecheck ? await count(d.render(hashCheck, { where: m.file })) : undefined;
          if (repeats === 0) record(auditName(a), exact, 0);
          else await check(auditName(a), exact);
          break;
        }
        case 'accepted_values':
          await check(
            auditName(a),
            `SELECT COUNT(*) AS n FROM ${stage} WHERE ${q(a.column)} IS NOT NULL AND ${q(a.column)} NOT IN (${a.values.map((v) => d.stringLiteral(v)).join(', ')})`,
          );
          break;
        case 'expression':
          await check(
            auditName(a),
            `SELECT COUNT(*) AS n FROM ${stage} WHERE NOT (${d.render(a.sql, { where: m.file })})`,
          );
          break;
        case 'row_count_balance':
          break; // after apply
      }
    }
    await this.personalData(m, stage, check);
    for (const ca of this.customAudits.filter((x) => x.model === m.key)) {
      const sql = d.render(ca.sql, {
        self: stage,
        where: ca.file,
        allowedRefs: new Set([...m.inputs, m.key]),
      });
      await check(ca.name, `SELECT COUNT(*) AS n FROM (${sql}) AS audit_rows`);
    }
    return out;
  }

  /**
   * Row-count balance from a source to the model: every distinct key of the source rows in scope (the
   * loaded file, or the run's range) is present in the target after the merge.
   */
  async applied(
    m: Model,
    range: TimeRange,
    opts: { trigger: string; batch?: Record<string, string>; batchFrom?: Record<string, string> },
    stats: { n?: unknown; lo?: unknown; hi?: unknown } | undefined,
  ): Promise<AuditOutcome[]> {
    const d = this.engine.dialect;
    const q = (c: string): string => d.ident(c);
    const out: AuditOutcome[] = [];
    for (const a of m.audits) {
      if (a.type !== 'row_count_balance') continue;
      // Keys derived by the model (a partition date) are not in the source: balance on the others.
      const [sl, sn] = a.source.split('.') as [TableRef['layer'], string];
      const sourceInfo = (await this.engine.columns({ layer: sl, name: sn })) ?? [];
      const sourceCols = new Set(sourceInfo.map((c) => c.name));
      const key = m.uniqueKey.filter((k) => sourceCols.has(k));
      if (!key.length)
        throw permanent(
          'MODEL_FAILED',
          `Model ${m.key}: row_count_balance(${a.source}) needs unique key columns present in ${a.source}`,
        );
      let scope: string | undefined = opts.batch?.[a.source];
      const batchFrom = scope ? opts.batchFrom?.[a.source] : undefined;
      if (!scope && a.timeColumn)
        scope = isUnbounded(range)
          ? 'TRUE'
          : `CAST(${q(a.timeColumn)} AS DATE) >= ${d.dateLiteral(range.startDate)} AND CAST(${q(a.timeColumn)} AS DATE) < ${d.dateLiteral(range.endDate)}`;
      if (!scope && isUnbounded(range)) scope = 'TRUE';
      if (!scope) continue;
      const src = batchFrom ?? d.tableName(a.source);
      const cols = key.map(q).join(', ');
      const notNull = key.map((k) => `${q(k)} IS NOT NULL`).join(' AND ');
      const on = key.map((k) => `t.${q(k)} = b.${q(k)}`).join(' AND ');
      const lo = dateOf(stats?.lo);
      const hi = dateOf(stats?.hi);
      const prune =
        m.timeColumn && m.uniqueKey.includes(m.timeColumn) && lo && hi
          ? ` WHERE ${q(m.timeColumn)} BETWEEN ${d.dateLiteral(lo)} AND ${d.dateLiteral(hi)}`
          : '';
      // Source rows whose key the target lacks (a hash anti-join), then their distinct keys: nothing
      // to deduplicate when the audit passes (DISTINCT on both sides first cost two full aggregations).
      const bKeys = key.map((k) => `b.${q(k)}`).join(', ');
      const missing = (batchWhere: string, targetWhere: string): string =>
        `SELECT COUNT(*) AS n FROM (SELECT DISTINCT ${bKeys} FROM (SELECT ${cols} FROM ${src} WHERE (${scope}) AND ${notNull}${batchWhere}) AS b ` +
        `LEFT JOIN (SELECT ${cols} FROM ${d.table(m.target)}${targetWhere}) AS t ON ${on} WHERE t.${q(key[0] as string)} IS NULL) AS missing`;
      // (Pruning on the target's partition keeps this check partition-sized, not history-sized.)
      const sqls = [missing('', prune)];
      const tc = m.timeColumn;
      const chunks = d.balanceChunkRows ? Math.ceil(Number(stats?.n ?? 0) / d.balanceChunkRows) : 1;
      const datedKey = !!tc && sourceInfo.some((c) => c.name === tc && c.family === 'date');
      if (chunks > 1 && tc && datedKey && key.includes(tc) && prune && lo && hi) {
        // A range of dates at a time, then the source keys outside [lo, hi] (none match the pruned target).
        sqls.length = 0;
        const between = (a: string, b: string): string =>
          `${q(tc)} BETWEEN ${d.dateLiteral(a)} AND ${d.dateLiteral(b)}`;
        const days = Math.round((parseDate(hi) - parseDate(lo)) / 86_400_000) + 1;
        const per = Math.ceil(days / Math.min(chunks, days));
        for (let a = lo; a <= hi; a = addDays(a, per)) {
          const b = addDays(a, per - 1) < hi ? addDays(a, per - 1) : hi;
          sqls.push(missing(` AND ${between(a, b)}`, ` WHERE ${between(a, b)}`));
        }
        sqls.push(
          `SELECT COUNT(*) AS n FROM (SELECT DISTINCT ${cols} FROM ${src} WHERE (${scope}) AND ${notNull} AND NOT (${between(lo, hi)})) AS outside`,
        );
      }
      let n = 0;
      for (const sql of sqls) n += Number((await this.query<{ n: unknown }>(m, sql))[0]?.n ?? 0);
      const sql = sqls.join(';\n');

      out.push({
        model: m.key,
        audit: auditName(a),
        status: n > 0 ? 'fail' : 'pass',
        failing_rows: n,
        query: sql,
        trigger: opts.trigger,
      });
    }
    return out;
  }
}

export function auditName(a: BuiltinAudit): string {
  switch (a.type) {
    case 'not_null':
    case 'unique':
      return `${a.type}(${a.columns.join(', ')})`;
    case 'accepted_values':
      return `accepted_values(${a.column})`;
    case 'row_count_balance':
      return `row_count_balance(${a.source})`;
    case 'expression':
      return `expression(${a.sql})`;
  }
}
