/**
 * Errors carry a stable `code`, a `kind` and an optional `cause`.
 *
 * The kind is what the platform cares about:
 * - `transient`: the function throws, the platform (Eventarc / Pub/Sub) redelivers.
 * - `permanent`: retrying cannot help (bad data, unknown dataset, unsupported format): the input is
 *   quarantined with the reason and the event acknowledged.
 */
export type ErrorKind = 'transient' | 'permanent';

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'NOT_FOUND'
  | 'PRECONDITION_FAILED'
  | 'INVALID_OBJECT_NAME'
  | 'INVALID_BUCKET_NAME'
  | 'STORAGE_UNAVAILABLE'
  | 'UNKNOWN_DATASET'
  | 'CONTRACT_INVALID'
  | 'UNSUPPORTED_FORMAT'
  | 'OBJECT_TOO_LARGE'
  | 'DECOMPRESSED_TOO_LARGE'
  | 'LINE_TOO_LONG'
  | 'COUNT_MISMATCH'
  | 'BAD_DATA'
  /** A Bronze manifest the loader cannot trust (unbalanced counts, another output): nothing is loaded. */
  | 'BAD_MANIFEST'
  | 'BAD_EVENT'
  /** A malformed request to an admin route (local stack). */
  | 'BAD_REQUEST'
  | 'ENGINE_FAILED'
  | 'WAREHOUSE_UNAVAILABLE'
  | 'MODEL_FAILED'
  | 'AUDIT_FAILED'
  | 'SCHEMA_INCOMPATIBLE'
  | 'PUBSUB_UNAVAILABLE'
  | 'UNKNOWN_SOURCE'
  | 'SOURCE_HTTP_ERROR'
  | 'SOURCE_UNAVAILABLE'
  | 'SOURCE_BAD_RESPONSE'
  | 'SOURCE_LIMIT'
  /** A transient fault outlived SMELTER_MAX_EVENT_AGE_MS: the event is recorded and acknowledged. */
  | 'RETRIES_EXHAUSTED'
  | 'INTERNAL';

/**
 * Codes an HTTP answer's `{"error": {"code"}}` may carry (ingestHttp, the dashboard, the local admin
 * endpoint): a SmelterError's code, or one of these request problems.
 */
export type HttpErrorCode =
  | ErrorCode
  | 'BAD_ENCODING'
  | 'BAD_MULTIPART'
  | 'BODY_TOO_LARGE'
  | 'EMPTY_BODY'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INVALID_DATASET'
  | 'MISSING_DATASET'
  | 'MISSING_FILE'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_ENCODING'
  | 'UNSUPPORTED_MEDIA_TYPE';

export class SmelterError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { kind?: ErrorKind; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SmelterError';
    this.code = code;
    this.kind = opts.kind ?? defaultKind(code);
    this.details = opts.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, kind: this.kind, message: this.message, ...this.details };
  }
}

const TRANSIENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'STORAGE_UNAVAILABLE',
  'WAREHOUSE_UNAVAILABLE',
  'PUBSUB_UNAVAILABLE',
  'SOURCE_UNAVAILABLE',
  'INTERNAL',
]);

function defaultKind(code: ErrorCode): ErrorKind {
  return TRANSIENT.has(code) ? 'transient' : 'permanent';
}

export const permanent = (
  code: ErrorCode,
  message: string,
  opts: { cause?: unknown; details?: Record<string, unknown> } = {},
): SmelterError => new SmelterError(code, message, { ...opts, kind: 'permanent' });

export const transient = (
  code: ErrorCode,
  message: string,
  opts: { cause?: unknown; details?: Record<string, unknown> } = {},
): SmelterError => new SmelterError(code, message, { ...opts, kind: 'transient' });

export function isSmelterError(err: unknown, code?: ErrorCode): err is SmelterError {
  return err instanceof SmelterError && (code === undefined || err.code === code);
}

/** Unknown errors are treated as transient: retrying a bug is cheaper than losing data. */
export function errorKind(err: unknown): ErrorKind {
  return err instanceof SmelterError ? err.kind : 'transient';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
