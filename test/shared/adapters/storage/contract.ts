/**
 * The ObjectStore contract: one suite every driver must pass (memory, filesystem, GCS through the real
 * client against test/support/gcs-server.ts, and real GCS when SMELTER_TEST_GCS_BUCKET is set).
 *
 * Names are written under the fixture's `prefix`, so a run against a shared real bucket stays isolated.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { SmelterError, type ErrorCode } from '../../../../shared/errors';
import { compareObjectNames, LocalFile, type ObjectStore } from '../../../../shared/storage/object-store';

export interface StoreFixture {
  store: ObjectStore;
  bucket: string;
  /** Prepended to every object name (a run's private folder in a shared bucket). */
  prefix?: string;
  dispose?: () => Promise<void>;
}

export async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Rejects unless `p` rejects with a SmelterError of this code (and kind, when given); returns it. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: ErrorCode,
  kind?: 'permanent' | 'transient',
): Promise<SmelterError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected a ${code} error, but it succeeded`);
  assert.ok(err instanceof SmelterError, `expected a SmelterError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
  if (kind) assert.equal(err.kind, kind, `expected a ${kind} ${code}`);
  return err;
}

/** Deterministic pseudo-random bytes (xorshift), so a corrupted or reordered chunk cannot go unnoticed. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export function objectStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`ObjectStore contract: ${name}`, function () {
    let fx: StoreFixture;
    let store: ObjectStore;
    let bucket: string;
    let p: (n: string) => string;

    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
      bucket = fx.bucket;
      const prefix = fx.prefix ?? '';
      p = (n) => prefix + n;
      await store.ensureBucket(bucket);
    });

    afterEach(async () => {
      await fx.dispose?.();
    });

    it('writes then reads back the same bytes, from every kind of source', async () => {
      const sources: [string, () => Parameters<ObjectStore['write']>[2], string][] = [
        ['string', () => 'a,b\n1,2\n', 'a,b\n1,2\n'],
        ['buffer', () => Buffer.from('bytes\u00e9'), 'bytes\u00e9'],
        ['readable', () => Readable.from([Buffer.from('one '), Buffer.from('two')]), 'one two'],
        [
          'async iterable of strings',
          () =>
            (async function* () {
              yield 'x';
              yield 'y';
            })(),
          'xy',
        ],
      ];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contract-'));
      fs.writeFileSync(path.join(dir, 'local.csv'), 'from,disk\n1,2\n');
      sources.push(['local file', () => new LocalFile(path.join(dir, 'local.csv')), 'from,disk\n1,2\n']);
      try {
        for (const [label, src, expected] of sources) {
          const meta = await store.write(bucket, p(`src/${label}.txt`), src());
          assert.equal(meta.name, p(`src/${label}.txt`));
          assert.equal(meta.bucket, bucket);
          assert.equal(meta.size, Buffer.byteLength(expected), label);
          assert.equal(
            (await readAll(await store.read(bucket, p(`src/${label}.txt`)))).toString('utf8'),
            expected,
            label,
          );
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('round-trips an empty object', async () => {
      const meta = await store.write(bucket, p('empty.bin'), Buffer.alloc(0));
      assert.equal(meta.size, 0);
      assert.equal((await readAll(await store.read(bucket, p('empty.bin')))).length, 0);
      assert.equal((await store.stat(bucket, p('empty.bin')))?.size, 0);
    });

    it('streams a multi-MB write from a generator and reads it back intact', async () => {
      const CHUNK = 64 * 1024;
      const CHUNKS = 128; // 8 MiB
      const whole = createHash('sha256');
      async function* source(): AsyncGenerator<Buffer> {
        for (let i = 0; i < CHUNKS; i++) {
          const c = pseudoRandom(CHUNK, i + 1);
          whole.update(c);
          yield c;
        }
      }
      const meta = await store.write(bucket, p('big/stream.bin'), source());
      assert.equal(meta.size, CHUNK * CHUNKS);
      const back = await readAll(await store.read(bucket, p('big/stream.bin')));
      assert.equal(back.length, CHUNK * CHUNKS);
      assert.equal(sha256(back), whole.digest('hex'));
    });

    it('stat returns the generation (decimal digits), size, content type and metadata', async () => {
      const written = await store.write(bucket, p('stat/data.bin'), 'hello', {
        contentType: 'text/plain',
        metadata: { source: 'contract', 'with space': 'v=1' },
      });
      const st = await store.stat(bucket, p('stat/data.bin'));
      assert.ok(st);
      assert.match(st.generation, /^[1-9]\d*$/);
      assert.equal(st.generation, written.generation);
      assert.equal(st.size, 5);
      assert.equal(st.contentType, 'text/plain');
      assert.deepEqual(st.metadata, { source: 'contract', 'with space': 'v=1' });
      assert.equal(st.name, p('stat/data.bin'));
      assert.ok(!Number.isNaN(Date.parse(st.timeCreated)), 'timeCreated is a date');
      // Without an explicit type the driver guesses from the name.
      await store.write(bucket, p('stat/rows.csv'), 'a\n1\n');
      assert.equal((await store.stat(bucket, p('stat/rows.csv')))?.contentType, 'text/csv');
      assert.equal(await store.stat(bucket, p('stat/missing.bin')), undefined);
    });

    it('a second write yields a new, larger generation; the old one can no longer be read', async () => {
      const first = await store.write(bucket, p('gen/obj.txt'), 'first');
      const second = await store.write(bucket, p('gen/obj.txt'), 'second');
      assert.notEqual(second.generation, first.generation);
      assert.ok(BigInt(second.generation) > BigInt(first.generation), 'generations increase');
      assert.equal((await store.stat(bucket, p('gen/obj.txt')))?.generation, second.generation);
      assert.equal((await readAll(await store.read(bucket, p('gen/obj.txt')))).toString(), 'second');
      assert.equal(
        (
          await readAll(await store.read(bucket, p('gen/obj.txt'), { generation: second.generation }))
        ).toString(),
        'second',
      );
      await rejectsWith(
        store.read(bucket, p('gen/obj.txt'), { generation: first.generation }),
        'NOT_FOUND',
        'permanent',
      );
    });

    it('ifAbsent creates a missing object', async () => {
      const meta = await store.write(bucket, p('once/new.txt'), 'created', { ifAbsent: true });
      assert.match(meta.generation, /^\d+$/);
      assert.equal((await readAll(await store.read(bucket, p('once/new.txt')))).toString(), 'created');
    });

    it('ifAbsent on an existing object fails with PRECONDITION_FAILED and leaves the original intact', async () => {
      const orig = await store.write(bucket, p('once/kept.txt'), 'original', {
        contentType: 'text/plain',
        metadata: { v: '1' },
      });
      await rejectsWith(
        store.write(bucket, p('once/kept.txt'), 'intruder', {
          ifAbsent: true,
          contentType: 'application/json',
          metadata: { v: '2' },
        }),
        'PRECONDITION_FAILED',
        'permanent',
      );
      // The same with a source still streaming when the store learns the object exists.
      async function* streaming(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 8; i++) {
          await new Promise((r) => setImmediate(r));
          yield pseudoRandom(128 * 1024, i + 1);
        }
      }
      await rejectsWith(
        store.write(bucket, p('once/kept.txt'), streaming(), { ifAbsent: true }),
        'PRECONDITION_FAILED',
        'permanent',
      );
      const st = await store.stat(bucket, p('once/kept.txt'));
      assert.equal(st?.generation, orig.generation);
      assert.equal(st?.contentType, 'text/plain');
      assert.deepEqual(st?.metadata, { v: '1' });
      assert.equal((await readAll(await store.read(bucket, p('once/kept.txt')))).toString(), 'original');
    });

    it('ifGenerationMatch replaces exactly the live generation (compare-and-swap)', async () => {
      const first = await store.write(bucket, p('cas/state.json'), 'v1', { ifGenerationMatch: '0' });
      await rejectsWith(
        store.write(bucket, p('cas/state.json'), 'v1b', { ifGenerationMatch: '0' }),
        'PRECONDITION_FAILED',
        'permanent',
      );
      const second = await store.write(bucket, p('cas/state.json'), 'v2', {
        ifGenerationMatch: first.generation,
      });
      assert.ok(BigInt(second.generation) > BigInt(first.generation));
      await rejectsWith(
        store.write(bucket, p('cas/state.json'), 'v3', { ifGenerationMatch: first.generation }),
        'PRECONDITION_FAILED',
        'permanent',
      );
      assert.equal((await readAll(await store.read(bucket, p('cas/state.json')))).toString(), 'v2');
      await rejectsWith(
        store.write(bucket, p('cas/missing.json'), 'x', { ifGenerationMatch: first.generation }),
        'PRECONDITION_FAILED',
        'permanent',
      );
    });

    it('reading a missing object rejects with a permanent NOT_FOUND', async () => {
      await rejectsWith(store.read(bucket, p('nowhere.txt')), 'NOT_FOUND', 'permanent');
      await rejectsWith(store.read(bucket, p('no/such/folder/x.txt')), 'NOT_FOUND', 'permanent');
      await rejectsWith(
        store.read(bucket, p('nowhere.txt'), { generation: '12345' }),
        'NOT_FOUND',
        'permanent',
      );
    });

    it('lists exactly the names under a prefix, in UTF-8 byte order', async () => {
      // '\uff5e' < '😀' in UTF-8 but not in UTF-16: GCS's order is the bytes'.
      const inside = ['list/a/b/c.txt', 'list/a/b1', 'list/a/bz.csv', 'list/a/b\uff5e', 'list/a/b😀'];
      const outside = ['list/a/c.txt', 'list/b/a/b', 'list/a.txt', 'listx/a/b'];
      for (const n of [...outside, ...inside].reverse()) await store.write(bucket, p(n), n);
      const got = await collect(store.list(bucket, p('list/a/b')));
      assert.deepEqual(
        got.map((m) => m.name),
        inside.map(p),
      );
      assert.deepEqual(
        [...inside].sort(compareObjectNames),
        inside,
        'the expectation is itself in byte order',
      );
      for (const m of got) {
        assert.match(m.generation, /^\d+$/);
        assert.equal(m.size, Buffer.byteLength(m.name.slice(p('').length)));
        assert.equal(m.bucket, bucket);
      }
      const all = (await collect(store.list(bucket, p('list')))).map((m) => m.name);
      assert.deepEqual(all, [...inside, ...outside].map(p).sort(compareObjectNames));
      assert.deepEqual(await collect(store.list(bucket, p('list/zzz'))), []);
    });

    it('delete returns true, then false; the object is gone', async () => {
      await store.write(bucket, p('del/x.txt'), 'x');
      await store.write(bucket, p('del/y.txt'), 'y');
      assert.equal(await store.delete(bucket, p('del/x.txt')), true);
      assert.equal(await store.delete(bucket, p('del/x.txt')), false);
      assert.equal(await store.stat(bucket, p('del/x.txt')), undefined);
      await rejectsWith(store.read(bucket, p('del/x.txt')), 'NOT_FOUND', 'permanent');
      assert.deepEqual(
        (await collect(store.list(bucket, p('del/')))).map((m) => m.name),
        [p('del/y.txt')],
      );
    });

    it('a source that fails mid-write rejects the write and leaves no object', async () => {
      const boom = new Error('source failed mid-stream');
      async function* failing(): AsyncGenerator<Buffer> {
        yield pseudoRandom(512 * 1024, 7);
        yield pseudoRandom(512 * 1024, 8);
        throw boom;
      }
      await assert.rejects(store.write(bucket, p('crash/new.bin'), failing()));
      assert.equal(await store.stat(bucket, p('crash/new.bin')), undefined);
      assert.deepEqual(await collect(store.list(bucket, p('crash/'))), []);
      await rejectsWith(store.read(bucket, p('crash/new.bin')), 'NOT_FOUND');
    });

    it('a source that fails mid-overwrite leaves the previous version intact', async () => {
      const before = await store.write(bucket, p('crash/kept.txt'), 'previous version');
      let pushed = 0;
      const failing = new Readable({
        read() {
          if (pushed++ < 3) this.push(Buffer.alloc(256 * 1024, pushed));
          else this.destroy(new Error('disk on fire'));
        },
      });
      await assert.rejects(store.write(bucket, p('crash/kept.txt'), failing));
      const st = await store.stat(bucket, p('crash/kept.txt'));
      assert.equal(st?.generation, before.generation);
      assert.equal(st?.size, 'previous version'.length);
      assert.equal(
        (await readAll(await store.read(bucket, p('crash/kept.txt')))).toString(),
        'previous version',
      );
    });

    it('concurrent ifAbsent writers of one name: exactly one wins', async () => {
      const N = 6;
      const results = await Promise.allSettled(
        Array.from({ length: N }, (_, i) =>
          store.write(
            bucket,
            p('race/winner.txt'),
            Readable.from([Buffer.from(`writer ${i} `), Buffer.from('done')]),
            {
              ifAbsent: true,
            },
          ),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.equal(won.length, 1, `winners: ${JSON.stringify(won)}`);
      for (const r of results) {
        if (r.status === 'rejected') {
          assert.ok(r.reason instanceof SmelterError, String(r.reason));
          assert.equal(r.reason.code, 'PRECONDITION_FAILED');
        }
      }
      assert.equal(
        (await readAll(await store.read(bucket, p('race/winner.txt')))).toString(),
        `writer ${won[0]} done`,
      );
    });

    it('names with spaces, unicode, "=" and nested folders round-trip', async () => {
      const names = [
        'odd names/with space.csv',
        'odd names/ingest_date=2024-05-01/part=1/file.ndjson',
        'odd names/naïve/日本語/データ 😀.json',
        'odd names/a+b&c?d#e%20f.txt',
        'odd names/quote\'and"double.txt',
      ];
      for (const n of names) {
        const meta = await store.write(bucket, p(n), `content of ${n}`);
        assert.equal(meta.name, p(n));
      }
      for (const n of names) {
        assert.equal((await readAll(await store.read(bucket, p(n)))).toString(), `content of ${n}`);
        assert.equal((await store.stat(bucket, p(n)))?.name, p(n));
      }
      assert.deepEqual(
        (await collect(store.list(bucket, p('odd names/')))).map((m) => m.name),
        names.map(p).sort(compareObjectNames),
      );
    });
  });
}
