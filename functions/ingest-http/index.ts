/**
 * ingestHttp — private HTTP upload (IAM invoker only on GCP): POST a file for a dataset, get 202 and
 * the raw object name; the finalize event converts it.
 *   curl -X POST --data-binary @obs.csv -H 'Content-Type: text/csv' 'http://localhost:8081/?dataset=rainfall&filename=obs.csv'
 *   curl -F dataset=rainfall -F file=@obs.csv http://localhost:8081/
 * The body is streamed (functions-framework does not parse it: streamedBody); every answer is JSON,
 * errors as `{error: {code, message}}`.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { bodyHeaders, streamedBody } from '../../shared/adapters/http/streamed-body';
import { acceptUploadRequest } from '../../shared/adapters/http/upload-request';
import { errorKind, errorMessage, isSmelterError, type HttpErrorCode } from '../../shared/errors';
import { HttpError } from '../../shared/ingest/upload';
import { runtime } from '../../shared/composition/runtime';

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export const ingestHttp = streamedBody(async (req: Request, res: Response): Promise<void> => {
  const { cfg, log, store } = runtime();
  const fail = (status: number, code: HttpErrorCode, message: string): void => {
    // The rest of a refused body is read and dropped, so the client (still sending) gets the answer.
    if (!req.readableEnded) {
      res.setHeader('Connection', 'close');
      req.unpipe();
      req.resume();
    }
    res.status(status).json({ error: { code, message } });
  };
  if (req.method !== 'POST' && req.method !== 'PUT') {
    res.setHeader('Allow', 'POST, PUT');
    return fail(405, 'METHOD_NOT_ALLOWED', 'POST a file');
  }
  try {
    const q = req.query as Record<string, unknown>;
    const dataset = typeof q.dataset === 'string' ? q.dataset : header(req, 'x-smelter-dataset');
    const filename =
      (typeof q.filename === 'string' ? q.filename : undefined) ??
      /filename="?([^";]+)"?/i.exec(header(req, 'content-disposition') ?? '')?.[1];
    const idempotencyKey = header(req, 'idempotency-key');
    const { contentType, contentEncoding } = bodyHeaders(req);
    const result = await acceptUploadRequest(
      req,
      {
        ...(dataset ? { dataset } : {}),
        ...(filename ? { filename } : {}),
        ...(idempotencyKey ? { idempotencyKey } : {}),
        ...(contentType ? { contentType } : {}),
        ...(contentEncoding ? { contentEncoding } : {}),
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
    const transient = errorKind(err) === 'transient';
    log.error('upload failed', { err });
    fail(
      transient ? 503 : 400,
      isSmelterError(err) ? err.code : 'INTERNAL',
      errorMessage(err) || 'upload failed',
    );
  }
});
