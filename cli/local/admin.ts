/**
 * The local stack's admin endpoint (`/_smelter/*` on 127.0.0.1): lets other processes (the CLI) reach
 * state owned by the stack process, such as the DuckDB warehouse file, which DuckDB opens read-write
 * from one process only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type AdminRoute = (body: unknown) => Promise<unknown>;

export class AdminServer {
  private server: http.Server | undefined;
  readonly routes = new Map<string, AdminRoute>();

  route(name: string, handler: AdminRoute): this {
    this.routes.set(name, handler);
    return this;
  }

  async listen(port: number): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(port, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    };
    const m = /^\/_smelter\/([a-z-]+)$/.exec(req.url?.split('?')[0] ?? '');
    const route = m ? this.routes.get(m[1] as string) : undefined;
    if (!route) return send(404, { error: { code: 'NOT_FOUND', message: `no admin route ${req.url}` } });
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      send(200, await route(raw ? (JSON.parse(raw) as unknown) : {}));
    } catch (err) {
      const e = err as { code?: string; message?: string; kind?: string };
      send(e.kind === 'transient' ? 503 : 400, {
        error: { code: e.code ?? 'ERROR', message: e.message ?? String(err) },
      });
    }
  }
}

/** Calls a running stack's admin route; throws its error (message and code). */
export async function callAdmin<T>(adminUrl: string, route: string, body: unknown = {}): Promise<T> {
  const res = await fetch(`${adminUrl}/_smelter/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as T & { error?: { code?: string; message?: string } };
  if (!res.ok) {
    const e = new Error(json.error?.message ?? `admin route ${route} failed: HTTP ${res.status}`) as Error & {
      code?: string;
    };
    if (json.error?.code) e.code = json.error.code;
    throw e;
  }
  return json;
}
