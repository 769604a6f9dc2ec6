/**
 * Schema evolution both ways: a new nullable column in Bronze reaches Silver; an incompatible change
 * (type narrowing, a dropped required column) stops the dataset with SCHEMA_INCOMPATIBLE and loses
 * nothing — the objects stay in the bucket and in the ledger, and load once the operator resolves it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSmelterError, SmelterError } from '../../../shared/errors';
import { rainfallRows } from '../../../shared/samples/domains';
import { warehouseStatus } from '../../../shared/warehouse/status';
import { REPO, testWarehouse, type TestWarehouse } from '../../support/warehouse';

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<SmelterError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isSmelterError(err, code as SmelterError['code']), `expected ${code}, got ${String(err)}`);
    assert.equal(err.kind, 'permanent');
    assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('warehouse: schema evolution', function () {
  let t: TestWarehouse;
  let models: string;
  const rows = rainfallRows({ stations: 4, days: 40, start: '2024-01-01' });
  const days = (from: string, to: string): typeof rows =>
    rows.filter((r) => (r.date as string) >= from && (r.date as string) < to);
  const silverCount = async (): Promise<number> =>
    Number((await t.rows('SELECT COUNT(*) AS n FROM silver.rainfall'))[0]?.n);

  before(async () => {
    models = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-models-'));
    fs.cpSync(path.join(REPO, 'models', 'rainfall'), path.join(models, 'rainfall'), { recursive: true });
    t = await testWarehouse({ modelsDir: models });
    assert.equal(
      (await t.wh.loadObject(await t.bronze('rainfall', days('2024-01-01', '2024-01-11')))).status,
      'loaded',
    );
  });
  after(async () => {
    await t?.close();
    fs.rmSync(models, { recursive: true, force: true });
  });

  it('a new nullable column is added to Bronze and Silver; older rows read NULL, Gold is unaffected', async () => {
    const withHumidity = days('2024-01-11', '2024-01-16').map((r, i) => ({ ...r, humidity_pct: 60 + i }));
    const o = await t.bronze('rainfall', withHumidity, {
      extraColumns: [{ name: 'humidity_pct', type: 'float64' }],
    });
    assert.equal((await t.wh.loadObject(o)).status, 'loaded');
    for (const table of ['bronze.rainfall', 'silver.rainfall']) {
      const [schema, name] = table.split('.');
      const cols = (
        await t.rows(
          `SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = '${name}'`,
        )
      ).map((r) => `${String(r.c)}:${String(r.t)}`);
      assert.ok(cols.includes('humidity_pct:DOUBLE'), `${table}: ${cols.join(', ')}`);
    }
    const h = await t.rows(
      "SELECT date >= DATE '2024-01-11' AS new_file, COUNT(*) AS n, COUNT(humidity_pct) AS with_value FROM silver.rainfall GROUP BY 1 ORDER BY 1",
    );
    assert.deepEqual(
      h.map((r) => [r.new_file, Number(r.n), Number(r.with_value)]),
      [
        [false, 40, 0],
        [true, 20, 20],
      ],
    );
    assert.equal(Number((await t.rows('SELECT COUNT(*) AS n FROM gold.rainfall_daily'))[0]?.n), 60);
  });

  it('type narrowing stops the dataset with SCHEMA_INCOMPATIBLE; later files wait; nothing is lost', async () => {
    const before = await silverCount();
    const narrowed = await t.bronze(
      'rainfall',
      days('2024-01-16', '2024-01-21').map((r) => ({ ...r, rain_mm: Math.round(r.rain_mm as number) })),
      {
        typeOverrides: { rain_mm: 'int64' },
      },
    );
    const err = await rejects(
      t.wh.loadObject(narrowed),
      'SCHEMA_INCOMPATIBLE',
      /rain_mm" changed type from float64 to int64 \(narrowing\)/,
    );
    assert.equal(err.details.dataset, 'rainfall');

    const next = await t.bronze('rainfall', days('2024-01-21', '2024-01-26'));
    await rejects(
      t.wh.loadObject(next),
      'SCHEMA_INCOMPATIBLE',
      /Dataset rainfall is stopped since .* by gs:\/\/bronze\/.*-g\d+\.parquet/,
    );
    assert.equal(await silverCount(), before, 'nothing was loaded');
    assert.equal(
      (await t.wh.ops.ledger(narrowed.bucket, narrowed.name, narrowed.generation))?.status,
      'blocked',
    );
    assert.equal((await t.wh.ops.ledger(next.bucket, next.name, next.generation))?.status, 'pending');
    assert.ok(await t.store.stat(narrowed.bucket, narrowed.name), 'the object stays in the bucket');
    // A duplicate delivery of a kept file is acknowledged without noise.
    assert.equal((await t.wh.loadObject(next)).status, 'duplicate');

    const status = await warehouseStatus(t.wh);
    assert.equal(status.stoppedDatasets[0]?.dataset, 'rainfall');
    assert.ok(status.loads.problems.some((p) => p.status === 'blocked' && /narrowing/.test(p.error)));

    // Retrying does not help while the conflict stands…
    const retry = await t.wh.refresh({ dataset: 'rainfall' });
    assert.deepEqual(
      retry.retried.map((r) => r.status),
      ['failed'],
    );
    assert.equal(await silverCount(), before);
    // …the operator skips the narrowed file (superseded upstream); the waiting one loads, the dataset resumes.
    const skip = await t.wh.refresh({ dataset: 'rainfall', skip: [narrowed.name] });
    assert.deepEqual(
      skip.retried.map((r) => r.status),
      ['skipped', 'loaded'],
    );
    assert.equal(await silverCount(), before + 20);
    assert.equal(await t.wh.ops.blocked('rainfall'), undefined);
    assert.equal(
      (await t.wh.ops.ledger(narrowed.bucket, narrowed.name, narrowed.generation))?.status,
      'skipped',
    );
  });

  it('a dropped required column is incompatible; after the models stop requiring it, the file loads', async () => {
    const before = await silverCount();
    const noRegion = await t.bronze('rainfall', days('2024-01-26', '2024-01-31'), {
      dropColumns: ['region'],
    });
    await rejects(t.wh.loadObject(noRegion), 'SCHEMA_INCOMPATIBLE', /required column "region" is missing/);
    assert.equal(await silverCount(), before);
    // Resolution: the models no longer require a region (the source stopped sending it).
    const edit = (rel: string, from: string, to: string): void => {
      const file = path.join(models, 'rainfall', rel);
      const text = fs.readFileSync(file, 'utf8');
      assert.ok(text.includes(from));
      fs.writeFileSync(file, text.replace(from, to));
    };
    edit(
      'silver/rainfall.sql',
      'not_null(station_id, region, date, rain_mm)',
      'not_null(station_id, date, rain_mm)',
    );
    const res = await t.wh.refresh({ dataset: 'rainfall' });
    assert.deepEqual(
      res.retried.map((r) => r.status),
      ['loaded'],
      JSON.stringify(res.retried),
    );
    assert.equal(await silverCount(), before + 20);
    assert.equal(
      Number((await t.rows('SELECT COUNT(*) AS n FROM silver.rainfall WHERE region IS NULL'))[0]?.n),
      20,
    );
  });
});
