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
/** The dataset contracts/sources/network.json queries (a test holds the two together). */
export const DEMO_NETWORK_DATASET = 'internet_speed_measurements';
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

/** What the server answers from: options resolved, the store's collections generated once. */
interface DemoApiData {
  seed: number;
  token: string;
  dataset: string;
  maxLimit: number;
  maxDays: number;
  collections: Record<string, ApiRecord[]>;
}

export async function startDemoApi(opts: DemoApiOptions = {}): Promise<DemoApi> {
  const seed = opts.seed ?? 1;
  const store = storeApiData({ ...opts.store, seed });
  const d: DemoApiData = {
    seed,
    token: opts.token ?? DEMO_API_TOKEN,
    dataset: opts.networkDataset ?? DEMO_NETWORK_DATASET,
    maxLimit: opts.maxLimit ?? 1000,
    maxDays: opts.maxDays ?? 366,
    collections: { users: store.users, products: store.products, carts: store.carts },
  };
  const server = http.createServer((req, res) => route(d, req, res));
  server.keepAliveTimeout = 5_000;
  await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    token: d.token,
    networkDataset: d.dataset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function route(d: DemoApiData, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(res, 405, { message: `Method ${req.method} not allowed` }, { allow: 'GET' });
  const name = url.pathname.replace(/\/+$/, '').slice(1);
  if (Object.hasOwn(d.collections, name)) return storePage(d, res, name, url.searchParams);
  if (url.pathname === `/api/v1/query/${d.dataset}` || url.pathname === `/api/v1/query/${d.dataset}/`)
    return networkQuery(d, req, res, url.searchParams);
  send(res, 404, { message: `Not found: ${url.pathname}` });
}

/** dummyjson's page: `{"<name>":[…],"total":N,"skip":S,"limit":<records returned>}`. */
function storePage(d: DemoApiData, res: http.ServerResponse, name: string, q: URLSearchParams): void {
  const all = d.collections[name] as ApiRecord[];
  const skip = intParam(q.get('skip')) ?? 0;
  let limit = intParam(q.get('limit')) ?? 30;
  if (Number.isNaN(skip) || Number.isNaN(limit))
    return send(res, 400, { message: 'skip and limit must be non-negative integers' });
  if (limit === 0 || limit > d.maxLimit) limit = d.maxLimit;
  const page = all.slice(skip, skip + limit);
  send(res, 200, { [name]: page, total: all.length, skip, limit: page.length });
}

/** data.gov.gr's query: token-checked, a bare JSON array of the window's measurements. */
function networkQuery(
  d: DemoApiData,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  q: URLSearchParams,
): void {
  const auth = /^Token\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!auth || auth[1] !== d.token)
    return send(res, 401, { detail: 'Authentication credentials were not provided or are invalid.' });
  const from = q.get('date_from');
  const to = q.get('date_to');
  if (!validDate(from) || !validDate(to))
    return send(res, 400, { detail: 'date_from and date_to must be dates (YYYY-MM-DD)' });
  if (from > to) return send(res, 400, { detail: 'date_from is after date_to' });
  const days = daysBetween(from, to);
  if (days.length > d.maxDays) return send(res, 400, { detail: `at most ${d.maxDays} days per query` });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  streamDays(res, days, d.seed);
}

/** One day in memory at a time; the socket's back-pressure paces the generator. */
function streamDays(res: http.ServerResponse, days: string[], seed: number): void {
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
}
