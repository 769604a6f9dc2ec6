/**
 * ingestHttp — private HTTP upload (IAM invoker only on GCP): POST a file for a dataset, get 202 and
 * the raw object name; the finalize event converts it.
 *   curl -X POST --data-binary @obs.csv -H 'Content-Type: text/csv' 'http://localhost:8081/?dataset=rainfall&filename=obs.csv'
 *   curl -F dataset=rainfall -F file=@obs.csv http://localhost:8081/
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { errorKind } from '../../shared/errors';
import { acceptUpload, HttpError, parseMultipart } from '../../shared/ingest/upload';
import { getRuntime } from '../../shared/runtime';

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export async function ingestHttp(req: Request, res: Response): Promise<void> {
  const { cfg, log, store } = getRuntime();
  const fail = (status: number, code: string, message: string): void => {
    res.status(status).json({ error: { code, message } });
  };
  if (req.method !== 'POST' && req.method !== 'PUT') {
    res.setHeader('Allow', 'POST, PUT');
    return fail(405, 'METHOD_NOT_ALLOWED', 'POST a file');
  }
  try {
    const contentType = header(req, 'content-type');
    const q = req.query as Record<string, unknown>;
    let dataset = typeof q.dataset === 'string' ? q.dataset : header(req, 'x-smelter-dataset');
    let filename = typeof q.filename === 'string' ? q.filename : undefined;
    filename ??= /filename="?([^";]+)"?/i.exec(header(req, 'content-disposition') ?? '')?.[1];
    // Parsed bodies (Buffer) when a Content-Type was sent; the raw stream otherwise.
    const buffered: Buffer | undefined = req.rawBody ?? (Buffer.isBuffer(req.body) ? req.body : undefined);
    let body: Buffer | Request = buffered ?? req;
    let fileType = contentType;
    if (contentType?.toLowerCase().startsWith('multipart/form-data')) {
      const mp = parseMultipart(buffered ?? Buffer.alloc(0), contentType);
      dataset ??= mp.fields.dataset;
      if (!mp.file) return fail(400, 'MISSING_FILE', 'multipart body has no file part');
      filename ??= mp.file.filename;
      fileType = mp.file.contentType;
      body = mp.file.data;
    }
    const result = await acceptUpload(
      {
        body,
        ...(dataset ? { dataset } : {}),
        ...(filename ? { filename } : {}),
        ...(fileType ? { contentType: fileType } : {}),
        ...(header(req, 'idempotency-key')
          ? { idempotencyKey: header(req, 'idempotency-key') as string }
          : {}),
      },
      { store, rawBucket: cfg.rawBucket, contractsDir: cfg.contractsDir, maxBytes: cfg.maxHttpUploadBytes },
    );
    log.info('upload accepted', {
      dataset,
      object: result.object,
      bytes: result.bytes,
      duplicate: result.duplicate,
    });
    res.status(result.status).json(result);
  } catch (err) {
    if (err instanceof HttpError) return fail(err.status, err.code, err.message);
    const status = errorKind(err) === 'transient' ? 503 : 400;
    log.error('upload failed', { err });
    const e = err as { code?: string; message?: string };
    fail(status, e.code ?? 'INTERNAL', e.message ?? 'upload failed');
  }
}
