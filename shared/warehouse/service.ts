/**
 * The warehouse service behind `loadWarehouse`, the CLI and the admin endpoint:
 * - loadObject: Bronze Parquet → Bronze table (ledgered, schema-checked) → Silver MERGE → affected
 *   Gold partitions;
 * - refresh: event tables → Silver/Gold incrementally from each model's watermark minus the lateness;
 * - backfill: re-run a dataset's Silver/Gold for a date range (idempotent);
 * - query / status.
 */
import {
  MASKED_LAYERS,
  maskedColumns,
  maskedSchema,
  maskedViewSql,
  type MaskedColumn,
  toMaskedSchemas,
  type Role,
} from '../governance/masking';
import fs from 'node:fs';
import path from 'node:path';
import { listDatasets, loadDatasetContract, type DatasetContract } from '../contracts/dataset';
import { errorMessage, isSmelterError, permanent, SmelterError } from '../errors';
import { EventContractRegistry } from '../events/contract';
import type { Logger } from '../log';
import type { ObjectStore } from '../storage/object-store';
import { committedParquet } from './commit';
import { ModelGraph } from './dag';
import type { WarehouseEngine } from './engine';
import {
  backfillPredicate,
  batchPredicate,
  classifyBronzeObject,
  loadJobId,
  type BronzeObject,
} from './loader';
import { loadModels, type Model, type ModelSet } from './model';
import { OpsStore, type LedgerRow } from './ops';
import { addDays, changedDates, CHANGED_ALL, isDate, toDate, type Change } from './ranges';
import { ModelRunner, type RunSummary } from './runner';
import { bronzeColumnsOf, compareSchemas } from './schema';
import { stageExpired, type Layer, type TableRef } from './tables';

export interface WarehouseOptions {
  engine: WarehouseEngine;
  contractsDir: string;
  modelsDir: string;
  /** How late an event may arrive and still be picked up by the incremental refresh. */
  latenessMs: number;
  log: Logger;
  now?: () => Date;
}

export type LoadOutcome =
  | { status: 'skipped'; reason: string }
  | { status: 'duplicate'; reason: string }
  | {
      status: 'loaded';
      dataset: string;
      rows: number;
      jobId: string;
      reusedJob: boolean;
      summary: RunSummary;
    };

export interface RefreshOutcome {
  retried: { name: string; status: string; error?: string }[];
  summary?: RunSummary;
  skipped: string[];
}

export class Warehouse {
  readonly ops: OpsStore;
  private cached?: { sig: string; set: ModelSet; graph: ModelGraph; runner: ModelRunner };

  private constructor(readonly opts: WarehouseOptions) {
    this.ops = new OpsStore(opts.engine);
  }

  static async open(opts: WarehouseOptions): Promise<Warehouse> {
    const w = new Warehouse(opts);
    await opts.engine.exclusive(async () => {
      await w.ops.ensure();
      await w.dropLeftoverStages();
    });
    return w;
  }

  get engine(): WarehouseEngine {
    return this.opts.engine;
  }

  /**
   * Stages in `ops` that expired (where the engine does not expire them by itself): failed outputs kept
   * past their inspection window, and stages of runs that crashed.
   */
  private async dropLeftoverStages(): Promise<void> {
    const sql = this.engine.dialect.leftoverStages();
    if (!sql) return;
    const now = Date.now();
    const stale = (await this.engine.query<{ s?: Layer; t: string }>(sql)).filter((s) =>
      stageExpired(s.t, now),
    );
    for (const s of stale)
      await this.engine.exec(this.engine.dialect.dropTable({ layer: s.s ?? 'ops', name: s.t }));
  }

  /** Models, graph and runner; re-read when a model file changes (no restart needed). */
  models(): { set: ModelSet; graph: ModelGraph; runner: ModelRunner } {
    const sig = modelsSignature(this.opts.modelsDir);
    if (!this.cached || this.cached.sig !== sig) {
      const set = loadModels(this.opts.modelsDir);
      const graph = new ModelGraph(set.models);
      this.cached = {
        sig,
        set,
        graph,
        runner: new ModelRunner({
          engine: this.engine,
          ops: this.ops,
          log: this.opts.log,
          graph,
          customAudits: set.audits,
          maskedColumnsOf: (input) => {
            const [layer, dataset] = input.split('.');
            if (layer !== 'silver' || !dataset || !listDatasets(this.opts.contractsDir).includes(dataset))
              return [];
            return maskedColumns(this.contract(dataset))
              .filter((c) => c.type === 'string')
              .map((c) => c.name);
          },
          ...(this.opts.now ? { now: this.opts.now } : {}),
        }),
      };
    }
    return this.cached;
  }

  private contract(dataset: string): DatasetContract {
    return loadDatasetContract(this.opts.contractsDir, dataset);
  }

  /** Columns Silver cannot do without: the unique keys and not_null audits of models reading the Bronze table. */
  requiredColumns(dataset: string): Set<string> {
    const out = new Set<string>();
    for (const m of this.models().graph.readersOf(`bronze.${dataset}`)) {
      for (const k of m.uniqueKey) out.add(k);
      for (const a of m.audits) if (a.type === 'not_null') for (const c of a.columns) out.add(c);
    }
    return out;
  }

  // ------------------------------------------------------------------ loads

  /**
   * The storage trigger: a finalized Bronze object (read from `store`). A manifest commits its Parquet,
   * which is loaded; a Parquet alone is not (see commit.ts), nor is anything else.
   */
  async loadFinalized(store: ObjectStore, o: BronzeObject): Promise<LoadOutcome> {
    const c = await committedParquet(store, o);
    if ('skip' in c) return { status: 'skipped', reason: c.reason };
    return this.loadObject(c.parquet);
  }

  /** Loads one committed Bronze Parquet object (its manifest balanced) through Silver and Gold. */
  async loadObject(o: BronzeObject, opts: { retry?: boolean } = {}): Promise<LoadOutcome> {
    const cls = classifyBronzeObject(o.name);
    if ('skip' in cls) return { status: 'skipped', reason: cls.reason };
    return this.engine.exclusive(() => this.loadLocked(o, cls.dataset, opts.retry ?? false));
  }

  private async loadLocked(o: BronzeObject, dataset: string, retry: boolean): Promise<LoadOutcome> {
    const log = this.opts.log.child({ dataset, object: o.name, generation: o.generation });
    const contract = this.contract(dataset);
    const d = this.engine.dialect;
    const table: TableRef = { layer: 'bronze', name: dataset };
    const jobId = loadJobId(o);
    const ledger = await this.ops.ledger(o.bucket, o.name, o.generation);
    if (ledger?.status === 'done') return { status: 'duplicate', reason: 'already loaded (ledger)' };
    if (ledger?.status === 'skipped')
      return { status: 'duplicate', reason: 'skipped by the operator (ledger)' };
    if (!retry && (ledger?.status === 'blocked' || ledger?.status === 'pending'))
      return { status: 'duplicate', reason: `kept ${ledger.status}: ${ledger.error ?? ''}` };

    let rows = ledger?.rows ?? 0;
    let reusedJob = false;
    if (!ledger || ledger.status === 'pending' || ledger.status === 'blocked') {
      const blocked = await this.ops.blocked(dataset);
      if (blocked && !retry) {
        const msg = `Dataset ${dataset} is stopped since ${blocked.since} by ${blocked.object}: ${blocked.reason}. This file is kept pending; run \`smelter refresh --dataset ${dataset}\` once resolved.`;
        await this.ops.ledgerUpsert({ ...o, dataset, rows: 0, job_id: jobId, status: 'pending', error: msg });
        throw new SmelterError('SCHEMA_INCOMPATIBLE', msg, {
          kind: 'permanent',
          details: { dataset, object: o.name },
        });
      }
      await this.checkSchema(o, dataset, contract, table, jobId);
      try {
        const res = await this.engine.loadParquet({
          bucket: o.bucket,
          name: o.name,
          generation: o.generation,
          table,
          jobId,
          timePartitioningField: '_ingested_at',
          clusterFields: ['_source_generation'],
          ...(ledger
            ? {}
            : {
                ledgerSql: this.ops.ledgerInsertSql({
                  ...o,
                  dataset,
                  rows: '{rows}',
                  job_id: jobId,
                  status: 'loaded',
                }),
              }),
        });
        rows = res.rows;
        reusedJob = res.reused;
      } catch (err) {
        if (isSmelterError(err, 'SCHEMA_INCOMPATIBLE')) await this.stop(o, dataset, jobId, err.message);
        throw err;
      }
      if (ledger) await this.ops.ledgerSetStatus(o, 'loaded', null, rows);
      if (retry) await this.ops.unblock(dataset);
      log.info('loaded into bronze', { rows, jobId, reusedJob });
    }

    try {
      const { runner } = this.models();
      const from = await this.engine.batchRelation?.(table, o);
      const summary = await runner.runFrom(new Map([[`bronze.${dataset}`, CHANGED_ALL]]), {
        trigger: `load gs://${o.bucket}/${o.name}`,
        batch: { [`bronze.${dataset}`]: batchPredicate(d, o.name) },
        ...(from ? { batchFrom: { [`bronze.${dataset}`]: from } } : {}),
      });
      await this.ops.ledgerSetStatus(o, 'done', null, rows);
      return { status: 'loaded', dataset, rows, jobId, reusedJob, summary };
    } catch (err) {
      if (isSmelterError(err) && err.kind === 'permanent')
        await this.ops.ledgerSetStatus(o, 'failed', errorMessage(err), rows).catch(() => undefined);
      throw err;
    }
  }

  /** New nullable columns are added to Bronze; type changes and missing required columns stop the dataset. */
  private async checkSchema(
    o: BronzeObject,
    dataset: string,
    contract: DatasetContract,
    table: TableRef,
    jobId: string,
  ): Promise<void> {
    const tableCols = await this.engine.columns(table);
    if (!tableCols) return;
    const exact = !!this.engine.fileColumns;
    const fileCols = this.engine.fileColumns
      ? await this.engine.fileColumns(o.bucket, o.name)
      : bronzeColumnsOf(contract, (t) =>
          typeof t === 'string' ? this.engine.dialect.scalarType(t) : 'STRUCT',
        );
    const diff = compareSchemas(tableCols, fileCols, this.requiredColumns(dataset));
    if (diff.problems.length) {
      const msg = `Incompatible schema change in ${dataset} (gs://${o.bucket}/${o.name}): ${diff.problems.join('; ')}. The dataset is stopped; nothing was loaded and the object stays in Bronze.`;
      await this.stop(o, dataset, jobId, msg);
      throw new SmelterError('SCHEMA_INCOMPATIBLE', msg, {
        kind: 'permanent',
        details: { dataset, object: o.name, problems: diff.problems },
      });
    }
    // The load adds them (BigQuery: ALLOW_FIELD_ADDITION; DuckDB: its Bronze view reads them from the file).
    if (exact)
      for (const c of diff.added)
        this.opts.log.notice('schema evolution: column added to bronze', {
          dataset,
          column: c.name,
          type: c.type,
        });
  }

  private async stop(o: BronzeObject, dataset: string, jobId: string, msg: string): Promise<void> {
    await this.ops.ledgerUpsert({ ...o, dataset, rows: 0, job_id: jobId, status: 'blocked', error: msg });
    await this.ops.block(dataset, msg, `gs://${o.bucket}/${o.name}`);
  }

  // ------------------------------------------------------------------ refresh / backfill

  /** Models in scope of a dataset name: a contract (file dataset), an event table or a models folder. */
  private scope(dataset: string | undefined): { models: Model[]; sources: string[] } {
    const { graph } = this.models();
    if (!dataset) return { models: graph.order, sources: graph.sources() };
    const sources = new Set<string>();
    if (graph.sources().includes(`bronze.${dataset}`)) sources.add(`bronze.${dataset}`);
    if (graph.sources().includes(`events.${dataset}`)) sources.add(`events.${dataset}`);
    for (const m of graph.order) if (m.domain === dataset) for (const s of graph.sourcesOf(m)) sources.add(s);
    if (!sources.size)
      throw permanent(
        'UNKNOWN_DATASET',
        `Unknown dataset "${dataset}": no contract, event table or models folder of that name (datasets: ${listDatasets(this.opts.contractsDir).join(', ')}; model folders: ${[...new Set(graph.order.map((m) => m.domain))].join(', ')})`,
      );
    return { models: graph.downstreamOf(sources), sources: [...sources] };
  }

  /**
   * Scheduled refresh: each model reading event tables re-reads them from its watermark minus the
   * lateness (late events within it are included), then the affected Gold partitions are rebuilt.
   * With a dataset, files kept pending by a stopped dataset are retried first.
   */
  async refresh(opts: { dataset?: string; trigger?: string; skip?: string[] } = {}): Promise<RefreshOutcome> {
    const { models, sources } = this.scope(opts.dataset);
    const retried: RefreshOutcome['retried'] = [];
    if (opts.dataset) {
      for (const src of sources.filter((s) => s.startsWith('bronze.'))) {
        const ds = src.slice('bronze.'.length);
        const rows = await this.ops.ledgerByStatus(ds, ['blocked', 'pending', 'loaded', 'failed']);
        for (const r of rows) {
          if (opts.skip?.includes(r.name) || opts.skip?.includes(`gs://${r.bucket}/${r.name}`)) {
            // The operator gives up on this object (e.g. superseded by a corrected file): it stays in
            // its bucket and in the ledger as `skipped`, and no longer stops the dataset.
            await this.ops.ledgerSetStatus(
              r,
              'skipped',
              `skipped by the operator; was ${r.status}: ${r.error ?? ''}`,
            );
            retried.push({ name: r.name, status: 'skipped' });
            continue;
          }
          try {
            await this.loadObject(r, { retry: true });
            retried.push({ name: r.name, status: 'loaded' });
          } catch (err) {
            retried.push({ name: r.name, status: 'failed', error: errorMessage(err) });
            if (isSmelterError(err, 'SCHEMA_INCOMPATIBLE')) break;
          }
        }
        if ((await this.ops.blocked(ds)) && !(await this.ops.ledgerByStatus(ds, ['blocked'])).length)
          await this.ops.unblock(ds);
      }
    }
    const eventSources = sources.filter((s) => s.startsWith('events.'));
    const skipped: string[] = [];
    const present = new Set<string>();
    for (const s of eventSources) {
      const [layer, name] = s.split('.') as ['events', string];
      if (await this.engine.columns({ layer, name })) present.add(s);
      else skipped.push(`${s} (no table yet)`);
    }
    if (!present.size) return { retried, skipped };
    const { graph, runner } = this.models();
    const eventModels = models.filter((m) => m.inputs.some((i) => present.has(i)));
    for (const m of eventModels)
      if (!m.watermark)
        throw permanent(
          'MODEL_FAILED',
          `${m.file}: a model reading event tables needs "-- watermark: <timestamp column>"`,
        );
    const since = new Map<string, Change>();
    const now = (this.opts.now ?? (() => new Date()))();
    for (const m of eventModels) {
      const wm = await this.ops.watermark(m.key);
      if (!wm) since.set(m.key, CHANGED_ALL);
      else {
        const from = new Date(Math.min(Date.parse(wm), now.getTime()) - this.opts.latenessMs);
        since.set(m.key, changedDates([], toDate(from.getTime())));
      }
    }
    const only = new Set(
      [...eventModels, ...graph.downstreamOf(eventModels.map((m) => m.key))].map((m) => m.key),
    );
    const summary = await this.engine.exclusive(() =>
      runner.runFrom(new Map(), {
        trigger: opts.trigger ?? 'refresh',
        only,
        sourceChange: (m, src) => (present.has(src) ? since.get(m.key) : undefined),
      }),
    );
    return { retried, summary, skipped };
  }

  /** Re-runs a dataset's Silver and Gold for [from, to] (inclusive dates). Idempotent. */
  async backfill(opts: { dataset: string; from: string; to: string }): Promise<RunSummary> {
    const { from, to } = opts;
    if (!isDate(from) || !isDate(to) || from > to)
      throw permanent(
        'BAD_EVENT',
        `backfill needs --from and --to as YYYY-MM-DD with from ≤ to (got ${from}, ${to})`,
      );
    const { models, sources } = this.scope(opts.dataset);
    const dates: string[] = [];
    for (let d = from; d <= to && dates.length < 40_000; d = addDays(d, 1)) dates.push(d);
    const initial = new Map<string, Change>();
    const batch: Record<string, string> = {};
    for (const s of sources) {
      initial.set(s, changedDates(dates));
      if (s.startsWith('bronze.'))
        batch[s] = backfillPredicate(this.engine.dialect, this.contract(s.slice(7)), from, addDays(to, 1));
    }
    const { runner } = this.models();
    return this.engine.exclusive(() =>
      runner.runFrom(initial, {
        trigger: `backfill ${opts.dataset} ${from}..${to}`,
        batch,
        only: new Set(models.map((m) => m.key)),
      }),
    );
  }

  // ------------------------------------------------------------------ query

  /** Runs SQL; `@ref(layer.table)` works on both engines. */
  /**
   * Ad-hoc SQL (`smelter query`). As `analyst`, the query reads the masked views (shared/governance/masking.ts);
   * on BigQuery the data policies do that for whoever runs the query, so a role cannot be chosen there.
   */
  async query(sql: string, opts: { role?: Role } = {}): Promise<{ columns: string[]; rows: unknown[][] }> {
    let text = /@ref\(/.test(sql) ? this.engine.dialect.render(sql, { where: 'query' }) : sql;
    if (opts.role === 'analyst') {
      if (this.engine.dialect.name !== 'duckdb')
        throw permanent(
          'BAD_REQUEST',
          'On BigQuery masking follows the caller: query as a member of `analysts` (masked) or `pii_readers` (clear)',
        );
      const views = await this.refreshMaskedViews();
      text = toMaskedSchemas(text, (layer, table) => views.has(`${layer}.${table}`));
    }
    return this.engine.queryTable(text);
  }

  /**
   * (Re)creates `masked_<layer>.<table>` for every table of the masked layers: `mask` columns through
   * their rule (dataset contracts for Bronze/Silver, event contracts for the event tables). Resolves
   * with the `layer.table` names it covers.
   */
  async refreshMaskedViews(): Promise<Set<string>> {
    const d = this.engine.dialect;
    const datasets = new Set(listDatasets(this.opts.contractsDir));
    const events = new Map(
      new EventContractRegistry(this.opts.contractsDir).all().map((c) => [c.table, c] as const),
    );
    const maskedOf = (layer: string, table: string): MaskedColumn[] => {
      if (layer === 'events') {
        const c = events.get(table);
        return c ? maskedColumns(c) : [];
      }
      return layer !== 'gold' && datasets.has(table) ? maskedColumns(this.contract(table)) : [];
    };
    const views = new Set<string>();
    await this.engine.exclusive(async () => {
      for (const layer of MASKED_LAYERS) {
        await this.engine.exec(`CREATE SCHEMA IF NOT EXISTS ${d.ident(maskedSchema(layer))}`);
        for (const t of await this.engine.tableStats([layer])) {
          const source = d.table({ layer, name: t.table });
          const target = `${d.ident(maskedSchema(layer))}.${d.ident(t.table)}`;
          const sql = maskedViewSql('duckdb', source, target, maskedOf(layer, t.table), (x) => d.ident(x));
          await this.engine.exec(sql);
          views.add(`${layer}.${t.table}`);
        }
      }
    });
    return views;
  }

  async ledgerRows(statuses: LedgerRow['status'][]): Promise<LedgerRow[]> {
    return this.ops.ledgerByStatus(undefined, statuses);
  }
}

function modelsSignature(dir: string): string {
  const parts: string[] = [];
  const walk = (p: string, depth: number): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(p, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const f = path.join(p, e.name);
      if (e.isDirectory() && depth < 3) walk(f, depth + 1);
      else if (e.name.endsWith('.sql')) {
        const st = fs.statSync(f);
        parts.push(`${f}:${st.mtimeMs}:${st.size}`);
      }
    }
  };
  walk(dir, 0);
  return parts.sort().join('|');
}
