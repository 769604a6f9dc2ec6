/**
 * The model runner on its own, against a real DuckDB warehouse: hand-written models over a hand-made
 * source table, each kind's apply step, what each reports as changed, audits, watermarks, the run
 * record (timed by an injected clock) and the errors that stop a run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../../shared/adapters/storage/fs';
import { DuckDbEngine } from '../../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, type LocalWarehouse } from '../../../shared/adapters/warehouse/duckdb-local';
import { isSmelterError, type SmelterError } from '../../../shared/errors';
import { createLogger } from '../../../shared/log';
import { ModelGraph } from '../../../shared/warehouse/dag';
import { UNBOUNDED } from '../../../shared/warehouse/dialect';
import { parseModel, type CustomAudit, type Model } from '../../../shared/warehouse/model';
import { OpsStore } from '../../../shared/warehouse/ops';
import { CHANGED_ALL, type Change } from '../../../shared/warehouse/ranges';
import { ModelRunner } from '../../../shared/warehouse/runner';
import { Warehouse } from '../../../shared/warehouse/service';

const model = (file: string, lines: string[]): Model =>
  parseModel(lines.join('\n'), `/models/t/${file}.sql`, 't');

/** silver.orders: the latest version of each order, by order day. */
const ORDERS = model('silver/orders', [
  '-- model: silver.orders',
  '-- kind: merge',
  '-- unique_key: id',
  '-- time_column: d',
  '-- version: ver',
  '-- watermark: seen_at',
  'SELECT id, d, status, ver, seen_at FROM @ref(bronze.src) WHERE @batch(bronze.src)',
]);

/** gold.daily: orders per day, recomputed by partition. */
const DAILY = model('gold/daily', [
  '-- model: gold.daily',
  '-- kind: incremental_by_time_range',
  '-- time_column: d',
  '-- unique_key: d',
  'SELECT d, COUNT(*) AS n FROM @ref(silver.orders) WHERE d >= @start_date AND d < @end_date GROUP BY d',
]);

const STATUSES = model('gold/statuses', [
  '-- model: gold.statuses',
  '-- kind: full',
  'SELECT status, COUNT(*) AS n FROM @ref(silver.orders) GROUP BY status',
]);

const LATEST = model('gold/latest', [
  '-- model: gold.latest',
  '-- kind: view',
  'SELECT * FROM @ref(gold.daily) WHERE n > 0',
]);

const VIEW_READER = model('gold/view_reader', [
  '-- model: gold.view_reader',
  '-- kind: full',
  'SELECT COUNT(*) AS n FROM @ref(gold.latest)',
]);

const WAITING = model('gold/waiting', [
  '-- model: gold.waiting',
  '-- kind: full',
  'SELECT o.id FROM @ref(silver.orders) AS o JOIN @ref(bronze.missing) AS x USING (id)',
]);

const dates = (c: Change | undefined): string[] | 'all' | undefined =>
  !c ? undefined : c.all ? 'all' : [...c.dates].sort();

describe('warehouse runner (DuckDB)', () => {
  let home: string;
  let local: LocalWarehouse;
  let engine: DuckDbEngine;
  let ops: OpsStore;
  let ticks: number;
  const runner = (models: Model[], audits: CustomAudit[] = []): ModelRunner =>
    new ModelRunner({
      engine,
      ops,
      log: createLogger({ format: 'silent' }),
      graph: new ModelGraph(models),
      customAudits: audits,
      // Every reading of the clock is 7 ms after the previous one: durations are exact.
      now: () => new Date(Date.UTC(2024, 0, 1) + 7 * ++ticks),
    });
  const rows = (sql: string): Promise<Record<string, unknown>[]> => local.query(sql);
  const src = async (values: string): Promise<void> => engine.exec(`INSERT INTO bronze.src VALUES ${values}`);
  const runs = async (): Promise<Record<string, unknown>[]> =>
    rows(
      "SELECT model, trigger, strftime(range_start, '%Y-%m-%d') AS range_start, rows, status, error, duration_ms FROM ops.model_runs ORDER BY rowid",
    );
  const stages = async (): Promise<number> =>
    Number(
      (
        await rows(
          // Both catalogs: the database file's ops and the in-memory scratch database.
          "SELECT COUNT(*) AS n FROM information_schema.tables WHERE starts_with(table_name, '_stage_')",
        )
      )[0]?.n,
    );

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-runner-'));
    local = await getLocalWarehouse(home, { threads: 1, memoryLimit: '256MB' });
    engine = new DuckDbEngine(local, new FsObjectStore(home));
    ops = new OpsStore(engine);
    await ops.ensure();
    await engine.exec(
      'CREATE TABLE bronze.src (id BIGINT, d DATE, status VARCHAR, ver BIGINT, seen_at TIMESTAMPTZ, batch BIGINT)',
    );
    ticks = 0;
  });
  afterEach(async () => {
    await local.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('merge: a first run inserts; later runs merge by key, the newer version winning', async () => {
    const r = runner([ORDERS]);
    await src(
      "(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1), (2, '2024-01-02', 'new', 1, '2024-01-02 10:00:00+00', 1)",
    );
    const first = await r.runModel(ORDERS, UNBOUNDED, {
      trigger: 'load 1',
      batch: { 'bronze.src': 'batch = 1' },
    });
    assert.deepEqual([first.rows, dates(first.change)], [2, ['2024-01-01', '2024-01-02']]);

    // Order 1 moves to another day (newer); an older version of order 2 arrives late and loses.
    await src(
      "(1, '2024-01-05', 'paid', 2, '2024-01-05 09:00:00+00', 2), (2, '2024-01-02', 'stale', 0, '2023-12-31 00:00:00+00', 2)",
    );
    const second = await r.runModel(ORDERS, UNBOUNDED, {
      trigger: 'load 2',
      batch: { 'bronze.src': 'batch = 2' },
    });
    // Changed: the incoming rows' days and the day order 1 was replaced on.
    assert.deepEqual([second.rows, dates(second.change)], [2, ['2024-01-01', '2024-01-02', '2024-01-05']]);
    assert.deepEqual(
      await rows("SELECT id, strftime(d, '%Y-%m-%d') AS d, status FROM silver.orders ORDER BY id"),
      [
        { id: '1', d: '2024-01-05', status: 'paid' },
        { id: '2', d: '2024-01-02', status: 'new' },
      ],
    );
    // The watermark is the newest `seen_at` applied, and never moves back.
    assert.equal(await ops.watermark('silver.orders'), '2024-01-05T09:00:00.000Z');
    await src("(3, '2024-01-03', 'new', 1, '2023-06-01 00:00:00+00', 3)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load 3', batch: { 'bronze.src': 'batch = 3' } });
    assert.equal(await ops.watermark('silver.orders'), '2024-01-05T09:00:00.000Z');
    assert.deepEqual(
      (await runs()).map((x) => [x.trigger, x.rows, x.status, x.duration_ms]),
      [
        ['load 1', '2', 'ok', '7'],
        ['load 2', '2', 'ok', '7'],
        ['load 3', '1', 'ok', '7'],
      ],
    );
    assert.equal(await stages(), 0);
  });

  it('merge: an empty batch changes nothing', async () => {
    const r = runner([ORDERS]);
    await src("(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'batch = 1' } });
    const none = await r.runModel(ORDERS, UNBOUNDED, {
      trigger: 'load',
      batch: { 'bronze.src': 'batch = 9' },
    });
    assert.deepEqual([none.rows, none.change], [0, undefined]);
  });

  it('incremental_by_time_range: replaces the range, reporting the days it held before and after', async () => {
    const r = runner([ORDERS, DAILY]);
    await src(
      "(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1), (2, '2024-01-02', 'new', 1, '2024-01-02 10:00:00+00', 1), (3, '2024-01-09', 'new', 1, '2024-01-09 10:00:00+00', 1)",
    );
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    const all = await r.runModel(DAILY, UNBOUNDED, { trigger: 'load' });
    assert.deepEqual([all.rows, all.change], [3, CHANGED_ALL]);

    // Order 2 moves from Jan 2 to Jan 3: the week's range reports both days; Jan 9 is outside it.
    await engine.exec("UPDATE silver.orders SET d = DATE '2024-01-03' WHERE id = 2");
    const week = { startDate: '2024-01-01', endDate: '2024-01-08' };
    const res = await r.runModel(DAILY, week, { trigger: 'refresh' });
    assert.deepEqual([res.rows, dates(res.change)], [2, ['2024-01-01', '2024-01-02', '2024-01-03']]);
    assert.deepEqual(await rows("SELECT strftime(d, '%Y-%m-%d') AS d, n FROM gold.daily ORDER BY d"), [
      { d: '2024-01-01', n: '1' },
      { d: '2024-01-03', n: '1' },
      { d: '2024-01-09', n: '1' },
    ]);
  });

  it('incremental_by_time_range: rows outside the range are refused; nothing is applied, the run is recorded', async () => {
    const leaky = model('gold/leaky', [
      '-- model: gold.leaky',
      '-- kind: incremental_by_time_range',
      '-- time_column: d',
      'SELECT d, id FROM @ref(silver.orders)',
    ]);
    const r = runner([ORDERS, leaky]);
    await src(
      "(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1), (2, '2024-02-01', 'new', 1, '2024-02-01 10:00:00+00', 1)",
    );
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    await r.runModel(leaky, UNBOUNDED, { trigger: 'load' });
    const err = await r
      .runModel(leaky, { startDate: '2024-01-01', endDate: '2024-01-02' }, { trigger: 'refresh' })
      .then(
        () => undefined,
        (e: SmelterError) => e,
      );
    assert.ok(isSmelterError(err, 'MODEL_FAILED') && err.kind === 'permanent', String(err));
    assert.match(err.message, /returned 1 rows with d outside its range \[2024-01-01, 2024-01-02\)/);
    assert.equal((await rows('SELECT COUNT(*) AS n FROM gold.leaky'))[0]?.n, '2');
    const last = (await runs()).at(-1);
    assert.deepEqual([last?.model, last?.status, last?.rows], ['gold.leaky', 'failed', '2']);
    assert.match(String(last?.error), /outside its range/);
    assert.equal(await stages(), 0);
  });

  it('full: replaces the table and reports everything as changed', async () => {
    const r = runner([ORDERS, STATUSES]);
    await src("(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    assert.deepEqual((await r.runModel(STATUSES, UNBOUNDED, { trigger: 'load' })).change, CHANGED_ALL);
    await src("(1, '2024-01-01', 'paid', 2, '2024-01-01 11:00:00+00', 2)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'batch = 2' } });
    await r.runModel(STATUSES, UNBOUNDED, { trigger: 'load' });
    assert.deepEqual(await rows('SELECT status, n FROM gold.statuses'), [{ status: 'paid', n: '1' }]);
  });

  it('runFrom: dependency order, partition ranges downstream, views pass changes on, missing inputs wait', async () => {
    const r = runner([LATEST, WAITING, VIEW_READER, STATUSES, DAILY, ORDERS]);
    await src(
      "(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1), (2, '2024-01-10', 'new', 1, '2024-01-10 10:00:00+00', 1)",
    );
    const s = await r.runFrom(new Map([['bronze.src', CHANGED_ALL]]), {
      trigger: 'load',
      batch: { 'bronze.src': 'TRUE' },
    });
    assert.deepEqual(
      s.models.map((m) => [m.model, m.ranges.length, m.rows, m.changed, m.waitingFor]),
      [
        ['silver.orders', 1, 2, 2, undefined],
        ['gold.daily', 2, 2, 2, undefined], // two one-day ranges, not the whole table
        ['gold.latest', 0, 0, 'all', undefined],
        ['gold.statuses', 1, 1, 'all', undefined],
        ['gold.view_reader', 1, 1, 'all', undefined], // downstream of the view: its input changed
        ['gold.waiting', 0, 0, 'none', ['bronze.missing']],
      ],
    );
    assert.deepEqual(s.models[1]?.ranges, [
      { startDate: '2024-01-01', endDate: '2024-01-02' },
      { startDate: '2024-01-10', endDate: '2024-01-11' },
    ]);
    assert.equal((await rows('SELECT COUNT(*) AS n FROM gold.latest'))[0]?.n, '2');
    // `only` restricts the run; a table without changed inputs is not run at all.
    const only = await r.runFrom(new Map([['bronze.src', CHANGED_ALL]]), {
      trigger: 'backfill',
      batch: { 'bronze.src': 'FALSE' },
      only: new Set(['silver.orders']),
    });
    assert.deepEqual(
      only.models.map((m) => [m.model, m.changed]),
      [['silver.orders', 'none']],
    );
  });

  it('a failing audit applies nothing and keeps the stage; a missing header column fails the model', async () => {
    const audited = model('gold/audited', [
      '-- model: gold.audited',
      '-- kind: full',
      "-- audit: accepted_values(status, 'new')",
      'SELECT id, status FROM @ref(silver.orders)',
    ]);
    const r = runner([ORDERS, audited]);
    await src(
      "(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1), (2, '2024-01-01', 'lost', 1, '2024-01-01 10:00:00+00', 1)",
    );
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    const err = await r.runModel(audited, UNBOUNDED, { trigger: 'load' }).then(
      () => undefined,
      (e: SmelterError) => e,
    );
    assert.ok(isSmelterError(err, 'AUDIT_FAILED'), String(err));
    assert.match(
      err.message,
      /^Audit accepted_values\(status\) failed for model gold\.audited: 1 offending row/,
    );
    assert.equal((await rows(`SELECT COUNT(*) AS n FROM ${String(err.details.stage)}`))[0]?.n, '2');
    assert.equal(await engine.columns({ layer: 'gold', name: 'audited' }), undefined);
    assert.deepEqual(
      await rows("SELECT audit, status, failing_rows FROM ops.audit_results WHERE model = 'gold.audited'"),
      [{ audit: 'accepted_values(status)', status: 'fail', failing_rows: '1' }],
    );
    // Reopening the warehouse (a new process) drops stages left behind.
    assert.equal(await stages(), 1);
    await Warehouse.open({
      engine,
      contractsDir: home,
      modelsDir: home,
      latenessMs: 0,
      log: createLogger({ format: 'silent' }),
    });
    assert.equal(await stages(), 0);

    const noKey = model('gold/nokey', [
      '-- model: gold.nokey',
      '-- kind: merge',
      '-- unique_key: order_id',
      'SELECT id FROM @ref(silver.orders)',
    ]);
    await assert.rejects(
      runner([ORDERS, noKey]).runModel(noKey, UNBOUNDED, { trigger: 'load' }),
      (e: unknown) =>
        isSmelterError(e, 'MODEL_FAILED') &&
        /gold\.nokey \(\/models\/t\/gold\/nokey\.sql\) does not output the header's column\(s\): order_id/.test(
          e.message,
        ),
    );
  });

  it('new output columns are added to the target; a changed type family stops the model', async () => {
    const r = runner([ORDERS]);
    await src("(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    const wider = {
      ...ORDERS,
      sql: 'SELECT id, d, status, ver, seen_at, batch AS note FROM @ref(bronze.src)',
    };
    await runner([wider]).runModel(wider, UNBOUNDED, { trigger: 'load' });
    assert.deepEqual(await rows('SELECT id, note FROM silver.orders'), [{ id: '1', note: '1' }]);
    const retyped = {
      ...ORDERS,
      sql: 'SELECT id, d, CAST(ver AS DOUBLE) > 0 AS status, ver, seen_at FROM @ref(bronze.src)',
    };
    await assert.rejects(
      runner([retyped]).runModel(retyped, UNBOUNDED, { trigger: 'load' }),
      (e: unknown) => isSmelterError(e, 'SCHEMA_INCOMPATIBLE') && /status/.test(e.message),
    );
  });

  it('a bad run range or a broken model is a permanent MODEL_FAILED naming the file', async () => {
    const r = runner([ORDERS, DAILY]);
    await assert.rejects(
      r.runModel(DAILY, { startDate: '2024-01-01', endDate: 'tomorrow' }, { trigger: 'backfill' }),
      (e: unknown) =>
        isSmelterError(e, 'MODEL_FAILED') &&
        e.kind === 'permanent' &&
        /^Model gold\.daily \(\/models\/t\/gold\/daily\.sql\): the run range/.test(e.message),
    );
    const broken = { ...STATUSES, sql: 'SELECT nope FROM @ref(silver.orders)' };
    await src("(1, '2024-01-01', 'new', 1, '2024-01-01 10:00:00+00', 1)");
    await r.runModel(ORDERS, UNBOUNDED, { trigger: 'load', batch: { 'bronze.src': 'TRUE' } });
    await assert.rejects(
      runner([ORDERS, broken]).runModel(broken, UNBOUNDED, { trigger: 'load' }),
      (e: unknown) =>
        isSmelterError(e, 'MODEL_FAILED') &&
        e.kind === 'permanent' &&
        e.message.startsWith('Model gold.statuses (/models/t/gold/statuses.sql) failed:') &&
        /Query:\nCREATE TABLE gold\._stage_gold_statuses_/.test(e.message),
    );
    assert.deepEqual(
      (await runs()).map((x) => [x.model, x.status]),
      [
        ['silver.orders', 'ok'],
        ['gold.statuses', 'failed'],
      ],
    );
  });
});
