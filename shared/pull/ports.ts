/**
 * Ports of the pull domain. The HTTP adapter (shared/adapters/http/) performs one request per call —
 * redirects, timeouts and the byte limit included; retries and their policy live in the domain.
 */
export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Headers that must not follow a redirect to another origin (credentials). */
  sensitiveHeaders?: string[];
  /** The body is read whole up to this many bytes; one byte more fails with `too-large`. */
  maxBytes: number;
  connectTimeoutMs: number;
  /** Whole request, body included. */
  timeoutMs: number;
  maxRedirects: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** URL of the final response (after redirects). */
  url: string;
  body: Buffer;
}

export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>;
  close?(): Promise<void>;
}

export type HttpFailureReason =
  | 'network'
  | 'connect-timeout'
  | 'timeout'
  | 'truncated'
  | 'too-large'
  | 'redirect-loop'
  | 'too-many-redirects'
  | 'bad-redirect';

/** A request that produced no usable response. `network`, timeouts and `truncated` are worth retrying. */
export class HttpFailure extends Error {
  constructor(
    readonly reason: HttpFailureReason,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HttpFailure';
  }

  get retryable(): boolean {
    return ['network', 'connect-timeout', 'timeout', 'truncated'].includes(this.reason);
  }
}

/** Clock and sleep, injected so retries and rate limits are testable without waiting. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};
