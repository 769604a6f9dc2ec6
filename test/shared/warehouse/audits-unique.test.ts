/**
 * The unique audit decides from a distinct count of key hashes only when that proves the key unique;
 * a duplicate, or a hash collision (simulated: the pre-check is told there is one), runs the exact
 * grouping, whose count of repeated keys is what the outcome reports. Against a real DuckDB warehouse.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDbEngine } from '../../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, type LocalWarehouse } from '../../../shared/adapters/warehouse/duckdb-local';
import { Auditor } from '../../../shared/warehouse/audits';
import { parseModel } from '../../../shared/warehouse/model';

const MERGE = parseModel(
  [
    '-- model: silver.keyed',
    '-- kind: merge',
    '-- unique_key: id, d',
    '-- time_column: d',
    'SELECT id, d, v FROM @ref(bronze.src)',
  ].join('\n'),
  '/models/t/silver/keyed.sql',
  't',
);

describe('the unique audit', () => {
  let home: string;
  let local: LocalWarehouse;
  let engine: DuckDbEngine;
  let queries: string[];
  /** Set to make the hash pre-check report a collision. */
  let collide: boolean;

  const audit = async (
    stage = 'bronze.stage',
  ): Promise<{ status: string; failing_rows: number; query: string }> => {
    const auditor = new Auditor(engine, [], async <T>(_m: unknown, sql: string): Promise<T[]> => {
      queries.push(sql);
      if (collide && sql.includes('COUNT(DISTINCT hash(')) return [{ n: 1 } as T];
      return engine.query<T>(sql);
    });
    const out = await auditor.stage(MERGE, stage, 'test');
    const u = out.find((o) => o.audit === 'unique(id, d)');
    return u ?? assert.fail('no unique audit outcome');
  };

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-unique-'));
    local = await getLocalWarehouse(home, { threads: 1, memoryLimit: '256MB' });
    engine = new DuckDbEngine(local);
    await engine.exec('CREATE SCHEMA IF NOT EXISTS bronze');
    await engine.exec('CREATE TABLE bronze.stage (id VARCHAR, d DATE, v DOUBLE)');
    queries = [];
    collide = false;
  });
  afterEach(async () => {
    await local.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('passes on unique keys from the hash count alone, naming the exact query', async () => {
    await engine.exec(
      "INSERT INTO bronze.stage SELECT 'S' || (i % 100), DATE '2024-01-01' + CAST(i // 100 AS INTEGER), i FROM range(5000) t(i)",
    );
    const u = await audit();
    assert.deepEqual([u.status, u.failing_rows], ['pass', 0]);
    assert.match(u.query, /GROUP BY "id", "d" HAVING COUNT\(\*\) > 1/);
    assert.equal(queries.filter((q) => q.includes('unique') || q.includes('GROUP BY "id"')).length, 0);
  });

  it('counts the repeated keys exactly, NULL keys included', async () => {
    await engine.exec(
      "INSERT INTO bronze.stage VALUES ('a', '2024-01-01', 1), ('a', '2024-01-01', 2), ('a', '2024-01-02', 3), " +
        "('b', '2024-01-01', 4), ('b', '2024-01-01', 5), ('b', '2024-01-01', 6), (NULL, '2024-01-01', 7), (NULL, '2024-01-01', 8)",
    );
    const u = await audit();
    // (a, 01-01) ×2, (b, 01-01) ×3, (NULL, 01-01) ×2: three keys repeat.
    assert.deepEqual([u.status, u.failing_rows], ['fail', 3]);
  });

  it('DuckDB hashes the float values its GROUP BY puts together alike (-0.0 and 0.0, NaNs)', async () => {
    await engine.exec('CREATE TABLE bronze.floats (id DOUBLE, d DATE, v DOUBLE)');
    await engine.exec(
      "INSERT INTO bronze.floats VALUES (-0.0, '2024-01-01', 1), (0.0, '2024-01-01', 2), ('NaN', '2024-01-02', 3), (-('NaN'::DOUBLE), '2024-01-02', 4), (1.5, '2024-01-01', 5)",
    );
    const u = await audit('bronze.floats');
    assert.deepEqual([u.status, u.failing_rows], ['fail', 2]);
  });

  it('a hash collision runs the exact grouping, which passes unique keys', async () => {
    await engine.exec("INSERT INTO bronze.stage VALUES ('a', '2024-01-01', 1), ('b', '2024-01-01', 2)");
    collide = true;
    const u = await audit();
    assert.deepEqual([u.status, u.failing_rows], ['pass', 0]);
    assert.ok(
      queries.some((q) => /GROUP BY "id", "d" HAVING COUNT\(\*\) > 1/.test(q)),
      'exact query ran',
    );
  });
});
