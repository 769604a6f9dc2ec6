/**
 * The filesystem driver's write path: in-memory sources (string / Buffer / Uint8Array) take a lean
 * route (one handle, no streams, no re-stat, folders created only when missing, the temp folder made
 * once). These pin down what that route relies on: it produces exactly what a streamed write produces,
 * recovers when folders disappear between writes, answers ifAbsent and conflicts as before, returns
 * what stat() returns, and never leaves a temp file behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sinon from 'sinon';
import { Readable } from 'node:stream';
import { FsObjectStore, sameFile, settledBefore } from '../../../../shared/adapters/storage/fs';
import {
  LocalFile,
  type ObjectMeta,
  type WriteOptions,
  type WriteSource,
} from '../../../../shared/storage/object-store';
import { collect, pseudoRandom, readAll, rejectsWith } from './contract';

describe('FsObjectStore: the write path for in-memory sources', () => {
  let home: string;
  let store: FsObjectStore;
  let tmpDir: string;
  const B = 'archive';

  beforeEach(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-write-'));
    store = new FsObjectStore(home);
    await store.ensureBucket(B);
    tmpDir = path.join(home, 'tmp', 'objects');
  });

  afterEach(async () => {
    await fs.rm(home, { recursive: true, force: true });
  });

  const md5 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
  const temps = async (): Promise<string[]> => fs.readdir(tmpDir).catch(() => []);

  it('string, Buffer, Uint8Array and streamed sources give the same object, size and md5', async () => {
    const text = '{"event_id":"e1","note":"naïve 😀"}\n'.repeat(200);
    const bytes = Buffer.from(text, 'utf8');
    // A Uint8Array view into a larger buffer: only the viewed bytes may be written.
    const padded = Buffer.concat([Buffer.from('XX'), bytes, Buffer.from('YY')]);
    const sources: [string, WriteSource][] = [
      ['string', text],
      ['buffer', bytes],
      ['uint8array', new Uint8Array(padded.buffer, padded.byteOffset + 2, bytes.length) as unknown as Buffer],
      ['readable', Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)])],
      [
        'async iterable',
        (async function* () {
          yield text.slice(0, 333);
          yield text.slice(333);
        })(),
      ],
    ];
    for (const [label, src] of sources) {
      const name = `same/${label}.ndjson`;
      const meta = await store.write(B, name, src, { metadata: { events: '200' } });
      assert.equal(meta.size, bytes.length, label);
      assert.equal(meta.md5Hash, md5(bytes), label);
      assert.equal(meta.contentType, 'application/x-ndjson', label);
      assert.deepEqual(meta.metadata, { events: '200' }, label);
      assert.ok((await readAll(await store.read(B, name))).equals(bytes), label);
    }
    assert.deepEqual(await temps(), []);
  });

  it('a local file is copied whole: the md5 of its bytes (in a worker from 8 MiB on), the store file mode', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-local-'));
    try {
      const streamed = await store.write(B, 'local/streamed.bin', Readable.from([Buffer.from('s')]));
      const modeOf = async (name: string): Promise<number> =>
        (await fs.stat(path.join(home, 'buckets', B, ...name.split('/')))).mode & 0o777;
      // Below and above the size hashed in a worker thread; a read-only source.
      for (const size of [0, 70_000, 8 * 1024 * 1024 + 3]) {
        const bytes = pseudoRandom(size, size + 7);
        const file = path.join(dir, `f${size}.bin`);
        await fs.writeFile(file, bytes);
        await fs.chmod(file, 0o400);
        const meta = await store.write(B, `local/f${size}.bin`, new LocalFile(file), {
          metadata: { k: 'v' },
        });
        assert.equal(meta.size, size);
        assert.equal(meta.md5Hash, md5(bytes), `size ${size}`);
        assert.deepEqual(await store.stat(B, meta.name), meta);
        assert.ok((await readAll(await store.read(B, meta.name))).equals(bytes), `size ${size}`);
        assert.equal(await modeOf(meta.name), await modeOf(streamed.name), 'not the source file mode');
      }
      // A missing source: the write fails and leaves nothing behind.
      await assert.rejects(store.write(B, 'local/missing.bin', new LocalFile(path.join(dir, 'missing'))));
      assert.equal(await store.stat(B, 'local/missing.bin'), undefined);
      assert.deepEqual(await temps(), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('trusts a source not to have changed only when it was last changed over 2 s before (coarse file times)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-racy-'));
    try {
      const f = path.join(dir, 'f');
      await fs.writeFile(f, 'x');
      const st = await fs.stat(f, { bigint: true });
      assert.equal(settledBefore(st, Date.now()), false, 'just written');
      assert.equal(settledBefore(st, Date.now() + 2500), true);
      assert.equal(sameFile(st, await fs.stat(f, { bigint: true })), true);
      await new Promise((r) => setTimeout(r, 50)); // past the file clock's tick
      await fs.writeFile(f, 'y'); // same size, new times
      assert.equal(sameFile(st, await fs.stat(f, { bigint: true })), false);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('hashes a settled local file beside its copy, and the copy itself when the source changes meanwhile', async function () {
    this.timeout(10_000);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-settled-'));
    try {
      const sizes = [70_000, 8 * 1024 * 1024 + 3]; // hashed in the main thread, in a worker
      const files = sizes.map((size) => path.join(dir, `f${size}.bin`));
      for (const [i, f] of files.entries()) await fs.writeFile(f, pseudoRandom(sizes[i] as number, 11));
      // Settled: last changed over 2 s before the write (a recent change proves nothing, see fs.ts).
      await new Promise((r) => setTimeout(r, 2100));
      for (const [i, f] of files.entries()) {
        const meta = await store.write(B, `settled/${i}.bin`, new LocalFile(f));
        assert.equal(meta.md5Hash, md5(await fs.readFile(f)), `size ${String(sizes[i])}`);
      }
      // The source grows while it is copied: the md5 is that of the object, not of the source.
      for (const [i, f] of files.entries()) {
        const real = fs.copyFile.bind(fs);
        const stub = sinon.stub(fs, 'copyFile').callsFake(async (src, dst, mode) => {
          await real(src, dst, mode);
          await fs.appendFile(f, 'appended while copying');
        });
        try {
          const meta = await store.write(B, `changed/${i}.bin`, new LocalFile(f));
          const stored = await readAll(await store.read(B, meta.name));
          assert.equal(stored.length, sizes[i], 'the copy holds the bytes before the append');
          assert.equal(meta.md5Hash, md5(stored), `size ${String(sizes[i])}`);
        } finally {
          stub.restore();
        }
      }
      assert.deepEqual(await temps(), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('returns exactly what stat() answers afterwards (the handle stat is the committed object)', async () => {
    const writes: [string, WriteSource, WriteOptions?][] = [
      ['meta/a.ndjson', 'a\n', { contentType: 'text/plain', metadata: { k: 'v' } }],
      ['meta/b.bin', Buffer.alloc(0)],
      ['meta/c.csv', 'x\n1\n', { ifAbsent: true }],
      ['meta/a.ndjson', 'overwritten\n'],
      ['meta/d.bin', Readable.from([pseudoRandom(70_000, 3)])],
      // Over the synchronous-write size: the thread-pool path for in-memory bytes.
      ['meta/e.bin', pseudoRandom(1024 * 1024 + 1, 4), { ifAbsent: true }],
      ['meta/f.bin', pseudoRandom(1024 * 1024, 5)],
    ];
    const written: ObjectMeta[] = [];
    for (const [name, src, opts] of writes) {
      written.push(await store.write(B, name, src, opts));
      assert.deepEqual(await store.stat(B, name), written[written.length - 1], name);
    }
    // The overwrite dropped the first write's content type and metadata along with its generation.
    assert.equal(written[3]?.contentType, 'application/x-ndjson');
    assert.equal(written[3]?.metadata, undefined);
  });

  it('rapid writes of one name get strictly increasing generations', async () => {
    const gens: bigint[] = [];
    for (let i = 0; i < 20; i++) gens.push(BigInt((await store.write(B, 'gen/x.txt', `v${i}`)).generation));
    for (let i = 1; i < gens.length; i++) assert.ok(gens[i]! > gens[i - 1]!, `generation ${i} increases`);
    assert.equal((await store.stat(B, 'gen/x.txt'))?.generation, String(gens[gens.length - 1]));
  });

  it('a destination folder removed between two writes is created again', async () => {
    await store.write(B, 'events/order/2024/05/01/13/a.ndjson', 'a\n', { metadata: { events: '1' } });
    // Removed behind the store's back (object and sidecar folders), then pruned by delete.
    await fs.rm(path.join(store.bucketDir(B), 'events'), { recursive: true });
    await fs.rm(path.join(home, 'objmeta', B, 'events.meta'), { recursive: true });
    const b = await store.write(B, 'events/order/2024/05/01/13/b.ndjson', 'b\n', {
      metadata: { events: '1' },
    });
    assert.deepEqual(b.metadata, { events: '1' });
    assert.deepEqual(await store.stat(B, b.name), b, 'the sidecar was written too');
    assert.equal(await store.delete(B, b.name), true);
    await fs.access(path.join(store.bucketDir(B), 'events')).then(
      () => assert.fail('delete should have pruned the emptied folders'),
      () => undefined,
    );
    const c = await store.write(B, 'events/order/2024/05/01/13/c.ndjson', 'c\n', { ifAbsent: true });
    assert.equal((await readAll(await store.read(B, c.name))).toString(), 'c\n');
    assert.deepEqual(
      (await collect(store.list(B, 'events/'))).map((m) => m.name),
      ['events/order/2024/05/01/13/c.ndjson'],
    );
    assert.deepEqual(await temps(), []);
  });

  it('the temp folder removed between writes is created again (in-memory and streamed sources)', async () => {
    await store.write(B, 't/a.txt', 'a');
    await fs.rm(path.join(home, 'tmp'), { recursive: true });
    assert.equal((await store.write(B, 't/b.txt', 'b')).size, 1);
    await fs.rm(path.join(home, 'tmp'), { recursive: true });
    // A streamed source must not be half consumed by a failed first attempt: the temp file is opened
    // before the source is read.
    const m = await store.write(B, 't/c.txt', Readable.from([Buffer.from('c1'), Buffer.from('c2')]));
    assert.equal((await readAll(await store.read(B, m.name))).toString(), 'c1c2');
    assert.deepEqual(await temps(), []);
  });

  it('ifAbsent on an existing object: PRECONDITION_FAILED, the original untouched, no temp left', async () => {
    const orig = await store.write(B, 'once/x.ndjson', 'original\n', {
      contentType: 'text/plain',
      metadata: { v: '1' },
    });
    for (const src of ['intruder\n', Buffer.from('intruder\n')])
      await rejectsWith(
        store.write(B, 'once/x.ndjson', src, { ifAbsent: true, metadata: { v: '2' } }),
        'PRECONDITION_FAILED',
        'permanent',
      );
    assert.deepEqual(await store.stat(B, 'once/x.ndjson'), orig);
    assert.equal((await readAll(await store.read(B, 'once/x.ndjson'))).toString(), 'original\n');
    assert.deepEqual(await temps(), []);
  });

  it('concurrent in-memory ifAbsent writers of one new name in a new folder: exactly one wins', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        store.write(B, 'race/new/folder/w.txt', `writer ${i}`, { ifAbsent: true }),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'PRECONDITION_FAILED');
    assert.equal(
      (await readAll(await store.read(B, 'race/new/folder/w.txt'))).toString(),
      `writer ${won[0]}`,
    );
    assert.deepEqual(await temps(), []);
  });

  it('conflicts with folders and files on the path stay permanent INVALID_OBJECT_NAME, leaving no temp', async () => {
    await store.write(B, 'dir/inner.txt', 'inner');
    await store.write(B, 'file.txt', 'plain');
    for (const src of ['s', Buffer.from('b')]) {
      for (const ifAbsent of [false, true]) {
        await rejectsWith(store.write(B, 'dir', src, { ifAbsent }), 'INVALID_OBJECT_NAME', 'permanent');
        await rejectsWith(
          store.write(B, 'file.txt/under', src, { ifAbsent }),
          'INVALID_OBJECT_NAME',
          'permanent',
        );
        await rejectsWith(
          store.write(B, 'file.txt/deeper/under', src, { ifAbsent }),
          'INVALID_OBJECT_NAME',
          'permanent',
        );
      }
    }
    assert.equal((await readAll(await store.read(B, 'file.txt'))).toString(), 'plain');
    assert.deepEqual(await temps(), []);
  });

  it('a sidecar that cannot be written leaves the object committed and the answer as stat() gives it', async () => {
    // A folder squatting on the sidecar's path makes the (best-effort) metadata write fail.
    await fs.mkdir(path.join(home, 'objmeta', B, 'blocked.json.meta', 'squat'), { recursive: true });
    const meta = await store.write(B, 'blocked.json', '{}', {
      contentType: 'text/plain',
      metadata: { lost: 'yes' },
    });
    assert.equal(meta.contentType, 'application/json', 'guessed, as readers will see it');
    assert.equal(meta.metadata, undefined);
    assert.equal(meta.md5Hash, undefined);
    assert.deepEqual(await store.stat(B, 'blocked.json'), meta);
    assert.equal((await readAll(await store.read(B, 'blocked.json'))).toString(), '{}');
    assert.deepEqual(await temps(), []);
  });
});
