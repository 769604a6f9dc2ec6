/**
 * Serves one function registered with functions-framework in this process on a local port — how
 * `smelter publish` (no stack running), the events benchmark and the tests host a push endpoint. It
 * counts answers by outcome so callers can tell when deliveries have been handled.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getTestServer } from '@google-cloud/functions-framework/testing';

export interface ServedFunction {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly stats: { requests: number; ok: number; failed: number };
  close(): Promise<void>;
}

export async function serveRegistered(name: string, opts: { port?: number } = {}): Promise<ServedFunction> {
  const server: http.Server = getTestServer(name);
  const stats = { requests: 0, ok: 0, failed: 0 };
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    stats.requests++;
    res.once('finish', () => (res.statusCode >= 200 && res.statusCode < 300 ? stats.ok++ : stats.failed++));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
