/**
 * GCS driver on `@google-cloud/storage` v7.
 *
 * - Reads stream (`createReadStream`, pinned to a generation when asked). `read()` resolves only once GCS
 *   has answered, so a missing object rejects with NOT_FOUND instead of failing later on the stream.
 * - Writes are resumable streamed uploads with no `chunkSize`: one PUT carries the whole stream, so
 *   nothing is buffered; GCS only creates the object when the body completes, so a source that fails
 *   mid-write (the request is aborted) leaves no object and the previous version intact.
 * - Create-only is `preconditionOpts: { ifGenerationMatch: 0 }`, checked by GCS atomically at finalization.
 * - `STORAGE_EMULATOR_HOST` is honoured by the client itself (read when the `Storage` is constructed).
 * - Errors: 404 → NOT_FOUND, 409/412 → PRECONDITION_FAILED (permanent); 408/429/5xx, socket errors and
 *   auth errors → STORAGE_UNAVAILABLE (transient: the platform retries). Errors from the caller's source
 *   stream pass through unchanged.
 */
import { Storage, type File, type FileMetadata } from '@google-cloud/storage';
import http from 'node:http';
import https from 'node:https';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { permanent, SmelterError, transient } from '../../errors';
import {
  assertValidBucketName,
  assertValidObjectName,
  guessContentType,
  type ObjectMeta,
  type ObjectStore,
  type ReadOptions,
  type WriteOptions,
  type WriteSource,
} from '../../storage/object-store';

export interface GcsObjectStoreOptions {
  projectId?: string;
  apiEndpoint?: string;
  /** A ready client (tests pass one with fast retries); `projectId`/`apiEndpoint` are then ignored. */
  storage?: Storage;
  /** Let `ensureBucket` create a missing bucket. Off by default: on GCP, buckets belong to the deploy. */
  createBuckets?: boolean;
  /** Objects per list request (GCS caps it at 1000). */
  listPageSize?: number;
  /** A download that delivers no bytes for this long while the reader wants them fails as transient. */
  readStallTimeoutMs?: number;
}

type Interceptor = File['interceptors'][number];

export class GcsObjectStore implements ObjectStore {
  readonly driver = 'gcs';
  readonly storage: Storage;
  private readonly createBuckets: boolean;

  constructor(readonly opts: GcsObjectStoreOptions = {}) {
    this.storage =
      opts.storage ??
      new Storage({
        ...(opts.projectId ? { projectId: opts.projectId } : {}),
        ...(opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint } : {}),
      });
    this.createBuckets = opts.createBuckets ?? false;
  }

  private file(bucket: string, name: string, generation?: string): File {
    assertValidBucketName(bucket);
    assertValidObjectName(name);
    return this.storage.bucket(bucket).file(name, generation !== undefined ? { generation } : {});
  }

  async ensureBucket(bucket: string): Promise<void> {
    assertValidBucketName(bucket);
    const b = this.storage.bucket(bucket);
    try {
      const [exists] = await b.exists();
      if (exists) return;
      if (!this.createBuckets)
        throw permanent('NOT_FOUND', `Bucket gs://${bucket} does not exist (create it with the deploy)`);
      await b.create();
    } catch (err) {
      // Another process created it first: fine.
      if (httpStatus(err) === 409) return;
      throw mapGcsError(err, `gs://${bucket}`);
    }
  }

  async read(bucket: string, name: string, opts: ReadOptions = {}): Promise<Readable> {
    if (opts.generation !== undefined && !/^\d+$/.test(String(opts.generation)))
      throw permanent('NOT_FOUND', `No generation ${String(opts.generation)} of ${uri(bucket, name)}`);
    const where = uri(bucket, name, opts.generation);
    const src = this.file(bucket, name, opts.generation).createReadStream({ validation: 'crc32c' });
    const ready = new Promise<void>((resolve, reject) => {
      src.once('error', reject);
      // Emitted for every answer; error answers are followed by an 'error' carrying GCS's message.
      src.on('response', (res: { statusCode?: number; status?: number }) => {
        const status = res.statusCode ?? res.status ?? 0;
        if (status >= 200 && status < 300) resolve();
      });
    });
    src.read(0); // the client sends the request only once someone reads
    try {
      await ready;
    } catch (err) {
      src.destroy();
      throw mapGcsError(err, where);
    }
    return guardedDownload(src, where, this.opts.readStallTimeoutMs ?? 60_000);
  }

  async write(
    bucket: string,
    name: string,
    source: WriteSource,
    opts: WriteOptions = {},
  ): Promise<ObjectMeta> {
    const file = this.file(bucket, name);
    const where = uri(bucket, name);
    const contentType = opts.contentType ?? guessContentType(name);
    const guard = uploadGuard(this.storage.apiEndpoint);
    // Interceptors are how the client lets callers add request options (here: the agent) to its uploads.
    if (guard)
      file.interceptors.push({
        request: (o) => ({ ...o, agent: guard.agent }) as unknown as ReturnType<Interceptor['request']>,
      });
    const sink = file.createWriteStream({
      resumable: true,
      validation: 'crc32c',
      contentType,
      metadata: { contentType, ...(opts.metadata ? { metadata: opts.metadata } : {}) },
      ...(opts.ifAbsent || opts.ifGenerationMatch !== undefined
        ? { preconditionOpts: { ifGenerationMatch: opts.ifAbsent ? 0 : Number(opts.ifGenerationMatch) } }
        : {}),
    });
    // Tell the caller's source errors (passed through unchanged) from the upload's own (mapped). Either
    // failure is passed on to the other stream by the pipeline, so what counts is which came first.
    let first: 'source' | 'upload' | undefined;
    const input = toReadable(source);
    input.once('error', () => (first ??= 'source'));
    sink.once('error', () => (first ??= 'upload'));
    try {
      await pipeline(input, sink);
    } catch (err) {
      // The client does not abort its in-flight PUT when its input fails; it would hang (holding a socket)
      // until GCS times it out. GCS never finalizes a cut-off upload, so cutting it is safe.
      guard?.abort();
      if (first === 'source') throw err;
      throw mapGcsError(err, where);
    } finally {
      guard?.agent.destroy();
    }
    return toMeta(bucket, file.metadata);
  }

  async stat(bucket: string, name: string): Promise<ObjectMeta | undefined> {
    try {
      const [md] = await this.file(bucket, name).getMetadata();
      return toMeta(bucket, md);
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw mapGcsError(err, uri(bucket, name));
    }
  }

  async *list(bucket: string, prefix = ''): AsyncIterable<ObjectMeta> {
    assertValidBucketName(bucket);
    const b = this.storage.bucket(bucket);
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = (await b.getFiles({
          prefix,
          autoPaginate: false,
          maxResults: this.opts.listPageSize ?? 1000,
          ...(pageToken ? { pageToken } : {}),
        })) as unknown as [File[], { pageToken?: string } | null];
      } catch (err) {
        throw mapGcsError(err, `gs://${bucket}/${prefix}*`);
      }
      // GCS lists in UTF-8 byte order, which is the port's order.
      for (const f of files) yield toMeta(bucket, f.metadata);
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(bucket: string, name: string): Promise<boolean> {
    try {
      await this.file(bucket, name).delete();
      return true;
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      throw mapGcsError(err, uri(bucket, name));
    }
  }
}

/**
 * Wraps the client's download stream:
 * - errors become SmelterErrors;
 * - a stall watchdog: the client (node-fetch 2) never ends nor errors a download whose connection drops
 *   mid-body when the answer has a Content-Length, which would hang the function until its timeout;
 * - destroying the wrapper waits for the client's stream to close. On an early close the client destroys
 *   its shared keep-alive agent (to free the socket), which resets requests started in the meantime.
 */
function guardedDownload(src: Readable, where: string, stallMs: number): Readable {
  let lastProgress = Date.now();
  const out = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (src.isPaused()) {
        lastProgress = Date.now();
        src.resume();
      }
    },
    destroy(err, cb) {
      clearInterval(watchdog);
      if (src.closed) return cb(err);
      src.once('close', () => cb(err));
      src.destroy();
    },
  });
  const watchdog = setInterval(
    () => {
      if (!src.isPaused() && Date.now() - lastProgress > stallMs)
        out.destroy(
          transient('STORAGE_UNAVAILABLE', `Download of ${where} stalled: no data for ${stallMs} ms`),
        );
    },
    Math.max(10, Math.min(1000, stallMs / 4)),
  );
  watchdog.unref();
  src.on('data', (chunk: Buffer) => {
    lastProgress = Date.now();
    if (!out.push(chunk)) src.pause();
  });
  src.once('end', () => {
    clearInterval(watchdog);
    out.push(null);
  });
  src.on('error', (err: unknown) => out.destroy(mapGcsError(err, where)));
  if (src.errored) out.destroy(mapGcsError(src.errored, where));
  return out;
}

/**
 * A private HTTP agent for one upload, so its sockets can be cut when the upload must be abandoned. The
 * abort error's code is one the client does not retry. Skipped behind a proxy (a custom agent would
 * bypass it); only the clean-up of a failed upload is lost then.
 */
function uploadGuard(apiEndpoint: string): { agent: http.Agent; abort(): void } | undefined {
  if (process.env.HTTPS_PROXY || process.env.https_proxy || process.env.HTTP_PROXY || process.env.http_proxy)
    return undefined;
  const agent = apiEndpoint.startsWith('http:')
    ? new http.Agent({ keepAlive: true })
    : new https.Agent({ keepAlive: true });
  const sockets = new Set<Duplex>();
  let aborted = false;
  const abortError = (): Error =>
    Object.assign(new Error('upload abandoned: its source stream failed'), {
      code: 'ERR_SMELTER_UPLOAD_ABANDONED',
    });
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => Duplex;
  agent.createConnection = ((...args: unknown[]) => {
    const socket = create(...args);
    // A request started after the abort fails at once (after the client has attached its listeners).
    if (aborted) setImmediate(() => socket.destroy(abortError()));
    else {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    return socket;
  }) as typeof agent.createConnection;
  return {
    agent,
    abort() {
      aborted = true;
      for (const s of sockets) s.destroy(abortError());
    },
  };
}

function uri(bucket: string, name: string, generation?: string): string {
  return `gs://${bucket}/${name}${generation !== undefined ? `#${generation}` : ''}`;
}

function toReadable(source: WriteSource): Readable {
  if (source instanceof Readable) return source;
  if (typeof source === 'string' || Buffer.isBuffer(source)) return Readable.from([Buffer.from(source)]);
  return Readable.from(source);
}

function toMeta(bucket: string, md: FileMetadata): ObjectMeta {
  if (md.generation === undefined || md.name === undefined)
    throw transient('STORAGE_UNAVAILABLE', `GCS answered without an object resource for gs://${bucket}`);
  const custom = md.metadata
    ? Object.fromEntries(
        Object.entries(md.metadata)
          .filter(([, v]) => v !== null && v !== undefined)
          .map(([k, v]) => [k, String(v)]),
      )
    : undefined;
  return {
    bucket,
    name: md.name,
    generation: String(md.generation),
    size: Number(md.size ?? 0),
    ...(md.contentType ? { contentType: md.contentType } : {}),
    timeCreated: md.timeCreated ?? '',
    updated: md.updated ?? md.timeCreated ?? '',
    ...(md.md5Hash ? { md5Hash: md.md5Hash } : {}),
    ...(md.crc32c ? { crc32c: md.crc32c } : {}),
    ...(custom && Object.keys(custom).length ? { metadata: custom } : {}),
  };
}

/** The HTTP status an error from the client carries, wherever this code path put it. */
export function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as {
    code?: unknown;
    status?: unknown;
    response?: { status?: unknown; statusCode?: unknown };
  };
  for (const v of [e.code, e.status, e.response?.status, e.response?.statusCode]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
    if (typeof v === 'string' && /^[1-5]\d\d$/.test(v)) return Number(v);
  }
  return undefined;
}

function errCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: { reason?: unknown }[] };
  if (typeof e.code === 'string') return e.code;
  if (e.cause) return errCode(e.cause);
  return undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string')
    return (err as { message: string }).message;
  return String(err);
}

/** Maps any error from the GCS client to a SmelterError (unchanged if it already is one). */
export function mapGcsError(err: unknown, where: string): SmelterError {
  if (err instanceof SmelterError) return err;
  const status = httpStatus(err);
  const code = errCode(err);
  const msg = messageOf(err).split('\n')[0]!.slice(0, 300);
  const details = {
    ...(status !== undefined ? { status } : {}),
    ...(code !== undefined ? { gcsCode: code } : {}),
  };
  const opts = { cause: err, details };
  if (status === 404) return permanent('NOT_FOUND', `No such object or bucket: ${where}`, opts);
  if (status === 409 || status === 412)
    return permanent('PRECONDITION_FAILED', `Precondition failed on ${where}: ${msg}`, opts);
  if (status === 408 || status === 429 || (status !== undefined && status >= 500))
    return transient('STORAGE_UNAVAILABLE', `GCS unavailable (${status}) on ${where}: ${msg}`, opts);
  // IAM changes take minutes to propagate: retrying beats quarantining good data.
  if (status === 401 || status === 403)
    return transient('STORAGE_UNAVAILABLE', `GCS denied access (${status}) to ${where}: ${msg}`, opts);
  if (status !== undefined)
    return permanent('INTERNAL', `GCS rejected the request (${status}) on ${where}: ${msg}`, opts);
  // FILE_NO_UPLOAD: the bytes GCS stored did not match what we sent (the client deleted the object).
  return transient('STORAGE_UNAVAILABLE', `GCS request failed on ${where}: ${msg}`, opts);
}
