/**
 * The loadWarehouse entry point: dispatch on the CloudEvent type (storage finalized from the bronze
 * bucket, Pub/Sub messagePublished from the refresh topic), objects it ignores, and how errors reach
 * the platform (transient → throw for a retry; permanent → acknowledged, logged with the model/query).
 */
import assert from 'node:assert/strict';
import type { CloudEventV1 } from 'cloudevents';
import sinon from 'sinon';
import { loadWarehouse, parseRefreshMessage } from '../../functions/load-warehouse';
import { loadConfig } from '../../shared/config';
import { transient } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import { closeRuntime, useRuntime } from '../../shared/composition/runtime';
import { rainfallRows } from '../../shared/samples/domains';
import { testWarehouse, type TestWarehouse } from '../support/warehouse';

const storageEvent = (
  bucket: string,
  name: string,
  generation: string | number,
  time = new Date().toISOString(),
): CloudEventV1<unknown> => ({
  id: `e-${name}`,
  type: 'google.cloud.storage.object.v1.finalized',
  source: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
  specversion: '1.0',
  subject: `objects/${name}`,
  time,
  data: { bucket, name, generation: String(generation), size: '100' },
});

const refreshEvent = (body?: unknown, attributes?: Record<string, string>): CloudEventV1<unknown> => ({
  id: 'm-1',
  type: 'google.cloud.pubsub.topic.v1.messagePublished',
  source: '//pubsub.googleapis.com/projects/p/topics/refresh',
  specversion: '1.0',
  data: {
    message: {
      data:
        body === undefined
          ? undefined
          : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)).toString('base64'),
      attributes,
      messageId: '1',
    },
  },
});

describe('loadWarehouse function', () => {
  let t: TestWarehouse;
  const lines: string[] = [];
  beforeEach(async () => {
    t = await testWarehouse();
    lines.length = 0;
    const log = createLogger({ format: 'json', sink: (l) => lines.push(l) });
    useRuntime({
      config: loadConfig({}, { home: t.home, bronzeBucket: 'bronze', maxEventAgeMs: 3600_000 }),
      log,
      store: t.store,
      warehouse: Promise.resolve(t.wh),
    });
  });
  afterEach(async () => {
    await closeRuntime();
    sinon.restore();
    await t.close();
  });

  it('loads a Bronze Parquet when its manifest is finalized, and a duplicate delivery is a no-op', async () => {
    const o = await t.bronze('rainfall', rainfallRows({ stations: 2, days: 3 }));
    // The Parquet's own event loads nothing: the manifest, written once the counts balance, commits it.
    await loadWarehouse(storageEvent(o.bucket, o.name, o.generation));
    assert.equal(
      (await t.rows(`SELECT * FROM information_schema.tables WHERE table_schema = 'bronze'`)).length,
      0,
    );
    const m = await t.commit(o, { rows: 6 });
    await loadWarehouse(storageEvent(m.bucket, m.name, m.generation));
    assert.equal(Number((await t.rows('SELECT COUNT(*) AS n FROM gold.rainfall_daily'))[0]?.n), 6);
    await loadWarehouse(storageEvent(m.bucket, m.name, Number(m.generation)));
    assert.equal(Number((await t.rows('SELECT COUNT(*) AS n FROM bronze.rainfall'))[0]?.n), 6);
    assert.ok(lines.some((l) => JSON.parse(l).message === 'loaded into the warehouse'));
  });

  it('ignores Parquet objects alone, manifests that are gone, other objects and other buckets; acknowledges unusable events', async () => {
    const spy = sinon.spy(t.wh, 'loadFinalized');
    await loadWarehouse(storageEvent('bronze', 'rainfall/ingest_date=2024-01-01/a-12345678-g1.parquet', 2));
    await loadWarehouse(
      storageEvent('bronze', 'rainfall/ingest_date=2024-01-01/a-12345678-g1.manifest.json', 2),
    );
    await loadWarehouse(storageEvent('bronze', 'rainfall/notes.txt', 2));
    await loadWarehouse(storageEvent('raw', 'rainfall/a.parquet', 2));
    await loadWarehouse({ ...storageEvent('bronze', 'x', 1), data: { bucket: 'bronze' } });
    assert.deepEqual(await Promise.all(spy.returnValues), [
      { status: 'skipped', reason: 'Parquet: loaded when its manifest (the commit marker) lands' },
      { status: 'skipped', reason: 'manifest no longer exists' },
      { status: 'skipped', reason: 'not a .parquet object' },
    ]);
    assert.equal(spy.callCount, 3);
  });

  it('runs a refresh on a refresh-topic message, for one dataset when the message names it', async () => {
    const stub = sinon.stub(t.wh, 'refresh').resolves({ retried: [], skipped: [] });
    await loadWarehouse(refreshEvent({ reason: 'schedule' }));
    await loadWarehouse(refreshEvent({ dataset: 'ecommerce' }));
    await loadWarehouse(refreshEvent('not json', { dataset: 'rainfall' }));
    assert.deepEqual(
      stub.getCalls().map((c) => c.args[0]),
      [
        { trigger: 'refresh' },
        { dataset: 'ecommerce', trigger: 'refresh ecommerce' },
        { dataset: 'rainfall', trigger: 'refresh rainfall' },
      ],
    );
    assert.deepEqual(parseRefreshMessage(undefined), {});
  });

  it('acknowledges permanent failures with their reason and throws transient ones for a retry', async () => {
    // No contract for this dataset: permanent, acknowledged.
    const name = 'nope/ingest_date=2024-01-01/a-12345678-g1.parquet';
    const p = await t.store.write('bronze', name, 'PAR1');
    const m = await t.commit({ bucket: 'bronze', name, generation: p.generation }, { rows: 1 });
    await loadWarehouse(storageEvent('bronze', m.name, m.generation));
    const logged = lines
      .map((l) => JSON.parse(l) as { severity: string; code?: string })
      .find((l) => l.severity === 'ERROR');
    assert.equal(logged?.code, 'UNKNOWN_DATASET');

    const stub = sinon
      .stub(t.wh, 'loadFinalized')
      .rejects(transient('WAREHOUSE_UNAVAILABLE', 'DuckDB: could not set lock'));
    await assert.rejects(
      loadWarehouse(storageEvent('bronze', 'rainfall/x-g1.parquet', 5)),
      /could not set lock/,
    );
    // …unless the event is older than SMELTER_MAX_EVENT_AGE_MS: then it is given up, loudly.
    await loadWarehouse(
      storageEvent('bronze', 'rainfall/x-g1.parquet', 5, new Date(Date.now() - 2 * 3600_000).toISOString()),
    );
    assert.equal(stub.callCount, 2);
    assert.ok(lines.some((l) => /giving up/.test(l)));
  });
});
