/** ingestHttp over real HTTP (functions-framework's test server): uploads into the raw bucket. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import '../../functions/index';
import { bronzeNames, type BronzeManifest } from '../../shared/ingest/bronze';
import { postCloudEvent } from '../../shared/local/delivery';
import { storageEvent } from '../../shared/local/storage-triggers';
import { readObjectJson } from '../../shared/storage/object-store';
import { serve } from '../support/http';
import { testHome, type TestHome } from '../support/home';

const CSV =
  'station_id,region,date,rain_mm\nA1,North,2024-01-01,3\nA1,North,2024-01-02,\nB2,South,2024-01-01,7.5\n';
const OBJECT = /^rainfall\/uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]+-[A-Za-z0-9._-]+$/;

interface Accepted {
  status: number;
  bucket: string;
  object: string;
  generation: string;
  uri: string;
  bytes: number;
  duplicate: boolean;
}
interface Failed {
  error: { code: string; message: string };
}

describe('ingestHttp over HTTP (functions-framework)', () => {
  let h: TestHome;
  let srv: { url: string; close(): Promise<void> };
  async function setup(env: Record<string, string> = {}): Promise<void> {
    h = await testHome(env);
    srv = await serve('ingestHttp');
  }
  afterEach(async () => {
    await srv.close();
    h.cleanup();
  });

  const post = (query: string, init: RequestInit): Promise<Response> =>
    fetch(`${srv.url}/${query}`, { method: 'POST', ...init });
  async function rawObjects(): Promise<string[]> {
    const names: string[] = [];
    for await (const m of h.store.list(h.cfg.rawBucket)) names.push(m.name);
    return names;
  }
  async function rawText(name: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of await h.store.read(h.cfg.rawBucket, name)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  describe('with the default limits', () => {
    beforeEach(() => setup());

    it('raw body with ?dataset&filename → 202 and the object under <dataset>/uploads/', async () => {
      const res = await post('?dataset=rainfall&filename=a.csv', {
        headers: { 'content-type': 'text/csv' },
        body: CSV,
      });
      assert.equal(res.status, 202);
      assert.match(String(res.headers.get('content-type')), /application\/json/);
      const body = (await res.json()) as Accepted;
      assert.match(body.object, OBJECT);
      assert.ok(body.object.endsWith('-a.csv'), body.object);
      assert.equal(body.bucket, h.cfg.rawBucket);
      assert.equal(body.uri, `gs://${h.cfg.rawBucket}/${body.object}`);
      assert.equal(body.bytes, Buffer.byteLength(CSV));
      assert.equal(body.duplicate, false);
      assert.deepEqual(await rawObjects(), [body.object]);
      assert.equal(await rawText(body.object), CSV);
      const meta = await h.store.stat(h.cfg.rawBucket, body.object);
      assert.equal(meta?.generation, body.generation);
      assert.equal(meta?.contentType, 'text/csv');
    });

    it('raw body without a Content-Type is streamed (dataset from the X-Smelter-Dataset header)', async () => {
      const res = await post('?filename=streamed.csv', {
        headers: { 'x-smelter-dataset': 'rainfall' },
        body: new Uint8Array(Buffer.from(CSV)),
      });
      assert.equal(res.status, 202);
      const body = (await res.json()) as Accepted;
      assert.match(body.object, OBJECT);
      assert.equal(await rawText(body.object), CSV);
    });

    it('multipart/form-data with a dataset field and a file part → 202', async () => {
      const form = new FormData();
      form.append('dataset', 'rainfall');
      form.append('file', new Blob([CSV], { type: 'text/csv' }), 'obs.csv');
      const res = await post('', { body: form });
      assert.equal(res.status, 202);
      const body = (await res.json()) as Accepted;
      assert.match(body.object, OBJECT);
      assert.ok(body.object.endsWith('-obs.csv'), body.object);
      assert.equal(await rawText(body.object), CSV, 'only the file part is stored');
      assert.equal((await h.store.stat(h.cfg.rawBucket, body.object))?.contentType, 'text/csv');
    });

    it('multipart without a file part → 400 MISSING_FILE', async () => {
      const form = new FormData();
      form.append('dataset', 'rainfall');
      const res = await post('', { body: form });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as Failed).error.code, 'MISSING_FILE');
    });

    it('missing dataset → 400 MISSING_DATASET; unknown → 404 UNKNOWN_DATASET; bad name → 400', async () => {
      const cases: [string, number, string][] = [
        ['?filename=a.csv', 400, 'MISSING_DATASET'],
        ['?dataset=nosuchdataset&filename=a.csv', 404, 'UNKNOWN_DATASET'],
        ['?dataset=..%2Frainfall&filename=a.csv', 400, 'INVALID_DATASET'],
      ];
      for (const [q, status, code] of cases) {
        const res = await post(q, { headers: { 'content-type': 'text/csv' }, body: CSV });
        assert.equal(res.status, status, q);
        const body = (await res.json()) as Failed;
        assert.equal(body.error.code, code, q);
        assert.ok(body.error.message.length > 0);
      }
      assert.deepEqual(await rawObjects(), []);
    });

    it('an empty body → 400 EMPTY_BODY, buffered or streamed, nothing stored', async () => {
      for (const init of [{ headers: { 'content-type': 'text/csv' }, body: '' }, {}] as RequestInit[]) {
        const res = await post('?dataset=rainfall', init);
        assert.equal(res.status, 400);
        assert.equal(((await res.json()) as Failed).error.code, 'EMPTY_BODY');
      }
      assert.deepEqual(await rawObjects(), []);
    });

    it('GET → 405 with Allow', async () => {
      const res = await fetch(`${srv.url}/?dataset=rainfall`);
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST, PUT');
      assert.equal(((await res.json()) as Failed).error.code, 'METHOD_NOT_ALLOWED');
    });

    it('a hostile filename stays inside the bucket with a safe name', async () => {
      const hostile = [
        '../../etc/passwd',
        '..\\..\\windows\\win.ini',
        '/etc/shadow',
        '..',
        'a\u0000b.csv',
        'évil name;rm -rf.csv',
      ];
      const objects: string[] = [];
      for (const filename of hostile) {
        const res = await post(`?dataset=rainfall&filename=${encodeURIComponent(filename)}`, {
          headers: { 'content-type': 'text/csv' },
          body: CSV,
        });
        assert.equal(res.status, 202, filename);
        const { object } = (await res.json()) as Accepted;
        assert.match(object, OBJECT, filename);
        assert.ok(!object.includes('..'), object);
        objects.push(object);
      }
      // The multipart filename is hostile too.
      const form = new FormData();
      form.append('dataset', 'rainfall');
      form.append('file', new Blob([CSV], { type: 'text/csv' }), '../../../outside.csv');
      const res = await post('', { body: form });
      assert.equal(res.status, 202);
      objects.push(((await res.json()) as Accepted).object);
      assert.match(objects.at(-1) ?? '', /-outside\.csv$/);

      assert.deepEqual((await rawObjects()).sort(), [...objects].sort());
      // Nothing was written anywhere else under SMELTER_HOME's buckets.
      const bucketsDir = path.join(h.home, 'buckets');
      const files = (fs.readdirSync(bucketsDir, { recursive: true }) as string[])
        .map((f) => f.split(path.sep).join('/'))
        .filter((f) => fs.statSync(path.join(bucketsDir, f)).isFile());
      assert.deepEqual(files.sort(), objects.map((o) => `${h.cfg.rawBucket}/${o}`).sort());
    });

    it('the same Idempotency-Key twice → one object; the second answer is 200 duplicate:true', async () => {
      const send = (): Promise<Response> =>
        post('?dataset=rainfall&filename=once.csv', {
          headers: { 'content-type': 'text/csv', 'idempotency-key': 'upload-42' },
          body: CSV,
        });
      const first = await send();
      assert.equal(first.status, 202);
      const a = (await first.json()) as Accepted;
      assert.equal(a.duplicate, false);
      const second = await send();
      assert.equal(second.status, 200);
      const b = (await second.json()) as Accepted;
      assert.equal(b.duplicate, true);
      assert.equal(b.object, a.object);
      assert.equal(b.generation, a.generation);
      assert.deepEqual(await rawObjects(), [a.object]);
      // Without the key, each POST is a new upload.
      for (let i = 0; i < 2; i++)
        await post('?dataset=rainfall&filename=once.csv', {
          headers: { 'content-type': 'text/csv' },
          body: CSV,
        });
      assert.equal((await rawObjects()).length, 3);
    });

    it('an upload delivered to rawToBronze as a finalize event yields Bronze', async () => {
      const res = await post('?dataset=rainfall&filename=to-bronze.csv', {
        headers: { 'content-type': 'text/csv' },
        body: CSV,
      });
      assert.equal(res.status, 202);
      const { object, generation } = (await res.json()) as Accepted;
      const meta = await h.store.stat(h.cfg.rawBucket, object);
      assert.ok(meta);
      const r2b = await serve('rawToBronze');
      try {
        // The same event the local Eventarc stand-in would send for this object.
        assert.equal(await postCloudEvent(r2b.url, storageEvent(meta)), undefined);
      } finally {
        await r2b.close();
      }
      const names = bronzeNames({ bucket: h.cfg.rawBucket, name: object, generation });
      const manifest = await readObjectJson<BronzeManifest>(h.store, h.cfg.bronzeBucket, names.manifest);
      assert.equal(manifest?.dataset, 'rainfall');
      assert.equal(manifest?.rows, 3);
      assert.equal(manifest?.rejected, 0);
      assert.ok(await h.store.stat(h.cfg.bronzeBucket, names.parquet));
    });
  });

  describe('with SMELTER_MAX_UPLOAD_BYTES=1KB', () => {
    beforeEach(() => setup({ SMELTER_MAX_UPLOAD_BYTES: '1KB' }));
    const big = 'x'.repeat(4096);

    it('an oversize buffered body → 413 BODY_TOO_LARGE, nothing stored', async () => {
      const res = await post('?dataset=rainfall&filename=big.csv', {
        headers: { 'content-type': 'text/csv' },
        body: big,
      });
      assert.equal(res.status, 413);
      const body = (await res.json()) as Failed;
      assert.equal(body.error.code, 'BODY_TOO_LARGE');
      assert.match(body.error.message, /SMELTER_MAX_UPLOAD_BYTES/);
      assert.deepEqual(await rawObjects(), []);
    });

    it('an oversize streamed body (no Content-Type) → 413 BODY_TOO_LARGE, nothing stored', async () => {
      const res = await post('?dataset=rainfall&filename=big.csv', {
        body: new Uint8Array(Buffer.from(big)),
      });
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as Failed).error.code, 'BODY_TOO_LARGE');
      assert.deepEqual(await rawObjects(), []);
      assert.deepEqual(fs.readdirSync(path.join(h.home, 'tmp', 'objects')), [], 'no temp file left');
    });

    it('a body at the limit is accepted', async () => {
      const res = await post('?dataset=rainfall&filename=fits.csv', {
        headers: { 'content-type': 'text/csv' },
        body: 'y'.repeat(1024),
      });
      assert.equal(res.status, 202);
    });
  });
});
