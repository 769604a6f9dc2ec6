/**
 * The local warehouse keeps Bronze where rawToBronze wrote it: `bronze.<dataset>` is a view over the
 * Parquet objects loaded so far (ops.bronze_files), not a copy of their rows. What it must still be: every
 * loaded row exactly once, nothing of an unloaded file, new columns visible, a vanished object counted —
 * and a warehouse made before (with a Bronze table) keeps its table.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { rainfallRows } from '../../../../shared/samples/domains';
import { testWarehouse, type TestWarehouse } from '../../../support/warehouse';

describe('local warehouse: Bronze is a view over its loaded Parquet objects', function () {
  this.timeout(30_000);
  let t: TestWarehouse;
  beforeEach(async () => {
    t = await testWarehouse();
  });
  afterEach(async () => t?.close());

  const count = async (sql: string): Promise<number> => Number((await t.rows(sql))[0]?.n);
  const kind = async (): Promise<unknown> =>
    (
      await t.rows(
        "SELECT table_type AS k FROM information_schema.tables WHERE table_schema = 'bronze' AND table_name = 'rainfall'",
      )
    )[0]?.k;

  it('reads every loaded row once, writes none, and ignores objects never loaded', async () => {
    const a = await t.bronze('rainfall', rainfallRows({ stations: 4, days: 5, start: '2024-01-01' }));
    const b = await t.bronze('rainfall', rainfallRows({ stations: 3, days: 4, start: '2024-02-01' }));
    // Written to the bucket but never loaded (no manifest, a blocked dataset…): not Bronze.
    await t.bronze('rainfall', rainfallRows({ stations: 2, days: 2, start: '2024-03-01' }));
    assert.equal((await t.wh.loadObject(a)).status, 'loaded');
    assert.equal(await kind(), 'VIEW');
    assert.equal((await t.wh.loadObject(b)).status, 'loaded');
    // A duplicate delivery adds nothing.
    assert.equal((await t.wh.loadObject(b)).status, 'duplicate');
    assert.equal(await count('SELECT COUNT(*) AS n FROM bronze.rainfall'), 20 + 12);
    assert.equal(await count('SELECT COUNT(*) AS n FROM silver.rainfall'), 20 + 12);
    assert.equal(await count('SELECT SUM(rows) AS n FROM ops.load_ledger'), 20 + 12);
    assert.equal(await count('SELECT SUM(rows) AS n FROM ops.bronze_files WHERE missing_since IS NULL'), 32);
    // No Bronze row is stored in the database file.
    assert.equal(await count("SELECT COUNT(*) AS n FROM duckdb_tables() WHERE schema_name = 'bronze'"), 0);
  });

  it('a file with a new column: the view unions by name, older rows read NULL', async () => {
    const a = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3, start: '2024-01-01' }));
    await t.wh.loadObject(a);
    const rows = rainfallRows({ stations: 2, days: 3, start: '2024-01-10' }).map((r) => ({
      ...r,
      quality_flag: 'ok',
    }));
    const b = await t.bronze('rainfall', rows, { extraColumns: [{ name: 'quality_flag', type: 'string' }] });
    assert.equal((await t.wh.loadObject(b)).status, 'loaded');
    const got = await t.rows(
      'SELECT quality_flag AS q, COUNT(*) AS n FROM bronze.rainfall GROUP BY ALL ORDER BY q NULLS FIRST',
    );
    assert.deepEqual(
      got.map((r) => [r.q, Number(r.n)]),
      [
        [null, 6],
        ['ok', 6],
      ],
    );
  });

  it('an object gone from the bucket is left out at the next load and counted; back, it is read again', async () => {
    const a = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3, start: '2024-01-01' }));
    const b = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3, start: '2024-01-10' }));
    const c = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3, start: '2024-01-20' }));
    await t.wh.loadObject(a);
    const aPath = await t.store.objectPath(a.bucket, a.name);
    fs.renameSync(aPath, `${aPath}.away`);
    assert.equal((await t.wh.loadObject(b)).status, 'loaded');
    assert.equal(await count('SELECT COUNT(*) AS n FROM bronze.rainfall'), 6);
    const gone = await t.rows('SELECT name, rows FROM ops.bronze_files WHERE missing_since IS NOT NULL');
    assert.deepEqual(
      gone.map((g) => [g.name, Number(g.rows)]),
      [[a.name, 6]],
    );
    // Status counts what is there and says what is gone, even before a load notices it.
    const bPath = await t.store.objectPath(b.bucket, b.name);
    fs.renameSync(bPath, `${bPath}.away`);
    assert.deepEqual(await t.engine.tableStats(['bronze']), [
      { layer: 'bronze', table: 'rainfall', rows: 0, kind: 'view', missingObjects: 2 },
    ]);
    // Put back (a restore), they are read again from the next load on.
    fs.renameSync(`${aPath}.away`, aPath);
    fs.renameSync(`${bPath}.away`, bPath);
    assert.equal((await t.wh.loadObject(c)).status, 'loaded');
    assert.equal(await count('SELECT COUNT(*) AS n FROM bronze.rainfall'), 18);
    assert.equal(
      await count('SELECT COUNT(*) AS n FROM ops.bronze_files WHERE missing_since IS NOT NULL'),
      0,
    );
  });

  it('a warehouse made with a Bronze table keeps appending to it (new columns added)', async () => {
    await t.engine.exec(
      'CREATE TABLE bronze.rainfall AS SELECT * FROM read_parquet(' +
        `'${await t.store.objectPath('bronze', (await t.bronze('rainfall', rainfallRows({ stations: 1, days: 1, start: '2023-01-01' }))).name)}') LIMIT 0`,
    );
    const a = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3, start: '2024-01-01' }));
    const rows = rainfallRows({ stations: 2, days: 3, start: '2024-01-10' }).map((r) => ({
      ...r,
      quality_flag: 'ok',
    }));
    const b = await t.bronze('rainfall', rows, { extraColumns: [{ name: 'quality_flag', type: 'string' }] });
    await t.wh.loadObject(a);
    await t.wh.loadObject(b);
    assert.equal(await kind(), 'BASE TABLE');
    assert.equal(await count('SELECT COUNT(*) AS n FROM bronze.rainfall'), 12);
    assert.equal(await count("SELECT COUNT(*) AS n FROM bronze.rainfall WHERE quality_flag = 'ok'"), 6);
    assert.equal(await count('SELECT COUNT(*) AS n FROM silver.rainfall'), 12);
  });
});
