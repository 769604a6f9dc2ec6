/**
 * GCS-specific behaviour of the driver, beyond the shared contract: what goes over the wire (resumable
 * uploads, `ifGenerationMatch=0`, pinned generations), error mapping (transient vs permanent), retries,
 * abandoned uploads, checksum failures, bucket checks, and the `apiEndpoint` path layout.
 */
import { Storage } from '@google-cloud/storage';
import assert from 'node:assert/strict';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GcsObjectStore, mapGcsError } from '../../../../shared/adapters/storage/gcs';
import { SmelterError } from '../../../../shared/errors';
import {
  crc32c,
  crc32cBase64,
  startGcsServer,
  useGcsEmulatorEnv,
  type GcsTestServer,
} from '../../../support/gcs-server';
import { collect, pseudoRandom, readAll, rejectsWith } from './contract';

const BUCKET = 'gcs-driver';

describe('GCS driver specifics (test server)', () => {
  let srv: GcsTestServer;
  let restoreEnv: () => void;
  let store: GcsObjectStore;
  /** No client-side retries: each injected fault surfaces at once. */
  let noRetry: GcsObjectStore;

  before(async () => {
    srv = await startGcsServer();
    restoreEnv = useGcsEmulatorEnv(srv.url);
    store = new GcsObjectStore({ projectId: 'smelter-test' });
    noRetry = new GcsObjectStore({
      storage: new Storage({ projectId: 'smelter-test', retryOptions: { autoRetry: false } }),
    });
  });

  after(async () => {
    restoreEnv();
    await srv.close();
  });

  beforeEach(() => {
    srv.reset();
    srv.createBucket(BUCKET);
  });

  it('the test server computes CRC32C as GCS does', () => {
    // The standard check value of CRC-32C (Castagnoli).
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32cBase64(Buffer.alloc(0)), 'AAAAAA==');
    // Incremental use gives the same result as one pass.
    const data = pseudoRandom(10_000, 3);
    assert.equal(crc32c(data.subarray(5000), crc32c(data.subarray(0, 5000))), crc32c(data));
  });

  it('uploads with a resumable session; create-only sends ifGenerationMatch=0', async () => {
    await store.write(BUCKET, 'a.csv', 'x\n');
    await store.write(BUCKET, 'b.csv', 'y\n', { ifAbsent: true });
    const starts = srv.requests.filter(
      (r) => r.method === 'POST' && r.path === `/upload/storage/v1/b/${BUCKET}/o`,
    );
    assert.deepEqual(
      starts.map((r) => [r.query.name, r.query.uploadType, r.query.ifGenerationMatch]),
      [
        ['a.csv', 'resumable', undefined],
        ['b.csv', 'resumable', '0'],
      ],
    );
    assert.ok(srv.requests.some((r) => r.method === 'PUT' && r.query.upload_id && r.status === 200));
  });

  it('reads a pinned generation with the generation parameter, over the /b/... paths', async () => {
    const m = await store.write(BUCKET, 'dir/g.txt', 'pinned');
    assert.equal(
      (await readAll(await store.read(BUCKET, 'dir/g.txt', { generation: m.generation }))).toString(),
      'pinned',
    );
    const get = srv.requests.find((r) => r.method === 'GET' && r.query.alt === 'media');
    assert.equal(get?.path, `/b/${BUCKET}/o/dir%2Fg.txt`);
    assert.equal(get?.query.generation, m.generation);
    assert.equal(srv.getObject(BUCKET, 'dir/g.txt')?.generation, m.generation);
  });

  it('maps 5xx, 429 and dropped connections to a transient STORAGE_UNAVAILABLE with the cause', async () => {
    await store.write(BUCKET, 'there.txt', 'here');
    const ops: [string, () => Promise<unknown>][] = [
      ['stat', () => noRetry.stat(BUCKET, 'there.txt')],
      ['read', () => noRetry.read(BUCKET, 'there.txt')],
      ['write', () => noRetry.write(BUCKET, 'new.txt', 'x')],
      ['list', () => collect(noRetry.list(BUCKET))],
      ['delete', () => noRetry.delete(BUCKET, 'there.txt')],
      ['ensureBucket', () => noRetry.ensureBucket(BUCKET)],
    ];
    for (const fault of ['503', '500', '429', 'drop'] as const) {
      for (const [op, run] of ops) {
        if (fault === 'drop') srv.dropNext(1);
        else srv.failNext(1, Number(fault));
        const err = await rejectsWith(run(), 'STORAGE_UNAVAILABLE', 'transient');
        assert.ok(err.cause, `${op} after ${fault} keeps the cause`);
        if (fault !== 'drop') assert.equal(err.details.status, Number(fault), `${op} after ${fault}`);
      }
    }
    // Nothing was lost on the way.
    assert.equal((await readAll(await store.read(BUCKET, 'there.txt'))).toString(), 'here');
  });

  it('maps 404 to a permanent NOT_FOUND and 412 to a permanent PRECONDITION_FAILED', async () => {
    await rejectsWith(store.read('no-such-bucket', 'x'), 'NOT_FOUND', 'permanent');
    await store.write(BUCKET, 'x', '1');
    srv.failNext(1, 412, (method) => method === 'GET');
    await rejectsWith(store.read(BUCKET, 'x'), 'PRECONDITION_FAILED', 'permanent');
  });

  it('retries a transient failure when the client is allowed to', async () => {
    // Short delays for the JSON API's retries. (Uploads need maxRetryDelay >= 1 s: their retry library
    // rejects a maximum below its 1 s minimum — so this store must not write.)
    const fast = new GcsObjectStore({
      storage: new Storage({
        projectId: 'smelter-test',
        retryOptions: { maxRetries: 2, retryDelayMultiplier: 1, maxRetryDelay: 0.02 },
      }),
    });
    await store.write(BUCKET, 'r.txt', 'retried');
    srv.failNext(1, 503);
    assert.equal((await fast.stat(BUCKET, 'r.txt'))?.size, 7);
    srv.failNext(1, 503);
    assert.equal((await readAll(await fast.read(BUCKET, 'r.txt'))).toString(), 'retried');
    srv.failNext(1, 429);
    assert.equal((await collect(fast.list(BUCKET))).length, 1);
    assert.equal(srv.requests.filter((r) => r.status === 503 || r.status === 429).length, 3);
  });

  it('a failed source cuts its upload off instead of leaving the request hanging', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield pseudoRandom(300 * 1024, 1);
      await sleep(20); // let the upload's PUT start
      throw new Error('source broke');
    }
    await assert.rejects(store.write(BUCKET, 'cut.bin', failing()), /source broke/);
    // The server sees the PUT end without a complete body (status 0); without the abort it never ends.
    for (let i = 0; i < 100 && !srv.requests.some((r) => r.method === 'PUT' && r.status === 0); i++)
      await sleep(20);
    assert.ok(
      srv.requests.some((r) => r.method === 'PUT' && r.status === 0),
      JSON.stringify(srv.requests.map((r) => `${r.method} ${r.status}`)),
    );
    assert.deepEqual(srv.objectNames(BUCKET), []);
    // The store still works afterwards.
    await store.write(BUCKET, 'cut.bin', 'fine');
    assert.equal(srv.getObject(BUCKET, 'cut.bin')?.data.toString(), 'fine');
  });

  it('the source error itself is what a failed write rejects with', async () => {
    const boom = Object.assign(new Error('upstream ECONNRESET'), { code: 'ECONNRESET' });
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('partial');
      throw boom;
    }
    await assert.rejects(store.write(BUCKET, 'src.bin', failing()), (err) => err === boom);
  });

  it('an upload whose checksum GCS does not confirm fails as transient and leaves no object', async () => {
    srv.corruptNextUploads(1);
    const err = await rejectsWith(
      store.write(BUCKET, 'bad.bin', pseudoRandom(4096, 9)),
      'STORAGE_UNAVAILABLE',
      'transient',
    );
    assert.match(String((err.cause as { code?: unknown }).code), /FILE_NO_UPLOAD/);
    // The client deleted what GCS stored.
    assert.deepEqual(srv.objectNames(BUCKET), []);
  });

  it('a download cut off mid-body fails as transient instead of hanging', async () => {
    // The client never ends such a download (the answer has a Content-Length): the stall watchdog must.
    const watched = new GcsObjectStore({ projectId: 'smelter-test', readStallTimeoutMs: 200 });
    await store.write(BUCKET, 'long.bin', pseudoRandom(1024 * 1024, 4));
    srv.truncateNextDownloads(1);
    const r = await watched.read(BUCKET, 'long.bin');
    const err = await readAll(r).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof SmelterError, String(err));
    assert.equal(err.code, 'STORAGE_UNAVAILABLE');
    assert.equal(err.kind, 'transient');
  });

  it('a reader that stops early does not disturb later reads', async () => {
    await store.write(BUCKET, 'early.bin', pseudoRandom(2 * 1024 * 1024, 5));
    const r = await store.read(BUCKET, 'early.bin');
    for await (const _chunk of r) break; // destroys the stream
    await finished(r).catch(() => undefined); // closes once the client's download is torn down
    assert.equal((await readAll(await store.read(BUCKET, 'early.bin'))).length, 2 * 1024 * 1024);
  });

  it('list follows page tokens', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `paged/${String(i).padStart(2, '0')}.txt`);
    for (const n of names) await store.write(BUCKET, n, n);
    await store.write(BUCKET, 'other.txt', 'o');
    const paged = new GcsObjectStore({ projectId: 'smelter-test', listPageSize: 3 });
    assert.deepEqual(
      (await collect(paged.list(BUCKET, 'paged/'))).map((m) => m.name),
      names,
    );
    assert.equal(srv.requests.filter((r) => r.method === 'GET' && r.path === `/b/${BUCKET}/o`).length, 3);
  });

  it('ensureBucket checks existence and creates only when allowed', async () => {
    await store.ensureBucket(BUCKET);
    await rejectsWith(store.ensureBucket('not-there'), 'NOT_FOUND', 'permanent');
    assert.equal(
      srv.requests.some((r) => r.method === 'POST' && r.path === '/b'),
      false,
    );
    const creating = new GcsObjectStore({ projectId: 'smelter-test', createBuckets: true });
    await creating.ensureBucket('made-here');
    await creating.ensureBucket('made-here');
    assert.ok(srv.requests.some((r) => r.method === 'POST' && r.path === '/b'));
    await creating.write('made-here', 'x', 'y');
    await rejectsWith(store.ensureBucket('Bad_Name'), 'INVALID_BUCKET_NAME', 'permanent');
  });

  it('rejects invalid object names before any request', async () => {
    const before = srv.requests.length;
    await rejectsWith(store.write(BUCKET, 'a\u0000b', 'x'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.read(BUCKET, ''), 'INVALID_OBJECT_NAME', 'permanent');
    assert.equal(srv.requests.length, before);
  });

  it('maps every error shape the client produces', () => {
    const cases: [unknown, string, string][] = [
      [{ code: 412, message: 'conditionNotMet' }, 'PRECONDITION_FAILED', 'permanent'], // resumable finalize: a plain object
      [Object.assign(new Error('x'), { response: { status: 404 } }), 'NOT_FOUND', 'permanent'], // GaxiosError
      [Object.assign(new Error('x'), { status: 502 }), 'STORAGE_UNAVAILABLE', 'transient'],
      [Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), 'STORAGE_UNAVAILABLE', 'transient'],
      [Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'STORAGE_UNAVAILABLE', 'transient'],
      [Object.assign(new Error('x'), { code: 403 }), 'STORAGE_UNAVAILABLE', 'transient'],
      [Object.assign(new Error('x'), { code: 400 }), 'INTERNAL', 'permanent'],
      [
        new RangeError('The offset is lower than the number of bytes written'),
        'STORAGE_UNAVAILABLE',
        'transient',
      ],
    ];
    for (const [err, code, kind] of cases) {
      const m = mapGcsError(err, 'gs://b/o');
      assert.equal(m.code, code, JSON.stringify(err));
      assert.equal(m.kind, kind, JSON.stringify(err));
      assert.equal(m.cause, err);
    }
    const already = new SmelterError('NOT_FOUND', 'x');
    assert.equal(mapGcsError(already, 'gs://b/o'), already);
  });
});

describe('GCS driver with apiEndpoint (no STORAGE_EMULATOR_HOST)', () => {
  let srv: GcsTestServer;
  let restoreEnv: () => void;

  before(async () => {
    srv = await startGcsServer();
    // Silence metadata lookups, then take the emulator variable away: the client must use apiEndpoint.
    restoreEnv = useGcsEmulatorEnv(srv.url);
    delete process.env.STORAGE_EMULATOR_HOST;
  });

  after(async () => {
    restoreEnv();
    await srv.close();
  });

  it('talks to /storage/v1/b/... and /upload/storage/v1/b/...', async () => {
    srv.createBucket(BUCKET);
    const store = new GcsObjectStore({ projectId: 'smelter-test', apiEndpoint: srv.url });
    await store.ensureBucket(BUCKET);
    const m = await store.write(BUCKET, 'v1/x.txt', 'via apiEndpoint', { ifAbsent: true });
    assert.equal((await readAll(await store.read(BUCKET, 'v1/x.txt'))).toString(), 'via apiEndpoint');
    assert.equal((await store.stat(BUCKET, 'v1/x.txt'))?.generation, m.generation);
    assert.deepEqual(
      (await collect(store.list(BUCKET, 'v1/'))).map((o) => o.name),
      ['v1/x.txt'],
    );
    assert.equal(await store.delete(BUCKET, 'v1/x.txt'), true);
    const paths = new Set(srv.requests.map((r) => r.path.split('/').slice(0, 4).join('/')));
    assert.deepEqual([...paths].sort(), ['/storage/v1/b', '/upload/storage/v1'].sort());
  });
});
