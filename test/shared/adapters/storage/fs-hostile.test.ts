/**
 * Filesystem-specific hazards of the local driver: object and bucket names are untrusted input and must
 * never reach outside the bucket folder (traversal, absolute paths, NUL, backslashes, symlinks); writes
 * are atomic and clean up after themselves; an open reader is unaffected by an overwrite.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FsObjectStore } from '../../../../shared/adapters/storage/fs';
import { collect, pseudoRandom, readAll, rejectsWith } from './contract';

/** Every file, folder and symlink under `root`, as relative paths (symlinks are not followed). */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const rel = path.relative(root, path.join(dir, e.name));
      if (e.isSymbolicLink()) out.push(`${rel} -> ${await fs.readlink(path.join(dir, e.name))}`);
      else if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(path.join(dir, e.name));
      } else out.push(rel);
    }
  };
  await walk(root);
  return out.sort();
}

describe('FsObjectStore: hostile names and filesystem hazards', () => {
  let root: string; // the temp root: holds `home` and a folder `outside` the store must never touch
  let home: string;
  let outside: string;
  let store: FsObjectStore;
  let bucketDir: string;
  const B = 'raw';

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'smelter-fs-hostile-'));
    home = path.join(root, 'home');
    outside = path.join(root, 'outside');
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'secret.txt'), 'secret');
    store = new FsObjectStore(home);
    await store.ensureBucket(B);
    bucketDir = store.bucketDir(B);
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const hostileNames = [
    '../../etc/passwd',
    '../outside/secret.txt',
    '../../outside/secret.txt',
    'a/../../x',
    'a/../b',
    '..',
    '.',
    '/etc/passwd',
    '/',
    'a\u0000b',
    'x\u0000/../../../../etc/passwd',
    './a',
    'a/./b',
    'a//b',
    'a/',
    '',
    'a\\b',
    '..\\..\\outside\\secret.txt',
    '\\etc\\passwd',
    'tab\there',
    'line\nbreak',
    `${'x'.repeat(256)}/y`,
  ];

  it('rejects traversal, absolute, NUL, backslash and empty-segment names on every operation', async () => {
    const before = await tree(root);
    for (const name of hostileNames) {
      const label = JSON.stringify(name);
      const e1 = await rejectsWith(store.write(B, name, 'pwned'), 'INVALID_OBJECT_NAME', 'permanent');
      assert.ok(e1.message.length > 0, label);
      await rejectsWith(
        store.write(B, name, 'pwned', { ifAbsent: true }),
        'INVALID_OBJECT_NAME',
        'permanent',
      );
      await rejectsWith(store.read(B, name), 'INVALID_OBJECT_NAME', 'permanent');
      await rejectsWith(store.stat(B, name), 'INVALID_OBJECT_NAME', 'permanent');
      await rejectsWith(store.delete(B, name), 'INVALID_OBJECT_NAME', 'permanent');
    }
    // Nothing was created anywhere: not outside, not inside the bucket, no temp leftovers.
    assert.deepEqual(await tree(root), before);
    assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'secret');
  });

  it('rejects hostile bucket names', async () => {
    const before = await tree(root);
    for (const bucket of [
      '../x',
      '..',
      '../outside',
      'a/b',
      '/etc',
      'UPPER',
      'a',
      'x\u0000y',
      'a..b',
      '.hidden',
      'raw/..',
    ]) {
      await rejectsWith(store.ensureBucket(bucket), 'INVALID_BUCKET_NAME', 'permanent');
      await rejectsWith(store.write(bucket, 'x.txt', 'pwned'), 'INVALID_BUCKET_NAME', 'permanent');
      await rejectsWith(store.read(bucket, 'x.txt'), 'INVALID_BUCKET_NAME', 'permanent');
      await rejectsWith(store.stat(bucket, 'x.txt'), 'INVALID_BUCKET_NAME', 'permanent');
      await rejectsWith(collect(store.list(bucket)), 'INVALID_BUCKET_NAME', 'permanent');
      await rejectsWith(store.delete(bucket, 'x.txt'), 'INVALID_BUCKET_NAME', 'permanent');
    }
    assert.deepEqual(await tree(root), before);
  });

  it('a hostile list prefix lists nothing and touches nothing', async () => {
    await store.write(B, 'ok/file.txt', 'ok');
    for (const prefix of ['../', '../outside/', '/etc/', 'ok/../../', 'a\u0000b', '..']) {
      assert.deepEqual(await collect(store.list(B, prefix)), [], JSON.stringify(prefix));
    }
  });

  it('a symlinked folder inside the bucket that points outside cannot be read or written through', async () => {
    await fs.symlink(outside, path.join(bucketDir, 'link'));
    const before = await tree(root);
    await rejectsWith(store.read(B, 'link/secret.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.stat(B, 'link/secret.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.write(B, 'link/secret.txt', 'pwned'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(
      store.write(B, 'link/new.txt', 'pwned', { ifAbsent: true }),
      'INVALID_OBJECT_NAME',
      'permanent',
    );
    await rejectsWith(store.write(B, 'link/deeper/new.txt', 'pwned'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.delete(B, 'link/secret.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    assert.deepEqual(await tree(root), before);
    assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'secret');
    // Listing does not follow it either.
    assert.deepEqual(await collect(store.list(B)), []);
  });

  it('a symlinked file pointing outside cannot be read, overwritten or deleted through', async () => {
    await fs.symlink(path.join(outside, 'secret.txt'), path.join(bucketDir, 'evil.txt'));
    // A dangling link to a place outside: writing through it must not create the target.
    await fs.symlink(path.join(outside, 'created-by-attacker.txt'), path.join(bucketDir, 'dangling.txt'));
    const before = await tree(root);
    await rejectsWith(store.read(B, 'evil.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.stat(B, 'evil.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.write(B, 'evil.txt', 'pwned'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(
      store.write(B, 'evil.txt', 'pwned', { ifAbsent: true }),
      'INVALID_OBJECT_NAME',
      'permanent',
    );
    await rejectsWith(store.delete(B, 'evil.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.read(B, 'dangling.txt'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(store.write(B, 'dangling.txt', 'pwned'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(
      store.write(B, 'dangling.txt', 'pwned', { ifAbsent: true }),
      'INVALID_OBJECT_NAME',
      'permanent',
    );
    assert.deepEqual(await tree(root), before);
    assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'secret');
  });

  it('a symlink whose target stays inside the bucket is followed', async () => {
    await store.write(B, 'real/data.csv', 'a\n1\n');
    await fs.symlink(path.join(bucketDir, 'real'), path.join(bucketDir, 'alias'));
    assert.equal((await readAll(await store.read(B, 'alias/data.csv'))).toString(), 'a\n1\n');
  });

  it('an open reader keeps reading the old bytes while the object is overwritten or deleted', async () => {
    const oldBytes = pseudoRandom(3 * 1024 * 1024, 11);
    const first = await store.write(B, 'live/obj.bin', oldBytes);
    const reader = await store.read(B, 'live/obj.bin');
    const it = reader[Symbol.asyncIterator]();
    const firstChunk = (await it.next()).value as Buffer;
    assert.ok(firstChunk.length > 0 && firstChunk.length < oldBytes.length, 'read only part so far');
    const second = await store.write(B, 'live/obj.bin', Buffer.alloc(3 * 1024 * 1024, 0x42));
    assert.notEqual(second.generation, first.generation);
    const rest: Buffer[] = [firstChunk];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value as Buffer);
    assert.ok(Buffer.concat(rest).equals(oldBytes), 'the reader saw exactly the old version');

    const again = await store.read(B, 'live/obj.bin');
    await store.delete(B, 'live/obj.bin');
    assert.ok((await readAll(again)).equals(Buffer.alloc(3 * 1024 * 1024, 0x42)));
  });

  it('a reader never sees a partial object while a write is in progress', async () => {
    await store.write(B, 'atomic.bin', 'v1');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1024 * 1024, 1);
      await gate;
      yield Buffer.alloc(1024 * 1024, 2);
    }
    const writing = store.write(B, 'atomic.bin', slow());
    // Wait until the first MiB has reached the disk (the driver's temp file), then look.
    const tmpDir = path.join(home, 'tmp', 'objects');
    const sizes = async (): Promise<number[]> =>
      Promise.all(
        (await fs.readdir(tmpDir).catch(() => [])).map(
          async (f) => (await fs.stat(path.join(tmpDir, f))).size,
        ),
      );
    for (let i = 0; i < 500 && !(await sizes()).some((n) => n >= 1024 * 1024); i++)
      await new Promise((r) => setTimeout(r, 2));
    assert.ok(
      (await sizes()).some((n) => n >= 1024 * 1024),
      'the write is half-way',
    );
    assert.equal((await readAll(await store.read(B, 'atomic.bin'))).toString(), 'v1');
    assert.equal((await store.stat(B, 'atomic.bin'))?.size, 2);
    assert.deepEqual(
      (await collect(store.list(B))).map((m) => m.name),
      ['atomic.bin'],
    );
    release();
    const done = await writing;
    assert.equal(done.size, 2 * 1024 * 1024);
  });

  it('removes the temp file of a failed write (source error or lost create-only race)', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(256 * 1024, 1);
      throw new Error('source died');
    }
    await assert.rejects(store.write(B, 'tmp/x.bin', failing()), /source died/);
    await store.write(B, 'tmp/y.bin', 'y');
    await rejectsWith(store.write(B, 'tmp/y.bin', 'again', { ifAbsent: true }), 'PRECONDITION_FAILED');
    const failed = new Readable({
      read() {
        this.destroy(new Error('immediately'));
      },
    });
    await assert.rejects(store.write(B, 'tmp/z.bin', failed));
    assert.deepEqual(await fs.readdir(path.join(home, 'tmp', 'objects')), []);
    assert.deepEqual(
      (await collect(store.list(B))).map((m) => m.name),
      ['tmp/y.bin'],
    );
  });

  it('a name that collides with a folder (or a file on its path) is a permanent INVALID_OBJECT_NAME', async () => {
    await store.write(B, 'a/b.txt', 'file in folder a');
    await rejectsWith(store.write(B, 'a', 'file where a folder is'), 'INVALID_OBJECT_NAME', 'permanent');
    await rejectsWith(
      store.write(B, 'a', 'create-only', { ifAbsent: true }),
      'INVALID_OBJECT_NAME',
      'permanent',
    );
    await store.write(B, 'f.txt', 'plain file');
    await rejectsWith(store.write(B, 'f.txt/inner', 'under a file'), 'INVALID_OBJECT_NAME', 'permanent');
    assert.equal(await store.stat(B, 'a'), undefined);
    await rejectsWith(store.read(B, 'a'), 'NOT_FOUND', 'permanent');
    assert.deepEqual(await fs.readdir(path.join(home, 'tmp', 'objects')), []);
  });

  it('sees files dropped by other programs, and an in-place edit changes the generation', async () => {
    await fs.mkdir(path.join(bucketDir, 'sales'), { recursive: true });
    await fs.writeFile(path.join(bucketDir, 'sales', 'dropped.csv'), 'id\n1\n');
    const st = await store.stat(B, 'sales/dropped.csv');
    assert.ok(st);
    assert.match(st.generation, /^\d+$/);
    assert.equal(st.contentType, 'text/csv');
    await fs.appendFile(path.join(bucketDir, 'sales', 'dropped.csv'), '2\n');
    // Make the edit's mtime differ even on filesystems with coarse timestamps.
    const later = new Date(Date.now() + 5000);
    await fs.utimes(path.join(bucketDir, 'sales', 'dropped.csv'), later, later);
    const st2 = await store.stat(B, 'sales/dropped.csv');
    assert.notEqual(st2?.generation, st.generation);
    await rejectsWith(
      store.read(B, 'sales/dropped.csv', { generation: st.generation }),
      'NOT_FOUND',
      'permanent',
    );
    assert.equal(
      (await readAll(await store.read(B, 'sales/dropped.csv', { generation: st2!.generation }))).toString(),
      'id\n1\n2\n',
    );
  });

  it('deleting the last object of a folder prunes the empty folders, not the bucket', async () => {
    await store.write(B, 'deep/er/est/x.txt', 'x');
    assert.equal(await store.delete(B, 'deep/er/est/x.txt'), true);
    assert.deepEqual(await fs.readdir(bucketDir), []);
  });
});
