/** Helpers for tests of the local stack: a recording HTTP endpoint, a CSV generator, polling. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StackContext, StackPart } from '../../shared/local/stack';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Time the request arrived (Date.now()). */
  at: number;
}

export type Answer = (r: RecordedRequest) => Promise<{ status: number; body?: string }>;

/** A small HTTP server recording every request and answering through `answer` (default 204). */
export class Endpoint {
  readonly requests: RecordedRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  url = '';
  private server: http.Server | undefined;

  constructor(public answer: Answer = () => Promise.resolve({ status: 204 })) {}

  async listen(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: RecordedRequest = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        };
        this.requests.push(r);
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        this.answer(r)
          .catch((e: Error) => ({ status: 599, body: e.message }))
          .then(({ status, body }) => {
            this.inFlight--;
            res.writeHead(status, { 'content-type': 'text/plain' }).end(body ?? '');
          });
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** CloudEvent requests for one object (`ce-subject: objects/<name>`). */
  forObject(name: string): RecordedRequest[] {
    return this.requests.filter((r) => r.headers['ce-subject'] === `objects/${name}`);
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/**
 * A stack part (see `stackExtensions`) that puts a recording proxy in front of the served rawToBronze:
 * the storage triggers, which start after it, deliver to the proxy, which forwards to the function.
 * `failNext` answers the next requests with 500 without forwarding.
 */
export class SpyPart implements StackPart {
  readonly name = 'spy';
  failNext = 0;
  readonly endpoint = new Endpoint(async (r) => {
    if (this.failNext > 0) {
      this.failNext--;
      return { status: 500, body: 'injected failure' };
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers))
      if (typeof v === 'string' && (k.startsWith('ce-') || k === 'content-type')) headers[k] = v;
    const res = await fetch(this.target, { method: r.method, headers, body: r.body });
    return { status: res.status, body: await res.text() };
  });
  private target = '';

  async start(ctx: StackContext): Promise<void> {
    const target = ctx.endpoints.rawToBronze;
    if (!target) throw new Error('rawToBronze is not served');
    this.target = target;
    ctx.endpoints.rawToBronze = await this.endpoint.listen();
  }

  async stop(): Promise<void> {
    await this.endpoint.close();
  }
}

/** Rainfall CSV with `rows` data rows (deterministic). */
export function rainfallCsv(rows: number, station = 'ST0001'): string {
  const lines = ['station_id,station_name,region,lat,lon,date,rain_mm,measured_at'];
  for (let i = 0; i < rows; i++) {
    const day = new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
    lines.push(
      `${station},Station 1,North,50.1,4.2,${day},${i % 7 === 0 ? '' : (i % 13) * 0.5},${day}T06:00:00Z`,
    );
  }
  return lines.join('\n') + '\n';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it returns a value (bounded, so a broken feature fails instead of hanging). */
export async function waitFor<T>(
  what: string,
  cond: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
