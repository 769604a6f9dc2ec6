/**
 * A small in-process GCS JSON-API server: the subset `@google-cloud/storage` v7 uses for the object-store
 * driver, so the real client can be exercised offline (no GCS emulator can be had on our machines).
 *
 * - Paths: `/b/...` (the client with STORAGE_EMULATOR_HOST), `/storage/v1/b/...` (with `apiEndpoint`) and
 *   `/upload/storage/v1/b/...` (uploads).
 * - Buckets: get, insert, delete. Objects: get metadata, `alt=media` download (with `generation`), list
 *   (prefix, delimiter, pageToken, maxResults), delete, and inserts by `uploadType=media|multipart|resumable`
 *   (POST → Location; PUT with Content-Range; 308 "Resume Incomplete" for partial chunks; a request that
 *   is cut off before its body ends never finalizes an object, as on GCS).
 * - Preconditions `ifGenerationMatch` / `ifGenerationNotMatch` (0 = "does not exist") → 412, checked when
 *   a resumable session starts and again, atomically, when it is finalized.
 * - No versioning: only the live generation exists. Generations are µs timestamps as decimal strings,
 *   strictly increasing. Object resources carry `crc32c` and `md5Hash` (base64); the client deletes an
 *   upload and fails with FILE_NO_UPLOAD without them.
 * - Fault injection: `failNext(n, status)` answers the next n requests with an error status; `dropNext(n)`
 *   destroys their sockets (the client sees ECONNRESET / "socket hang up"); `truncateNextDownloads(n)` cuts
 *   downloads off mid-body; `corruptNextUploads(n)` answers finished uploads with a wrong crc32c.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// --- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven -----------------------------------

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `data` (continuing from `crc` when given) as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (CRC32C_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return ~c >>> 0;
}

/** The form GCS uses: the big-endian 4 bytes, base64. */
export function crc32cBase64(data: Uint8Array): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32c(data));
  return b.toString('base64');
}

// --- State -------------------------------------------------------------------------------------------------

export interface StoredObject {
  name: string;
  data: Buffer;
  generation: string;
  metageneration: string;
  contentType: string;
  metadata?: Record<string, string>;
  timeCreated: string;
  updated: string;
  md5Hash: string;
  crc32c: string;
}

interface Bucket {
  name: string;
  timeCreated: string;
  objects: Map<string, StoredObject>;
}

interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
}

interface Session {
  id: string;
  bucket: string;
  name: string;
  contentType: string;
  metadata?: Record<string, string>;
  pre: Preconditions;
  chunks: Buffer[];
  received: number;
  done?: StoredObject;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  /** 0: no answer (the client cut the request off, or a `dropNext` fault). */
  status: number;
}

export interface GcsTestServer {
  /** `http://127.0.0.1:PORT` — the value for STORAGE_EMULATOR_HOST or the client's `apiEndpoint`. */
  readonly url: string;
  readonly requests: RequestRecord[];
  createBucket(name: string): void;
  getObject(bucket: string, name: string): StoredObject | undefined;
  objectNames(bucket: string): string[];
  /** Open resumable sessions that never finalized (e.g. after a cut-off upload). */
  openSessions(): number;
  /** The next `count` requests (optionally only those `match` accepts) answer `status` with a GCS error body. */
  failNext(count: number, status?: number, match?: (method: string, path: string) => boolean): void;
  /** The next `count` requests have their socket destroyed without an answer. */
  dropNext(count: number, match?: (method: string, path: string) => boolean): void;
  /** The next `count` downloads send their headers and part of the body, then the socket is destroyed. */
  truncateNextDownloads(count: number): void;
  /** The next `count` finished uploads answer with a wrong crc32c (as if bytes were corrupted on the way). */
  corruptNextUploads(count: number): void;
  /** Forget all buckets, objects, sessions, faults and the request log. */
  reset(): void;
  close(): Promise<void>;
}

interface Fault {
  kind: 'status' | 'drop' | 'truncate' | 'corrupt';
  status: number;
  remaining: number;
  match?: (method: string, path: string) => boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason = 'invalid',
  ) {
    super(message);
  }
}

const REASONS: Record<number, string> = {
  400: 'invalid',
  404: 'notFound',
  409: 'conflict',
  412: 'conditionNotMet',
  429: 'rateLimitExceeded',
  500: 'backendError',
  503: 'backendError',
};

/** Byte-wise (UTF-8) order: the order GCS lists objects in. */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export async function startGcsServer(): Promise<GcsTestServer> {
  const buckets = new Map<string, Bucket>();
  const sessions = new Map<string, Session>();
  const faults: Fault[] = [];
  const requests: RequestRecord[] = [];
  let lastGeneration = 0n;

  const nextGeneration = (): string => {
    const now = BigInt(Date.now()) * 1000n;
    lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
    return lastGeneration.toString();
  };

  const getBucket = (name: string): Bucket => {
    const b = buckets.get(name);
    if (!b) throw new HttpError(404, `The specified bucket does not exist: ${name}`, 'notFound');
    return b;
  };

  const createBucket = (name: string): Bucket => {
    if (buckets.has(name)) throw new HttpError(409, `Bucket ${name} already exists`, 'conflict');
    const b: Bucket = { name, timeCreated: new Date().toISOString(), objects: new Map() };
    buckets.set(name, b);
    return b;
  };

  const checkPreconditions = (b: Bucket, name: string, pre: Preconditions): void => {
    const live = b.objects.get(name)?.generation ?? '0';
    if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== live)
      throw new HttpError(
        412,
        'At least one of the pre-conditions you specified did not hold.',
        'conditionNotMet',
      );
    if (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === live)
      throw new HttpError(
        412,
        'At least one of the pre-conditions you specified did not hold.',
        'conditionNotMet',
      );
  };

  /** Atomic: the precondition check and the swap happen in one synchronous step. */
  const finalize = (
    bucket: string,
    name: string,
    data: Buffer,
    contentType: string,
    metadata: Record<string, string> | undefined,
    pre: Preconditions,
  ): StoredObject => {
    const b = getBucket(bucket);
    checkPreconditions(b, name, pre);
    const now = new Date().toISOString();
    const obj: StoredObject = {
      name,
      data,
      generation: nextGeneration(),
      metageneration: '1',
      contentType,
      ...(metadata ? { metadata } : {}),
      timeCreated: now,
      updated: now,
      md5Hash: createHash('md5').update(data).digest('base64'),
      crc32c: crc32cBase64(data),
    };
    b.objects.set(name, obj);
    return obj;
  };

  const takeFault = (kind: Fault['kind']): boolean => {
    const f = faults.find((x) => x.kind === kind && x.remaining > 0);
    if (f) f.remaining--;
    return f !== undefined;
  };

  let base = '';
  const uploaded = (bucket: string, o: StoredObject): Record<string, unknown> =>
    takeFault('corrupt') ? { ...resource(bucket, o), crc32c: 'AAAAAA==' } : resource(bucket, o);

  const resource = (bucket: string, o: StoredObject): Record<string, unknown> => ({
    kind: 'storage#object',
    id: `${bucket}/${o.name}/${o.generation}`,
    selfLink: `${base}/storage/v1/b/${bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `${base}/download/storage/v1/b/${bucket}/o/${encodeURIComponent(o.name)}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: Buffer.from(o.generation).toString('base64'),
    timeCreated: o.timeCreated,
    updated: o.updated,
    timeStorageClassUpdated: o.timeCreated,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  });

  const bucketResource = (b: Bucket): Record<string, unknown> => ({
    kind: 'storage#bucket',
    id: b.name,
    name: b.name,
    selfLink: `${base}/storage/v1/b/${b.name}`,
    projectNumber: '0',
    metageneration: '1',
    location: 'US',
    storageClass: 'STANDARD',
    etag: 'CAE=',
    timeCreated: b.timeCreated,
    updated: b.timeCreated,
  });

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A client that went away mid-body: nothing to answer (and nothing was finalized).
      if (res.headersSent || req.socket.destroyed) {
        if (!res.headersSent) record(req, new URL(req.url ?? '/', 'http://localhost'), 0);
        res.destroy();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      sendError(res, status, message, err instanceof HttpError ? err.reason : undefined);
    });
  });

  const record = (req: http.IncomingMessage, url: URL, status: number): void => {
    requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status,
    });
  };

  const sendJson = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: http.OutgoingHttpHeaders = {},
  ): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const sendError = (res: http.ServerResponse, status: number, message: string, reason?: string): void => {
    sendJson(res, status, {
      error: {
        code: status,
        message,
        errors: [{ message, domain: 'global', reason: reason ?? REASONS[status] ?? 'invalid' }],
      },
    });
  };

  const readBody = async (req: http.IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    // `for await` ends quietly on some aborts; `complete` tells a finished body from a cut-off one.
    if (!req.complete) throw new Error('request body cut off');
    return Buffer.concat(chunks);
  };

  const preconditionsOf = (q: URLSearchParams): Preconditions => {
    const pre: Preconditions = {};
    const m = q.get('ifGenerationMatch');
    const n = q.get('ifGenerationNotMatch');
    if (m !== null) pre.ifGenerationMatch = m;
    if (n !== null) pre.ifGenerationNotMatch = n;
    return pre;
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';

    res.on('finish', () => record(req, url, res.statusCode));

    const fault = faults.find(
      (f) =>
        (f.kind === 'status' || f.kind === 'drop') &&
        f.remaining > 0 &&
        (!f.match || f.match(method, url.pathname)),
    );
    if (fault) {
      fault.remaining--;
      if (fault.kind === 'drop') {
        record(req, url, 0);
        req.socket.destroy();
        return;
      }
      req.resume();
      sendError(res, fault.status, `Injected fault ${fault.status}`);
      return;
    }

    // Keep the raw (still percent-encoded) segments: object names may contain '/' (sent as %2F).
    const raw = url.pathname;
    const upload = raw.startsWith('/upload/storage/v1/');
    const rest = upload ? raw.slice('/upload/storage/v1'.length) : raw.replace(/^\/storage\/v1(?=\/)/, '');
    const segs = rest.split('/').slice(1);
    if (segs[0] !== 'b') throw new HttpError(404, `Not found: ${raw}`, 'notFound');
    const q = url.searchParams;

    if (upload) return handleUpload(req, res, segs, q);

    // /b
    if (segs.length === 1) {
      if (method === 'POST') {
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { name?: string };
        if (!body.name) throw new HttpError(400, 'Bucket name required');
        return sendJson(res, 200, bucketResource(createBucket(body.name)));
      }
      if (method === 'GET')
        return sendJson(res, 200, {
          kind: 'storage#buckets',
          items: [...buckets.values()].map(bucketResource),
        });
      throw new HttpError(405, `${method} not supported on /b`);
    }
    const bucketName = decodeURIComponent(segs[1]!);
    // /b/:bucket
    if (segs.length === 2) {
      req.resume();
      if (method === 'GET') return sendJson(res, 200, bucketResource(getBucket(bucketName)));
      if (method === 'DELETE') {
        const b = getBucket(bucketName);
        if (b.objects.size > 0)
          throw new HttpError(409, 'The bucket you tried to delete is not empty.', 'conflict');
        buckets.delete(bucketName);
        res.writeHead(204).end();
        return;
      }
      throw new HttpError(405, `${method} not supported on a bucket`);
    }
    if (segs[2] !== 'o') throw new HttpError(404, `Not found: ${raw}`, 'notFound');
    // /b/:bucket/o — list, or a JSON-API insert without the /upload prefix (not used by the client)
    if (segs.length === 3) {
      req.resume();
      if (method !== 'GET') throw new HttpError(405, `${method} not supported on /o`);
      return list(res, getBucket(bucketName), q);
    }
    // /b/:bucket/o/:object
    const name = decodeURIComponent(segs.slice(3).join('/'));
    req.resume();
    const b = getBucket(bucketName);
    const obj = b.objects.get(name);
    const wanted = q.get('generation');
    const live = obj && (wanted === null || wanted === obj.generation) ? obj : undefined;
    if (method === 'GET') {
      if (!live) throw new HttpError(404, `No such object: ${bucketName}/${name}`, 'notFound');
      if (q.get('alt') !== 'media') return sendJson(res, 200, resource(bucketName, live));
      res.writeHead(200, {
        'content-type': live.contentType,
        'content-length': live.data.length,
        'x-goog-generation': live.generation,
        'x-goog-metageneration': live.metageneration,
        'x-goog-hash': `crc32c=${live.crc32c},md5=${live.md5Hash}`,
        'x-goog-stored-content-encoding': 'identity',
        'x-goog-stored-content-length': live.data.length,
      });
      // Stream in slices so large reads are really streamed (and a reader can stop half-way).
      const SLICE = 256 * 1024;
      const truncate = takeFault('truncate');
      let off = 0;
      const pump = (): void => {
        while (off < live.data.length) {
          if (truncate && off > 0) {
            res.destroy();
            return;
          }
          const slice = live.data.subarray(off, off + SLICE);
          off += slice.length;
          if (!res.write(slice)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (method === 'DELETE') {
      if (!live) throw new HttpError(404, `No such object: ${bucketName}/${name}`, 'notFound');
      checkPreconditions(b, name, preconditionsOf(q));
      b.objects.delete(name);
      res.writeHead(204).end();
      return;
    }
    throw new HttpError(405, `${method} not supported on an object`);
  }

  function list(res: http.ServerResponse, b: Bucket, q: URLSearchParams): void {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const max = Math.min(Number(q.get('maxResults') ?? 1000) || 1000, 1000);
    const after = q.get('pageToken')
      ? Buffer.from(q.get('pageToken')!, 'base64url').toString('utf8')
      : undefined;
    const names = [...b.objects.keys()].filter((n) => n.startsWith(prefix)).sort(byUtf8);
    const items: Record<string, unknown>[] = [];
    const prefixes = new Set<string>();
    let next: string | undefined;
    for (const n of names) {
      if (after !== undefined && byUtf8(n, after) <= 0) continue;
      if (items.length + prefixes.size >= max) {
        next = Buffer.from(
          items.length ? (items[items.length - 1]!.name as string) : [...prefixes].pop()!,
        ).toString('base64url');
        break;
      }
      if (delimiter) {
        const i = n.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          prefixes.add(n.slice(0, i + delimiter.length));
          continue;
        }
      }
      items.push(resource(b.name, b.objects.get(n)!));
    }
    sendJson(res, 200, {
      kind: 'storage#objects',
      ...(items.length ? { items } : {}),
      ...(prefixes.size ? { prefixes: [...prefixes] } : {}),
      ...(next ? { nextPageToken: next } : {}),
    });
  }

  async function handleUpload(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    segs: string[],
    q: URLSearchParams,
  ): Promise<void> {
    if (segs.length !== 3 || segs[2] !== 'o') throw new HttpError(404, 'Not found', 'notFound');
    const bucketName = decodeURIComponent(segs[1]!);
    const method = req.method ?? '';
    const uploadType = q.get('uploadType');
    const uploadId = q.get('upload_id');

    if (method === 'PUT' && uploadId) return resumableChunk(req, res, uploadId);
    if (method !== 'POST') throw new HttpError(405, `${method} not supported on uploads`);
    getBucket(bucketName);
    const pre = preconditionsOf(q);

    if (uploadType === 'resumable') {
      const meta = JSON.parse((await readBody(req)).toString('utf8') || '{}') as {
        name?: string;
        contentType?: string;
        metadata?: Record<string, string>;
      };
      const name = q.get('name') ?? meta.name;
      if (!name) throw new HttpError(400, 'Object name required');
      // Fail fast, as GCS does; checked again at finalization (another writer may win in between).
      checkPreconditions(getBucket(bucketName), name, pre);
      const header = req.headers['x-upload-content-type'];
      const id = randomBytes(12).toString('hex');
      sessions.set(id, {
        id,
        bucket: bucketName,
        name,
        contentType: (typeof header === 'string' ? header : meta.contentType) ?? 'application/octet-stream',
        ...(meta.metadata ? { metadata: meta.metadata } : {}),
        pre,
        chunks: [],
        received: 0,
      });
      const location = `${base}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
      res.writeHead(200, { location, 'content-length': 0 }).end();
      return;
    }

    const body = await readBody(req);
    if (uploadType === 'media') {
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'Object name required');
      const ct = req.headers['content-type'] ?? 'application/octet-stream';
      return sendJson(res, 200, uploaded(bucketName, finalize(bucketName, name, body, ct, undefined, pre)));
    }
    if (uploadType === 'multipart') {
      const [metaPart, dataPart] = parseMultipart(req.headers['content-type'] ?? '', body);
      const meta = JSON.parse(metaPart.body.toString('utf8')) as {
        name?: string;
        contentType?: string;
        metadata?: Record<string, string>;
      };
      const name = q.get('name') ?? meta.name;
      if (!name) throw new HttpError(400, 'Object name required');
      const ct = meta.contentType ?? dataPart.contentType ?? 'application/octet-stream';
      return sendJson(
        res,
        200,
        uploaded(bucketName, finalize(bucketName, name, dataPart.body, ct, meta.metadata, pre)),
      );
    }
    throw new HttpError(400, `Unsupported uploadType ${uploadType}`);
  }

  async function resumableChunk(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
  ): Promise<void> {
    const s = sessions.get(id);
    if (!s) throw new HttpError(404, 'No such upload session', 'notFound');
    if (s.done) {
      req.resume();
      return sendJson(res, 200, resource(s.bucket, s.done));
    }
    const range = String(req.headers['content-range'] ?? '');
    const incomplete = (): void => {
      res
        .writeHead(308, {
          ...(s.received > 0 ? { range: `bytes=0-${s.received - 1}` } : {}),
          'content-length': 0,
        })
        .end();
    };
    const done = (): void => {
      const obj = finalize(s.bucket, s.name, Buffer.concat(s.chunks), s.contentType, s.metadata, s.pre);
      s.done = obj;
      s.chunks = [];
      sessions.delete(id);
      sendJson(res, 200, uploaded(s.bucket, obj));
    };

    // Status query: `bytes */TOTAL` or `bytes */*`.
    const status = /^bytes \*\/(\d+|\*)$/.exec(range);
    if (status) {
      await readBody(req);
      if (status[1] !== '*' && Number(status[1]) === s.received) return done();
      return incomplete();
    }
    const m = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(range);
    if (!m) throw new HttpError(400, `Bad Content-Range ${JSON.stringify(range)}`);
    const start = Number(m[1]);
    const total = m[3] === '*' ? undefined : Number(m[3]);
    if (start > s.received)
      throw new HttpError(400, `Upload offset ${start} skips past ${s.received} received bytes`);
    // The body is buffered per request and appended only once complete: a cut-off request adds nothing.
    const body = await readBody(req);
    const skip = s.received - start; // bytes the client re-sent
    if (body.length > skip) {
      s.chunks.push(body.subarray(skip));
      s.received += body.length - skip;
    }
    if (total !== undefined) {
      if (s.received === total) return done();
      if (s.received > total)
        throw new HttpError(400, `Received ${s.received} bytes, more than the declared ${total}`);
      return incomplete();
    }
    // `bytes N-*/*` is the client's single-request streaming form: the end of the body is the end of the object.
    if (m[2] === '*') return done();
    return incomplete();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    createBucket: (name) => void createBucket(name),
    getObject: (bucket, name) => buckets.get(bucket)?.objects.get(name),
    objectNames: (bucket) => [...(buckets.get(bucket)?.objects.keys() ?? [])].sort(byUtf8),
    openSessions: () => sessions.size,
    failNext(count, status = 503, match) {
      faults.push({ kind: 'status', status, remaining: count, ...(match ? { match } : {}) });
    },
    dropNext(count, match) {
      faults.push({ kind: 'drop', status: 0, remaining: count, ...(match ? { match } : {}) });
    },
    truncateNextDownloads(count) {
      faults.push({ kind: 'truncate', status: 0, remaining: count });
    },
    corruptNextUploads(count) {
      faults.push({ kind: 'corrupt', status: 0, remaining: count });
    },
    reset() {
      buckets.clear();
      sessions.clear();
      faults.length = 0;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function parseMultipart(
  contentType: string,
  body: Buffer,
): [{ body: Buffer; contentType?: string }, { body: Buffer; contentType?: string }] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new HttpError(400, 'multipart upload without a boundary');
  const delim = Buffer.from(`--${m[1]}`);
  const parts: { body: Buffer; contentType?: string }[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    // Each part: CRLF, headers, CRLF CRLF, body, CRLF.
    const part = body.subarray(start + 2, next - 2);
    const sep = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, sep).toString('utf8');
    const ct = /^content-type:\s*(.+)$/im.exec(head)?.[1]?.trim();
    parts.push({ body: part.subarray(sep + 4), ...(ct ? { contentType: ct } : {}) });
    pos = next;
  }
  if (parts.length !== 2) throw new HttpError(400, `multipart upload with ${parts.length} parts`);
  return [parts[0]!, parts[1]!];
}

/**
 * Points `@google-cloud/storage` clients constructed from now on at `url` (the client reads
 * STORAGE_EMULATOR_HOST in its constructor) and silences metadata-server detection. Returns a restore.
 */
export function useGcsEmulatorEnv(url: string): () => void {
  const keys = ['STORAGE_EMULATOR_HOST', 'METADATA_SERVER_DETECTION'] as const;
  const saved = keys.map((k) => [k, process.env[k]] as const);
  process.env.STORAGE_EMULATOR_HOST = url;
  process.env.METADATA_SERVER_DETECTION = 'none';
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
