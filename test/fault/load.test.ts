/**
 * Fault campaign, the warehouse load: loadWarehouse receiving the finalize event of a Bronze manifest
 * (Bronze Parquet → Bronze table → Silver MERGE → the Gold partitions it touches), killed at every
 * side-effecting operation of its warehouse engine and object store, then delivered again to a fresh
 * instance. A reference warehouse loads the same files cleanly, in lockstep: after each file, Bronze,
 * Silver, Gold and the load ledger of the two must be identical.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import { loadWarehouse } from '../../functions/load-warehouse';
import { DuckDbEngine } from '../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, type LocalWarehouse } from '../../shared/adapters/warehouse/duckdb-local';
import { closeRuntime, useRuntime } from '../../shared/composition/runtime';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/log';
import { packageRoot } from '../../shared/paths';
import { rainfallRows } from '../../shared/samples/domains';
import type { BronzeObject } from '../../shared/warehouse/loader';
import { Warehouse } from '../../shared/warehouse/service';
import { testWarehouse, type TestWarehouse } from '../support/warehouse';
import { dyingEngine, dyingStore, killPoints, Reaper, type KillPoint } from './dying';

const log = createLogger({ format: 'silent' });

const finalized = (o: BronzeObject): CloudEventV1<unknown> => ({
  id: `finalize-${o.name}-${o.generation}`,
  type: 'google.cloud.storage.object.v1.finalized',
  source: `//storage.googleapis.com/projects/_/buckets/${o.bucket}`,
  specversion: '1.0',
  subject: `objects/${o.name}`,
  time: new Date().toISOString(),
  data: { bucket: o.bucket, name: o.name, generation: o.generation, size: '1000' },
});

describe('fault campaign: a warehouse load killed at every operation, then redelivered', function () {
  this.timeout(120_000);
  let t: TestWarehouse;
  let refHome: string;
  let ref: Warehouse;
  let refDb: LocalWarehouse;
  let modelsDir: string;

  before(async () => {
    // Rainfall's Silver model (a merge) and a Gold model (incremental by time range) with the dataset's
    // audits: every kind of step a file load takes, in fewer operations than the whole model set.
    modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-fault-models-'));
    for (const f of ['silver/rainfall.sql', 'gold/rainfall_daily.sql', 'audits/rain_plausible.sql']) {
      fs.mkdirSync(path.dirname(path.join(modelsDir, 'rainfall', f)), { recursive: true });
      fs.copyFileSync(path.join(packageRoot, 'models', 'rainfall', f), path.join(modelsDir, 'rainfall', f));
    }
    t = await testWarehouse({ modelsDir });
    // The reference: its own DuckDB file, reading the same Bronze objects.
    refHome = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-fault-ref-'));
    refDb = await getLocalWarehouse(refHome, { threads: 1, memoryLimit: '512MB' });
    ref = await Warehouse.open({
      engine: new DuckDbEngine(refDb, t.store),
      contractsDir: path.join(packageRoot, 'contracts'),
      modelsDir,
      latenessMs: 2 * 86_400_000,
      log,
    });
  });
  after(async () => {
    await refDb.close();
    await t.close();
    fs.rmSync(refHome, { recursive: true, force: true });
    fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  /**
   * One loadWarehouse instance, dying at `point`. The DuckDB instance outlives it: the loader's
   * transactions are single statements or single BEGIN … COMMIT scripts, so once the calls under way
   * have ended, the file holds what a restart would find. The Warehouse object (its model cache) is new.
   */
  async function instance(
    event: CloudEventV1<unknown>,
    point?: KillPoint,
    engine: DuckDbEngine = t.engine,
  ): Promise<{ reaper: Reaper; error?: unknown }> {
    const reaper = new Reaper(point);
    const store = dyingStore(t.store, reaper);
    let error: unknown;
    try {
      const wh = Warehouse.open({
        engine: dyingEngine(engine, reaper),
        contractsDir: path.join(packageRoot, 'contracts'),
        modelsDir,
        latenessMs: 2 * 86_400_000,
        log,
      });
      useRuntime({
        config: loadConfig({}, { home: t.home, bronzeBucket: 'bronze', maxEventAgeMs: 3600_000 }),
        log,
        store,
        warehouse: wh,
      });
      await loadWarehouse(event);
    } catch (err) {
      error = err;
    } finally {
      await reaper.quiesce();
      await closeRuntime().catch(() => undefined);
    }
    return { reaper, ...(error === undefined ? {} : { error }) };
  }

  /** Every table of Bronze, Silver and Gold, sorted, and the load ledger. */
  async function snapshot(db: LocalWarehouse): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    const tables = await db.query<{ s: string; t: string }>(
      `SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_schema IN ('bronze', 'silver', 'gold') AND table_type = 'BASE TABLE' ORDER BY 1, 2`,
    );
    for (const { s, t: name } of tables)
      out[`${s}.${name}`] = await db.query(`SELECT * FROM "${s}"."${name}" ORDER BY ALL`);
    out.ledger = await db.query(
      'SELECT bucket, name, generation, dataset, rows, status, error FROM ops.load_ledger ORDER BY ALL',
    );
    return out;
  }

  /** A new Bronze file (overlapping the earlier ones' station-days: Silver keeps the latest), committed. */
  let files = 0;
  async function nextFile(): Promise<BronzeObject> {
    const i = files++;
    const rows = rainfallRows({ stations: 3, days: 6, seed: i + 1, start: `2024-01-0${1 + (i % 5)}` });
    return t.commit(await t.bronze('rainfall', rows), { rows: rows.length });
  }

  it('Bronze, Silver, Gold and the ledger are exactly those of a clean load after any kill and a retry', async () => {
    // A clean load first: the operations of a load (N) and the reference's state.
    const first = finalized(await nextFile());
    const clean = await instance(first);
    assert.equal(clean.error, undefined, String(clean.error));
    assert.equal((await ref.loadFinalized(t.store, first.data as BronzeObject)).status, 'loaded');
    assert.deepEqual(await snapshot(t.local), await snapshot(refDb), 'clean load');
    // A second clean load: the steady state (the first one also creates the tables).
    const second = finalized(await nextFile());
    const steady = await instance(second);
    assert.equal((await ref.loadFinalized(t.store, second.data as BronzeObject)).status, 'loaded');
    const ops = steady.reaper.ops;
    assert.ok(ops.length >= 10, ops.join('\n'));

    const points = killPoints(ops);
    for (const point of points) {
      const what = `kill ${point.when} #${point.at} (${ops[point.at - 1]})`;
      const event = finalized(await nextFile());
      const died = await instance(event, point);
      assert.ok(died.reaper.dead, `${what}: the kill point was not reached`);
      const retry = await instance(event);
      assert.equal(retry.error, undefined, `${what}: retry failed: ${String(retry.error)}`);
      assert.equal((await ref.loadFinalized(t.store, event.data as BronzeObject)).status, 'loaded');
      assert.deepEqual(await snapshot(t.local), await snapshot(refDb), what);
    }
    const ledger = (await snapshot(t.local)).ledger as { status: string }[];
    assert.equal(ledger.length, points.length + 2);
    assert.ok(ledger.every((r) => r.status === 'done'));
  });

  it('the first load of a warehouse (it creates the tables on the way) is exact too after a kill at each step only it takes', async () => {
    /** A warehouse of its own (empty DuckDB file) over the same Bronze objects. */
    const fresh = async (): Promise<{ home: string; db: LocalWarehouse; engine: DuckDbEngine }> => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-fault-first-'));
      const db = await getLocalWarehouse(home, { threads: 1, memoryLimit: '512MB' });
      return { home, db, engine: new DuckDbEngine(db, t.store) };
    };
    const dispose = async (w: { home: string; db: LocalWarehouse }): Promise<void> => {
      await w.db.close();
      fs.rmSync(w.home, { recursive: true, force: true });
    };
    const event = finalized(await nextFile());
    const clean = await fresh();
    const run = await instance(event, undefined, clean.engine);
    assert.equal(run.error, undefined, String(run.error));
    const expected = await snapshot(clean.db);
    await dispose(clean);
    // Only a first load builds Silver's and Gold's stages beside them and renames them into place:
    // die before each of those steps and before the step after it.
    const ops = run.reaper.ops;
    const firstOnly = ops.flatMap((op, i) =>
      /(CREATE|ALTER) TABLE (silver|gold)\._stage_/.test(op) ? [i + 1, i + 2] : [],
    );
    assert.ok(firstOnly.length >= 4, ops.join('\n'));
    for (const at of [...new Set(firstOnly)]) {
      const what = `first load: kill before #${at} (${ops[at - 1]})`;
      const w = await fresh();
      try {
        assert.ok((await instance(event, { at, when: 'before' }, w.engine)).reaper.dead, what);
        const retry = await instance(event, undefined, w.engine);
        assert.equal(retry.error, undefined, `${what}: retry failed: ${String(retry.error)}`);
        assert.deepEqual(await snapshot(w.db), expected, what);
      } finally {
        await dispose(w);
      }
    }
  });
});
