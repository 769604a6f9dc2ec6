/**
 * HttpClient over node:http / node:https with keep-alive agents. One call = one logical request:
 * redirects are followed here (loops and too many stopped, credentials dropped on another origin),
 * the connect and total timeouts and the byte limit are enforced while the body streams in, and a
 * body shorter than its Content-Length (or cut by the peer) is reported as truncated.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { HttpFailure, type HttpClient, type HttpRequest, type HttpResponse } from '../../pull/ports';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class NodeHttpClient implements HttpClient {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 8 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 8 }),
  };

  async request(req: HttpRequest): Promise<HttpResponse> {
    const seen = new Set<string>();
    let url = new URL(req.url);
    let method = req.method;
    let headers = { ...req.headers };
    const origin = url.origin;
    for (let hop = 0; ; hop++) {
      seen.add(url.href);
      const res = await this.once(url, method, headers, req);
      if (!REDIRECTS.has(res.status) || !res.headers.location) return res;
      if (hop >= req.maxRedirects)
        throw new HttpFailure('too-many-redirects', `more than ${req.maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(res.headers.location, url);
      } catch {
        throw new HttpFailure('bad-redirect', 'redirect to an invalid URL');
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new HttpFailure('bad-redirect', `redirect to a ${next.protocol} URL`);
      if (seen.has(next.href)) throw new HttpFailure('redirect-loop', `redirect loop after ${hop + 1} hops`);
      if (next.origin !== origin) {
        // Never hand the source's credentials to another host.
        const drop = new Set((req.sensitiveHeaders ?? []).map((h) => h.toLowerCase()));
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !drop.has(k.toLowerCase())));
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST'))
        method = 'GET';
      url = next;
    }
  }

  private once(
    url: URL,
    method: string,
    headers: Record<string, string>,
    req: HttpRequest,
  ): Promise<HttpResponse> {
    const lib = url.protocol === 'https:' ? https : http;
    const agent = this.agents[url.protocol as 'http:' | 'https:'];
    if (!agent)
      return Promise.reject(new HttpFailure('bad-redirect', `unsupported protocol ${url.protocol}`));
    return new Promise<HttpResponse>((resolve, reject) => {
      const r = lib.request(url, { method, headers: { accept: 'application/json', ...headers }, agent });
      new Exchange(url, req, r, resolve, reject).start();
    });
  }

  async close(): Promise<void> {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }
}

/**
 * One request/response on the wire: settles once, with the response or the first failure (timeouts,
 * network error, over the byte limit, truncated body), and clears its timers either way.
 */
class Exchange {
  private settled = false;
  private total: NodeJS.Timeout | undefined;
  private connect: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: URL,
    private readonly req: HttpRequest,
    private readonly r: http.ClientRequest,
    private readonly resolve: (res: HttpResponse) => void,
    private readonly reject: (e: HttpFailure) => void,
  ) {}

  start(): void {
    const { req, r } = this;
    this.total = setTimeout(
      () => this.fail(new HttpFailure('timeout', `no complete response within ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );
    r.on('socket', (s: Socket) => this.onSocket(s));
    r.on('error', (e: NodeJS.ErrnoException) =>
      this.fail(new HttpFailure('network', `request failed: ${e.code ?? e.message}`, { cause: e })),
    );
    r.on('response', (res: http.IncomingMessage) => this.onResponse(res));
    r.end();
  }

  private fail(e: HttpFailure): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.total);
    clearTimeout(this.connect);
    this.r.destroy();
    this.reject(e);
  }

  private succeed(res: HttpResponse): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.total);
    this.resolve(res);
  }

  private onSocket(s: Socket): void {
    // A reused keep-alive socket is already connected.
    if (!s.connecting) return;
    const ms = this.req.connectTimeoutMs;
    this.connect = setTimeout(
      () => this.fail(new HttpFailure('connect-timeout', `no connection within ${ms} ms`)),
      ms,
    );
    s.once('connect', () => clearTimeout(this.connect));
  }

  private onResponse(res: http.IncomingMessage): void {
    clearTimeout(this.connect);
    const status = res.statusCode ?? 0;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    if (REDIRECTS.has(status)) {
      // The redirect's body is not wanted: drained, the socket goes back to the pool.
      res.resume();
      res.on('end', () => this.succeed({ status, headers, url: this.url.href, body: Buffer.alloc(0) }));
      res.on('error', () => undefined);
      return;
    }
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if (declared !== undefined && declared > this.req.maxBytes) {
      this.fail(
        new HttpFailure(
          'too-large',
          `response of ${declared} bytes is over the limit of ${this.req.maxBytes} bytes`,
        ),
      );
      return;
    }
    this.readBody(res, status, headers, declared);
  }

  /** Collects the body up to the byte limit; a body shorter than declared or cut is truncated. */
  private readBody(
    res: http.IncomingMessage,
    status: number,
    headers: Record<string, string | undefined>,
    declared: number | undefined,
  ): void {
    const max = this.req.maxBytes;
    const chunks: Buffer[] = [];
    let bytes = 0;
    res.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > max) {
        this.fail(new HttpFailure('too-large', `response is over the limit of ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('aborted', () => this.fail(new HttpFailure('truncated', `body cut after ${bytes} bytes`)));
    res.on('error', (e) =>
      this.fail(new HttpFailure('truncated', `body cut after ${bytes} bytes`, { cause: e })),
    );
    res.on('end', () => {
      if (this.settled) return;
      if (!res.complete || (declared !== undefined && bytes !== declared)) {
        this.fail(new HttpFailure('truncated', `body cut after ${bytes} of ${declared ?? '?'} bytes`));
        return;
      }
      this.succeed({
        status,
        headers,
        url: this.url.href,
        body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes),
      });
    });
  }
}
