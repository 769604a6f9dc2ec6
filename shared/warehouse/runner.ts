/**
 * Runs models. Each run renders the model for a time range (and, for Bronze inputs, the loaded
 * file's batch), stages its output in a scratch table, audits it, evolves the target's schema, then
 * applies it by kind:
 *   merge                      MERGE on the unique key (a version decides which row wins)
 *   incremental_by_time_range  delete the range's partitions + insert, in one transaction
 *   full                       replace the table (small dimension tables only)
 *   view                       (re)create a view; nothing to apply
 * The partitions a run changed drive which partitions of downstream models are recomputed — never a
 * full rebuild of a partitioned model because one file arrived.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage, isSmelterError, permanent, SmelterError } from '../errors';
import type { Logger } from '../log';
import { isUnbounded, UNBOUNDED, type TimeRange } from './dialect/types';
import type { ModelGraph } from './dag';
import type { ColumnInfo, WarehouseEngine } from './engine';
import type { BuiltinAudit, CustomAudit, Model } from './model';
import type { OpsStore } from './ops';
import {
  changedDates,
  CHANGED_ALL,
  dateOf,
  isEmptyChange,
  mergeChanges,
  rangesFor,
  timestampOf,
  type Change,
} from './ranges';
import { compareSchemas } from './schema';
import type { TableRef } from './tables';

export interface RunOptions {
  /** Shown in logs and recorded with runs and audits: `load gs://…`, `refresh`, `backfill`. */
  trigger: string;
  /** `@batch(<source>)` predicates (the loaded Bronze file). */
  batch?: Record<string, string>;
  /** Change of a source table as seen by one model (refresh: from that model's watermark). */
  sourceChange?: (model: Model, source: string) => Change | undefined;
  /** Restrict to these models. */
  only?: ReadonlySet<string>;
}

export interface ModelRunResult {
  model: string;
  kind: Model['kind'];
  ranges: TimeRange[];
  rows: number;
  durationMs: number;
  changed: 'none' | 'all' | number;
  /** Inputs that do not exist yet (the model was skipped). */
  waitingFor?: string[];
}

export interface RunSummary {
  trigger: string;
  models: ModelRunResult[];
  durationMs: number;
}

interface AuditOutcome {
  model: string;
  audit: string;
  status: 'pass' | 'fail';
  failing_rows: number;
  query: string;
  trigger: string;
}

export class ModelRunner {
  constructor(
    private readonly engine: WarehouseEngine,
    private readonly ops: OpsStore,
    private readonly log: Logger,
    private readonly graph: ModelGraph,
    private readonly customAudits: CustomAudit[],
  ) {}

  private get d() {
    return this.engine.dialect;
  }

  /** Runs every model downstream of the changed tables, in dependency order. */
  async runFrom(initial: Map<string, Change>, opts: RunOptions): Promise<RunSummary> {
    const started = Date.now();
    const changes = new Map(initial);
    const results: ModelRunResult[] = [];
    const exists = new Map<string, boolean>();
    for (const m of this.graph.order) {
      if (opts.only && !opts.only.has(m.key)) continue;
      let change: Change | undefined;
      for (const inp of m.inputs) {
        const c = this.graph.get(inp) ? changes.get(inp) : (opts.sourceChange?.(m, inp) ?? changes.get(inp));
        change = mergeChanges(change, c);
      }
      if (isEmptyChange(change)) continue;
      const t0 = Date.now();
      const missing = await this.missingInputs(m, exists);
      if (missing.length) {
        // e.g. carts loaded before any users export: the model runs (in full) once its inputs exist.
        this.log.debug('model waits for its inputs', { model: m.key, missing });
        results.push({
          model: m.key,
          kind: m.kind,
          ranges: [],
          rows: 0,
          durationMs: 0,
          changed: 'none',
          waitingFor: missing,
        });
        continue;
      }
      if (m.kind === 'view') {
        await this.ensureView(m);
        changes.set(m.key, change as Change);
        results.push({
          model: m.key,
          kind: m.kind,
          ranges: [],
          rows: 0,
          durationMs: Date.now() - t0,
          changed: 'all',
        });
        continue;
      }
      const ranges = m.kind === 'full' ? [UNBOUNDED] : rangesFor(change as Change, m.grain);
      let out: Change | undefined;
      let rows = 0;
      for (const r of ranges) {
        const res = await this.runModel(m, r, opts);
        out = mergeChanges(out, res.change);
        rows += res.rows;
      }
      if (out && !isEmptyChange(out)) changes.set(m.key, out);
      results.push({
        model: m.key,
        kind: m.kind,
        ranges,
        rows,
        durationMs: Date.now() - t0,
        changed: !out ? 'none' : out.all ? 'all' : out.dates.size,
      });
    }
    return { trigger: opts.trigger, models: results, durationMs: Date.now() - started };
  }

  private async missingInputs(m: Model, exists: Map<string, boolean>): Promise<string[]> {
    const out: string[] = [];
    for (const inp of m.inputs) {
      let ok = exists.get(inp);
      if (ok === undefined) {
        const [layer, name] = inp.split('.') as [TableRef['layer'], string];
        ok = (await this.engine.columns({ layer, name })) !== undefined;
        if (ok) exists.set(inp, ok);
      }
      if (!ok) out.push(inp);
    }
    return out;
  }

  private readonly views = new Map<string, string>();

  /** Views are (re)created when first seen by this process or when their SQL changes. */
  async ensureView(m: Model): Promise<void> {
    const sql = this.render(m, UNBOUNDED, {});
    if (this.views.get(m.key) === sql && (await this.engine.columns(m.target))) return;
    await this.sql(m, this.d.createView(m.target, sql));
    this.views.set(m.key, sql);
  }

  render(m: Model, range: TimeRange, batch: Record<string, string> | undefined): string {
    return this.d.render(m.sql, {
      self: this.d.table(m.target),
      range,
      ...(batch ? { batch } : {}),
      allowedRefs: new Set([...m.inputs, m.key]),
      where: m.file,
    });
  }

  /** Executes SQL on behalf of a model: SQL errors become permanent MODEL_FAILED with the query. */
  private async sql(m: Model, sql: string): Promise<void> {
    try {
      await this.engine.exec(sql);
    } catch (err) {
      throw this.modelError(m, err, sql);
    }
  }

  private async rows<T>(m: Model, sql: string): Promise<T[]> {
    try {
      return await this.engine.query<T>(sql);
    } catch (err) {
      throw this.modelError(m, err, sql);
    }
  }

  private modelError(m: Model, err: unknown, sql: string): Error {
    if (isSmelterError(err)) return err;
    return permanent(
      'MODEL_FAILED',
      `Model ${m.key} (${m.file}) failed: ${errorMessage(err)}\nQuery:\n${sql}`,
      {
        cause: err,
        details: { model: m.key, file: m.file, query: sql },
      },
    );
  }

  async runModel(m: Model, range: TimeRange, opts: RunOptions): Promise<{ change?: Change; rows: number }> {
    const started = Date.now();
    const d = this.d;
    const rendered = this.render(m, range, opts.batch);
    const stage: TableRef = {
      layer: 'ops',
      name: `_stage_${m.target.layer}_${m.target.name}_${randomBytes(4).toString('hex')}`,
    };
    const S = d.table(stage);
    const q = (c: string): string => d.ident(c);
    let keepStage = false;
    let rows = 0;
    try {
      await this.sql(m, d.createStage(stage, rendered));
      const cols = (await this.engine.columns(stage)) ?? [];
      this.checkColumns(m, cols);
      const tc = m.timeColumn;
      const stats = (
        await this.rows<{ n: unknown; lo?: unknown; hi?: unknown; wm?: unknown }>(
          m,
          `SELECT COUNT(*) AS n${tc ? `, MIN(${q(tc)}) AS lo, MAX(${q(tc)}) AS hi` : ''}${m.watermark ? `, MAX(${q(m.watermark)}) AS wm` : ''} FROM ${S}`,
        )
      )[0];
      rows = Number(stats?.n ?? 0);
      if (m.kind === 'incremental_by_time_range' && tc && rows > 0) {
        const out = await this.rows<{ n: unknown }>(
          m,
          `SELECT COUNT(*) AS n FROM ${S} WHERE ${q(tc)} IS NULL OR NOT (${d.dateRangePredicate(tc, range)})`,
        );
        if (Number(out[0]?.n ?? 0) > 0)
          throw permanent(
            'MODEL_FAILED',
            `Model ${m.key} returned ${String(out[0]?.n)} rows with ${tc} outside its range [${range.startDate}, ${range.endDate}) — filter its inputs with @start_date/@end_date\nQuery:\n${rendered}`,
            { details: { model: m.key, query: rendered } },
          );
      }

      const audits = await this.stageAudits(m, S, opts.trigger);
      const failed = audits.filter((a) => a.status === 'fail');
      await this.ops.recordAudits(audits);
      if (failed.length) {
        keepStage = true;
        const f = failed[0] as AuditOutcome;
        throw permanent(
          'AUDIT_FAILED',
          `Audit ${f.audit} failed for model ${m.key}: ${f.failing_rows} offending row(s)${failed.length > 1 ? ` (+${failed.length - 1} more failed audits)` : ''}. ` +
            `Nothing was applied; the output is kept in ${S} for inspection.\nAudit query:\n${f.query}\nModel query:\n${rendered}`,
          {
            details: {
              model: m.key,
              audit: f.audit,
              query: f.query,
              failed: failed.map((a) => a.audit),
              stage: S,
            },
          },
        );
      }

      const targetCols = await this.engine.columns(m.target);
      const fresh = !targetCols;
      if (!targetCols && m.kind !== 'full') {
        await this.sql(
          m,
          d.createTableAs(m.target, `SELECT * FROM ${S}`, { empty: true, ...this.layout(m) }),
        );
      } else if (targetCols && m.kind !== 'full') {
        await this.evolve(m, targetCols, cols);
      }
      const colNames = cols.map((c) => c.name);

      let change: Change | undefined;
      if (m.kind === 'full') {
        await this.sql(
          m,
          d.createTableAs(m.target, `SELECT * FROM ${S}`, { replace: true, ...this.layout(m) }),
        );
        change = CHANGED_ALL;
      } else if (m.kind === 'incremental_by_time_range') {
        const time = tc as string;
        if (isUnbounded(range)) change = CHANGED_ALL;
        else {
          const before = await this.rows<{ d: unknown }>(
            m,
            `SELECT DISTINCT ${q(time)} AS d FROM ${d.table(m.target)} WHERE ${d.dateRangePredicate(time, range)}`,
          );
          const after = rows
            ? await this.rows<{ d: unknown }>(m, `SELECT DISTINCT ${q(time)} AS d FROM ${S}`)
            : [];
          change = changedDates(
            [...before, ...after].map((r) => dateOf(r.d)).filter((x): x is string => !!x),
          );
        }
        await this.sql(
          m,
          d.transaction([
            d.deleteWhere(m.target, d.dateRangePredicate(time, range)),
            d.insertSelect(m.target, colNames, S),
          ]),
        );
      } else if (rows > 0 && fresh) {
        // First run of a merge model: nothing to merge with (a plain insert is much faster).
        change = tc
          ? changedDates(
              (await this.rows<{ d: unknown }>(m, `SELECT DISTINCT ${q(tc)} AS d FROM ${S}`))
                .map((r) => dateOf(r.d))
                .filter((x): x is string => !!x),
            )
          : CHANGED_ALL;
        await this.sql(m, d.insertSelect(m.target, colNames, S));
      } else if (rows > 0) {
        // merge
        let targetFilter: string | undefined;
        const lo = dateOf(stats?.lo);
        const hi = dateOf(stats?.hi);
        if (tc) {
          const dates = new Set<string>();
          for (const r of await this.rows<{ d: unknown }>(m, `SELECT DISTINCT ${q(tc)} AS d FROM ${S}`)) {
            const x = dateOf(r.d);
            if (x) dates.add(x);
          }
          if (m.uniqueKey.includes(tc)) {
            // The partition is part of the key: matched rows live in the same partitions (lets BigQuery prune).
            if (lo && hi) targetFilter = `t.${q(tc)} BETWEEN ${d.dateLiteral(lo)} AND ${d.dateLiteral(hi)}`;
          } else {
            const on = m.uniqueKey.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ');
            for (const r of await this.rows<{ d: unknown }>(
              m,
              `SELECT DISTINCT t.${q(tc)} AS d FROM ${d.table(m.target)} AS t JOIN ${S} AS s ON ${on}`,
            )) {
              const x = dateOf(r.d);
              if (x) dates.add(x);
            }
          }
          change = changedDates(dates);
        } else change = CHANGED_ALL;
        await this.sql(
          m,
          d.merge({
            target: m.target,
            source: stage,
            key: m.uniqueKey,
            columns: colNames,
            version: m.version,
            updates: m.mergeUpdates,
            ...(targetFilter ? { targetFilter } : {}),
          }),
        );
      }

      const post = await this.postAudits(m, range, opts, stats);
      await this.ops.recordAudits(post);
      const bad = post.find((a) => a.status === 'fail');
      if (bad)
        throw permanent(
          'AUDIT_FAILED',
          `Audit ${bad.audit} failed for model ${m.key}: ${bad.failing_rows} source key(s) missing from ${m.key}.\nAudit query:\n${bad.query}`,
          { details: { model: m.key, audit: bad.audit, query: bad.query } },
        );

      const wm = timestampOf(stats?.wm);
      if (m.watermark && wm) {
        const prev = await this.ops.watermark(m.key);
        if (!prev || wm > prev) await this.ops.setWatermark(m.key, wm);
      }
      await this.ops.recordRun({
        model: m.key,
        trigger: opts.trigger,
        rangeStart: range.startDate,
        rangeEnd: range.endDate,
        rows,
        status: 'ok',
        durationMs: Date.now() - started,
      });
      this.log.debug('model applied', {
        model: m.key,
        rows,
        range: `${range.startDate}..${range.endDate}`,
        durationMs: Date.now() - started,
      });
      return { ...(change ? { change } : {}), rows };
    } catch (err) {
      await this.ops
        .recordRun({
          model: m.key,
          trigger: opts.trigger,
          rangeStart: range.startDate,
          rangeEnd: range.endDate,
          rows,
          status: 'failed',
          error: errorMessage(err),
          durationMs: Date.now() - started,
        })
        .catch(() => undefined);
      throw err;
    } finally {
      if (!keepStage) await this.engine.exec(d.dropTable(stage)).catch(() => undefined);
    }
  }

  private layout(m: Model): { partitionBy?: string; clusterBy?: string[] } {
    return {
      ...(m.partitionBy ? { partitionBy: m.partitionBy } : {}),
      ...(m.clusterBy.length ? { clusterBy: m.clusterBy } : {}),
    };
  }

  private checkColumns(m: Model, cols: ColumnInfo[]): void {
    const names = new Set(cols.map((c) => c.name));
    const need = new Set([
      ...m.uniqueKey,
      ...(m.timeColumn ? [m.timeColumn] : []),
      ...(m.partitionBy ? [m.partitionBy] : []),
      ...m.clusterBy,
      ...m.version,
      ...(m.watermark ? [m.watermark] : []),
      ...Object.keys(m.mergeUpdates),
    ]);
    const missing = [...need].filter((c) => !names.has(c));
    if (missing.length)
      throw permanent(
        'MODEL_FAILED',
        `Model ${m.key} (${m.file}) does not output the header's column(s): ${missing.join(', ')}`,
        {
          details: { model: m.key },
        },
      );
    if (m.timeColumn) {
      const t = cols.find((c) => c.name === m.timeColumn);
      if (t && t.family !== 'date')
        throw permanent(
          'MODEL_FAILED',
          `Model ${m.key}: time_column ${m.timeColumn} must be a DATE (got ${t.type}); use @to_date(...)`,
        );
    }
  }

  /** New output columns are added to the target; a changed type stops the model. */
  private async evolve(m: Model, target: ColumnInfo[], stage: ColumnInfo[]): Promise<void> {
    const diff = compareSchemas(target, stage, new Set());
    // Models may legitimately change numeric precision or integer width between runs; only families matter.
    const problems = diff.problems.filter((p) => {
      const name = /column "([^"]+)"/.exec(p)?.[1];
      const a = target.find((c) => c.name === name);
      const b = stage.find((c) => c.name === name);
      return !a || !b || a.family !== b.family || a.family === 'struct' || a.family === 'array';
    });
    if (problems.length)
      throw new SmelterError(
        'SCHEMA_INCOMPATIBLE',
        `Model ${m.key}: its output no longer fits ${m.key}: ${problems.join('; ')}`,
        {
          kind: 'permanent',
          details: { model: m.key, problems },
        },
      );
    for (const c of diff.added) {
      await this.sql(m, this.d.addColumn(m.target, { name: c.name, type: c.type }));
      this.log.notice('schema evolution: column added', { model: m.key, column: c.name, type: c.type });
    }
  }

  private implicitAudits(m: Model): BuiltinAudit[] {
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
  private async stageAudits(m: Model, stage: string, trigger: string): Promise<AuditOutcome[]> {
    const d = this.d;
    const q = (c: string): string => d.ident(c);
    const out: AuditOutcome[] = [];
    const check = async (audit: string, sql: string): Promise<void> => {
      const r = await this.rows<{ n: unknown }>(m, sql);
      const n = Number(r[0]?.n ?? 0);
      out.push({
        model: m.key,
        audit,
        status: n > 0 ? 'fail' : 'pass',
        failing_rows: n,
        query: sql,
        trigger,
      });
    };
    for (const a of [...this.implicitAudits(m), ...m.audits]) {
      switch (a.type) {
        case 'not_null':
          await check(
            auditName(a),
            `SELECT COUNT(*) AS n FROM ${stage} WHERE ${a.columns.map((c) => `${q(c)} IS NULL`).join(' OR ')}`,
          );
          break;
        case 'unique': {
          const cols = a.columns.map(q).join(', ');
          await check(
            auditName(a),
            `SELECT COUNT(*) AS n FROM (SELECT ${cols} FROM ${stage} GROUP BY ${cols} HAVING COUNT(*) > 1) AS dup`,
          );
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
  private async postAudits(
    m: Model,
    range: TimeRange,
    opts: RunOptions,
    stats: { lo?: unknown; hi?: unknown } | undefined,
  ): Promise<AuditOutcome[]> {
    const d = this.d;
    const q = (c: string): string => d.ident(c);
    const out: AuditOutcome[] = [];
    for (const a of m.audits) {
      if (a.type !== 'row_count_balance') continue;
      // Keys derived by the model (a partition date) are not in the source: balance on the others.
      const [sl, sn] = a.source.split('.') as [TableRef['layer'], string];
      const sourceCols = new Set(
        ((await this.engine.columns({ layer: sl, name: sn })) ?? []).map((c) => c.name),
      );
      const key = m.uniqueKey.filter((k) => sourceCols.has(k));
      if (!key.length)
        throw permanent(
          'MODEL_FAILED',
          `Model ${m.key}: row_count_balance(${a.source}) needs unique key columns present in ${a.source}`,
        );
      let scope: string | undefined = opts.batch?.[a.source];
      if (!scope && a.timeColumn)
        scope = isUnbounded(range)
          ? 'TRUE'
          : `CAST(${q(a.timeColumn)} AS DATE) >= ${d.dateLiteral(range.startDate)} AND CAST(${q(a.timeColumn)} AS DATE) < ${d.dateLiteral(range.endDate)}`;
      if (!scope && isUnbounded(range)) scope = 'TRUE';
      if (!scope) continue;
      const src = d.tableName(a.source);
      const cols = key.map(q).join(', ');
      const notNull = key.map((k) => `${q(k)} IS NOT NULL`).join(' AND ');
      const on = key.map((k) => `t.${q(k)} = b.${q(k)}`).join(' AND ');
      const lo = dateOf(stats?.lo);
      const hi = dateOf(stats?.hi);
      const prune =
        m.timeColumn && m.uniqueKey.includes(m.timeColumn) && lo && hi
          ? ` WHERE ${q(m.timeColumn)} BETWEEN ${d.dateLiteral(lo)} AND ${d.dateLiteral(hi)}`
          : '';
      const sql =
        `SELECT COUNT(*) AS source_keys, COUNTIF(t._present IS NULL) AS n FROM (SELECT DISTINCT ${cols} FROM ${src} WHERE (${scope}) AND ${notNull}) AS b ` +
        `LEFT JOIN (SELECT DISTINCT ${cols}, 1 AS _present FROM ${d.table(m.target)}${prune}) AS t ON ${on}`;
      // (Pruning on the target's partition keeps this check partition-sized, not history-sized.)
      const r = await this.rows<{ n: unknown; source_keys: unknown }>(m, sql);
      const n = Number(r[0]?.n ?? 0);
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
