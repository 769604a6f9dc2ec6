/**
 * The seeds' `/process` endpoint as a domain operation: accept a posted file for a dataset and put
 * it in the raw bucket, where the finalize event does the rest.
 *
 * The body is streamed into the object and counted as it goes: past `maxBytes` (of decoded bytes — the
 * HTTP adapter inflates a compressed body on the way) the upload is refused with 413 and nothing is
 * stored. With an Idempotency-Key a retried POST maps to the same object: the same key with the same
 * file (name and MD5) is a 200 duplicate, with another file a 409 — never a silent 200.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DATASET_NAME, loadDatasetContract } from '../contracts/dataset';
import { isSmelterError, permanent, SmelterError, type HttpErrorCode } from '../errors';
import { gsUri, type ObjectMeta, type ObjectStore } from '../storage/object-store';

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
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
  }
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

export interface UploadDeps {
  store: ObjectStore;
  rawBucket: string;
  contractsDir: string;
  maxBytes: number;
  now?: () => Date;
}

/** Bytes seen so far and their MD5 (base64, as GCS and the fs driver record it). */
class BodyTally {
  bytes = 0;
  done = false;
  refused: HttpError | undefined;
  private readonly md5 = createHash('md5');
  private digest: string | undefined;

  constructor(private readonly maxBytes: number) {}

  add(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes)
      throw (this.refused = new HttpError(
        413,
        'BODY_TOO_LARGE',
        `Body exceeds ${this.maxBytes} bytes (SMELTER_MAX_UPLOAD_BYTES)`,
      ));
    this.md5.update(chunk);
  }

  end(): void {
    this.done = true;
    if (this.bytes === 0)
      throw (this.refused = new HttpError(400, 'EMPTY_BODY', 'The request has no file content'));
  }

  get md5Base64(): string {
    return (this.digest ??= this.md5.digest('base64'));
  }

  /**
   * Counts the stream, pulled by the write (an eager pipe would fail before the write listens) and
   * without destroying the request on a refusal, so the client still gets the 4xx answer.
   */
  async *count(body: Readable): AsyncGenerator<Buffer> {
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      this.add(chunk);
      yield chunk;
    }
    this.end();
  }

  /** Reads what the write left unread (it stopped early), to know the whole body's MD5. */
  async rest(body: Readable): Promise<void> {
    if (this.done) return;
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>)
      this.add(chunk);
    this.end();
  }
}

export async function acceptUpload(req: UploadRequest, deps: UploadDeps): Promise<UploadResult> {
  const upload = new Upload(req, deps, knownDataset(req.dataset, deps.contractsDir));
  const prior = await upload.prior();
  return prior ? upload.duplicate(prior) : upload.write();
}

/** The request's dataset, refused (400/404) unless it names a dataset contract. */
function knownDataset(requested: string | undefined, contractsDir: string): string {
  const dataset = requested?.trim();
  if (!dataset)
    throw new HttpError(
      400,
      'MISSING_DATASET',
      'Name the dataset: ?dataset=NAME, header X-Smelter-Dataset or a "dataset" form field before the file part',
    );
  if (!DATASET_NAME.test(dataset))
    throw new HttpError(
      400,
      'INVALID_DATASET',
      `Invalid dataset name ${JSON.stringify(dataset.slice(0, 80))}`,
    );
  try {
    loadDatasetContract(contractsDir, dataset);
  } catch (err) {
    if (isSmelterError(err, 'UNKNOWN_DATASET')) throw new HttpError(404, 'UNKNOWN_DATASET', err.message);
    throw err;
  }
  return dataset;
}

const day = (d: Date): string => d.toISOString().slice(0, 10);

/** One accepted upload: where it goes, the body's tally, and its two outcomes (new object or duplicate). */
class Upload {
  private readonly tally: BodyTally;
  private readonly filename: string;
  private readonly today: Date;
  /** From the Idempotency-Key: the same key maps to the same object name prefix. */
  private readonly key: string | undefined;
  private readonly object: string;
  private readonly buffered: Buffer | undefined;

  constructor(
    private readonly req: UploadRequest,
    private readonly deps: UploadDeps,
    private readonly dataset: string,
  ) {
    this.tally = new BodyTally(deps.maxBytes);
    this.buffered = Buffer.isBuffer(req.body) ? req.body : undefined;
    if (this.buffered) {
      this.tally.add(this.buffered);
      this.tally.end();
    }
    this.filename = safeFilename(req.filename, req.contentType);
    this.today = deps.now?.() ?? new Date();
    this.key = req.idempotencyKey
      ? createHash('sha256').update(`${dataset}\0${req.idempotencyKey}`).digest('hex').slice(0, 24)
      : undefined;
    this.object = `${dataset}/uploads/${day(this.today)}/${this.key ?? randomUUID()}-${this.filename}`;
  }

  /** The object an earlier request with the same Idempotency-Key stored, if any. */
  async prior(): Promise<ObjectMeta | undefined> {
    if (!this.key) return undefined;
    // A retry may cross midnight, or name the file differently: yesterday's and today's uploads count.
    const yesterday = new Date(this.today.getTime() - 86_400_000);
    for (const d of [this.today, yesterday])
      for await (const m of this.deps.store.list(
        this.deps.rawBucket,
        `${this.dataset}/uploads/${day(d)}/${this.key}-`,
      ))
        return m;
    return undefined;
  }

  /** 200 for the same file under the same key; 409 for another file. */
  async duplicate(meta: ObjectMeta): Promise<UploadResult> {
    const { rawBucket } = this.deps;
    if (!Buffer.isBuffer(this.req.body)) await this.tally.rest(this.req.body);
    if (
      !meta.name.endsWith(`/${this.key}-${this.filename}`) ||
      (meta.md5Hash !== undefined && meta.md5Hash !== this.tally.md5Base64)
    )
      throw new HttpError(
        409,
        'IDEMPOTENCY_KEY_REUSED',
        `This Idempotency-Key was used for another upload (${gsUri(rawBucket, meta.name)}); use a new key for a new file`,
      );
    return {
      status: 200,
      bucket: rawBucket,
      object: meta.name,
      generation: meta.generation,
      uri: gsUri(rawBucket, meta.name),
      bytes: meta.size,
      duplicate: true,
    };
  }

  /** Streams the body into a new object (202), or resolves a lost race for the same key as a duplicate. */
  async write(): Promise<UploadResult> {
    const { store, rawBucket } = this.deps;
    const source = this.buffered ?? this.tally.count(this.req.body as Readable);
    try {
      const meta = await store.write(rawBucket, this.object, source, {
        ifAbsent: true,
        ...(this.req.contentType ? { contentType: this.req.contentType } : {}),
        metadata: { uploadedVia: 'ingestHttp', originalName: (this.req.filename ?? '').slice(0, 200) },
      });
      return {
        status: 202,
        bucket: rawBucket,
        object: this.object,
        generation: meta.generation,
        uri: gsUri(rawBucket, this.object),
        bytes: meta.size,
        duplicate: false,
      };
    } catch (err) {
      // The store's driver may wrap a source error in its own (e.g. STORAGE_UNAVAILABLE): ours wins.
      if (this.tally.refused) throw this.tally.refused;
      if (err instanceof HttpError) throw err;
      if (isSmelterError(err, 'PRECONDITION_FAILED')) {
        // A concurrent request with the same key won the race.
        const meta = await store.stat(rawBucket, this.object);
        if (meta) return this.duplicate(meta);
      }
      throw err instanceof SmelterError ? err : permanent('INTERNAL', String(err), { cause: err });
    }
  }
}
