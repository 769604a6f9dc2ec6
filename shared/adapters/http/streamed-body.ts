/**
 * functions-framework parses the body of every request that has a Content-Type before the handler runs
 * (body-parser: up to 1 GiB, gzip and deflate inflated in memory, and a parse error answered by Express
 * as an HTML page with a stack trace). A function marked with `streamedBody` gets its request unread:
 * its Content-Type and Content-Encoding are hidden from the parsers (read them with `bodyHeaders`), so
 * the handler streams the body, bounds it and answers every error itself.
 *
 * The hook wraps functions-framework's `getServer`, which both its CLI and `getTestServer` call. It is
 * not public API (the package's `exports` hide it, so it is loaded by file path); the ingestHttp tests
 * fail if a new version moves it.
 */
import type http from 'node:http';
import path from 'node:path';

const STREAMED = Symbol.for('smelter.streamedBody');
const HEADERS = Symbol.for('smelter.bodyHeaders');

export interface BodyHeaders {
  contentType?: string;
  contentEncoding?: string;
}

type Tagged = Record<symbol, unknown>;
const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The request's Content-Type and Content-Encoding, hidden or not. */
export function bodyHeaders(req: http.IncomingMessage): BodyHeaders {
  const saved = (req as unknown as Tagged)[HEADERS] as BodyHeaders | undefined;
  if (saved) return saved;
  const contentType = first(req.headers['content-type']);
  const contentEncoding = first(req.headers['content-encoding']);
  return { ...(contentType ? { contentType } : {}), ...(contentEncoding ? { contentEncoding } : {}) };
}

/** Marks an HTTP function whose body functions-framework must leave unread. */
export function streamedBody<F extends object>(fn: F): F {
  install();
  (fn as Tagged)[STREAMED] = true;
  return fn;
}

type GetServer = (fn: unknown, options: unknown) => http.Server;
let installed = false;

function install(): void {
  if (installed) return;
  const dir = path.dirname(require.resolve('@google-cloud/functions-framework'));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(dir, 'server.js')) as { getServer?: GetServer };
  const original = mod.getServer;
  if (typeof original !== 'function')
    throw new Error('functions-framework has no getServer any more: the streamed-body hook needs updating');
  mod.getServer = (fn, options) => {
    const server = original(fn, options);
    if (!(fn as Tagged | undefined)?.[STREAMED]) return server;
    const listeners = server.listeners('request') as ((
      req: http.IncomingMessage,
      res: http.ServerResponse,
    ) => void)[];
    server.removeAllListeners('request');
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      (req as unknown as Tagged)[HEADERS] = bodyHeaders(req);
      // Without a Content-Type no body parser matches; without a Content-Encoding none inflates.
      delete req.headers['content-type'];
      delete req.headers['content-encoding'];
      for (const l of listeners) l(req, res);
    });
    return server;
  };
  installed = true;
}
