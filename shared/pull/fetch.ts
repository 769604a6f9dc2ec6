/**
 * One JSON page from a source, robustly: auth applied from the secret, requests paced to the source's
 * rate limit, retries with exponential backoff and jitter on network errors, timeouts, truncated
 * bodies, 408/425/429/5xx (honouring Retry-After), and every other answer classified — 4xx is
 * permanent, an HTML or malformed body is permanent. The secret never appears in an error or a log:
 * URLs are shown with the auth parameter masked and every message passes through `redact`.
 */
import { permanent, SmelterError, transient } from '../errors';
import type { Logger } from '../log';
import type { Auth, HttpPolicy, SourceContract } from './contract';
import { splitPage } from './ndjson';
import { HttpFailure, type Clock, type HttpClient, type HttpResponse } from './ports';

export interface JsonPage {
  body: unknown;
  headers: Record<string, string | undefined>;
  /** Final URL (after redirects), secret masked. */
  url: string;
  /** Final URL with the secret, to resolve relative next links against. */
  rawUrl: string;
  bytes: number;
  /**
   * Set when the caller asked for the records as NDJSON and the page could be split (see ndjson.ts):
   * `body` then holds an empty array at the records path.
   */
  split?: { ndjson: Buffer; count: number };
}

const RETRY_STATUS = (s: number): boolean => s === 408 || s === 425 || s === 429 || (s >= 500 && s <= 599);
const MASK = '***';

/** Parses `Retry-After` (seconds or an HTTP date) into ms from now. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

export interface SourceHttpOptions {
  contract: SourceContract;
  http: HttpClient;
  secret?: string;
  clock: Clock;
  /** [0, 1) — injected for deterministic tests of the jitter. */
  random?: () => number;
  log: Logger;
}

export class SourceHttp {
  private nextSlot = 0;
  private readonly policy: HttpPolicy;
  private readonly random: () => number;
  requests = 0;
  retries = 0;
  bytes = 0;

  constructor(private readonly o: SourceHttpOptions) {
    this.policy = o.contract.http;
    this.random = o.random ?? Math.random;
    if (o.contract.auth.type !== 'none' && !o.secret)
      throw permanent(
        'CONFIG_INVALID',
        `Source "${o.contract.source}" needs a secret (auth ${o.contract.auth.type}): set SMELTER_SOURCE_${o.contract.source.toUpperCase()}_TOKEN locally, or add a version to its Secret Manager secret`,
        { details: { source: o.contract.source } },
      );
  }

  /** Replaces the secret (raw and URL-encoded) wherever it appears in a text. */
  redact(text: string): string {
    const s = this.o.secret;
    if (!s) return text;
    let out = text.split(s).join(MASK);
    const enc = encodeURIComponent(s);
    if (enc !== s) out = out.split(enc).join(MASK);
    return out;
  }

  /** The URL as it may be shown: the auth query parameter masked. */
  display(url: URL | string): string {
    const u = new URL(String(url));
    const a = this.o.contract.auth;
    if (a.type === 'query' && u.searchParams.has(a.name)) u.searchParams.set(a.name, MASK);
    return this.redact(u.href).replace(encodeURIComponent(MASK), MASK);
  }

  private authorise(url: URL): { headers: Record<string, string>; sensitive: string[] } {
    const a: Auth = this.o.contract.auth;
    const s = this.o.secret ?? '';
    const headers: Record<string, string> = { 'user-agent': 'smelter-pull/1', ...this.o.contract.headers };
    switch (a.type) {
      case 'bearer':
        headers.authorization = `Bearer ${s}`;
        return { headers, sensitive: ['authorization'] };
      case 'token':
        headers.authorization = `Token ${s}`;
        return { headers, sensitive: ['authorization'] };
      case 'header':
        headers[a.name.toLowerCase()] = s;
        return { headers, sensitive: [a.name] };
      case 'query':
        url.searchParams.set(a.name, s);
        return { headers, sensitive: [] };
      default:
        return { headers, sensitive: [] };
    }
  }

  /** Waits for this request's slot under `limits.requestsPerSecond`. */
  private async pace(): Promise<void> {
    const gap = 1000 / this.o.contract.limits.requestsPerSecond;
    const now = this.o.clock.now();
    const at = Math.max(now, this.nextSlot);
    this.nextSlot = at + gap;
    if (at > now) await this.o.clock.sleep(at - now);
  }

  private backoff(attempt: number): number {
    const cap = Math.min(this.policy.retryMaxMs, this.policy.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  /**
   * GET (or POST) one page and parse it as JSON. `endpoint` names the endpoint in errors. With
   * `records` (a records path), the records are taken as NDJSON bytes when the page allows it.
   */
  async getJson(
    target: URL,
    endpoint: string,
    method: 'GET' | 'POST' = 'GET',
    records?: string,
  ): Promise<JsonPage> {
    const url = new URL(target.href);
    const { headers, sensitive } = this.authorise(url);
    const shown = this.display(url);
    const where = `source "${this.o.contract.source}" endpoint "${endpoint}": ${method} ${shown}`;
    const details = { source: this.o.contract.source, endpoint, url: shown };
    for (let attempt = 1; ; attempt++) {
      await this.pace();
      this.requests++;
      let wait: number;
      let why: string;
      try {
        const res = await this.o.http.request({
          url: url.href,
          method,
          headers,
          sensitiveHeaders: sensitive,
          maxBytes: this.o.contract.limits.bytesPerResponse,
          connectTimeoutMs: this.policy.connectTimeoutMs,
          timeoutMs: this.policy.timeoutMs,
          maxRedirects: this.policy.maxRedirects,
        });
        this.bytes += res.body.length;
        if (res.status >= 200 && res.status < 300) return this.page(res, where, details, records);
        if (!RETRY_STATUS(res.status))
          throw permanent('SOURCE_HTTP_ERROR', `${where} answered HTTP ${res.status}${hint(res.status)}`, {
            details: { ...details, status: res.status },
          });
        const after = retryAfterMs(res.headers['retry-after'], this.o.clock.now());
        if (after !== undefined && after > this.policy.retryMaxMs)
          throw transient(
            'SOURCE_UNAVAILABLE',
            `${where} answered HTTP ${res.status} with Retry-After ${Math.ceil(after / 1000)} s (longer than http.retryMaxMs): the run is retried later`,
            {
              details: { ...details, status: res.status, retryAfterMs: after },
            },
          );
        wait = after ?? this.backoff(attempt);
        why = `HTTP ${res.status}`;
      } catch (err) {
        if (err instanceof SmelterError) throw err;
        if (!(err instanceof HttpFailure)) throw err;
        if (!err.retryable)
          throw permanent(
            err.reason === 'too-large' ? 'SOURCE_LIMIT' : 'SOURCE_BAD_RESPONSE',
            `${where}: ${this.redact(err.message)}${err.reason === 'too-large' ? ' (limits.bytesPerResponse)' : ''}`,
            { details: { ...details, reason: err.reason } },
          );
        wait = this.backoff(attempt);
        why = this.redact(err.message);
      }
      if (attempt >= this.policy.maxAttempts)
        throw transient(
          'SOURCE_UNAVAILABLE',
          `${where}: ${why} after ${attempt} attempts; the run is retried later`,
          {
            details: { ...details, attempts: attempt },
          },
        );
      this.retries++;
      this.o.log.warn('source request failed; retrying', {
        source: this.o.contract.source,
        endpoint,
        url: shown,
        why,
        attempt,
        waitMs: wait,
      });
      await this.o.clock.sleep(wait);
    }
  }

  private page(
    res: HttpResponse,
    where: string,
    details: Record<string, unknown>,
    records: string | undefined,
  ): JsonPage {
    return {
      ...this.parse(res.body, res.headers['content-type'], where, details, records),
      headers: res.headers,
      url: this.display(res.url),
      rawUrl: res.url,
      bytes: res.body.length,
    };
  }

  private parse(
    body: Buffer,
    contentType: string | undefined,
    where: string,
    details: Record<string, unknown>,
    records: string | undefined,
  ): Pick<JsonPage, 'body' | 'split'> {
    // The first character, without decoding the whole page (only a page of blanks needs that).
    let head = body.toString('utf8', 0, 256).trimStart().slice(0, 1);
    if (head === '' && body.length > 256) head = body.toString('utf8').trimStart().slice(0, 1);
    if (/html/i.test(contentType ?? '') || head === '<')
      throw permanent(
        'SOURCE_BAD_RESPONSE',
        `${where} answered an HTML page instead of JSON (content-type ${contentType ?? 'none'})`,
        {
          details: { ...details, contentType },
        },
      );
    if (head === '')
      throw permanent('SOURCE_BAD_RESPONSE', `${where} answered an empty body instead of JSON`, { details });
    const split = records === undefined ? undefined : splitPage(body, records);
    if (split) return { body: split.envelope, split: { ndjson: split.ndjson, count: split.count } };
    try {
      return { body: JSON.parse(body.toString('utf8')) };
    } catch (e) {
      throw permanent(
        'SOURCE_BAD_RESPONSE',
        `${where} answered malformed JSON (${this.redact((e as Error).message).slice(0, 120)})`,
        {
          details: { ...details, contentType },
        },
      );
    }
  }
}

function hint(status: number): string {
  if (status === 401 || status === 403)
    return ' (check the source secret SMELTER_SOURCE_<NAME>_TOKEN / Secret Manager)';
  if (status === 404) return ' (check the endpoint path and the base URL)';
  return '';
}
