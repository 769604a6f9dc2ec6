/**
 * The local demo API: dummyjson-shaped store pages and data.gov.gr-shaped measurement queries, over
 * real HTTP, deterministic for a seed.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadSourceContract } from '../../../shared/pull/contract';
import {
  DEMO_API_TOKEN,
  DEMO_NETWORK_DATASET,
  startDemoApi,
  type DemoApi,
} from '../../../shared/local/demo-api';

type Json = Record<string, unknown>;

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as unknown };
}

describe('local demo API', function () {
  let api: DemoApi;
  before(async () => {
    api = await startDemoApi({ seed: 7 });
  });
  after(async () => api?.close());

  const query = (from: string, to: string, token = DEMO_API_TOKEN) =>
    get(`${api.url}/api/v1/query/${DEMO_NETWORK_DATASET}?date_from=${from}&date_to=${to}`, {
      Authorization: `Token ${token}`,
    });

  it('serves every endpoint of the bundled source contracts (store, network) as they ask for it', async () => {
    const contractsDir = path.join(__dirname, '..', '..', '..', 'contracts');
    for (const ep of loadSourceContract(contractsDir, 'store').endpoints) {
      const r = await get(`${api.url}${ep.path}?skip=0&limit=5`);
      assert.equal(r.status, 200, ep.path);
      assert.equal(((r.body as Json)[ep.records] as unknown[]).length, 5, ep.path);
    }
    for (const ep of loadSourceContract(contractsDir, 'network').endpoints) {
      const r = await get(`${api.url}${ep.path}?date_from=2024-04-01&date_to=2024-04-01`, {
        Authorization: `Token ${DEMO_API_TOKEN}`,
      });
      assert.equal(r.status, 200, ep.path);
      assert.ok(Array.isArray(r.body) && r.body.length > 0, ep.path);
    }
  });

  it('pages the store collections like dummyjson: wrapped, default limit 30, limit=0 = all', async () => {
    const first = (await get(`${api.url}/users`)).body as Json;
    assert.equal(first.total, 208);
    assert.equal(first.skip, 0);
    assert.equal(first.limit, 30);
    assert.equal((first.users as unknown[]).length, 30);
    for (const [name, total] of [
      ['users', 208],
      ['products', 194],
      ['carts', 50],
    ] as const) {
      // Walk every page as a client would; ids are 1..total exactly once.
      const ids: number[] = [];
      for (let skip = 0; ; skip += 50) {
        const page = (await get(`${api.url}/${name}?skip=${skip}&limit=50`)).body as Json;
        assert.equal(page.total, total);
        const records = page[name] as Json[];
        assert.equal(page.limit, records.length);
        ids.push(...records.map((r) => r.id as number));
        if (records.length < 50) break;
      }
      assert.deepEqual(
        ids,
        Array.from({ length: total }, (_, i) => i + 1),
      );
      const all = (await get(`${api.url}/${name}?limit=0`)).body as Json;
      assert.equal((all[name] as unknown[]).length, total);
    }
    const past = (await get(`${api.url}/carts?skip=500&limit=10`)).body as Json;
    assert.deepEqual(past, { carts: [], total: 50, skip: 500, limit: 0 });
    assert.equal((await get(`${api.url}/users?limit=abc`)).status, 400);
    assert.equal((await get(`${api.url}/nothing`)).status, 404);
    assert.equal((await get(`${api.url}/constructor`)).status, 404);
  });

  it('serves the real store shapes: camelCase, nested objects, PII, carts without a date', async () => {
    const u = ((await get(`${api.url}/users?limit=1`)).body as Json).users as Json[];
    const user = u[0] as Json;
    for (const k of ['firstName', 'lastName', 'email', 'age', 'gender', 'password', 'ssn', 'ip'])
      assert.ok(k in user, k);
    assert.equal(typeof (user.address as Json).city, 'string');
    assert.ok('coordinates' in (user.address as Json));
    assert.ok('cardNumber' in (user.bank as Json) && 'iban' in (user.bank as Json));
    assert.ok('color' in (user.hair as Json) && 'department' in (user.company as Json));
    const c = (((await get(`${api.url}/carts?limit=0`)).body as Json).carts as Json[])[0] as Json;
    assert.ok(!('date' in c));
    assert.equal(typeof c.userId, 'number');
    const line = (c.products as Json[])[0] as Json;
    for (const k of ['id', 'title', 'price', 'quantity', 'total']) assert.ok(k in line, k);
    const cents = (x: number): number => Math.round(x * 100);
    assert.equal(
      cents(c.total as number),
      (c.products as Json[]).reduce((s, l) => s + cents(l.total as number), 0),
    );
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const again = await startDemoApi({ seed: 7 });
    const other = await startDemoApi({ seed: 8 });
    try {
      const a = await get(`${api.url}/users?limit=0`);
      assert.deepEqual((await get(`${again.url}/users?limit=0`)).body, a.body);
      assert.notDeepEqual((await get(`${other.url}/users?limit=0`)).body, a.body);
    } finally {
      await again.close();
      await other.close();
    }
  });

  it('answers data.gov.gr queries: token required, a bare array of the window’s days', async () => {
    assert.equal((await query('2024-04-01', '2024-04-02', 'wrong')).status, 401);
    const noAuth = await get(
      `${api.url}/api/v1/query/${DEMO_NETWORK_DATASET}?date_from=2024-04-01&date_to=2024-04-02`,
    );
    assert.equal(noAuth.status, 401);
    const two = await query('2024-04-01', '2024-04-02');
    assert.equal(two.status, 200);
    const rows = two.body as Json[];
    assert.ok(Array.isArray(rows) && rows.length > 200, `got ${rows.length}`);
    assert.deepEqual([...new Set(rows.map((r) => r.date))].sort(), ['2024-04-01', '2024-04-02']);
    for (const r of rows) assert.equal(String(r.timestamp).slice(0, 10), r.date);
    assert.equal(new Set(rows.map((r) => r.id)).size, rows.length);
    // A day is the same whatever window asks for it.
    const one = (await query('2024-04-02', '2024-04-02')).body as Json[];
    assert.deepEqual(
      one,
      rows.filter((r) => r.date === '2024-04-02'),
    );
    // Speeds span every step of the staircase over a few days.
    const week = (await query('2024-04-01', '2024-04-07')).body as Json[];
    const speeds = week.map((r) => r.download_speed as number);
    for (const [lo, hi] of [
      [0, 2],
      [2, 10],
      [10, 30],
      [30, 100],
      [100, Infinity],
    ] as const)
      assert.ok(
        speeds.some((s) => s >= lo && s < hi),
        `a speed in [${lo}, ${hi})`,
      );
    assert.equal((await query('2024-04-03', '2024-04-01')).status, 400);
    assert.equal((await query('2024-02-30', '2024-03-01')).status, 400);
    assert.equal((await query('2020-01-01', '2024-01-01')).status, 400);
    assert.equal(
      (await get(`${api.url}/api/v1/query/other?date_from=2024-04-01&date_to=2024-04-01`)).status,
      404,
    );
  });

  it('close() stops the server', async () => {
    const tmp = await startDemoApi();
    await tmp.close();
    await assert.rejects(fetch(`${tmp.url}/users`));
  });
});
