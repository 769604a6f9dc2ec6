/**
 * Runs models. Each run renders the model for a time range (and, for Bronze inputs, the loaded
 * file's batch), stages its output in a scratch table, audits it (./audits.ts), evolves the target's
 * schema, then applies it by the step its kind names:
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
import { Auditor } from './audits';
import type { CustomAudit, Model, ModelKind } from './model';
import type { OpsStore } from './ops';
import {
  changedDates,
  CHANGED_ALL,
  dateOf,
  isDate,
  isEmptyChange,
  mergeChanges,
  rangesFor,
  timestampOf,
  type Change,
} from './ranges';
import { compareSchemas } from './schema';
import { keptStageName, type TableRef } from './tables';

export interface RunOptions {
  /** Shown in logs and recorded with runs and audits: `load gs://…`, `refresh`, `backfill`. */
  trigger: string;
  /** `@batch(<source>)` predicates (the loaded Bronze file). */
  batch?: Record<string, string>;
  /** Relations holding just the batch of a source (see RenderContext.batchFrom). */
  batchFrom?: Record<string, string>;
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

export interface RunnerDeps {
  engine: WarehouseEngine;
  ops: OpsStore;
  log: Logger;
  graph: ModelGraph;
  customAudits: CustomAudit[];
  /** Times runs (ops.model_runs durations); defaults to the system clock. */
  now?: () => Date;
  /** The `mask` columns of a Silver input (by table key), for the personal-data audit of Gold models. */
  maskedColumnsOf?: (input: string) => string[];
}

/** What the phases of one model run over one range share. */
interface Run {
  m: Model;
  range: TimeRange;
  opts: RunOptions;
  rendered: string;
  stage: TableRef;
  /** The stage's engine name. */
  S: string;
  cols: ColumnInfo[];
  stats?: StageStats;
  rows: number;
  /** The target did not exist before this run. */
  fresh: boolean;
  /** The target's columns before this run (undefined when fresh). */
  targetCols?: ColumnInfo[];
  /**
   * When the stage is built beside the target, the statements renaming it into place instead of
   * copying it: a first run of a model, or any run of a `full` one, where the engine can (see
   * Dialect.placeStage).
   */
  moves?: string[];
  /** A failed audit keeps the stage for inspection. */
  keepStage: boolean;
}

interface StageStats {
  n: unknown;
  /** MIN/MAX of the time column, MAX of the watermark column. */
  lo?: unknown;
  hi?: unknown;
  wm?: unknown;
}

/** Applies a staged, audited output to the target; returns what changed (drives downstream runs). */
type ApplyStep = (run: Run) => Promise<Change | undefined>;

export class ModelRunner {
  private readonly engine: WarehouseEngine;
  private readonly ops: OpsStore;
  private readonly log: Logger;
  private readonly graph: ModelGraph;
  private readonly audits: Auditor;
  private readonly now: () => Date;

  constructor(deps: RunnerDeps) {
    this.engine = deps.engine;
    this.ops = deps.ops;
    this.log = deps.log;
    this.graph = deps.graph;
    this.audits = new Auditor(
      deps.engine,
      deps.customAudits,
      (m, sql) => this.rows(m, sql),
      deps.maskedColumnsOf,
    );
    this.now = deps.now ?? (() => new Date());
  }

  private get d() {
    return this.engine.dialect;
  }

  private clock(): number {
    return this.now().getTime();
  }

  /** Runs every model downstream of the changed tables, in dependency order. */
  async runFrom(initial: Map<string, Change>, opts: RunOptions): Promise<RunSummary> {
    const started = this.clock();
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
      if (!change || isEmptyChange(change)) continue;
      const { result, out } = await this.runChanged(m, change, opts, exists);
      if (out && !isEmptyChange(out)) changes.set(m.key, out);
      results.push(result);
    }
    return { trigger: opts.trigger, models: results, durationMs: this.clock() - started };
  }

  /** One model whose inputs changed: waits for missing inputs, (re)creates a view, or runs its ranges. */
  private async runChanged(
    m: Model,
    change: Change,
    opts: RunOptions,
    exists: Map<string, boolean>,
  ): Promise<{ result: ModelRunResult; out?: Change }> {
    const t0 = this.clock();
    const result = (r: Partial<ModelRunResult>): ModelRunResult => ({
      model: m.key,
      kind: m.kind,
      ranges: [],
      rows: 0,
      durationMs: this.clock() - t0,
      changed: 'none',
      ...r,
    });
    const missing = await this.missingInputs(m, exists);
    if (missing.length) {
      // e.g. carts loaded before any users export: the model runs (in full) once its inputs exist.
      this.log.debug('model waits for its inputs', { model: m.key, missing });
      return { result: result({ durationMs: 0, waitingFor: missing }) };
    }
    if (m.kind === 'view') {
      await this.ensureView(m);
      return { result: result({ changed: 'all' }), out: change };
    }
    const ranges = m.kind === 'full' ? [UNBOUNDED] : rangesFor(change, m.grain);
    let out: Change | undefined;
    let rows = 0;
    for (const r of ranges) {
      const res = await this.runModel(m, r, opts);
      out = mergeChanges(out, res.change);
      rows += res.rows;
    }
    const changed = !out ? 'none' : out.all ? 'all' : out.dates.size;
    return { result: result({ ranges, rows, changed }), ...(out ? { out } : {}) };
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

  render(
    m: Model,
    range: TimeRange,
    batch: Record<string, string> | undefined,
    batchFrom?: Record<string, string>,
  ): string {
    return this.d.render(m.sql, {
      self: this.d.table(m.target),
      range,
      ...(batch ? { batch } : {}),
      ...(batchFrom ? { batchFrom } : {}),
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

  /**
   * One run of a model over one range, in phases: render → stage (+ column and range checks) → audit
   * the stage → prepare the target → apply by kind → audits after apply → watermark → record.
   */
  async runModel(m: Model, range: TimeRange, opts: RunOptions): Promise<{ change?: Change; rows: number }> {
    const started = this.clock();
    const apply = m.kind === 'view' ? undefined : this.apply[m.kind];
    if (!apply) throw permanent('MODEL_FAILED', `Model ${m.key} (${m.file}): a view has no runs`);
    const run = this.newRun(m, range, opts);
    try {
      await this.placeStage(run);
      await this.stageOutput(run);
      await this.auditStage(run);
      await this.prepareTarget(run);
      const change = await apply(run);
      await this.auditApplied(run);
      await this.advanceWatermark(run);
      await this.recordRun(run, started);
      return { ...(change ? { change } : {}), rows: run.rows };
    } catch (err) {
      await this.recordRun(run, started, err).catch(() => undefined);
      throw err;
    } finally {
      if (!run.keepStage) await this.engine.exec(this.d.dropTable(run.stage)).catch(() => undefined);
    }
  }

  private newRun(m: Model, range: TimeRange, opts: RunOptions): Run {
    if (!isDate(range.startDate) || !isDate(range.endDate))
      throw permanent(
        'MODEL_FAILED',
        `Model ${m.key} (${m.file}): the run range [${range.startDate}, ${range.endDate}) is not a pair of YYYY-MM-DD dates`,
        { details: { model: m.key, file: m.file } },
      );
    const stage: TableRef = {
      layer: 'ops',
      name: `_stage_${m.target.layer}_${m.target.name}_${randomBytes(4).toString('hex')}`,
      scratch: true,
    };
    return {
      m,
      range,
      opts,
      rendered: this.render(m, range, opts.batch, opts.batchFrom),
      stage,
      S: this.d.table(stage),
      cols: [],
      rows: 0,
      fresh: false,
      keepStage: false,
    };
  }

  /**
   * Where the stage goes: in the scratch space, or — when the whole output becomes the target (a first
   * run, a `full` model) and the engine can rename — beside the target, so applying it is a rename
   * instead of a second write of every row.
   */
  private async placeStage(run: Run): Promise<void> {
    run.targetCols = await this.engine.columns(run.m.target);
    run.fresh = !run.targetCols;
    if (!run.fresh && run.m.kind !== 'full') return;
    const beside: TableRef = { layer: run.m.target.layer, name: run.stage.name };
    const moves = this.d.placeStage(beside, run.m.target);
    if (!moves) return;
    run.stage = beside;
    run.S = this.d.table(beside);
    run.moves = moves;
  }

  /** Renames the stage into place (dropping a previous `full` table in the same transaction). */
  private async renameIntoPlace(run: Run, moves: string[]): Promise<void> {
    await this.sql(run.m, this.d.transaction(run.fresh ? moves : [this.d.dropTable(run.m.target), ...moves]));
  }

  /** The distinct dates of a column of the stage (the partitions its rows go to). */
  private stageDates({ m, S }: Run, column: string): Promise<string[]> {
    return this.distinctDates(m, `SELECT DISTINCT ${this.d.ident(column)} AS d FROM ${S}`);
  }

  /** Stores the output in the stage; checks its columns, counts it, and (by range) bounds it. */
  private async stageOutput(run: Run): Promise<void> {
    const { m, S } = run;
    const q = (c: string): string => this.d.ident(c);
    await this.sql(m, this.d.createStage(run.stage, run.rendered));
    run.cols = (await this.engine.columns(run.stage)) ?? [];
    this.checkColumns(m, run.cols);
    const tc = m.timeColumn;
    run.stats = (
      await this.rows<StageStats>(
        m,
        `SELECT COUNT(*) AS n${tc ? `, MIN(${q(tc)}) AS lo, MAX(${q(tc)}) AS hi` : ''}${m.watermark ? `, MAX(${q(m.watermark)}) AS wm` : ''} FROM ${S}`,
      )
    )[0];
    run.rows = Number(run.stats?.n ?? 0);
    if (m.kind === 'incremental_by_time_range' && tc && run.rows > 0) await this.checkInRange(run, tc);
  }

  private async checkInRange({ m, S, range, rendered }: Run, tc: string): Promise<void> {
    const out = await this.rows<{ n: unknown }>(
      m,
      `SELECT COUNT(*) AS n FROM ${S} WHERE ${this.d.ident(tc)} IS NULL OR NOT (${this.d.dateRangePredicate(tc, range)})`,
    );
    if (Number(out[0]?.n ?? 0) > 0)
      throw permanent(
        'MODEL_FAILED',
        `Model ${m.key} returned ${String(out[0]?.n)} rows with ${tc} outside its range [${range.startDate}, ${range.endDate}) — filter its inputs with @start_date/@end_date\nQuery:\n${rendered}`,
        { details: { model: m.key, query: rendered } },
      );
  }

  /** Audits the staged output; a failure applies nothing and keeps the stage for inspection. */
  private async auditStage(run: Run): Promise<void> {
    const { m, S } = run;
    const audits = await this.audits.stage(m, S, run.opts.trigger);
    const failed = audits.filter((a) => a.status === 'fail');
    await this.ops.recordAudits(audits);
    const f = failed[0];
    if (!f) return;
    const kept = await this.keepForInspection(run);
    throw permanent(
      'AUDIT_FAILED',
      `Audit ${f.audit} failed for model ${m.key}: ${f.failing_rows} offending row(s)${failed.length > 1 ? ` (+${failed.length - 1} more failed audits)` : ''}. ` +
        `Nothing was applied; the output is kept in ${kept} for inspection.\nAudit query:\n${f.query}\nModel query:\n${run.rendered}`,
      {
        details: {
          model: m.key,
          audit: f.audit,
          query: f.query,
          failed: failed.map((a) => a.audit),
          stage: kept,
        },
      },
    );
  }

  /**
   * A failed stage outlives the run. Where stages expire by themselves (BigQuery: a day) it stays
   * where it is; otherwise (DuckDB: in memory, or beside its target where the next start sweeps it) it
   * is copied into `ops` under a name carrying when it expires (KEEP_STAGE_MS), so it can be inspected
   * after the process ends and is swept later. Returns the engine name it is kept under.
   */
  private async keepForInspection(run: Run): Promise<string> {
    if (this.d.leftoverStages() === undefined) {
      run.keepStage = true;
      return run.S;
    }
    const kept: TableRef = { layer: 'ops', name: keptStageName(run.stage.name, this.clock()) };
    const name = this.d.table(kept);
    try {
      await this.sql(run.m, this.d.createTableAs(kept, `SELECT * FROM ${run.S}`, {}));
      return name;
    } catch {
      run.keepStage = true; // kept where it is, for as long as the process lives
      return run.S;
    }
  }

  /** Creates an empty target on a first run, or adds the stage's new columns to it (not for `full`). */
  private async prepareTarget(run: Run): Promise<void> {
    const { m, targetCols } = run;
    if (m.kind === 'full' || run.moves) return;
    if (!targetCols)
      await this.sql(
        m,
        this.d.createTableAs(m.target, `SELECT * FROM ${run.S}`, { empty: true, ...this.layout(m) }),
      );
    else await this.evolve(m, targetCols, run.cols);
  }

  /** How each kind applies its stage (a view has no stage: see ensureView). */
  private readonly apply: Record<Exclude<ModelKind, 'view'>, ApplyStep> = {
    full: (run) => this.applyFull(run),
    incremental_by_time_range: (run) => this.applyRange(run),
    merge: (run) => this.applyMerge(run),
  };

  /** Replaces the whole table (small dimensions). */
  private async applyFull(run: Run): Promise<Change> {
    const { m, S, moves } = run;
    if (moves) {
      await this.renameIntoPlace(run, moves);
      return CHANGED_ALL;
    }
    await this.sql(
      m,
      this.d.createTableAs(m.target, `SELECT * FROM ${S}`, { replace: true, ...this.layout(m) }),
    );
    return CHANGED_ALL;
  }

  /** Deletes the range's partitions and inserts the stage, in one transaction. */
  private async applyRange(run: Run): Promise<Change> {
    const { m, S, range, rows, cols, moves } = run;
    const d = this.d;
    const time = m.timeColumn as string;
    const after = async (): Promise<string[]> => (rows ? this.stageDates(run, time) : []);
    if (moves) {
      const change = isUnbounded(range) ? CHANGED_ALL : changedDates(await after());
      await this.renameIntoPlace(run, moves);
      return change;
    }
    let change: Change = CHANGED_ALL;
    if (!isUnbounded(range)) {
      // What changed: the partitions the range held before, and those it holds after.
      const before = await this.distinctDates(
        m,
        `SELECT DISTINCT ${d.ident(time)} AS d FROM ${d.table(m.target)} WHERE ${d.dateRangePredicate(time, range)}`,
      );
      change = changedDates([...before, ...(await after())]);
    }
    await this.sql(
      m,
      d.transaction([
        d.deleteWhere(m.target, d.dateRangePredicate(time, range)),
        d.insertSelect(
          m.target,
          cols.map((c) => c.name),
          S,
        ),
      ]),
    );
    return change;
  }

  /** MERGE on the unique key; a first run is a plain insert (nothing to merge with, much faster). */
  private async applyMerge(run: Run): Promise<Change | undefined> {
    const { m, S, rows, fresh, cols, moves } = run;
    const d = this.d;
    const tc = m.timeColumn;
    const incoming = async (): Promise<Change> =>
      tc ? changedDates(await this.stageDates(run, tc)) : CHANGED_ALL;
    if (moves) {
      // Even empty: the target exists after its first run, as downstream models expect.
      const change = rows ? await incoming() : undefined;
      await this.renameIntoPlace(run, moves);
      return change;
    }
    if (rows === 0) return undefined;
    const colNames = cols.map((c) => c.name);
    if (fresh) {
      const change = await incoming();
      await this.sql(m, d.insertSelect(m.target, colNames, S));
      return change;
    }
    const { change, targetFilter } = tc ? await this.mergeScope(run, tc) : { change: CHANGED_ALL };
    await this.sql(
      m,
      d.merge({
        target: m.target,
        source: run.stage,
        key: m.uniqueKey,
        columns: colNames,
        version: m.version,
        updates: m.mergeUpdates,
        ...(targetFilter ? { targetFilter } : {}),
      }),
    );
    return change;
  }

  /**
   * The partitions a merge touches: those of the incoming rows and of the rows they replace; and,
   * when the partition is part of the key, a filter letting the engine prune the target.
   */
  private async mergeScope(run: Run, tc: string): Promise<{ change: Change; targetFilter?: string }> {
    const { m, S, stats } = run;
    const d = this.d;
    const q = (c: string): string => d.ident(c);
    const dates = new Set(await this.stageDates(run, tc));
    if (m.uniqueKey.includes(tc)) {
      // The partition is part of the key: matched rows live in the same partitions.
      const lo = dateOf(stats?.lo);
      const hi = dateOf(stats?.hi);
      const targetFilter =
        lo && hi ? `t.${q(tc)} BETWEEN ${d.dateLiteral(lo)} AND ${d.dateLiteral(hi)}` : undefined;
      return { change: changedDates(dates), ...(targetFilter ? { targetFilter } : {}) };
    }
    const on = m.uniqueKey.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ');
    for (const x of await this.distinctDates(
      m,
      `SELECT DISTINCT t.${q(tc)} AS d FROM ${d.table(m.target)} AS t JOIN ${S} AS s ON ${on}`,
    ))
      dates.add(x);
    return { change: changedDates(dates) };
  }

  private async distinctDates(m: Model, sql: string): Promise<string[]> {
    return (await this.rows<{ d: unknown }>(m, sql)).map((r) => dateOf(r.d)).filter((x): x is string => !!x);
  }

  /** Audits that need the applied target (row-count balance from a source). */
  private async auditApplied({ m, range, opts, stats }: Run): Promise<void> {
    const post = await this.audits.applied(m, range, opts, stats);
    await this.ops.recordAudits(post);
    const bad = post.find((a) => a.status === 'fail');
    if (bad)
      throw permanent(
        'AUDIT_FAILED',
        `Audit ${bad.audit} failed for model ${m.key}: ${bad.failing_rows} source key(s) missing from ${m.key}.\nAudit query:\n${bad.query}`,
        { details: { model: m.key, audit: bad.audit, query: bad.query } },
      );
  }

  /** The newest watermark value applied (models reading events re-read from it minus the lateness). */
  private async advanceWatermark({ m, stats }: Run): Promise<void> {
    const wm = timestampOf(stats?.wm);
    if (!m.watermark || !wm) return;
    const prev = await this.ops.watermark(m.key);
    if (!prev || wm > prev) await this.ops.setWatermark(m.key, wm);
  }

  private async recordRun({ m, range, opts, rows }: Run, started: number, err?: unknown): Promise<void> {
    const durationMs = this.clock() - started;
    await this.ops.recordRun({
      model: m.key,
      trigger: opts.trigger,
      rangeStart: range.startDate,
      rangeEnd: range.endDate,
      rows,
      status: err === undefined ? 'ok' : 'failed',
      ...(err === undefined ? {} : { error: errorMessage(err) }),
      durationMs,
    });
    if (err === undefined)
      this.log.debug('model applied', {
        model: m.key,
        rows,
        range: `${range.startDate}..${range.endDate}`,
        durationMs,
      });
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
}
