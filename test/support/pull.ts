/** Local HTTP servers standing in for source APIs, a fake clock, and helpers to read pulled parts. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { createLogger, type Logger } from '../../shared/log';
import { validateSourceContract, type SourceContract } from '../../shared/pull/contract';
import type { Clock } from '../../shared/pull/ports';
import type { ObjectStore } from '../../shared/storage/object-store';

export interface ApiServer {
  url: string;
  /** Every request: method, path + query, headers. */
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function apiServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>,
): Promise<ApiServer> {
  const requests: ApiServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    void Promise.resolve(handler(req, res, new URL(req.url ?? '/', 'http://x'))).catch((e: unknown) => {
      res.statusCode = 599;
      res.end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export const json = (
  res: http.ServerResponse,
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
};

/** Sleeps are recorded and skipped; `now` advances by them. */
export function fakeClock(
  start = Date.parse('2026-11-10T12:00:00Z'),
): Clock & { sleeps: number[]; t: number } {
  const c = {
    t: start,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

/** A logger collecting every line (to check that secrets never appear). */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ format: 'json', level: 'DEBUG', sink: (l) => lines.push(l) }), lines };
}

export function contract(
  over: Record<string, unknown>,
  endpoint: Record<string, unknown> = {},
): SourceContract {
  return validateSourceContract(
    {
      source: 'demo',
      baseUrl: 'http://127.0.0.1:1',
      http: { retryBaseMs: 10, retryMaxMs: 1000, timeoutMs: 2000, connectTimeoutMs: 1000 },
      limits: { requestsPerSecond: 100_000 },
      endpoints: [{ name: 'items', path: '/items', dataset: 'demo_items', records: '', ...endpoint }],
      ...over,
    },
    'test',
  );
}

/** Every record of the parts under `prefix`, in part order. */
export async function readParts(
  store: ObjectStore,
  bucket: string,
  prefix: string,
): Promise<{ names: string[]; records: Record<string, unknown>[] }> {
  const names: string[] = [];
  const records: Record<string, unknown>[] = [];
  for await (const m of store.list(bucket, prefix)) {
    if (!m.name.endsWith('.ndjson.gz')) continue;
    names.push(m.name);
    const chunks: Buffer[] = [];
    for await (const c of await store.read(bucket, m.name)) chunks.push(c as Buffer);
    for (const line of gunzipSync(Buffer.concat(chunks)).toString('utf8').split('\n'))
      if (line) records.push(JSON.parse(line) as Record<string, unknown>);
  }
  return { names, records };
}
