/**
 * The seeds' `/process` endpoint as a domain operation: accept a posted file for a dataset and put
 * it in the raw bucket, where the finalize event does the rest.
 *
 * functions-framework's body parsers buffer request bodies before a handler runs (and Cloud Run caps
 * requests at 32 MiB), so the body arrives as a Buffer; a request without Content-Type skips the
 * parsers and is streamed. Large files belong in the raw bucket directly.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DATASET_NAME, loadDatasetContract } from '../contracts/dataset';
import { isSmelterError, permanent, SmelterError } from '../errors';
import { gsUri, type ObjectStore } from '../storage/object-store';

export interface UploadRequest {
  dataset?: string;
  filename?: string;
  contentType?: string;
  idempotencyKey?: string;
  body: Buffer | Readable;
}

export interface UploadResult {
  status: 201 | 202 | 200;
  bucket: string;
  object: string;
  generation: string;
  uri: string;
  bytes: number;
  duplicate: boolean;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Parses a multipart/form-data body: returns the first file part and the text fields. */
export function parseMultipart(
  body: Buffer,
  contentType: string,
): { fields: Record<string, string>; file?: { filename: string; contentType?: string; data: Buffer } } {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new HttpError(400, 'BAD_MULTIPART', 'multipart body without a boundary');
  const delim = Buffer.from(`--${boundary}`);
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  let file: { filename: string; contentType?: string; data: Buffer } | undefined;
  let pos = body.indexOf(delim);
  if (pos < 0) throw new HttpError(400, 'BAD_MULTIPART', 'multipart boundary not found in body');
  for (;;) {
    pos += delim.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    pos += 2; // CRLF after the boundary
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new HttpError(400, 'BAD_MULTIPART', 'truncated multipart part');
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headerEnd + 4);
    if (next < 0) throw new HttpError(400, 'BAD_MULTIPART', 'unterminated multipart part');
    const data = body.subarray(headerEnd + 4, next);
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    const ct = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1];
    if (filename !== undefined && !file) file = { filename, data, ...(ct ? { contentType: ct.trim() } : {}) };
    else if (name && filename === undefined) fields[name] = data.toString('utf8');
    pos = next + 2;
  }
  return { fields, ...(file ? { file } : {}) };
}

/** Keeps a safe last path segment of a client-supplied file name. */
export function safeFilename(name: string | undefined, contentType?: string): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFKC')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 120);
  if (cleaned) return cleaned;
  const ext = /csv/.test(contentType ?? '')
    ? 'csv'
    : /ndjson|jsonl/.test(contentType ?? '')
      ? 'ndjson'
      : /json/.test(contentType ?? '')
        ? 'json'
        : /gzip/.test(contentType ?? '')
          ? 'gz'
          : 'csv';
  return `upload.${ext}`;
}

export async function acceptUpload(
  req: UploadRequest,
  deps: { store: ObjectStore; rawBucket: string; contractsDir: string; maxBytes: number; now?: () => Date },
): Promise<UploadResult> {
  const dataset = req.dataset?.trim();
  if (!dataset)
    throw new HttpError(
      400,
      'MISSING_DATASET',
      'Name the dataset: ?dataset=NAME, header X-Smelter-Dataset or a "dataset" form field',
    );
  if (!DATASET_NAME.test(dataset))
    throw new HttpError(
      400,
      'INVALID_DATASET',
      `Invalid dataset name ${JSON.stringify(dataset.slice(0, 80))}`,
    );
  try {
    loadDatasetContract(deps.contractsDir, dataset);
  } catch (err) {
    if (isSmelterError(err, 'UNKNOWN_DATASET')) throw new HttpError(404, 'UNKNOWN_DATASET', err.message);
    throw err;
  }
  const size = Buffer.isBuffer(req.body) ? req.body.length : undefined;
  if (size !== undefined && size > deps.maxBytes)
    throw new HttpError(
      413,
      'BODY_TOO_LARGE',
      `Body is ${size} bytes; the limit is ${deps.maxBytes} (SMELTER_MAX_UPLOAD_BYTES)`,
    );
  if (size === 0) throw new HttpError(400, 'EMPTY_BODY', 'The request has no file content');

  const filename = safeFilename(req.filename, req.contentType);
  const day = (deps.now?.() ?? new Date()).toISOString().slice(0, 10);
  // With an Idempotency-Key a retried POST maps to the same object and is accepted once.
  const id = req.idempotencyKey
    ? createHash('sha256').update(`${dataset}\0${req.idempotencyKey}`).digest('hex').slice(0, 24)
    : randomUUID();
  const object = `${dataset}/uploads/${day}/${id}-${filename}`;
  let bytes = 0;
  // The store's driver may wrap a source error in its own (e.g. STORAGE_UNAVAILABLE): remember ours.
  let refused: HttpError | undefined;
  // Pulled by the write (an eager pipe would fail before the write listens: an uncaught error) and
  // without destroying the request on a refusal, so the client still gets the 4xx answer.
  async function* limited(body: Readable): AsyncGenerator<Buffer> {
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > deps.maxBytes)
        throw (refused = new HttpError(
          413,
          'BODY_TOO_LARGE',
          `Body exceeds ${deps.maxBytes} bytes (SMELTER_MAX_UPLOAD_BYTES)`,
        ));
      yield chunk;
    }
    if (bytes === 0) throw (refused = new HttpError(400, 'EMPTY_BODY', 'The request has no file content'));
  }
  const source = Buffer.isBuffer(req.body) ? req.body : limited(req.body);
  try {
    const meta = await deps.store.write(deps.rawBucket, object, source, {
      ifAbsent: true,
      ...(req.contentType ? { contentType: req.contentType } : {}),
      metadata: { uploadedVia: 'ingestHttp', originalName: (req.filename ?? '').slice(0, 200) },
    });
    return {
      status: 202,
      bucket: deps.rawBucket,
      object,
      generation: meta.generation,
      uri: gsUri(deps.rawBucket, object),
      bytes: meta.size,
      duplicate: false,
    };
  } catch (err) {
    if (refused) throw refused;
    if (err instanceof HttpError) throw err;
    if (isSmelterError(err, 'PRECONDITION_FAILED')) {
      const meta = await deps.store.stat(deps.rawBucket, object);
      if (meta)
        return {
          status: 200,
          bucket: deps.rawBucket,
          object,
          generation: meta.generation,
          uri: gsUri(deps.rawBucket, object),
          bytes: meta.size,
          duplicate: true,
        };
    }
    throw err instanceof SmelterError ? err : permanent('INTERNAL', String(err), { cause: err });
  }
}
