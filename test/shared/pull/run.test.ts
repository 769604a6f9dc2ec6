/**
 * runPull against local servers: every pagination style lands every record once in deterministic
 * parts; retries and second pulls add nothing; the state advances only after a unit is committed;
 * a permanent failure writes nothing and leaves the state where it was.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { NodeHttpClient } from '../../../shared/adapters/http/node-http';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { isSmelterError } from '../../../shared/errors';
import type { SourceContract } from '../../../shared/pull/contract';
import { runPull, windowsBetween, type PullDeps } from '../../../shared/pull/run';
import { readState, stateObjectName } from '../../../shared/pull/state';
import type { ObjectStore } from '../../../shared/storage/object-store';
import {
  apiServer,
  captureLog,
  contract,
  fakeClock,
  json,
  readParts,
  type ApiServer,
} from '../../support/pull';

const N = 95;
const rows = Array.from({ length: N }, (_, i) => ({
  id: i + 1,
  name: `n${i + 1}`,
  secret: { card: `4111-${i}` },
}));
const ids = (recs: Record<string, unknown>[]): number[] => recs.map((r) => r.id as number);
const all = rows.map((r) => r.id);

/** One fake API serving `rows` in every pagination style. */
function styles(req: http.IncomingMessage, res: http.ServerResponse, u: URL): void {
  const q = u.searchParams;
  const limit = Number(q.get('limit') ?? 10);
  switch (u.pathname) {
    case '/none':
      return json(res, rows);
    case '/page': {
      const p = Number(q.get('page'));
      return json(res, { data: { items: rows.slice((p - 1) * limit, p * limit) } });
    }
    case '/page-total': {
      const p = Number(q.get('page'));
      return json(res, {
        items: rows.slice((p - 1) * limit, p * limit),
        meta: { pages: Math.ceil(N / limit) },
      });
    }
    case '/offset': {
      const skip = Number(q.get('skip'));
      return json(res, { users: rows.slice(skip, skip + limit), total: N, skip, limit });
    }
    case '/cursor': {
      const at = Number(q.get('cursor') ?? 0);
      const next = at + limit < N ? String(at + limit) : null;
      return json(res, { results: rows.slice(at, at + limit), next_cursor: next });
    }
    case '/next': {
      const at = Number(q.get('at') ?? 0);
      const next = at + limit < N ? `/next?at=${at + limit}` : null;
      return json(res, { results: rows.slice(at, at + limit), links: { next } });
    }
    case '/link': {
      const at = Number(q.get('at') ?? 0);
      const headers: Record<string, string> = {};
      if (at + limit < N)
        headers.link = `<${u.origin === 'http://x' ? '' : ''}/link?at=${at + limit}>; rel="next", </link?at=0>; rel="first"`;
      return json(res, rows.slice(at, at + limit), 200, headers);
    }
    case '/raw': {
      // Text as an API may send it: a big integer, an escape, and (page 2) pretty-printed or non-object records.
      const page = Number(q.get('page'));
      res.writeHead(200, { 'content-type': 'application/json' });
      if (page === 1) return void res.end('{"items":[{"id":12345678901234567890,"s":"\\u00e9"}, {"id":2}]}');
      if (page === 2) return void res.end('{"items": [\n  {"id": 3},\n  {"id": 4}\n]}');
      if (page === 3) return void res.end('{"items":[{"id":5},7]}');
      return void res.end('{"items":[]}');
    }
    case '/cursor-loop':
      return json(res, { results: [rows[0]], next_cursor: 'same' });
    default:
      return json(res, { error: 'no such path' }, 404);
  }
  void req;
}

describe('pull: runPull', () => {
  const client = new NodeHttpClient();
  let api: ApiServer;
  let store: ObjectStore;
  before(async () => {
    api = await apiServer(styles);
  });
  after(async () => {
    await api.close();
    await client.close();
  });
  beforeEach(async () => {
    store = new MemoryObjectStore();
    await store.ensureBucket('raw');
    await store.ensureBucket('bronze');
  });

  const deps = (over: Partial<PullDeps> = {}): PullDeps => ({
    store,
    http: client,
    rawBucket: 'raw',
    stateBucket: 'bronze',
    log: captureLog().log,
    clock: fakeClock(),
    ...over,
  });
  const c = (endpoint: Record<string, unknown>, over: Record<string, unknown> = {}): SourceContract =>
    contract({ baseUrl: api.url, ...over }, endpoint);

  const cases: [string, Record<string, unknown>, number][] = [
    ['none', { path: '/none', pagination: { type: 'none' } }, 1],
    [
      'page + limit',
      {
        path: '/page',
        records: 'data.items',
        pagination: { type: 'page', pageParam: 'page', limitParam: 'limit', limit: 10 },
      },
      10,
    ],
    [
      'page + total pages',
      {
        path: '/page-total',
        records: 'items',
        pagination: { type: 'page', limitParam: 'limit', limit: 20, totalPagesPath: 'meta.pages' },
      },
      5,
    ],
    [
      'offset (skip) + limit with total',
      {
        path: '/offset',
        records: 'users',
        pagination: {
          type: 'offset',
          offsetParam: 'skip',
          limitParam: 'limit',
          limit: 10,
          totalPath: 'total',
        },
      },
      10,
    ],
    [
      'cursor from the body',
      {
        path: '/cursor',
        records: 'results',
        pagination: {
          type: 'cursor',
          cursorPath: 'next_cursor',
          cursorParam: 'cursor',
          limitParam: 'limit',
          limit: 30,
        },
      },
      4,
    ],
    [
      'next URL from the body',
      { path: '/next', records: 'results', pagination: { type: 'next', nextPath: 'links.next' } },
      10,
    ],
    ['RFC 8288 Link rel=next', { path: '/link', records: '', pagination: { type: 'link' } }, 10],
  ];
  for (const [name, ep, pages] of cases) {
    it(`pagination: ${name}`, async () => {
      const s = await runPull(c(ep), { run: 'r1' }, deps());
      assert.equal(s.pages, pages);
      assert.equal(s.records, N);
      const got = await readParts(store, 'raw', 'demo_items/pulled/demo/run-r1/');
      assert.deepEqual(ids(got.records), all);
      assert.deepEqual(got.names, ['demo_items/pulled/demo/run-r1/part-00000.ndjson.gz']);
    });
  }

  it('parts roll over at page boundaries past recordsPerPart, with deterministic names', async () => {
    const ct = c(
      {
        path: '/offset',
        records: 'users',
        pagination: {
          type: 'offset',
          offsetParam: 'skip',
          limitParam: 'limit',
          limit: 10,
          totalPath: 'total',
        },
      },
      {
        limits: { recordsPerPart: 25, requestsPerSecond: 1000 },
      },
    );
    const s = await runPull(ct, { run: 'r1' }, deps());
    const got = await readParts(store, 'raw', 'demo_items/pulled/demo/run-r1/');
    assert.deepEqual(
      got.names.map((n) => n.split('/').pop()),
      ['part-00000.ndjson.gz', 'part-00001.ndjson.gz', 'part-00002.ndjson.gz', 'part-00003.ndjson.gz'],
    );
    assert.equal(s.objects, 4);
    assert.deepEqual(ids(got.records), all);
    // The same run again (a redelivered message) writes nothing new.
    const again = await runPull(ct, { run: 'r1' }, deps());
    assert.equal(again.objects, 0);
    assert.equal(again.existingObjects, 4);
    assert.deepEqual(ids((await readParts(store, 'raw', 'demo_items/pulled/demo/')).records), all);
  });

  it("pages written unchanged keep the source's bytes; pretty-printed or non-object records are serialised from the parse", async () => {
    const s = await runPull(
      c({ path: '/raw', records: 'items', pagination: { type: 'page', pageParam: 'page' } }),
      { run: 'r1' },
      deps(),
    );
    assert.equal(s.records, 6);
    const [name] = (await readParts(store, 'raw', '')).names;
    const chunks: Buffer[] = [];
    for await (const b of await store.read('raw', name as string)) chunks.push(b as Buffer);
    assert.equal(
      gunzipSync(Buffer.concat(chunks)).toString('utf8'),
      '{"id":12345678901234567890,"s":"\\u00e9"}\n{"id":2}\n{"id":3}\n{"id":4}\n{"id":5}\n7\n',
    );
  });

  it('a run killed mid-way and retried: committed parts are kept, the rest written, nothing twice', async () => {
    let calls = 0;
    const flaky = await apiServer((req, res, u) => {
      if (u.pathname === '/offset' && Number(u.searchParams.get('skip')) === 50 && calls++ === 0) {
        res.destroy(); // the "kill": the connection dies mid-run
        return;
      }
      styles(req, res, u);
    });
    try {
      const ct = contract(
        {
          baseUrl: flaky.url,
          http: { maxAttempts: 1, retryBaseMs: 1 },
          limits: { recordsPerPart: 20, requestsPerSecond: 1000 },
        },
        {
          path: '/offset',
          records: 'users',
          pagination: {
            type: 'offset',
            offsetParam: 'skip',
            limitParam: 'limit',
            limit: 10,
            totalPath: 'total',
          },
        },
      );
      await assert.rejects(runPull(ct, { run: 'm1' }, deps()), (e: unknown) =>
        isSmelterError(e, 'SOURCE_UNAVAILABLE'),
      );
      const first = await readParts(store, 'raw', 'demo_items/pulled/demo/run-m1/');
      assert.equal(first.names.length, 2); // parts 0 and 1 committed; part 2 was open and is not there
      assert.deepEqual(ids(first.records), all.slice(0, 40));
      const s = await runPull(ct, { run: 'm1' }, deps());
      assert.equal(s.existingObjects, 2);
      const after = await readParts(store, 'raw', 'demo_items/pulled/demo/run-m1/');
      assert.deepEqual(ids(after.records), all);
    } finally {
      await flaky.close();
    }
  });

  it('a repeating cursor stops the run with a clear error', async () => {
    const ct = c({
      path: '/cursor-loop',
      records: 'results',
      pagination: { type: 'cursor', cursorPath: 'next_cursor', cursorParam: 'cursor' },
    });
    await assert.rejects(
      runPull(ct, { run: 'r' }, deps()),
      /endpoint "items": the cursor repeats after 1 pages/,
    );
    assert.deepEqual((await readParts(store, 'raw', '')).names, []);
  });

  it('limits.pagesPerRun stops pages that never end', async () => {
    const ct = c(
      { path: '/page', records: 'data.items', pagination: { type: 'page', limitParam: 'limit', limit: 10 } },
      { limits: { pagesPerRun: 3 } },
    );
    await assert.rejects(
      runPull(ct, { run: 'r' }, deps()),
      /more than 3 pages in one run \(limits\.pagesPerRun\)/,
    );
  });

  it('a missing records path is a clear permanent error', async () => {
    const ct = c({ path: '/offset', records: 'items', pagination: { type: 'none' } });
    await assert.rejects(
      runPull(ct, { run: 'r' }, deps()),
      /has no records array at "items" \(got undefined\)/,
    );
  });

  it('401: permanent, nothing written, state not advanced', async () => {
    const denied = await apiServer((_req, res) => json(res, { detail: 'Invalid token.' }, 401));
    try {
      const ct = contract(
        { baseUrl: denied.url, auth: { type: 'token' } },
        { path: '/q', window: { step: '1d', start: '2026-11-01', toInclusive: true } },
      );
      await assert.rejects(runPull(ct, { run: 'r' }, deps({ secret: 'tok-123' })), (e: unknown) => {
        assert.ok(isSmelterError(e, 'SOURCE_HTTP_ERROR') && e.kind === 'permanent');
        assert.match(e.message, /source "demo" endpoint "items": GET .*answered HTTP 401/);
        assert.ok(!e.message.includes('tok-123'));
        return true;
      });
      assert.deepEqual((await readParts(store, 'raw', '')).names, []);
      assert.equal(await store.stat('bronze', stateObjectName('demo')), undefined);
    } finally {
      await denied.close();
    }
  });

  it('windows: one request per day (inclusive date_to), state advanced per window, the next run continues', async () => {
    const seen: string[] = [];
    const gov = await apiServer((req, res, u) => {
      assert.equal(req.headers.authorization, 'Token tok');
      const from = u.searchParams.get('date_from') ?? '';
      seen.push(`${from}..${u.searchParams.get('date_to')}`);
      json(res, [
        { id: `${from}-a`, day: from },
        { id: `${from}-b`, day: from },
      ]);
    });
    try {
      const ct = contract(
        { baseUrl: gov.url, auth: { type: 'token' } },
        { path: '/api/v1/query/speed', window: { step: '1d', start: '2026-11-07', toInclusive: true } },
      );
      const clock = fakeClock(Date.parse('2026-11-10T12:00:00Z'));
      const s = await runPull(ct, { run: 'r' }, deps({ secret: 'tok', clock }));
      assert.deepEqual(seen, ['2026-11-07..2026-11-07', '2026-11-08..2026-11-08', '2026-11-09..2026-11-09']);
      assert.deepEqual(s.windows, [
        '2026-11-07_2026-11-08',
        '2026-11-08_2026-11-09',
        '2026-11-09_2026-11-10',
      ]);
      assert.equal(s.records, 6);
      const st = await readState(store, 'bronze', 'demo');
      assert.equal(st.state.endpoints.items?.windowEnd, '2026-11-10T00:00:00.000Z');
      const parts = await readParts(store, 'raw', 'demo_items/pulled/demo/2026-11-08_2026-11-09/');
      assert.deepEqual(
        parts.records.map((r) => r.id),
        ['2026-11-08-a', '2026-11-08-b'],
      );
      // Same day again: nothing to do. Next day: only the new window.
      assert.equal((await runPull(ct, { run: 'r2' }, deps({ secret: 'tok', clock }))).pages, 0);
      clock.t = Date.parse('2026-11-11T01:00:00Z');
      const next = await runPull(ct, { run: 'r3' }, deps({ secret: 'tok', clock }));
      assert.deepEqual(next.windows, ['2026-11-10_2026-11-11']);
      // An explicit window already pulled adds nothing (its parts exist).
      const back = await runPull(
        ct,
        { run: 'r4', from: '2026-11-08', to: '2026-11-09' },
        deps({ secret: 'tok', clock }),
      );
      assert.equal(back.objects, 0);
      assert.equal(back.existingObjects, 2);
    } finally {
      await gov.close();
    }
  });

  it('incremental field: records at or below the state are skipped; omitted fields never stored', async () => {
    const ct = c({
      path: '/offset',
      records: 'users',
      pagination: { type: 'offset', offsetParam: 'skip', limitParam: 'limit', limit: 50, totalPath: 'total' },
      incremental: { type: 'field', field: 'id' },
      omit: ['secret.card'],
    });
    const s1 = await runPull(ct, { run: 'a' }, deps());
    assert.equal(s1.records, N);
    const st = await readState(store, 'bronze', 'demo');
    assert.equal(st.state.endpoints.items?.max, N);
    const got = await readParts(store, 'raw', 'demo_items/pulled/demo/run-a/');
    assert.ok(got.records.every((r) => JSON.stringify(r.secret) === '{}'));
    const s2 = await runPull(ct, { run: 'b' }, deps());
    assert.equal(s2.records, 0);
    assert.equal(s2.skippedRecords, N);
    assert.equal(s2.objects, 0);
  });

  it('a concurrent state change fails the precondition instead of overwriting', async () => {
    const ct = c({
      path: '/offset',
      records: 'users',
      pagination: { type: 'none' },
      incremental: { type: 'field', field: 'id' },
    });
    const d = deps();
    const orig = d.store.write.bind(d.store);
    let raced = false;
    d.store = Object.assign(Object.create(d.store) as ObjectStore, {
      write: async (...a: Parameters<ObjectStore['write']>) => {
        if (a[1] === stateObjectName('demo') && !raced) {
          raced = true;
          await orig('bronze', stateObjectName('demo'), '{"source":"demo","endpoints":{}}');
        }
        return orig(...a);
      },
    });
    await assert.rejects(runPull(ct, { run: 'x' }, d), /advanced its state meanwhile/);
  });

  it('windowsBetween', () => {
    const D = 86_400_000;
    assert.deepEqual(windowsBetween(D, 0, 2.5 * D, false), [
      { start: 0, end: D },
      { start: D, end: 2 * D },
    ]);
    assert.equal(windowsBetween(D, 0, 2.5 * D, true).length, 3);
  });
});
