/**
 * The load commit point (issue 10): rawToBronze writes a file's Parquet first and its manifest last,
 * only once the counts balance; loadWarehouse loads a Parquet only through that manifest. So a file
 * refused for COUNT_MISMATCH — whose Parquet was already written and, with Bronze create-only for
 * rawToBronze (objectCreator on GCP), cannot be deleted — is never loaded, whatever events reach the
 * loader; and nothing tries to delete it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import { loadWarehouse } from '../../../functions/load-warehouse';
import { duckdbConversionEngines as engines } from '../../../shared/adapters/ingest/duckdb-engine';
import { closeRuntime, runtime, useRuntime } from '../../../shared/composition/runtime';
import { permanent } from '../../../shared/errors';
import { bronzeNames, rawToBronzeFlow, type BronzeManifest } from '../../../shared/ingest/bronze';
import { createLogger } from '../../../shared/log';
import type { ObjectStore } from '../../../shared/storage/object-store';
import { testHome, type TestHome } from '../../support/home';
import { ORDERS_CONTRACT as CONTRACT } from '../../support/contracts';

const finalized = (bucket: string, name: string, generation: string): CloudEventV1<unknown> => ({
  id: `f-${name}-${generation}`,
  type: 'google.cloud.storage.object.v1.finalized',
  source: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
  specversion: '1.0',
  subject: `objects/${name}`,
  time: new Date().toISOString(),
  data: { bucket, name, generation, size: '10' },
});

describe('the load commit point: a Bronze Parquet is loaded only through its balanced manifest', function () {
  let h: TestHome;
  const lines: { severity: string; message: string; code?: string }[] = [];
  const log = createLogger({
    format: 'json',
    sink: (l) => lines.push(JSON.parse(l) as { severity: string; message: string }),
  });

  beforeEach(async () => {
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-commit-contracts-'));
    fs.mkdirSync(path.join(contracts, 'datasets'));
    fs.writeFileSync(path.join(contracts, 'datasets', 'orders.json'), JSON.stringify(CONTRACT));
    h = await testHome({ SMELTER_CONTRACTS_DIR: contracts, SMELTER_DUCKDB_THREADS: '1' });
    lines.length = 0;
  });
  afterEach(async () => {
    await closeRuntime();
    await h.cleanup();
  });

  /** Bronze as rawToBronze's service account may touch it on GCP: create and read, never delete. */
  function createOnly(deletes: string[]): ObjectStore {
    const s: ObjectStore = Object.create(h.store) as ObjectStore;
    s.delete = async (bucket, name) => {
      deletes.push(`${bucket}/${name}`);
      throw permanent('PRECONDITION_FAILED', `403 storage.objects.delete denied on gs://${bucket}/${name}`);
    };
    return s;
  }

  async function convert(name: string, body: string, store: ObjectStore) {
    const m = await h.store.write(h.cfg.rawBucket, name, body);
    const ref = { bucket: h.cfg.rawBucket, name, generation: m.generation };
    return { out: await rawToBronzeFlow(ref, { cfg: h.cfg, store, log, engines }), names: bronzeNames(ref) };
  }

  /** Delivers the finalize event of every Bronze object to loadWarehouse (in listing order, then reversed). */
  async function deliverAll(): Promise<void> {
    useRuntime({ config: h.cfg, log, store: h.store });
    const objs: { name: string; generation: string }[] = [];
    for await (const o of h.store.list(h.cfg.bronzeBucket)) objs.push(o);
    for (const o of [...objs, ...objs.reverse()])
      await loadWarehouse(finalized(h.cfg.bronzeBucket, o.name, o.generation));
  }

  async function bronzeRows(): Promise<number | undefined> {
    const db = await runtime().get('localDuckDb')();
    const t = await db.query(
      `SELECT 1 FROM information_schema.tables WHERE table_schema = 'bronze' AND table_name = 'orders'`,
    );
    if (!t.length) return undefined;
    return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM bronze.orders'))[0]?.n);
  }

  const row = (id: number): string =>
    JSON.stringify({ order_id: id, customer: 'c', order_date: '2024-01-01' });

  it('a file refused for COUNT_MISMATCH is never loaded, and no delete is attempted', async () => {
    const deletes: string[] = [];
    // Mixed line ends: DuckDB reads 3 records where the Node side counts 4 (see bronze.test.ts).
    const { out, names } = await convert(
      'orders/mixed.ndjson',
      `${row(1)}\r\n${row(2)}\r" \r\n${row(4)}\r\n`,
      createOnly(deletes),
    );
    assert.equal(out.status, 'quarantined');
    assert.equal((out as { error: { code: string } }).error.code, 'COUNT_MISMATCH');
    assert.deepEqual(deletes, [], 'rawToBronze may only create in Bronze');
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, names.manifest), undefined, 'not committed');
    await deliverAll();
    assert.equal(await bronzeRows(), undefined, 'nothing of the unbalanced file is loaded');
  });

  it('a balanced file is loaded once through its manifest, whatever order the events arrive in', async () => {
    const { out, names } = await convert('orders/ok.ndjson', [1, 2, 3].map(row).join('\n'), createOnly([]));
    assert.equal(out.status, 'converted');
    await deliverAll();
    assert.equal(await bronzeRows(), 3);
    const ledger = await (
      await runtime().get('localDuckDb')()
    ).query<{ name: string; status: string }>('SELECT name, status FROM ops.load_ledger');
    assert.deepEqual(ledger, [{ name: names.parquet, status: 'done' }]);
  });

  it('refuses a manifest whose counts do not balance (BAD_MANIFEST): its Parquet is not loaded', async () => {
    const { names } = await convert('orders/t.ndjson', [1, 2, 3].map(row).join('\n'), h.store);
    const manifest = JSON.parse(
      fs.readFileSync(await h.store.objectPath(h.cfg.bronzeBucket, names.manifest), 'utf8'),
    ) as BronzeManifest;
    await h.store.delete(h.cfg.bronzeBucket, names.manifest);
    await h.store.write(h.cfg.bronzeBucket, names.manifest, JSON.stringify({ ...manifest, rowsIn: 4 }));
    await deliverAll();
    assert.equal(await bronzeRows(), undefined);
    assert.ok(
      lines.some(
        (l) => l.severity === 'ERROR' && l.code === 'BAD_MANIFEST' && /do not balance/.test(l.message),
      ),
      JSON.stringify(lines.filter((l) => l.severity === 'ERROR')),
    );
  });
});
