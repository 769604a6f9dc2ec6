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
      let settled = false;
      const fail = (e: HttpFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(total);
        clearTimeout(connect);
        r.destroy();
        reject(e);
      };
      const r = lib.request(url, { method, headers: { accept: 'application/json', ...headers }, agent });
      const total = setTimeout(
        () => fail(new HttpFailure('timeout', `no complete response within ${req.timeoutMs} ms`)),
        req.timeoutMs,
      );
      let connect: NodeJS.Timeout | undefined;
      r.on('socket', (s: Socket) => {
        // A reused keep-alive socket is already connected.
        if (!s.connecting) return;
        connect = setTimeout(
          () => fail(new HttpFailure('connect-timeout', `no connection within ${req.connectTimeoutMs} ms`)),
          req.connectTimeoutMs,
        );
        s.once('connect', () => clearTimeout(connect));
      });
      r.on('error', (e: NodeJS.ErrnoException) =>
        fail(new HttpFailure('network', `request failed: ${e.code ?? e.message}`, { cause: e })),
      );
      r.on('response', (res) => {
        clearTimeout(connect);
        const status = res.statusCode ?? 0;
        const hdrs: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(res.headers)) hdrs[k] = Array.isArray(v) ? v.join(', ') : v;
        const declared = hdrs['content-length'] === undefined ? undefined : Number(hdrs['content-length']);
        if (REDIRECTS.has(status)) {
          res.resume();
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(total);
            resolve({ status, headers: hdrs, url: url.href, body: Buffer.alloc(0) });
          });
          res.on('error', () => undefined);
          return;
        }
        if (declared !== undefined && declared > req.maxBytes) {
          fail(
            new HttpFailure(
              'too-large',
              `response of ${declared} bytes is over the limit of ${req.maxBytes} bytes`,
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > req.maxBytes) {
            fail(new HttpFailure('too-large', `response is over the limit of ${req.maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('aborted', () => fail(new HttpFailure('truncated', `body cut after ${bytes} bytes`)));
        res.on('error', (e) =>
          fail(new HttpFailure('truncated', `body cut after ${bytes} bytes`, { cause: e })),
        );
        res.on('end', () => {
          if (settled) return;
          if (!res.complete || (declared !== undefined && bytes !== declared)) {
            fail(new HttpFailure('truncated', `body cut after ${bytes} of ${declared ?? '?'} bytes`));
            return;
          }
          settled = true;
          clearTimeout(total);
          resolve({
            status,
            headers: hdrs,
            url: url.href,
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes),
          });
        });
      });
      r.end();
    });
  }

  async close(): Promise<void> {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }
}
