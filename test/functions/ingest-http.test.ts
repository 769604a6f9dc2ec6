/** ingestHttp over real HTTP (functions-framework's test server): uploads into the raw bucket. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
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
    await h.cleanup();
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

  describe('hostile requests: streamed limits, JSON errors, key reuse', () => {
    beforeEach(() => setup({ SMELTER_MAX_UPLOAD_BYTES: '1MB' }));

    /** POSTs a gzip stream of zeros (up to `total` bytes decoded) and stops sending once answered. */
    function postGzipBomb(
      total: number,
    ): Promise<{ status: number; type: string; body: string; sent: number }> {
      return new Promise((resolve, reject) => {
        let left = total;
        const zeros = Buffer.alloc(1024 * 1024);
        const plain = new Readable({
          read() {
            const n = Math.min(left, zeros.length);
            left -= n;
            this.push(n ? zeros.subarray(0, n) : null);
          },
        });
        const gz = zlib.createGzip({ level: 9 });
        let sent = 0;
        gz.on('data', (c: Buffer) => (sent += c.length));
        const req = http.request(`${srv.url}/?dataset=rainfall&filename=bomb.csv`, {
          method: 'POST',
          headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' },
        });
        req.on('response', (res) => {
          plain.unpipe();
          plain.destroy();
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body, sent }),
          );
        });
        req.on('error', reject);
        plain.pipe(gz).pipe(req);
      });
    }

    it('a gzip body inflating past the limit → 413 JSON while it streams, nothing stored', async function () {
      this.timeout(60_000);
      // 2 GiB of zeros, about 2 MB compressed: refused after ~1 MB decoded, long before the end.
      // The server closes the connection after answering while this client still writes; on a loaded
      // machine the client's next write can fail (EPIPE/ECONNRESET) before it has read the answer.
      // That transport race is retried; any other outcome fails at once.
      let r: Awaited<ReturnType<typeof postGzipBomb>> | undefined;
      for (let attempt = 1; !r; attempt++) {
        try {
          r = await postGzipBomb(2 * 1024 ** 3);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (attempt >= 3 || (code !== 'EPIPE' && code !== 'ECONNRESET')) throw err;
        }
      }
      assert.equal(r.status, 413, r.body.slice(0, 300));
      assert.match(r.type, /application\/json/);
      assert.equal((JSON.parse(r.body) as Failed).error.code, 'BODY_TOO_LARGE');
      assert.ok(r.sent < 512 * 1024, `answered after ${r.sent} compressed bytes`);
      assert.deepEqual(await rawObjects(), []);
    });

    it('a gzip body within the limit is stored decoded', async () => {
      const res = await post('?dataset=rainfall&filename=small.csv', {
        headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' },
        body: new Uint8Array(zlib.gzipSync(CSV)),
      });
      assert.equal(res.status, 202);
      const { object } = (await res.json()) as Accepted;
      assert.equal(await rawText(object), CSV);
    });

    it('every error is the JSON error format: wrong or odd Content-Type, corrupt gzip, unknown encoding', async () => {
      const cases: [RequestInit, number, string][] = [
        // A JSON parser used to run on this one: an HTML 400 with a stack trace.
        [{ headers: { 'content-type': 'application/json' }, body: '{"not json' }, 202, ''],
        [{ headers: { 'content-type': 'image/png' }, body: CSV }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
        [
          { headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' }, body: 'not gzip at all' },
          400,
          'BAD_ENCODING',
        ],
        [
          {
            headers: { 'content-type': 'text/csv', 'content-encoding': 'gzip' },
            body: new Uint8Array(zlib.gzipSync(CSV).subarray(0, 20)),
          },
          400,
          'BAD_ENCODING',
        ],
        [
          { headers: { 'content-type': 'text/csv', 'content-encoding': 'zstd-x' }, body: CSV },
          415,
          'UNSUPPORTED_ENCODING',
        ],
        [{ headers: { 'content-type': 'multipart/form-data' }, body: CSV }, 400, 'BAD_MULTIPART'],
        [
          { headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: '--xyz\r\nbroken' },
          400,
          'BAD_MULTIPART',
        ],
      ];
      for (const [init, status, code] of cases) {
        const res = await post('?dataset=rainfall&filename=odd.csv', init);
        const text = await res.text();
        assert.equal(res.status, status, `${JSON.stringify(init.headers)}: ${text.slice(0, 300)}`);
        assert.match(String(res.headers.get('content-type')), /application\/json/, text.slice(0, 200));
        if (code) assert.equal((JSON.parse(text) as Failed).error.code, code, text);
      }
    });

    it('an Idempotency-Key reused for another file → 409, the first upload stands', async () => {
      const send = (body: string, filename = 'keyed.csv'): Promise<Response> =>
        post(`?dataset=rainfall&filename=${filename}`, {
          headers: { 'content-type': 'text/csv', 'idempotency-key': 'k-7' },
          body,
        });
      const first = await send(CSV);
      assert.equal(first.status, 202);
      const a = (await first.json()) as Accepted;
      const other = await send(CSV.replace('7.5', '8.5'));
      assert.equal(other.status, 409);
      const err = (await other.json()) as Failed;
      assert.equal(err.error.code, 'IDEMPOTENCY_KEY_REUSED');
      assert.equal((await send(CSV, 'renamed.csv')).status, 409, 'another file name is another file');
      const again = await send(CSV);
      assert.equal(again.status, 200);
      assert.equal(((await again.json()) as Accepted).duplicate, true);
      assert.deepEqual(await rawObjects(), [a.object]);
      assert.equal(await rawText(a.object), CSV);
    });

    it('multipart streams too: an oversize file part → 413, a gzip-encoded multipart body is decoded', async () => {
      const big = new FormData();
      big.append('dataset', 'rainfall');
      big.append('file', new Blob(['x'.repeat(2 * 1024 * 1024)], { type: 'text/csv' }), 'big.csv');
      const res = await post('', { body: big });
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as Failed).error.code, 'BODY_TOO_LARGE');
      assert.deepEqual(await rawObjects(), []);

      const boundary = 'b0undary';
      const raw = `--${boundary}\r\nContent-Disposition: form-data; name="dataset"\r\n\r\nrainfall\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="gz.csv"\r\nContent-Type: text/csv\r\n\r\n${CSV}\r\n--${boundary}--\r\n`;
      const ok = await post('', {
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-encoding': 'gzip' },
        body: new Uint8Array(zlib.gzipSync(raw)),
      });
      assert.equal(ok.status, 202);
      assert.equal(await rawText(((await ok.json()) as Accepted).object), CSV);
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
