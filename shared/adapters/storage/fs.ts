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
import { Worker } from 'node:worker_threads';
import { permanent, SmelterError, transient } from '../../errors';
import {
  assertPathSafeObjectName,
  assertValidBucketName,
  compareObjectNames,
  guessContentType,
  LOCAL_FILE,
  type LocalFileOffer,
  type ObjectMeta,
  type ObjectStore,
  LocalFile,
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
  private tmpReady: Promise<unknown> | undefined;

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
    return this.objectPathNow(bucket, name);
  }

  private objectPathNow(bucket: string, name: string): string {
    const parts = assertPathSafeObjectName(name);
    const root = this.bucketDir(bucket);
    const full = path.resolve(root, ...parts);
    if (!full.startsWith(root + path.sep))
      throw permanent('INVALID_OBJECT_NAME', `Object name escapes the bucket: ${name}`);
    // Symlinks inside the bucket must not lead outside it.
    // Synchronous lookups: each is microseconds, while a thread-pool round trip (shared with DuckDB's
    // queries) is two context switches and a queue — and every read, write and stat starts here.
    const realRoot = tryOr(() => fs.realpathSync.native(root), root);
    let probe = path.dirname(full);
    for (;;) {
      try {
        const real = fs.realpathSync.native(probe);
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
      const l = fs.lstatSync(full);
      if (l.isSymbolicLink()) {
        // A dangling link has no real path: judge it by where it points.
        const target = path.resolve(path.dirname(full), fs.readlinkSync(full));
        const real = tryOr(() => fs.realpathSync.native(full), target);
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

  /** `known`: the sidecar just written for this very stat (saves reading it back). */
  private async toMeta(
    bucket: string,
    name: string,
    st: fs.BigIntStats,
    known?: Sidecar,
  ): Promise<ObjectMeta> {
    const generation = (st.mtimeNs / 1000n).toString();
    const side = known?.generation === generation ? known : await this.readSidecar(bucket, name, generation);
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
    const stream = fh.createReadStream({ highWaterMark: 1024 * 1024 });
    return PROC_FD ? offerLocalFile(stream, fh.fd) : stream;
  }

  async write(
    bucket: string,
    name: string,
    source: WriteSource,
    opts: WriteOptions = {},
  ): Promise<ObjectMeta> {
    if (source instanceof LocalFile) return this.writeLocalFile(bucket, name, source, opts);
    const dest = await this.objectPath(bucket, name);
    const bytes = inMemoryBytes(source);
    if (bytes && bytes.length <= SYNC_WRITE_MAX_BYTES)
      return this.writeSmall(bucket, name, dest, bytes, opts);
    const { fh, tmp } = await this.openTemp('.part').catch((err: unknown) => {
      throw mapFsError(err, bucket, name);
    });
    let st: fs.BigIntStats;
    let md5Hash: string;
    try {
      try {
        if (bytes) {
          // Large in-memory sources: one handle, no stream machinery, no re-open.
          md5Hash = createHash('md5').update(bytes).digest('base64');
          await writeAll(fh, bytes, 0);
        } else {
          const md5 = createHash('md5');
          const hasher = new Transform({
            transform(chunk: Buffer, _enc, cb) {
              md5.update(chunk);
              cb(null, chunk);
            },
          });
          // Written through our own handle (not a WriteStream, which would close it or keep it pinned)
          // so it serves the timestamps, fsync and stat below. Each read drains what the hasher buffered.
          await pipeline(toReadable(source), hasher, async (chunks: AsyncIterable<Buffer>) => {
            let pos = 0;
            for await (const c of chunks) pos += await writeAll(fh, c, pos);
          });
          md5Hash = md5.digest('base64');
        }
        const t = generationToSeconds(nextGeneration());
        await fh.utimes(t, t);
        await fh.sync();
        // rename and link keep the inode, so this is also the committed object's size and mtime.
        st = await fh.stat({ bigint: true });
      } finally {
        await fh.close();
      }
      await this.place(tmp, dest, bucket, name, opts, asyncIo);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw err instanceof SmelterError ? err : mapFsError(err, bucket, name);
    }
    return this.finish(bucket, name, st, md5Hash, opts, asyncIo);
  }

  /**
   * A local file: a kernel copy (copy_file_range, or a reflink) instead of every byte through
   * JavaScript. Everything before the copy is synchronous (microseconds), so the copy is under way
   * when write() returns: `drop --wait` starts the stack meanwhile, and its module loading would
   * otherwise hold back each step before the copy. The md5 is read from the source in a worker thread
   * beside the copy, and kept only if the source provably did not change meanwhile (sourceUnchanged);
   * otherwise it is taken of the copy itself, what the object holds.
   */
  private async writeLocalFile(
    bucket: string,
    name: string,
    source: LocalFile,
    opts: WriteOptions,
  ): Promise<ObjectMeta> {
    let tmp: string | undefined;
    let st: fs.BigIntStats;
    let md5Hash: string;
    try {
      const dest = this.objectPathNow(bucket, name);
      const t = this.openTempSync('.part');
      tmp = t.tmp;
      let md5: ReturnType<typeof md5Later> | undefined;
      try {
        const startedMs = Date.now();
        const before = fs.statSync(source.path, { bigint: true });
        md5 = md5Later(Number(before.size));
        // Read from the source beside the copy when it can prove it did not change (a path given as
        // bytes or a recent change cannot; a pipe must have one reader): else from the copy, beside its fsync.
        const fromSource =
          typeof source.path === 'string' && before.isFile() && settledBefore(before, startedMs);
        let hashing = fromSource ? md5.of(source.path as string) : undefined;
        hashing?.catch(() => undefined); // awaited below; a failure meanwhile is not unhandled
        const { mode } = fs.fstatSync(t.fd);
        await fsp.copyFile(source.path, tmp, fs.constants.COPYFILE_FICLONE);
        // Everything here works on the inode opened above: copyFile must have written into it.
        if (fs.fstatSync(t.fd).ino !== fs.statSync(tmp).ino) throw new Error(`copyFile replaced ${tmp}`);
        fs.fchmodSync(t.fd, mode); // copyFile gives the copy the source's mode
        hashing ??= md5.of(tmp);
        hashing.catch(() => undefined);
        const time = generationToSeconds(nextGeneration());
        fs.futimesSync(t.fd, time, time);
        await new Promise<void>((resolve, reject) => fs.fsync(t.fd, (e) => (e ? reject(e) : resolve())));
        // rename and link keep the inode, so this is also the committed object's size and mtime.
        st = fs.fstatSync(t.fd, { bigint: true });
        md5Hash = await hashing;
        if (
          fromSource &&
          !(st.size === before.size && sameFile(before, fs.statSync(source.path, { bigint: true })))
        ) {
          // The source changed while it was copied: hash what the object holds.
          md5.cancel();
          md5 = md5Later(Number(st.size));
          md5Hash = await md5.of(tmp);
        }
      } finally {
        md5?.cancel();
        fs.closeSync(t.fd);
      }
      await this.place(tmp, dest, bucket, name, opts, asyncIo);
    } catch (err) {
      if (tmp) await fsp.unlink(tmp).catch(() => undefined);
      throw err instanceof SmelterError ? err : mapFsError(err, bucket, name);
    }
    return this.finish(bucket, name, st, md5Hash, opts, asyncIo);
  }

  /**
   * Small in-memory objects (the event archive writes dozens a second) are written with synchronous
   * calls. Each async call is a round trip through libuv's four-thread pool, which DuckDB's queries
   * occupy too, and on a small VM every hand-off is two context switches: the dozen calls per object
   * cost more than the work they do. Measured at 1,000 events/s: routeEvent in-process −12% CPU and a
   * lower p50; through the emulator the gain is lost in the machine's noise. The event loop is held for
   * the calls themselves, fsync included (about 0.2 ms on this disk).
   */
  private async writeSmall(
    bucket: string,
    name: string,
    dest: string,
    bytes: Buffer,
    opts: WriteOptions,
  ): Promise<ObjectMeta> {
    let tmp: string | undefined;
    let st: fs.BigIntStats;
    try {
      const t = this.openTempSync('.part');
      tmp = t.tmp;
      try {
        for (let off = 0; off < bytes.length;) off += fs.writeSync(t.fd, bytes, off, bytes.length - off, off);
        const time = generationToSeconds(nextGeneration());
        fs.futimesSync(t.fd, time, time);
        fs.fsyncSync(t.fd);
        // rename and link keep the inode, so this is also the committed object's size and mtime.
        st = fs.fstatSync(t.fd, { bigint: true });
      } finally {
        fs.closeSync(t.fd);
      }
      await this.place(tmp, dest, bucket, name, opts, syncIo);
    } catch (err) {
      if (tmp) await syncIo.unlink(tmp).catch(() => undefined);
      throw err instanceof SmelterError ? err : mapFsError(err, bucket, name);
    }
    const md5Hash = createHash('md5').update(bytes).digest('base64');
    return this.finish(bucket, name, st, md5Hash, opts, syncIo);
  }

  /** After the commit: the sidecar, and the answer stat() would give now. */
  private async finish(
    bucket: string,
    name: string,
    st: fs.BigIntStats,
    md5Hash: string,
    opts: WriteOptions,
    io: FsIo,
  ): Promise<ObjectMeta> {
    const generation = (st.mtimeNs / 1000n).toString();
    // After the commit: a failed write (e.g. ifAbsent on an existing object) must not touch the live
    // object's metadata. A stale sidecar is ignored (its generation no longer matches).
    const side: Sidecar = { generation, md5Hash, contentType: opts.contentType ?? guessContentType(name) };
    if (opts.metadata) side.metadata = opts.metadata;
    const sideWritten = await this.writeSidecar(bucket, name, side, io);
    // What stat() would answer now (no md5/metadata if the sidecar could not be written), without
    // stat'ing the object and reading the sidecar back.
    return this.toMeta(bucket, name, st, sideWritten ? side : undefined);
  }

  /** The store's temp folder is created once per instance (again only if someone removes it). */
  private ensureTmpDir(): Promise<unknown> {
    return (this.tmpReady ??= fsp.mkdir(this.tmpDir, { recursive: true }).catch((err: unknown) => {
      this.tmpReady = undefined;
      throw err;
    }));
  }

  /** A new temp name: unique per process (`wx` opens guard against the rest). */
  private tempPath(suffix: string): string {
    return path.join(this.tmpDir, `${tempPrefix}-${(++tempCounter).toString(36)}${suffix}`);
  }

  /** A fresh create-only temp file (same filesystem as the buckets, so rename/link are atomic). */
  private async openTemp(suffix: string): Promise<{ fh: fsp.FileHandle; tmp: string }> {
    await this.ensureTmpDir();
    const tmp = this.tempPath(suffix);
    try {
      return { fh: await fsp.open(tmp, 'wx'), tmp };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.tmpReady = undefined;
      await this.ensureTmpDir();
      return { fh: await fsp.open(tmp, 'wx'), tmp };
    }
  }

  /** openTemp's synchronous twin (the temp folder is created at most once per store, as there). */
  private openTempSync(suffix: string): { fd: number; tmp: string } {
    const tmp = this.tempPath(suffix);
    try {
      return { fd: fs.openSync(tmp, 'wx'), tmp };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(this.tmpDir, { recursive: true });
      this.tmpReady = Promise.resolve();
      return { fd: fs.openSync(tmp, 'wx'), tmp };
    }
  }

  private place(
    tmp: string,
    dest: string,
    bucket: string,
    name: string,
    opts: WriteOptions,
    io: FsIo,
  ): Promise<void> {
    if (opts.ifGenerationMatch !== undefined && opts.ifGenerationMatch !== '0')
      return this.commitReplacing(tmp, dest, bucket, name, opts.ifGenerationMatch);
    return this.commit(tmp, dest, bucket, name, opts.ifAbsent === true || opts.ifGenerationMatch === '0', io);
  }

  /**
   * Compare-and-swap: the live file is first renamed away (only one writer can win that rename), its
   * generation checked, then the new file takes its place. A loser puts nothing back over a winner.
   */
  private async commitReplacing(
    tmp: string,
    dest: string,
    bucket: string,
    name: string,
    expected: string,
  ): Promise<void> {
    const failed = (why: string, cause?: unknown): SmelterError =>
      new SmelterError(
        'PRECONDITION_FAILED',
        `Generation ${expected} of gs://${bucket}/${name} is not live (${why})`,
        {
          kind: 'permanent',
          ...(cause ? { cause } : {}),
        },
      );
    const claim = this.tempPath('.claim');
    try {
      await fsp.rename(dest, claim);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw failed('no live object', err);
      throw err;
    }
    const st = await fsp.stat(claim, { bigint: true });
    if ((st.mtimeNs / 1000n).toString() !== expected) {
      await fsp.link(claim, dest).catch(() => undefined);
      await fsp.unlink(claim).catch(() => undefined);
      throw failed(`live generation is ${(st.mtimeNs / 1000n).toString()}`);
    }
    await fsp.rename(tmp, dest);
    await fsp.unlink(claim).catch(() => undefined);
  }

  /**
   * Moves the finished temp file into place: `link` (create-only) or `rename` (overwrite). The
   * destination folder is created only when the first attempt says it is missing — for the usual
   * write into an existing folder that saves a mkdir per write, and a folder removed in between (delete
   * prunes emptied folders) is simply created again.
   */
  private async commit(
    tmp: string,
    dest: string,
    bucket: string,
    name: string,
    ifAbsent: boolean,
    io: FsIo,
  ): Promise<void> {
    const place = ifAbsent ? () => io.link(tmp, dest) : () => io.rename(tmp, dest);
    try {
      try {
        await place();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await io.mkdirp(path.dirname(dest)).catch((e: unknown) => {
          throw conflictError(e, bucket, name);
        });
        await place();
      }
    } catch (err) {
      if (err instanceof SmelterError) throw err;
      if (ifAbsent && (err as NodeJS.ErrnoException).code === 'EEXIST') {
        if ((await io.lstat(dest).catch(() => undefined))?.isDirectory())
          throw conflictError(err, bucket, name);
        throw new SmelterError('PRECONDITION_FAILED', `Object already exists: gs://${bucket}/${name}`, {
          kind: 'permanent',
          cause: err,
        });
      }
      // A file where a folder of the path should be (ENOTDIR), a folder where the object should be.
      throw conflictError(err, bucket, name);
    }
    if (ifAbsent) await io.unlink(tmp).catch(() => undefined);
  }

  /** Best effort; false when the sidecar could not be written (readers then guess the content type). */
  private async writeSidecar(bucket: string, name: string, side: Sidecar, io: FsIo): Promise<boolean> {
    const sidePath = this.sidecarPath(bucket, name);
    const tmp = this.tempPath('.meta');
    const body = JSON.stringify(side);
    try {
      try {
        await io.writeNew(tmp, body);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await io.mkdirp(this.tmpDir);
        await io.writeNew(tmp, body);
      }
      try {
        await io.rename(tmp, sidePath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await io.mkdirp(path.dirname(sidePath));
        await io.rename(tmp, sidePath);
      }
      return true;
    } catch {
      // Metadata is best effort: the object is committed; readers fall back to a guessed content type.
      await io.unlink(tmp).catch(() => undefined);
      return false;
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

  /**
   * Files in the bucket folder that no object name can address (a name with a newline, a tab or bytes
   * that are not UTF-8; a backslash; an over-long name): `list` cannot yield them, yet they are there.
   * Their names are raw bytes; `path` is the file's path as bytes (opened as is).
   */
  async *unaddressable(bucket: string): AsyncIterable<UnaddressableFile> {
    const root = Buffer.from(this.bucketDir(bucket));
    const sep = Buffer.from('/');
    const walk = async function* (dir: Buffer, rel: Buffer | undefined): AsyncIterable<UnaddressableFile> {
      let entries: fs.Dirent<Buffer>[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true, encoding: 'buffer' });
      } catch {
        return; // gone meanwhile, or not a folder
      }
      for (const e of entries) {
        const name = rel ? Buffer.concat([rel, sep, e.name]) : e.name;
        const full = Buffer.concat([dir, sep, e.name]);
        if (e.isDirectory()) yield* walk(full, name);
        else if (e.isFile()) {
          const why = unaddressableReason(name);
          if (!why) continue;
          const st = await fsp.stat(full, { bigint: true }).catch(() => undefined);
          if (st?.isFile())
            yield {
              name,
              path: full,
              reason: why,
              size: Number(st.size),
              generation: (st.mtimeNs / 1000n).toString(),
            };
        }
      }
    };
    yield* walk(root, undefined);
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

/** Whether /proc/self/fd/N reopens this process's descriptor N (Linux): the file offered to engines. */
const PROC_FD = fs.existsSync('/proc/self/fd');

/**
 * Offers the file a read stream reads (LOCAL_FILE) as a second descriptor on the same inode, opened now
 * while the stream's own is certainly open: it pins this generation even if the object is replaced
 * meanwhile, and its number cannot be reused by another file until released. Closed with the stream
 * unless taken; whoever takes it releases it.
 */
function offerLocalFile(stream: fs.ReadStream, fd: number): fs.ReadStream {
  let spare: number | undefined;
  try {
    spare = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_RDONLY);
  } catch {
    return stream;
  }
  stream.once('close', () => {
    if (spare !== undefined) fs.closeSync(spare);
    spare = undefined;
  });
  const local: LocalFileOffer = {
    open() {
      if (spare === undefined) return undefined;
      const taken = spare;
      spare = undefined;
      let open = true;
      return {
        path: `/proc/self/fd/${taken}`,
        release: () => {
          if (open) fs.closeSync(taken);
          open = false;
        },
      };
    },
  };
  return Object.assign(stream, { [LOCAL_FILE]: local });
}

export interface UnaddressableFile {
  /** The name as stored: raw bytes, `/` between folders. */
  name: Buffer;
  path: Buffer;
  reason: string;
  size: number;
  generation: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Why no object name maps onto this file name, or undefined when one does. */
function unaddressableReason(name: Buffer): string | undefined {
  let text: string;
  try {
    text = strictUtf8.decode(name);
  } catch {
    return 'the file name is not valid UTF-8';
  }
  try {
    assertPathSafeObjectName(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function tryOr<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** The few calls commit and sidecar writes need, asynchronous (thread pool) or synchronous (in place). */
interface FsIo {
  link(a: string, b: string): Promise<void>;
  rename(a: string, b: string): Promise<void>;
  mkdirp(p: string): Promise<unknown>;
  lstat(p: string): Promise<fs.Stats>;
  unlink(p: string): Promise<void>;
  /** Create-only write of a small file. */
  writeNew(p: string, data: string): Promise<void>;
}

const asyncIo: FsIo = {
  link: (a, b) => fsp.link(a, b),
  rename: (a, b) => fsp.rename(a, b),
  mkdirp: (p) => fsp.mkdir(p, { recursive: true }),
  lstat: (p) => fsp.lstat(p),
  unlink: (p) => fsp.unlink(p),
  writeNew: (p, data) => fsp.writeFile(p, data, { flag: 'wx' }),
};

// `async` so a failing call rejects (like its asynchronous twin) instead of throwing.
const syncIo: FsIo = {
  link: async (a, b) => fs.linkSync(a, b),
  rename: async (a, b) => fs.renameSync(a, b),
  mkdirp: async (p) => fs.mkdirSync(p, { recursive: true }),
  lstat: async (p) => fs.lstatSync(p),
  unlink: async (p) => fs.unlinkSync(p),
  writeNew: async (p, data) => fs.writeFileSync(p, data, { flag: 'wx' }),
};

/** In-memory sources up to this size are written with synchronous calls (see writeSmall). */
const SYNC_WRITE_MAX_BYTES = 1024 * 1024;

/** Temp names: unique per process without a getpid and a CSPRNG call per write (`wx` guards anyway). */
const tempPrefix = `${process.pid}-${randomBytes(6).toString('hex')}`;
let tempCounter = 0;

/** Writes all of `b` at `pos` (a write may be partial); returns its length. */
async function writeAll(fh: fsp.FileHandle, b: Buffer, pos: number): Promise<number> {
  for (let off = 0; off < b.length;) off += (await fh.write(b, off, b.length - off, pos + off)).bytesWritten;
  return b.length;
}

/** From this size on a file is hashed in a worker thread: below it, the thread's start costs more than the hash. */
const WORKER_HASH_MIN_BYTES = 8 * 1024 * 1024;

// Runs as a worker (eval'd: the same code from dist/ and from the TypeScript sources): hashes the file
// it is sent, answers its md5 and exits.
const MD5_WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.once('message', (file) => {
  const md5 = require('node:crypto').createHash('md5');
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) md5.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  parentPort.postMessage(md5.digest('base64'));
});
`;

/**
 * The base64 md5 of a file not written yet (`of` once it is). For a big one a worker thread is started
 * at once, so its start-up (~30 ms, far more on a busy machine) overlaps the writing; then a second
 * core hashes while the main thread stays free (for the fsync meanwhile, and whatever else the process
 * does). `cancel` stops a worker that is no longer needed (the write failed).
 */
function md5Later(expectedBytes: number): { of(file: string): Promise<string>; cancel(): void } {
  if (expectedBytes < WORKER_HASH_MIN_BYTES)
    return {
      async of(file) {
        const md5 = createHash('md5');
        for await (const c of fs.createReadStream(file, { highWaterMark: 1024 * 1024 }))
          md5.update(c as Buffer);
        return md5.digest('base64');
      },
      cancel: () => undefined,
    };
  const w = new Worker(MD5_WORKER, { eval: true, execArgv: [] });
  const result = new Promise<string>((resolve, reject) => {
    let md5: string | undefined;
    w.once('message', (m: string) => (md5 = m));
    w.once('error', reject);
    w.once('exit', (code) =>
      md5 !== undefined ? resolve(md5) : reject(new Error(`md5 worker exited with code ${code}`)),
    );
  });
  result.catch(() => undefined); // observed through `of`; a cancelled worker's end is not unhandled
  return {
    of(file) {
      w.postMessage(file);
      return result;
    },
    cancel: () => void w.terminate(),
  };
}

/**
 * A file read between two stats held the same bytes throughout when both stats agree (any write moves
 * its mtime and ctime) — provided it was last changed well before the first (settledBefore): times come
 * from a coarse clock (whole seconds on some filesystems), and a write in the same tick as the change
 * before it leaves them as they were (git's "racy" case).
 */
export function settledBefore(st: fs.BigIntStats, atMs: number): boolean {
  const changedNs = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  return atMs - Number(changedNs / 1_000_000n) > RACY_MS;
}
const RACY_MS = 2000;

export function sameFile(a: fs.BigIntStats, b: fs.BigIntStats): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

/** The bytes of a string / Buffer / Uint8Array source (written without streams); undefined for streams. */
function inMemoryBytes(source: WriteSource | Uint8Array): Buffer | undefined {
  if (typeof source === 'string') return Buffer.from(source, 'utf8');
  if (Buffer.isBuffer(source)) return source;
  if (source instanceof Uint8Array) return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  return undefined;
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
