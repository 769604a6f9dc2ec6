/**
 * Fault campaign, raw → Bronze: rawToBronzeFlow on a file with good rows, structurally bad rows and
 * contract violations, killed at every side-effecting operation of its object store (before it, after
 * it, and mid-stream for writes), then delivered again with a fresh process state. After the retry the
 * result must be exactly that of a clean run: one Parquet holding every good row once, the rejects with
 * every bad row once, a manifest whose counts balance, nothing partial in any bucket.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { duckdbConversionEngines as engines } from '../../shared/adapters/ingest/duckdb-engine';
import { bronzeNames, rawToBronzeFlow, type BronzeManifest } from '../../shared/ingest/bronze';
import { createLogger } from '../../shared/log';
import { readObjectJson } from '../../shared/storage/object-store';
import { readAll, testHome, type TestHome } from '../support/home';
import { queryParquet } from '../support/parquet';
import { dyingStore, Killed, killPoints, Reaper, type KillPoint } from './dying';
import { ORDERS_CONTRACT as CONTRACT } from '../support/contracts';

const log = createLogger({ format: 'silent' });

const ROWS = 400;
/** Lines (1-based, header = 1) holding a bad record: a structural one (text for an int) and contract ones. */
const BAD = new Map<number, string>([
  [5, 'x,c,2024-01-01'],
  [77, '77,,2024-01-01'],
  [300, '300,c,not-a-date'],
]);

function csv(): { body: string; good: number[] } {
  const lines = ['order_id,customer,order_date'];
  const good: number[] = [];
  for (let i = 2; i <= ROWS + 1; i++) {
    const bad = BAD.get(i);
    if (bad) lines.push(bad);
    else {
      lines.push(`${i},c${i},2024-01-0${(i % 9) + 1}`);
      good.push(i);
    }
  }
  return { body: lines.join('\n') + '\n', good };
}

describe('fault campaign: raw → Bronze killed at every operation, then redelivered', function () {
  this.timeout(60_000);
  let h: TestHome;

  beforeEach(async () => {
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-fault-contracts-'));
    fs.mkdirSync(path.join(contracts, 'datasets'));
    fs.writeFileSync(path.join(contracts, 'datasets', 'orders.json'), JSON.stringify(CONTRACT));
    h = await testHome({ SMELTER_CONTRACTS_DIR: contracts, SMELTER_DUCKDB_THREADS: '1' });
  });
  afterEach(() => h.cleanup());

  async function run(name: string, point?: KillPoint): Promise<{ reaper: Reaper; error?: unknown }> {
    const reaper = new Reaper(point);
    const meta = await h.store.stat(h.cfg.rawBucket, name);
    const ref = { bucket: h.cfg.rawBucket, name, generation: String(meta?.generation) };
    try {
      await rawToBronzeFlow(ref, { cfg: h.cfg, store: dyingStore(h.store, reaper), log, engines });
      return { reaper };
    } catch (error) {
      return { reaper, error };
    } finally {
      await reaper.quiesce();
    }
  }

  it('a conversion with rejects: exactly every row once after any kill and a retry', async () => {
    const { body, good } = csv();
    const clean = await h.store.write(h.cfg.rawBucket, 'orders/clean.csv', body);
    const { reaper: counter } = await run(clean.name);
    const ops = counter.ops;
    assert.ok(ops.length >= 3, ops.join('\n'));

    const points = killPoints(ops);
    for (const [i, point] of points.entries()) {
      const name = `orders/k${i}.csv`;
      const m = await h.store.write(h.cfg.rawBucket, name, body);
      const died = await run(name, point);
      const what = `kill ${point.when} #${point.at} (${ops[point.at - 1]})`;
      assert.ok(
        died.reaper.dead,
        `${what}: the kill point was not reached: ${String(died.error)} ${died.reaper.ops.join(' | ')}`,
      );
      if (died.error !== undefined && !(died.error instanceof Killed))
        assert.fail(`${what}: failed with ${String(died.error)} instead of dying`);
      const retry = await run(name);
      assert.equal(retry.error, undefined, `${what}: retry failed: ${String(retry.error)}`);
      await checkExact(m.name, m.generation, good, what);
    }
  });

  it('a file quarantined whole: exactly one record (and copy) after any kill and a retry', async () => {
    const body = '"order_id,customer,order_date\n1,a,2024-01-01\n';
    const clean = await h.store.write(h.cfg.rawBucket, 'orders/qclean.csv', body);
    const ops = (await run(clean.name)).reaper.ops;
    assert.ok(ops.length >= 2, ops.join('\n'));
    for (const { at, when } of killPoints(ops)) {
      const name = `orders/q${at}${when}.csv`;
      const m = await h.store.write(h.cfg.rawBucket, name, body);
      const what = `kill ${when} #${at} (${ops[at - 1]})`;
      const died = await run(name, { at, when });
      assert.ok(died.reaper.dead, `${what}: the kill point was not reached`);
      assert.equal((await run(name)).error, undefined, what);
      const names = bronzeNames({ bucket: h.cfg.rawBucket, name, generation: m.generation });
      const record = await readObjectJson<{ error: { code: string }; copy: string }>(
        h.store,
        h.cfg.quarantineBucket,
        `${names.failed}/error.json`,
      );
      assert.equal(record?.error.code, 'BAD_DATA', what);
      const copy = await readAll(
        await h.store.read(h.cfg.quarantineBucket, `${names.failed}/${path.posix.basename(name)}`),
      );
      assert.equal(copy.toString('utf8'), body, `${what}: the copy is whole`);
      const left: string[] = [];
      for await (const o of h.store.list(h.cfg.quarantineBucket, names.failed)) left.push(o.name);
      assert.equal(left.length, 2, `${what}: ${left.join(', ')}`);
      assert.equal(await h.store.stat(h.cfg.bronzeBucket, names.manifest), undefined, what);
    }
  });

  /** The Bronze output of one raw object is exactly the clean result. */
  async function checkExact(name: string, generation: string, good: number[], what: string): Promise<void> {
    const names = bronzeNames({ bucket: h.cfg.rawBucket, name, generation });
    const manifest = await readObjectJson<BronzeManifest>(h.store, h.cfg.bronzeBucket, names.manifest);
    assert.ok(manifest, `${what}: no manifest`);
    assert.equal(manifest.rows, good.length, what);
    assert.equal(manifest.rejected, BAD.size, what);
    assert.equal(manifest.rowsIn, ROWS, what);
    const file = await h.store.objectPath(h.cfg.bronzeBucket, names.parquet);
    const ids = (
      await queryParquet<{ order_id: string }>(file, 'SELECT order_id FROM p ORDER BY order_id')
    ).map((r) => Number(r.order_id));
    assert.deepEqual(ids, good, `${what}: Parquet rows`);
    assert.equal(
      manifest.output.generation,
      (await h.store.stat(h.cfg.bronzeBucket, names.parquet))?.generation,
    );
    const rejects = (await readAll(await h.store.read(h.cfg.quarantineBucket, names.rejects)))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { line: number }).line);
    assert.deepEqual(rejects, [...BAD.keys()], `${what}: rejects`);
    // Nothing of this file in any other name (no second Parquet, no whole-file quarantine).
    const stem = path.posix.basename(names.parquet).replace(/\.parquet$/, '');
    const mine: string[] = [];
    for (const b of [h.cfg.bronzeBucket, h.cfg.quarantineBucket])
      for await (const o of h.store.list(b))
        if (o.name.includes(stem) || o.name.includes(path.posix.basename(name))) mine.push(`${b}/${o.name}`);
    assert.deepEqual(
      mine.sort(),
      [
        `${h.cfg.bronzeBucket}/${names.manifest}`,
        `${h.cfg.bronzeBucket}/${names.parquet}`,
        `${h.cfg.quarantineBucket}/${names.rejects}`,
      ].sort(),
      what,
    );
  }
});
