/**
 * Audits run after each load and fail loudly: a failing audit stops the model before anything is
 * applied (permanent AUDIT_FAILED naming the model, the audit and its query), is recorded in
 * ops.audit_results and shows in the status; a broken model fails with MODEL_FAILED and its query.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSmelterError, type SmelterError } from '../../../shared/errors';
import { rainfallRows } from '../../../shared/samples/domains';
import { Warehouse } from '../../../shared/warehouse/service';
import { warehouseStatus } from '../../../shared/warehouse/status';
import { REPO, testWarehouse, type TestWarehouse } from '../../support/warehouse';

describe('warehouse audits and model failures', () => {
  let t: TestWarehouse;
  let models: string;
  const rows = rainfallRows({ stations: 3, days: 10 });

  beforeEach(async () => {
    models = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-models-'));
    fs.cpSync(path.join(REPO, 'models', 'rainfall'), path.join(models, 'rainfall'), { recursive: true });
    t = await testWarehouse({ modelsDir: models });
  });
  afterEach(async () => {
    await t.close();
    fs.rmSync(models, { recursive: true, force: true });
  });

  it('a failing audit stops the model before anything is applied, loudly and on record', async () => {
    assert.equal((await t.wh.loadObject(await t.bronze('rainfall', rows))).status, 'loaded');
    const before = await t.rows('SELECT * FROM silver.rainfall ORDER BY ALL');
    // A unit error upstream: 2,500 mm in a day breaks the custom audit beside the Silver model.
    const bad = await t.bronze('rainfall', [{ ...rows[0], rain_mm: 2500 }]);
    let err: SmelterError | undefined;
    try {
      await t.wh.loadObject(bad);
    } catch (e) {
      err = e as SmelterError;
    }
    assert.ok(isSmelterError(err, 'AUDIT_FAILED') && err.kind === 'permanent', String(err));
    assert.match(
      err.message,
      /^Audit rain_plausible failed for model silver\.rainfall: 1 offending row\(s\)\. Nothing was applied/,
    );
    assert.match(
      err.message,
      /Audit query:\nSELECT COUNT\(\*\) AS n FROM \(SELECT station_id, date, rain_mm\nFROM smelter_scratch\.main\._stage_silver_rainfall_[0-9a-f]{8}\nWHERE rain_mm > 1000\)/,
    );
    assert.equal(err.details.model, 'silver.rainfall');
    assert.deepEqual(await t.rows('SELECT * FROM silver.rainfall ORDER BY ALL'), before);
    assert.equal((await t.wh.ops.ledger(bad.bucket, bad.name, bad.generation))?.status, 'failed');
    // The staged output (in memory while the run lasts) is kept for inspection in the database file.
    assert.match(String(err.details.stage), /^ops\._stage_silver_rainfall_[0-9a-f]{8}_k\d{10}$/);
    assert.match(
      err.message,
      /the output is kept in ops\._stage_silver_rainfall_[0-9a-f]{8}_k\d{10} for inspection/,
    );
    assert.equal((await t.rows(`SELECT rain_mm FROM ${String(err.details.stage)}`))[0]?.rain_mm, 2500);
    // Reopening keeps it for its inspection window; an expired kept stage and a crashed run's stage go.
    await t.engine.exec('CREATE TABLE ops._stage_silver_rainfall_0badc0de_k1000000000 (x INT)');
    await t.engine.exec('CREATE TABLE ops._stage_silver_rainfall_deadbeef (x INT)');
    await Warehouse.open(t.wh.opts);
    assert.deepEqual(
      (
        await t.rows(
          "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, '_stage_') ORDER BY 1",
        )
      ).map((r) => `ops.${String(r.table_name)}`),
      [String(err.details.stage)],
    );
    const status = await warehouseStatus(t.wh);
    assert.deepEqual(
      status.audits.latest.filter((a) => a.status === 'fail').map((a) => [a.model, a.audit, a.failingRows]),
      [['silver.rainfall', 'rain_plausible', 1]],
    );
    assert.ok(status.audits.passing > 5);
    assert.match(status.failedRuns[0]?.error ?? '', /Audit rain_plausible failed/);
  });

  it('built-in audits: not_null, unique, accepted_values and row-count balance', async () => {
    // A model whose output violates uniqueness and accepted values.
    fs.writeFileSync(
      path.join(models, 'rainfall', 'gold', 'broken.sql'),
      [
        '-- model: gold.broken',
        '-- kind: incremental_by_time_range',
        '-- time_column: date',
        '-- unique_key: region, date',
        "-- audit: accepted_values(region, 'North', 'South')",
        '-- audit: not_null(note)',
        '-- inputs: silver.rainfall',
        'SELECT date, region, @cast(NULL, string) AS note FROM @ref(silver.rainfall) WHERE date >= @start_date AND date < @end_date',
      ].join('\n'),
    );
    // Six stations: two share a region, so (region, date) is not unique.
    await assert.rejects(
      t.wh.loadObject(await t.bronze('rainfall', rainfallRows({ stations: 6, days: 5 }))),
      (e: unknown) => {
        assert.ok(isSmelterError(e, 'AUDIT_FAILED'), String(e));
        assert.match(
          e.message,
          /^Audit \w+\([\w, ]+\) failed for model gold\.broken: \d+ offending row\(s\) \(\+2 more failed audits\)/,
        );
        assert.deepEqual((e.details.failed as string[]).sort(), [
          'accepted_values(region)',
          'not_null(note)',
          'unique(region, date)',
        ]);
        return true;
      },
    );
    const recorded = await t.rows(
      "SELECT audit, status FROM ops.audit_results WHERE model = 'gold.broken' ORDER BY audit",
    );
    assert.deepEqual(
      recorded.map((r) => [r.audit, r.status]),
      [
        ['accepted_values(region)', 'fail'],
        ['not_null(note)', 'fail'],
        ['unique(region, date)', 'fail'],
      ],
    );
    const balance = await t.rows(
      "SELECT status, failing_rows FROM ops.audit_results WHERE model = 'silver.rainfall' AND audit = 'row_count_balance(bronze.rainfall)'",
    );
    assert.deepEqual(
      balance.map((r) => [r.status, Number(r.failing_rows)]),
      [['pass', 0]],
    );
  });

  it('row_count_balance fails with the number of source keys a merge model lost (not rows)', async () => {
    // A Silver model that silently drops one station: its keys are missing from the target.
    const file = path.join(models, 'rainfall', 'silver', 'rainfall.sql');
    const sql = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(
      file,
      sql
        .replace(/WHERE d\.station_id IS NULL/, "WHERE d.station_id IS NULL AND b.station_id <> 'ST0002'")
        .replace(/WHERE _rn = 1/, "WHERE _rn = 1 AND station_id <> 'ST0002'"),
    );
    const lost = rows.filter((r) => r.station_id === 'ST0002');
    assert.ok(lost.length > 1);
    // The lost station's rows twice: still one missing key per station-day.
    await assert.rejects(
      t.wh.loadObject(await t.bronze('rainfall', [...rows, ...lost.map((r) => ({ ...r }))])),
      (e: unknown) => isSmelterError(e, 'AUDIT_FAILED') && /row_count_balance/.test(e.message),
    );
    const balance = await t.rows(
      "SELECT status, failing_rows FROM ops.audit_results WHERE model = 'silver.rainfall' AND audit = 'row_count_balance(bronze.rainfall)'",
    );
    assert.deepEqual(
      balance.map((r) => [r.status, Number(r.failing_rows)]),
      [['fail', lost.length]],
    );
  });

  it('row_count_balance a range of dates at a time (a large batch) counts exactly the keys lost', async () => {
    // A Silver model that drops one station and the first day: keys inside the output's dates and before them.
    const file = path.join(models, 'rainfall', 'silver', 'rainfall.sql');
    const sql = fs.readFileSync(file, 'utf8');
    const dropped = "station_id <> 'ST0002' AND date <> DATE '2024-01-01'";
    assert.ok(sql.includes('AND NOT (SELECT yes FROM may_repeat)'));
    fs.writeFileSync(
      file,
      sql.replace(
        'AND NOT (SELECT yes FROM may_repeat)',
        `AND NOT (SELECT yes FROM may_repeat) AND ${dropped}`,
      ),
    );
    const lost = rows.filter((r) => r.station_id === 'ST0002' || r.date === '2024-01-01');
    assert.equal(lost.length, 12);
    // As a batch of millions of rows would be on DuckDB: 18 output rows, 5 per statement.
    Object.defineProperty(t.engine.dialect, 'balanceChunkRows', { value: 5 });
    await assert.rejects(
      t.wh.loadObject(await t.bronze('rainfall', rows)),
      (e: unknown) => isSmelterError(e, 'AUDIT_FAILED') && /row_count_balance/.test(e.message),
    );
    const balance = await t.rows(
      "SELECT status, failing_rows, query FROM ops.audit_results WHERE model = 'silver.rainfall' AND audit = 'row_count_balance(bronze.rainfall)'",
    );
    assert.deepEqual(
      balance.map((r) => [r.status, Number(r.failing_rows)]),
      [['fail', lost.length]],
    );
    // ⌈18 / 5⌉ = 4 ranges asked for, of ⌈9 days / 4⌉ = 3 days: three, then the keys outside them.
    const statements = String(balance[0]?.query).split(';\n');
    assert.equal(statements.length, 4);
    assert.match(statements[3] as string, /AS outside$/);
  });

  it('a model that fails reports its name, file and failing query (permanent MODEL_FAILED)', async () => {
    fs.writeFileSync(
      path.join(models, 'rainfall', 'gold', 'typo.sql'),
      '-- model: gold.typo\n-- kind: full\n-- inputs: silver.rainfall\nSELECT station_idd FROM @ref(silver.rainfall)\n',
    );
    await assert.rejects(t.wh.loadObject(await t.bronze('rainfall', rows)), (e: unknown) => {
      assert.ok(isSmelterError(e, 'MODEL_FAILED') && e.kind === 'permanent', String(e));
      assert.match(
        e.message,
        /^Model gold\.typo \(.*typo\.sql\) failed: DuckDB: Binder Error: Referenced column "station_idd" not found/,
      );
      assert.match(String(e.details.query), /SELECT station_idd FROM silver\.rainfall/);
      return true;
    });
    // Silver and the other Gold models were applied; the broken model is fixed and backfilled.
    assert.equal(Number((await t.rows('SELECT COUNT(*) AS n FROM gold.rainfall_daily'))[0]?.n), rows.length);
    fs.writeFileSync(
      path.join(models, 'rainfall', 'gold', 'typo.sql'),
      '-- model: gold.typo\n-- kind: full\n-- inputs: silver.rainfall\nSELECT station_id FROM @ref(silver.rainfall)\n',
    );
    await t.wh.backfill({ dataset: 'rainfall', from: '2024-01-01', to: '2024-01-10' });
    assert.equal(Number((await t.rows('SELECT COUNT(*) AS n FROM gold.typo'))[0]?.n), rows.length);
  });

  it('an incremental model writing outside its range is rejected', async () => {
    fs.writeFileSync(
      path.join(models, 'rainfall', 'gold', 'leaky.sql'),
      '-- model: gold.leaky\n-- kind: incremental_by_time_range\n-- time_column: date\n-- inputs: silver.rainfall\nSELECT date, rain_mm FROM @ref(silver.rainfall)\n',
    );
    assert.equal((await t.wh.loadObject(await t.bronze('rainfall', rows.slice(0, 6)))).status, 'loaded');
    await assert.rejects(
      t.wh.loadObject(await t.bronze('rainfall', rows.slice(6))),
      /Model gold\.leaky returned \d+ rows with date outside its range/,
    );
  });
});
