/**
 * The local demo API behind the bundled sources: one node:http server answering
 *
 * - the dummyjson store shape: `GET /users|/products|/carts?skip=&limit=` → `{"users":[…],"total":N,
 *   "skip":S,"limit":L}` (default limit 30, `limit=0` = everything up to `maxLimit`; `limit` in the answer
 *   is the number of records returned, as dummyjson does), 208 users, 194 products, 50 carts;
 * - data.gov.gr's query shape: `GET /api/v1/query/<dataset>?date_from=YYYY-MM-DD&date_to=YYYY-MM-DD`
 *   with `Authorization: Token <token>` (401 otherwise) → a bare JSON array of that window's
 *   measurements (both days inclusive), streamed day by day.
 *
 * Data is generated, deterministic for a seed (shared/samples/store-api.ts, network-api.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { daysBetween, networkApiDay } from '../samples/network-api';
import { storeApiData, type ApiRecord, type StoreApiOptions } from '../samples/store-api';

export interface DemoApiOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  seed?: number;
  /** The token data.gov.gr-shaped queries must carry (default `smelter-demo-token`). */
  token?: string;
  /** Dataset name served under /api/v1/query/ (default: the bundled network source's). */
  networkDataset?: string;
  /** Store sizes (default: the public API's 208 users, 194 products, 50 carts). */
  store?: Omit<StoreApiOptions, 'seed'>;
  /** Largest page a store request may ask for; `limit=0` returns up to this many (default 1000). */
  maxLimit?: number;
  /** Longest window a query may ask for, in days (default 366). */
  maxDays?: number;
}

export interface DemoApi {
  url: string;
  token: string;
  networkDataset: string;
  close(): Promise<void>;
}

export const DEMO_API_TOKEN = 'smelter-demo-token';
export const DEMO_NETWORK_DATASET = 'mindigital_internet_speed';
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A non-negative integer query parameter; undefined when absent, NaN when malformed. */
function intParam(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  return /^\d{1,9}$/.test(v) ? Number(v) : NaN;
}

function validDate(s: string | null): s is string {
  return s !== null && DATE.test(s) && new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s;
}

export async function startDemoApi(opts: DemoApiOptions = {}): Promise<DemoApi> {
  const seed = opts.seed ?? 1;
  const token = opts.token ?? DEMO_API_TOKEN;
  const dataset = opts.networkDataset ?? DEMO_NETWORK_DATASET;
  const maxLimit = opts.maxLimit ?? 1000;
  const maxDays = opts.maxDays ?? 366;
  const store = storeApiData({ ...opts.store, seed });
  const collections: Record<string, ApiRecord[]> = {
    users: store.users,
    products: store.products,
    carts: store.carts,
  };

  const storePage = (res: http.ServerResponse, name: string, q: URLSearchParams): void => {
    const all = collections[name] as ApiRecord[];
    const skip = intParam(q.get('skip')) ?? 0;
    let limit = intParam(q.get('limit')) ?? 30;
    if (Number.isNaN(skip) || Number.isNaN(limit))
      return send(res, 400, { message: 'skip and limit must be non-negative integers' });
    if (limit === 0 || limit > maxLimit) limit = maxLimit;
    const page = all.slice(skip, skip + limit);
    send(res, 200, { [name]: page, total: all.length, skip, limit: page.length });
  };

  const query = (req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): void => {
    const auth = /^Token\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!auth || auth[1] !== token)
      return send(res, 401, { detail: 'Authentication credentials were not provided or are invalid.' });
    const from = q.get('date_from');
    const to = q.get('date_to');
    if (!validDate(from) || !validDate(to))
      return send(res, 400, { detail: 'date_from and date_to must be dates (YYYY-MM-DD)' });
    if (from > to) return send(res, 400, { detail: 'date_from is after date_to' });
    const days = daysBetween(from, to);
    if (days.length > maxDays) return send(res, 400, { detail: `at most ${maxDays} days per query` });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    // One day in memory at a time; the socket's back-pressure paces the generator.
    let i = 0;
    let first = true;
    const pump = (): void => {
      while (i < days.length) {
        const records = networkApiDay(days[i++] as string, { seed });
        let chunk = '';
        for (const r of records) {
          chunk += (first ? '[' : ',') + JSON.stringify(r);
          first = false;
        }
        if (chunk && !res.write(chunk)) return void res.once('drain', pump);
      }
      res.end(first ? '[]' : ']');
    };
    pump();
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, { message: `Method ${req.method} not allowed` }, { allow: 'GET' });
    const name = url.pathname.replace(/\/+$/, '').slice(1);
    if (Object.hasOwn(collections, name)) return storePage(res, name, url.searchParams);
    if (url.pathname === `/api/v1/query/${dataset}` || url.pathname === `/api/v1/query/${dataset}/`)
      return query(req, res, url.searchParams);
    send(res, 404, { message: `Not found: ${url.pathname}` });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    token,
    networkDataset: dataset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
