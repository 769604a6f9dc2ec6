/**
 * The dashboard over HTTP: the page shell and its assets, the charting libraries from node_modules
 * (served by the dashboard itself: it works offline, no CDN), and the JSON API. Read-only: GET and
 * HEAD only. Used by `smelter dashboard`, `smelter up` and the deployed `dashboard` HTTP function.
 *
 *   GET /api/catalogue            pages, filters and panels (specs, fields; no SQL)
 *   GET /api/charts/<id>?filters  one panel's rows                        400 on unknown/invalid params
 *   GET /api/filters/<page>       options of the page's choice filters
 *   GET /api/version/<page>       changes when new data lands in the page's tables (auto refresh)
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpErrorCode } from '../errors';
import path from 'node:path';
import { packageRoot } from '../paths';
import { PAGES } from './pages';
import { DashboardRequestError } from './params';
import type { DashboardService } from './service';

export const WEB_DIR = path.join(packageRoot, 'web', 'dashboard');

/** Files the page may load: its own assets and the libraries' browser bundles. */
const STATIC: Record<string, { file: () => string; type: string; immutable?: boolean }> = {
  '/assets/app.js': { file: () => path.join(WEB_DIR, 'app.js'), type: 'text/javascript' },
  '/assets/style.css': { file: () => path.join(WEB_DIR, 'style.css'), type: 'text/css' },
  '/vendor/vega.js': {
    file: () => bundle('vega', 'build/vega.min.js'),
    type: 'text/javascript',
    immutable: true,
  },
  '/vendor/vega-lite.js': {
    file: () => bundle('vega-lite', 'build/vega-lite.min.js'),
    type: 'text/javascript',
    immutable: true,
  },
  '/vendor/vega-embed.js': {
    file: () => bundle('vega-embed', 'build/vega-embed.min.js'),
    type: 'text/javascript',
    immutable: true,
  },
};

/** A file of an installed package (their `exports` maps hide package.json, so walk up from the entry). */
function bundle(pkg: string, file: string): string {
  let dir = path.dirname(require.resolve(pkg, { paths: [packageRoot] }));
  while (path.basename(dir) !== pkg && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, file);
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Only this origin: no CDN, no third-party calls. Vega compiles its expressions with Function().
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
};

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function dashboardHandler(service: DashboardService): DashboardHandler {
  const pagePaths = new Set(PAGES.map((p) => p.path));
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, code: HttpErrorCode, message: string): void =>
    json(res, status, { error: { code, message } });

  return (req, res) => {
    void (async () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://dashboard');
      } catch {
        return fail(res, 400, 'BAD_REQUEST', 'unreadable URL');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return fail(res, 405, 'METHOD_NOT_ALLOWED', 'the dashboard is read-only');
      }
      const p = url.pathname;
      try {
        if (p === '/api/catalogue') {
          if ([...url.searchParams.keys()].length)
            throw new DashboardRequestError('/api/catalogue takes no parameters');
          return json(res, 200, service.catalogue());
        }
        let m = /^\/api\/charts\/([a-z_]+\.[a-z_]+)$/.exec(p);
        if (m) return json(res, 200, await service.answer(m[1] as string, url.searchParams));
        m = /^\/api\/filters\/([a-z]+)$/.exec(p);
        if (m) return json(res, 200, await service.filterOptions(m[1] as string, url.searchParams));
        m = /^\/api\/version\/([a-z]+)$/.exec(p);
        if (m)
          return json(res, 200, { version: await service.pageVersion(m[1] as string, url.searchParams) });
        if (p.startsWith('/api/')) return fail(res, 404, 'NOT_FOUND', `no API route ${p.slice(0, 80)}`);
        const asset = STATIC[p];
        if (asset) return sendFile(res, asset.file(), asset.type, asset.immutable ?? false);
        if (pagePaths.has(p) || pagePaths.has(p.replace(/\/$/, '')))
          return sendFile(res, path.join(WEB_DIR, 'index.html'), 'text/html; charset=utf-8', false);
        if (p === '/favicon.ico') {
          res.writeHead(204);
          return res.end();
        }
        return fail(res, 404, 'NOT_FOUND', `no page ${p.slice(0, 80)}`);
      } catch (err) {
        if (err instanceof DashboardRequestError) return fail(res, 400, err.code, err.message);
        return fail(res, 500, 'INTERNAL', (err as Error).message.split('\n')[0] ?? 'error');
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
}

function sendFile(res: ServerResponse, file: string, type: string, immutable: boolean): void {
  fs.readFile(file, (err, body) => {
    if (err) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found');
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': body.length,
      'cache-control': immutable ? 'public, max-age=86400' : 'no-cache',
    });
    res.end(body);
  });
}
