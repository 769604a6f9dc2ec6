/**
 * Local filesystem driver: each bucket is a folder under `<home>/buckets/`, each object a plain file
 * (so a file manager can drop files and read results).
 *
 * - Atomic writes: bytes go to a temp file under `<home>/tmp` (same filesystem), are fsynced, then
 *   `link`ed (create-only: fails with EEXIST) or `rename`d (overwrite) into place. A reader never sees a
 *   partial object; a crash mid-write leaves only a temp file that nothing lists.
 * - Generation: the file's mtime in microseconds, like GCS's µs-timestamp generations. A write sets it
 *   explicitly from a strictly increasing µs clock (filesystem clocks can tick as coarsely as a jiffy, so
 *   two quick writes could otherwise share a generation); an in-place edit by a user also changes it.
 * - Metadata (content type, custom metadata, md5) lives in a sidecar under `<home>/objmeta`, tagged with
 *   the generation it belongs to and written only after the object is committed.
 * - Untrusted names: validated, then the resolved path — and the real path of its nearest existing
 *   ancestor, so symlinks cannot be used to escape — must stay inside the bucket folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { permanent, SmelterError, transient } from '../../errors';
import {
  assertPathSafeObjectName,
  assertValidBucketName,
  compareObjectNames,
  guessContentType,
  type ObjectMeta,
  type ObjectStore,
  type ReadOptions,
  type WriteOptions,
  type WriteSource,
} from '../../storage/object-store';

interface Sidecar {
  generation: string;
  contentType?: string;
  metadata?: Record<string, string>;
  md5Hash?: string;
}

export class FsObjectStore implements ObjectStore {
  readonly driver = 'fs';
  readonly bucketsRoot: string;
  private readonly tmpDir: string;
  private readonly metaRoot: string;

  constructor(readonly home: string) {
    this.bucketsRoot = path.join(home, 'buckets');
    this.tmpDir = path.join(home, 'tmp', 'objects');
    this.metaRoot = path.join(home, 'objmeta');
  }

  bucketDir(bucket: string): string {
    assertValidBucketName(bucket);
    return path.join(this.bucketsRoot, bucket);
  }

  async ensureBucket(bucket: string): Promise<void> {
    await fsp.mkdir(this.bucketDir(bucket), { recursive: true });
  }

  /** Maps an untrusted object name to a path that is guaranteed to lie inside the bucket folder. */
  async objectPath(bucket: string, name: string): Promise<string> {
    const parts = assertPathSafeObjectName(name);
    const root = this.bucketDir(bucket);
    const full = path.resolve(root, ...parts);
    if (!full.startsWith(root + path.sep))
      throw permanent('INVALID_OBJECT_NAME', `Object name escapes the bucket: ${name}`);
    // Symlinks inside the bucket must not lead outside it.
    const realRoot = await fsp.realpath(root).catch(() => root);
    let probe = path.dirname(full);
    for (;;) {
      try {
        const real = await fsp.realpath(probe);
        if (real !== realRoot && !real.startsWith(realRoot + path.sep))
          throw permanent('INVALID_OBJECT_NAME', `Object name resolves outside the bucket: ${name}`);
        break;
      } catch (err) {
        if (err instanceof SmelterError) throw err;
        if (probe === root || probe.length <= root.length) break;
        probe = path.dirname(probe);
      }
    }
    try {
      const l = await fsp.lstat(full);
      if (l.isSymbolicLink()) {
        // A dangling link has no real path: judge it by where it points.
        const target = path.resolve(path.dirname(full), await fsp.readlink(full));
        const real = await fsp.realpath(full).catch(() => target);
        if (!real.startsWith(realRoot + path.sep))
          throw permanent('INVALID_OBJECT_NAME', `Object is a symlink leading outside the bucket: ${name}`);
      }
    } catch (err) {
      if (err instanceof SmelterError) throw err;
    }
    return full;
  }

  private sidecarPath(bucket: string, name: string): string {
    return path.join(this.metaRoot, bucket, ...name.split('/').map((p) => p + '.meta'));
  }

  private async readSidecar(bucket: string, name: string, generation: string): Promise<Sidecar | undefined> {
    try {
      const s = JSON.parse(await fsp.readFile(this.sidecarPath(bucket, name), 'utf8')) as Sidecar;
      return s.generation === generation ? s : undefined;
    } catch {
      return undefined;
    }
  }

  private async toMeta(bucket: string, name: string, st: fs.BigIntStats): Promise<ObjectMeta> {
    const generation = (st.mtimeNs / 1000n).toString();
    const side = await this.readSidecar(bucket, name, generation);
    const created = new Date(Number(st.mtimeNs / 1000000n)).toISOString();
    return {
      bucket,
      name,
      generation,
      size: Number(st.size),
      contentType: side?.contentType ?? guessContentType(name),
      timeCreated: created,
      updated: created,
      ...(side?.md5Hash ? { md5Hash: side.md5Hash } : {}),
      ...(side?.metadata ? { metadata: side.metadata } : {}),
    };
  }

  async read(bucket: string, name: string, opts: ReadOptions = {}): Promise<Readable> {
    const p = await this.objectPath(bucket, name);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(p, 'r');
    } catch (err) {
      throw mapFsError(err, bucket, name);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw permanent('NOT_FOUND', `No such object: gs://${bucket}/${name}`);
      if (opts.generation !== undefined && (st.mtimeNs / 1000n).toString() !== String(opts.generation))
        throw new SmelterError(
          'NOT_FOUND',
          `Generation ${opts.generation} of gs://${bucket}/${name} is no longer live`,
          {
            kind: 'permanent',
          },
        );
    } catch (err) {
      await fh.close();
      throw err instanceof SmelterError ? err : mapFsError(err, bucket, name);
    }
    // The open handle pins the inode: a concurrent overwrite (rename) does not change what we read.
    return fh.createReadStream({ highWaterMark: 1024 * 1024 });
  }

  async write(
    bucket: string,
    name: string,
    source: WriteSource,
    opts: WriteOptions = {},
  ): Promise<ObjectMeta> {
    const dest = await this.objectPath(bucket, name);
    await fsp.mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.part`);
    const md5 = createHash('md5');
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        md5.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      const out = fs.createWriteStream(tmp, { flags: 'wx' });
      await pipeline(toReadable(source), hasher, out);
      const fh = await fsp.open(tmp, 'r+');
      try {
        const t = generationToSeconds(nextGeneration());
        await fh.utimes(t, t);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const st = await fsp.stat(tmp, { bigint: true });
      const generation = (st.mtimeNs / 1000n).toString();
      await fsp.mkdir(path.dirname(dest), { recursive: true }).catch((err: unknown) => {
        throw conflictError(err, bucket, name);
      });
      if (opts.ifAbsent) {
        try {
          await fsp.link(tmp, dest);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            if ((await fsp.lstat(dest).catch(() => undefined))?.isDirectory())
              throw conflictError(err, bucket, name);
            throw new SmelterError('PRECONDITION_FAILED', `Object already exists: gs://${bucket}/${name}`, {
              kind: 'permanent',
              cause: err,
            });
          }
          throw mapFsError(err, bucket, name);
        }
        await fsp.unlink(tmp).catch(() => undefined);
      } else {
        await fsp.rename(tmp, dest).catch((err: unknown) => {
          throw conflictError(err, bucket, name);
        });
      }
      // After the commit: a failed write (e.g. ifAbsent on an existing object) must not touch the live
      // object's metadata. A stale sidecar is ignored (its generation no longer matches).
      const side: Sidecar = {
        generation,
        md5Hash: md5.digest('base64'),
        contentType: opts.contentType ?? guessContentType(name),
      };
      if (opts.metadata) side.metadata = opts.metadata;
      await this.writeSidecar(bucket, name, side);
      return await this.toMeta(bucket, name, await fsp.stat(dest, { bigint: true }));
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw err instanceof SmelterError ? err : mapFsError(err, bucket, name);
    }
  }

  private async writeSidecar(bucket: string, name: string, side: Sidecar): Promise<void> {
    const sidePath = this.sidecarPath(bucket, name);
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.meta`);
    try {
      await fsp.mkdir(path.dirname(sidePath), { recursive: true });
      await fsp.writeFile(tmp, JSON.stringify(side), { flag: 'wx' });
      await fsp.rename(tmp, sidePath);
    } catch {
      // Metadata is best effort: the object is committed; readers fall back to a guessed content type.
      await fsp.unlink(tmp).catch(() => undefined);
    }
  }

  async stat(bucket: string, name: string): Promise<ObjectMeta | undefined> {
    const p = await this.objectPath(bucket, name);
    try {
      const st = await fsp.stat(p, { bigint: true });
      return st.isFile() ? await this.toMeta(bucket, name, st) : undefined;
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code === 'ENOENT' ||
        (err as NodeJS.ErrnoException).code === 'ENOTDIR'
      )
        return undefined;
      throw mapFsError(err, bucket, name);
    }
  }

  async *list(bucket: string, prefix = ''): AsyncIterable<ObjectMeta> {
    const root = this.bucketDir(bucket);
    // Start the walk at the deepest folder the prefix names.
    const slash = prefix.lastIndexOf('/');
    const dirPrefix = slash >= 0 ? prefix.slice(0, slash) : '';
    if (prefix.includes('\0')) return;
    if (dirPrefix && dirPrefix.split('/').some((p) => p === '' || p === '.' || p === '..')) return;
    const start = dirPrefix ? path.join(root, ...dirPrefix.split('/')) : root;
    const names: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code === 'ENOENT' ||
          (err as NodeJS.ErrnoException).code === 'ENOTDIR'
        )
          return;
        throw mapFsError(err, bucket, rel);
      }
      for (const e of entries) {
        const n = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (prefix.startsWith(n + '/') || (n + '/').startsWith(prefix) || n.startsWith(prefix))
            await walk(path.join(dir, e.name), n);
        } else if (e.isFile() && n.startsWith(prefix)) names.push(n);
      }
    };
    await walk(start, dirPrefix);
    names.sort(compareObjectNames);
    for (const n of names) {
      const meta = await this.stat(bucket, n).catch(() => undefined);
      if (meta) yield meta;
    }
  }

  async delete(bucket: string, name: string): Promise<boolean> {
    const p = await this.objectPath(bucket, name);
    try {
      await fsp.unlink(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw mapFsError(err, bucket, name);
    }
    await fsp.unlink(this.sidecarPath(bucket, name)).catch(() => undefined);
    // GCS has no folders: prune the ones this delete emptied.
    const root = this.bucketDir(bucket);
    let dir = path.dirname(p);
    while (dir.startsWith(root + path.sep)) {
      try {
        await fsp.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
    return true;
  }
}

let lastGeneration = 0n;

/** Strictly increasing µs timestamps (per process; across processes µs collisions are negligible). */
function nextGeneration(): bigint {
  const now = BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
  lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
  return lastGeneration;
}

/** Seconds for utimes, aimed at the middle of the µs so float rounding cannot land on the previous one. */
function generationToSeconds(gen: bigint): number {
  return Number(gen) / 1e6 + 5e-7;
}

/** GCS allows objects `a` and `a/b` side by side; a filesystem cannot hold a file and a folder of one name. */
function conflictError(err: unknown, bucket: string, name: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ENOTEMPTY')
    return permanent(
      'INVALID_OBJECT_NAME',
      `Object name conflicts with an object or folder on the path: gs://${bucket}/${name}`,
      {
        cause: err,
      },
    );
  return mapFsError(err, bucket, name);
}

export function toReadable(source: WriteSource): Readable {
  if (source instanceof Readable) return source;
  if (typeof source === 'string' || Buffer.isBuffer(source)) return Readable.from([Buffer.from(source)]);
  return Readable.from(source);
}

function mapFsError(err: unknown, bucket: string, name: string): Error {
  if (err instanceof SmelterError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const where = `gs://${bucket}/${name}`;
  if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR')
    return new SmelterError('NOT_FOUND', `No such object: ${where}`, { kind: 'permanent', cause: err });
  if (code === 'EEXIST' || code === 'ENOTEMPTY')
    return permanent(
      'INVALID_OBJECT_NAME',
      `Object name conflicts with a folder of the same name: ${where}`,
      { cause: err },
    );
  if (code === 'ENAMETOOLONG')
    return permanent('INVALID_OBJECT_NAME', `Object name too long for the filesystem: ${where}`, {
      cause: err,
    });
  // Anything else from a non-errno error (e.g. a failing source stream) passes through unchanged in `cause`.
  if (!code) return err instanceof Error ? err : transient('STORAGE_UNAVAILABLE', String(err));
  return transient('STORAGE_UNAVAILABLE', `Filesystem error ${code} on ${where}`, { cause: err });
}
