import assert from 'node:assert/strict';
import sinon from 'sinon';
import '../../functions/index';
import { transient } from '../../shared/errors';
import { runtime } from '../../shared/composition/runtime';
import { bronzeNames } from '../../shared/ingest/bronze';
import { serve } from '../support/http';
import { readAll, testHome, type TestHome } from '../support/home';

const CSV = 'station_id,region,date,rain_mm\nA1,North,2024-01-01,3\nA1,North,2024-01-02,\n';

describe('rawToBronze over HTTP (functions-framework)', function () {
  let h: TestHome;
  let srv: { url: string; close(): Promise<void> };
  beforeEach(async () => {
    h = await testHome();
    srv = await serve('rawToBronze');
  });
  afterEach(async () => {
    await srv.close();
    await h.cleanup();
  });

  async function putRaw(name: string): Promise<{ generation: string; size: number }> {
    return h.store.write(h.cfg.rawBucket, name, CSV, { contentType: 'text/csv' });
  }
  const objectData = (
    name: string,
    m: { generation: string; size: number },
    numeric = false,
  ): Record<string, unknown> => ({
    kind: 'storage#object',
    bucket: h.cfg.rawBucket,
    name,
    generation: numeric ? Number(m.generation) : m.generation,
    metageneration: '1',
    size: numeric ? m.size : String(m.size),
    contentType: 'text/csv',
    timeCreated: new Date().toISOString(),
    updated: new Date().toISOString(),
  });
  /** POSTs a binary-mode storage CloudEvent, as Eventarc delivers it. */
  const postBinary = (
    data: unknown,
    ce: { id: string; subject?: string; time?: string },
  ): Promise<Response> =>
    fetch(srv.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': ce.id,
        'ce-source': `//storage.googleapis.com/projects/_/buckets/${h.cfg.rawBucket}`,
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        ...(ce.subject ? { 'ce-subject': ce.subject } : {}),
        ...(ce.time ? { 'ce-time': ce.time } : {}),
      },
      body: JSON.stringify(data),
    });

  async function manifestExists(name: string, generation: string): Promise<boolean> {
    const n = bronzeNames({ bucket: h.cfg.rawBucket, name, generation });
    return (await h.store.stat(h.cfg.bronzeBucket, n.manifest)) !== undefined;
  }

  it('accepts a binary-mode CloudEvent (Eventarc shape) and writes Bronze', async () => {
    const name = 'rainfall/bin.csv';
    const m = await putRaw(name);
    const res = await postBinary(objectData(name, m), {
      id: 'evt-1',
      subject: `objects/${name}`,
      time: new Date().toISOString(),
    });
    assert.equal(res.status, 204);
    assert.ok(await manifestExists(name, m.generation));
  });

  it('accepts a structured-mode CloudEvent with numeric generation and size', async () => {
    const name = 'rainfall/structured.csv';
    const m = await putRaw(name);
    const res = await fetch(srv.url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: 'evt-2',
        source: `//storage.googleapis.com/projects/_/buckets/${h.cfg.rawBucket}`,
        type: 'google.cloud.storage.object.v1.finalized',
        subject: `objects/${name}`,
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: objectData(name, m, true),
      }),
    });
    assert.equal(res.status, 204);
    // Numbers above 2^53 lose precision in JSON; the local generations (µs) stay below it.
    assert.ok(await manifestExists(name, m.generation));
  });

  it('accepts the legacy background-event envelope that functions-framework converts', async () => {
    const name = 'rainfall/legacy.csv';
    const m = await putRaw(name);
    const res = await fetch(srv.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        context: {
          eventId: 'legacy-1',
          timestamp: new Date().toISOString(),
          eventType: 'google.storage.object.finalize',
          resource: {
            service: 'storage.googleapis.com',
            name: `projects/_/buckets/${h.cfg.rawBucket}/objects/${name}`,
            type: 'storage#object',
          },
        },
        data: objectData(name, m),
      }),
    });
    assert.equal(res.status, 204);
    assert.ok(await manifestExists(name, m.generation));
  });

  it('duplicate deliveries of one event answer 204 and leave a single output', async () => {
    const name = 'rainfall/dup.csv';
    const m = await putRaw(name);
    const send = (): Promise<Response> =>
      postBinary(objectData(name, m), { id: 'same-id', subject: `objects/${name}` });
    for (let i = 0; i < 3; i++) assert.equal((await send()).status, 204);
    let parquet = 0;
    for await (const o of h.store.list(h.cfg.bronzeBucket)) if (o.name.endsWith('.parquet')) parquet++;
    assert.equal(parquet, 1);
  });

  it('acknowledges (2xx) permanent problems and malformed events instead of asking for endless retries', async () => {
    const post = (data: unknown): Promise<Response> => postBinary(data, { id: 'x' });
    assert.equal((await post({ bucket: h.cfg.rawBucket })).status, 204, 'no name');
    assert.equal(
      (await post({ bucket: h.cfg.rawBucket, name: 'rainfall/x.csv', generation: 'abc' })).status,
      204,
      'bad generation',
    );
    assert.equal(
      (await post({ bucket: 'someone-elses', name: 'a/b.csv', generation: '1' })).status,
      204,
      'foreign bucket',
    );
    const m = await h.store.write(h.cfg.rawBucket, 'unknown_ds/a.csv', 'a\n1\n');
    assert.equal(
      (await post({ bucket: h.cfg.rawBucket, name: 'unknown_ds/a.csv', generation: m.generation })).status,
      204,
    );
    let failed = 0;
    for await (const o of h.store.list(h.cfg.quarantineBucket, '_failed/unknown_ds/'))
      if (o.name.endsWith('error.json')) failed++;
    assert.equal(failed, 1);
  });

  it('acknowledges names the store cannot use (empty segment, control character) with a quarantine record', async () => {
    // Such objects can exist on GCS; the store refuses the names, so there is nothing to read.
    for (const [i, name] of ['rainfall//x.csv', 'rainfall/a\tb.csv', 'rainfall/./y.csv'].entries()) {
      const generation = String(1_700_000_000_000_000 + i);
      const res = await postBinary(
        { bucket: h.cfg.rawBucket, name, generation, size: '10', contentType: 'text/csv' },
        { id: `odd-${i}` },
      );
      assert.equal(res.status, 204, JSON.stringify(name));
      const n = bronzeNames({ bucket: h.cfg.rawBucket, name, generation });
      const record = JSON.parse(
        (await readAll(await h.store.read(h.cfg.quarantineBucket, `${n.failed}/error.json`))).toString(),
      ) as { source: { name: string }; error: { code: string } };
      assert.equal(record.source.name, name);
      assert.equal(record.error.code, 'INVALID_OBJECT_NAME');
    }
  });

  it('answers 500 on a transient fault so the platform retries', async () => {
    const name = 'rainfall/transient.csv';
    const m = await putRaw(name);
    // The GCP boundary failing (e.g. a 503 from storage): a transient error.
    const stub = sinon
      .stub(runtime().store, 'write')
      .rejects(transient('STORAGE_UNAVAILABLE', '503 backend error'));
    const res = await postBinary(objectData(name, m), { id: 't', time: new Date().toISOString() });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('x-google-status'), 'error');
    stub.restore();
  });

  it('acknowledges a transient failure of an event older than SMELTER_MAX_EVENT_AGE_MS (no endless retries)', async () => {
    const name = 'rainfall/old.csv';
    const m = await putRaw(name);
    const stub = sinon
      .stub(runtime().store, 'write')
      .rejects(transient('STORAGE_UNAVAILABLE', '503 backend error'));
    const res = await postBinary(objectData(name, m), {
      id: 'old',
      time: new Date(Date.now() - 7 * 3600_000).toISOString(),
    });
    stub.restore();
    assert.equal(res.status, 204);
  });

  it('quarantines a file still failing transiently past SMELTER_MAX_EVENT_AGE_MS as RETRIES_EXHAUSTED', async () => {
    const name = 'rainfall/parked.csv';
    const m = await putRaw(name);
    // Bronze is down; quarantine is not.
    const store = runtime().store;
    const write = store.write.bind(store);
    const stub = sinon
      .stub(store, 'write')
      .callsFake((bucket, ...rest) =>
        bucket === h.cfg.bronzeBucket
          ? Promise.reject(transient('STORAGE_UNAVAILABLE', '503 backend error'))
          : write(bucket, ...rest),
      );
    const res = await postBinary(objectData(name, m), {
      id: 'parked',
      time: new Date(Date.now() - 7 * 3600_000).toISOString(),
    });
    stub.restore();
    assert.equal(res.status, 204);
    const n = bronzeNames({ bucket: h.cfg.rawBucket, name, generation: m.generation });
    const record = JSON.parse(
      (await readAll(await h.store.read(h.cfg.quarantineBucket, `${n.failed}/error.json`))).toString(),
    ) as { error: { code: string; message: string; lastCode: string } };
    assert.equal(record.error.code, 'RETRIES_EXHAUSTED');
    assert.equal(record.error.lastCode, 'STORAGE_UNAVAILABLE');
    assert.match(record.error.message, /after publication .*503 backend error/);
  });
});
