/**
 * ingestHttp's request body, streamed (functions-framework leaves it unread: see streamed-body.ts):
 * decoded as it arrives (Content-Encoding gzip, deflate or br) and, for multipart/form-data, split by
 * busboy; the file's bytes flow straight into acceptUpload, which counts the decoded bytes against the
 * limit. Memory stays a few buffers whatever the body or its compression ratio.
 */
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import busboy from 'busboy';
import { acceptUpload, HttpError, type UploadDeps, type UploadResult } from '../../ingest/upload';

export interface UploadRequestMeta {
  dataset?: string;
  filename?: string;
  idempotencyKey?: string;
  contentType?: string;
  contentEncoding?: string;
}

/** Media types of a posted file (any `text/*` too); anything else is a 415, before a byte is read. */
const ACCEPTED = new Set([
  'application/octet-stream',
  'application/json',
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
  'application/gzip',
  'application/x-gzip',
  'application/vnd.apache.parquet',
  // curl --data-binary without -H sends this: the bytes are the file.
  'application/x-www-form-urlencoded',
  'multipart/form-data',
]);

const decoders: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

export async function acceptUploadRequest(
  req: Readable,
  meta: UploadRequestMeta,
  deps: UploadDeps,
): Promise<UploadResult> {
  const mediaType = meta.contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  if (mediaType && !ACCEPTED.has(mediaType) && !mediaType.startsWith('text/'))
    throw new HttpError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type ${JSON.stringify(mediaType.slice(0, 100))} is not a data file; send text/csv, application/x-ndjson, application/json, application/gzip, application/octet-stream or multipart/form-data`,
    );
  const { body, failed } = decode(req, meta.contentEncoding);
  try {
    if (mediaType === 'multipart/form-data') return await multipart(body, meta, deps);
    return await acceptUpload(
      {
        body,
        ...(meta.dataset ? { dataset: meta.dataset } : {}),
        ...(meta.filename ? { filename: meta.filename } : {}),
        ...(meta.contentType ? { contentType: meta.contentType } : {}),
        ...(meta.idempotencyKey ? { idempotencyKey: meta.idempotencyKey } : {}),
      },
      deps,
    );
  } catch (err) {
    throw failed() ?? err;
  }
}

/** The decoded body; `failed()` says whether decoding broke (a corrupt or truncated compressed body). */
function decode(
  req: Readable,
  encoding: string | undefined,
): { body: Readable; failed: () => HttpError | undefined } {
  const name = (encoding ?? 'identity').trim().toLowerCase();
  if (name === 'identity' || name === '') return { body: req, failed: () => undefined };
  const make = decoders[name];
  if (!make)
    throw new HttpError(
      415,
      'UNSUPPORTED_ENCODING',
      `Content-Encoding ${JSON.stringify(name.slice(0, 50))} is not supported; use gzip, deflate, br or none`,
    );
  let error: HttpError | undefined;
  const z = make();
  z.on('error', (e: Error) => {
    error ??= new HttpError(400, 'BAD_ENCODING', `The body is not valid ${name}: ${e.message}`);
  });
  // A client that goes away mid-body must end the decoder too, or the write waits for ever.
  req.on('error', (e) => z.destroy(e));
  req.on('aborted', () => z.destroy(new Error('the client aborted the request')));
  req.pipe(z);
  return { body: z, failed: () => error };
}

function multipart(body: Readable, meta: UploadRequestMeta, deps: UploadDeps): Promise<UploadResult> {
  return new Promise<UploadResult>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: { 'content-type': meta.contentType as string },
        limits: { files: 1, fields: 100, fieldSize: 64 * 1024, parts: 200, headerPairs: 100 },
      });
    } catch (e) {
      reject(new HttpError(400, 'BAD_MULTIPART', `Malformed multipart body: ${(e as Error).message}`));
      return;
    }
    const fields: Record<string, string> = Object.create(null) as Record<string, string>;
    let upload: Promise<UploadResult> | undefined;
    let file: Readable | undefined;
    bb.on('field', (name: string, value: string) => {
      fields[name] = value;
    });
    bb.on('file', (_name: string, stream: Readable, info: busboy.FileInfo) => {
      if (upload) {
        stream.resume(); // only the first file part is stored
        return;
      }
      file = stream;
      const dataset = meta.dataset ?? fields.dataset;
      const filename = meta.filename ?? info.filename;
      upload = acceptUpload(
        {
          body: stream,
          ...(dataset ? { dataset } : {}),
          ...(filename ? { filename } : {}),
          ...(info.mimeType ? { contentType: info.mimeType } : {}),
          ...(meta.idempotencyKey ? { idempotencyKey: meta.idempotencyKey } : {}),
        },
        deps,
      );
      upload.then(resolve, (err: unknown) => {
        stream.resume(); // let busboy finish the body
        reject(err);
      });
    });
    bb.on('error', (e: Error) => {
      const err = new HttpError(400, 'BAD_MULTIPART', `Malformed multipart body: ${e.message}`);
      file?.destroy(err);
      reject(err);
    });
    bb.on('close', () => {
      if (!upload) reject(new HttpError(400, 'MISSING_FILE', 'multipart body has no file part'));
    });
    body.pipe(bb);
  });
}
