/**
 * routeEvent end to end on the local backend, through functions-framework: real CloudEvents in binary
 * and structured mode and the Pub/Sub push format, into DuckDB, the filesystem archive bucket and the
 * local dead-letter topic file.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { topicFile } from '../../shared/adapters/events/dead-letter-file';
import { closeRuntime, runtime, useRuntime } from '../../shared/composition/runtime';
import { transient } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { EventWarehouse } from '../../shared/events/ports';
import { routeEvent } from '../../functions/route-event';
import { testHome, readAll, type TestHome } from '../support/home';
import {
  activity,
  captureLogger,
  inventory,
  msg,
  order,
  serveRouteEvent,
  type CapturedLog,
  type Mode,
  type Served,
} from '../support/events';

interface DeadRow {
  message_id: string;
  event_type: string | null;
  event_id: string | null;
  data_base64: string;
  data_bytes: string;
  data_truncated: boolean;
  reasons: { path: string; code: string; reason: string }[];
}

describe('routeEvent (local backend, through functions-framework)', function () {
  let h: TestHome;
  let served: Served;
  let lines: CapturedLog[];
  let log: Logger;
  const savedEmulator = process.env.PUBSUB_EMULATOR_HOST;

  async function setup(env: Record<string, string> = {}): Promise<void> {
    delete process.env.PUBSUB_EMULATOR_HOST;
    h = await testHome(env);
    const cap = captureLogger();
    lines = cap.lines;
    log = cap.log;
    useRuntime({ config: h.cfg, log, store: h.store });
    served = await serveRouteEvent(routeEvent);
  }

  afterEach(async () => {
    sinon.restore();
    await served?.close();
    await h?.cleanup(); // closes the runtime: flushes the router, releases the DuckDB file
    if (savedEmulator === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = savedEmulator;
  });

  const query = async <T = Record<string, unknown>>(sql: string): Promise<T[]> =>
    (await runtime().get('localDuckDb')()).query<T>(sql);
  const count = async (table: string): Promise<number> =>
    Number((await query<{ n: string }>(`SELECT count(*) AS n FROM events.${table}`))[0]?.n);
  const deadLetters = (): Promise<DeadRow[]> =>
    query<DeadRow>('SELECT * FROM events.dead_letter ORDER BY message_id');

  async function archivedEvents(): Promise<{ name: string; rows: Record<string, unknown>[] }[]> {
    const out: { name: string; rows: Record<string, unknown>[] }[] = [];
    for await (const o of h.store.list(h.cfg.archiveBucket, 'events/')) {
      const text = (await readAll(await h.store.read(h.cfg.archiveBucket, o.name))).toString('utf8');
      out.push({
        name: o.name,
        rows: text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      });
    }
    return out;
  }

  function topicLines(): { attributes: Record<string, string>; body: Record<string, unknown> }[] {
    const file = topicFile(h.home, h.cfg.deadLetterTopic);
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const e = JSON.parse(l) as { data: string; attributes: Record<string, string> };
        return {
          attributes: e.attributes,
          body: JSON.parse(Buffer.from(e.data, 'base64').toString('utf8')) as Record<string, unknown>,
        };
      });
  }

  const valid = (): Record<string, unknown>[] => [
    order(1),
    order(2, { status: 'shipped', items: [{ product_id: 'P-9', quantity: '12', unit_price: '0.5' }] }),
    order(3, { shipping_address: null }),
    order(4, { gift_message: 'happy birthday' }),
    inventory(1),
    inventory(2, { change_type: 'restock', quantity_change: '40', quantity_after: 52 }),
    inventory(3, { change_type: 'return', quantity_change: 1 }),
    activity(1),
    activity(2, { activity_type: 'search', search_query: 'red shoes', metadata: null }),
    activity(3, { activity_type: 'add_to_cart', product_id: 'P-7' }),
  ];

  const invalid = (): {
    payload: Record<string, unknown>;
    attributes?: Record<string, string>;
    expected: [string, string][];
  }[] => [
    {
      payload: order(90, {
        status: 'teleported',
        items: [{ product_id: 'P-1', quantity: 0, unit_price: '1.5' }, null],
        shipping_address: { city: 'Paris', country: 'France' },
        currency: undefined,
        total_amount: 'abc',
      }),
      expected: [
        ['$.status', 'not_accepted'],
        ['$.items[0].quantity', 'below_min'],
        ['$.items[1]', 'null_element'],
        ['$.shipping_address.country', 'pattern'],
        ['$.total_amount', 'wrong_type'],
        ['$.currency', 'required'],
      ],
    },
    {
      payload: { event_id: 'ref-1', event_time: '2024-05-01T10:00:00Z', amount: 3 },
      attributes: { event_type: 'refund' },
      expected: [['$.event_type', 'unknown_type']],
    },
    {
      payload: inventory(91, {
        change_type: 'theft',
        quantity_after: -5,
        warehouse_id: undefined,
        event_time: 'yesterday',
      }),
      expected: [
        ['$.event_time', 'wrong_type'],
        ['$.warehouse_id', 'required'],
        ['$.change_type', 'not_accepted'],
        ['$.quantity_after', 'below_min'],
      ],
    },
  ];

  it('stores 10 valid events and dead-letters 3 invalid ones with every reason (binary, structured, push)', async () => {
    await setup();
    const modes: Mode[] = ['binary', 'structured', 'push'];
    const statuses = await Promise.all([
      ...valid().map((p, i) => served.post(msg(p, `m-valid-${i}`), modes[i % 3])),
      ...invalid().map((x, i) =>
        served.post(
          msg(x.payload, `m-bad-${i}`, x.attributes ? { attributes: x.attributes } : {}),
          modes[i % 3],
        ),
      ),
    ]);
    assert.deepEqual(statuses, Array(13).fill(204));

    assert.equal((await count('orders')) + (await count('inventory')) + (await count('user_activity')), 10);
    assert.equal(await count('orders'), 4);

    // Typed and normalised: "12" → 12, numeric as DECIMAL, +02:00 → UTC, metadata columns set.
    const [o2] = await query<Record<string, unknown>>(
      `SELECT event_time::VARCHAR AS t, items[1].quantity AS q, items[1].unit_price AS p, status, _message_id, _publish_time IS NOT NULL AS pt,
              typeof(items) AS ty FROM events.orders WHERE event_id = 'ord-2'`,
    );
    assert.deepEqual(o2, {
      t: '2024-05-01 10:15:00+00',
      q: '12',
      p: '0.500000000',
      status: 'shipped',
      _message_id: 'm-valid-1',
      pt: true,
      ty: 'STRUCT(product_id VARCHAR, quantity BIGINT, unit_price DECIMAL(38,9))[]',
    });
    const [a1] = await query<{ t: string; device: string }>(
      `SELECT event_time::VARCHAR AS t, metadata.device AS device FROM events.user_activity WHERE event_id = 'act-1'`,
    );
    assert.deepEqual(a1, { t: '2024-05-01 09:00:01.123456+00', device: 'mobile' });

    const dead = await deadLetters();
    assert.deepEqual(
      dead.map((d) => d.message_id),
      ['m-bad-0', 'm-bad-1', 'm-bad-2'],
    );
    for (const [i, x] of invalid().entries()) {
      const d = dead[i] as DeadRow;
      assert.deepEqual(
        d.reasons.map((r) => [r.path, r.code]).sort(),
        [...x.expected].sort(),
        `reasons of m-bad-${i}: ${JSON.stringify(d.reasons)}`,
      );
      for (const r of d.reasons) assert.ok(r.reason.length > 5);
      // The original bytes are kept.
      assert.deepEqual(
        JSON.parse(Buffer.from(d.data_base64, 'base64').toString('utf8')),
        JSON.parse(JSON.stringify(x.payload)),
      );
      assert.equal(d.data_truncated, false);
    }
    assert.equal(dead[1]?.event_type, 'refund');
    assert.equal(dead[0]?.event_id, 'ord-90');

    // The dead-letter topic (a file here: no emulator) got the same three, with reasons and original bytes.
    const topic = topicLines();
    assert.equal(topic.length, 3);
    const t0 = topic.find((t) => t.attributes.source_message_id === 'm-bad-2');
    assert.ok(t0);
    assert.equal(t0.attributes.event_type, 'inventory');
    assert.equal((t0.body.reasons as unknown[]).length, 4);
    assert.equal(t0.body.message_id, 'm-bad-2');
    assert.ok(typeof t0.body.publish_time === 'string');
    assert.deepEqual(t0.body.attributes, {});

    // The archive holds every valid event, NDJSON under events/<type>/YYYY/MM/DD/HH/ (hour of event_time, UTC).
    const archive = await archivedEvents();
    const ids = archive.flatMap((o) => o.rows.map((r) => r.event_id)).sort();
    assert.deepEqual(
      ids,
      valid()
        .map((v) => v.event_id)
        .sort(),
    );
    for (const o of archive) {
      const m = /^events\/(order|inventory|user_activity)\/2024\/05\/01\/(\d\d)\/[0-9a-f]{32}\.ndjson$/.exec(
        o.name,
      );
      assert.ok(m, o.name);
      for (const r of o.rows) {
        assert.equal(r.event_type, m[1]);
        assert.equal(String(r.event_time).slice(11, 13), m[2]);
      }
    }
    // order.json ignores undeclared fields: gift_message is stored nowhere.
    const o4 = archive.flatMap((o) => o.rows).find((r) => r.event_id === 'ord-4');
    assert.ok(o4 && !('_extra' in o4));
    assert.ok(!JSON.stringify(archive).includes('happy birthday'));
    const ord1 = archive.find((o) => o.rows.some((r) => r.event_id === 'ord-1'));
    assert.match(ord1?.name ?? '', /^events\/order\/2024\/05\/01\/09\//);

    // Logs: one JSON line per dead letter with the fields operators filter on.
    const warn = lines.filter((l) => l.message === 'event dead-lettered');
    assert.equal(warn.length, 3);
    for (const l of warn) {
      assert.equal(l.severity, 'WARNING');
      for (const k of ['event_type', 'event_id', 'message_id', 'reasons', 'durationMs'])
        assert.ok(k in l.fields, k);
    }
    // Published = stored + dead-lettered.
    const s = runtime().get('eventRouter').stats();
    assert.equal(s.received, 13);
    assert.equal(s.stored + s.deadLettered, 13);
  });

  it('stores an event delivered 3 times once, and the archive loses none', async () => {
    await setup();
    const events = valid();
    const modes: Mode[] = ['push', 'binary', 'structured'];
    for (const mode of modes) {
      // Same message ids each round: redeliveries, in a different transport each time.
      const statuses = await Promise.all(events.map((p, i) => served.post(msg(p, `m-${i}`), mode)));
      assert.deepEqual(statuses, Array(10).fill(204));
    }
    for (const t of ['orders', 'inventory', 'user_activity']) {
      const dup = await query(
        `SELECT event_id, count(*) AS n FROM events.${t} GROUP BY 1 HAVING count(*) > 1`,
      );
      assert.deepEqual(dup, []);
    }
    assert.equal((await count('orders')) + (await count('inventory')) + (await count('user_activity')), 10);
    const archived = new Set((await archivedEvents()).flatMap((o) => o.rows.map((r) => r.event_id)));
    assert.deepEqual([...archived].sort(), events.map((e) => e.event_id).sort());
    assert.equal((await deadLetters()).length, 0);
  });

  it('never crashes on malformed payloads: 204 and a dead letter with the reason', async () => {
    await setup();
    const deep = `{"event_type":"order","event_id":"deep","x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const tenMb = 'x'.repeat(10 * 1024 * 1024);
    const cases: { m: ReturnType<typeof msg>; code: string }[] = [
      { m: msg('{"event_type": "order", not json', 'bad-json'), code: 'not_json' },
      { m: { data: '%%%not-base64%%%', messageId: 'bad-b64' }, code: 'not_base64' },
      {
        m: { data: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64'), messageId: 'bad-utf8' },
        code: 'not_utf8',
      },
      {
        m: msg(
          `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${JSON.stringify(order(5)).slice(1)}`,
          'bad-proto',
        ),
        code: 'forbidden_key',
      },
      { m: msg(JSON.stringify({ ...order(6), blob: tenMb }), 'bad-10mb'), code: 'too_large' },
      { m: msg(deep, 'bad-deep'), code: 'too_deep' },
      { m: msg('[1,2,3]', 'bad-array'), code: 'not_object' },
    ];
    for (const c of cases) assert.equal(await served.post(c.m, 'structured'), 204, c.m.messageId);
    // The push format too (functions-framework converts it).
    assert.equal(await served.post(msg('"just a string"', 'bad-push'), 'push'), 204);

    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);

    const dead = new Map((await deadLetters()).map((d) => [d.message_id, d]));
    for (const c of cases) assert.equal(dead.get(c.m.messageId)?.reasons[0]?.code, c.code, c.m.messageId);
    assert.equal(dead.get('bad-push')?.reasons[0]?.code, 'not_object');
    const proto = dead.get('bad-proto') as DeadRow;
    assert.deepEqual(proto.reasons.map((r) => r.path).sort(), ['$.__proto__', '$.constructor']);
    const big = dead.get('bad-10mb') as DeadRow;
    assert.equal(big.data_truncated, true);
    assert.ok(Number(big.data_bytes) > 10 * 1024 * 1024);
    assert.equal(Buffer.from(big.data_base64, 'base64').length, 1024 * 1024);
    assert.equal(await count('orders'), 0);
    assert.equal(topicLines().length, cases.length + 1);
  });

  it('isolates an event no warehouse can store (a lone surrogate): its batch-mates land, it is dead-lettered with the reason', async () => {
    await setup({ SMELTER_BATCH_MAX_ROWS: '100' });
    // Valid JSON ("\ud800" escapes), valid against the contract, but not storable text.
    const poison = `{"event_type":"order","event_id":"ord-bad",${JSON.stringify(order(9)).slice(1, -1).replace('"C-0"', '"C-\\ud800"')}}`;
    assert.ok(poison.includes('\\ud800'));
    const good = [order(1), order(2), inventory(1), activity(1)];
    const statuses = await Promise.all([
      ...good.map((e, i) => served.post(msg(e, `m-${i}`))),
      served.post(msg(poison, 'm-bad')),
    ]);
    assert.deepEqual(statuses, [204, 204, 204, 204, 204]);
    assert.equal((await count('orders')) + (await count('inventory')) + (await count('user_activity')), 4);
    const dead = await deadLetters();
    assert.deepEqual(
      dead.map((d) => [d.message_id, d.reasons.map((r) => [r.path, r.code])]),
      [['m-bad', [['$.customer_id', 'lone_surrogate']]]],
    );
    assert.equal(Buffer.from(dead[0]?.data_base64 ?? '', 'base64').toString('utf8'), poison);
    assert.equal(topicLines().length, 1);
  });

  it('dead-letters, with the reason, a row the warehouse refuses and stores the rest of its batch', async () => {
    await setup({ SMELTER_BATCH_MAX_ROWS: '100' });
    // Past validation a row can still be refused (here: a message id DuckDB cannot store as text).
    const statuses = await Promise.all([
      served.post(msg(order(1), 'm-1'), 'structured'),
      served.post(msg(order(2), 'm-\udc00-2'), 'structured'),
      served.post(msg(order(3), 'm-3'), 'structured'),
    ]);
    assert.deepEqual(statuses, [204, 204, 204]);
    const stored = await query<{ event_id: string }>('SELECT event_id FROM events.orders ORDER BY 1');
    assert.deepEqual(
      stored.map((r) => r.event_id),
      ['ord-1', 'ord-3'],
    );
    const dead = await deadLetters();
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.message_id, 'm-\ufffd-2');
    assert.equal(dead[0]?.event_id, 'ord-2');
    assert.equal(dead[0]?.reasons[0]?.code, 'warehouse_rejected');
    assert.match(dead[0]?.reasons[0]?.reason ?? '', /DuckDB refused the row for events\.orders/);
  });

  it('answers 500 and acknowledges nothing when the warehouse is unavailable, then stores on redelivery', async () => {
    await setup();
    const rt = runtime();
    const real = { warehouse: rt.get('eventWarehouse') };
    let failing = true;
    const calls: number[] = [];
    const warehouse: EventWarehouse = {
      kind: 'flaky',
      prepare: (c) => real.warehouse.prepare?.(c) ?? Promise.resolve(),
      insertEvents: async (c, rows) => {
        calls.push(rows.length);
        if (failing) throw transient('WAREHOUSE_UNAVAILABLE', 'DuckDB is having a moment');
        return real.warehouse.insertEvents(c, rows);
      },
      insertDeadLetters: (rows) => real.warehouse.insertDeadLetters(rows),
      close: async () => undefined,
    };
    rt.override({ eventWarehouse: warehouse });
    const crashLog = sinon.stub(console, 'error'); // functions-framework prints the stack of a 500
    const events = [order(1), inventory(1), activity(1)];
    const first = await Promise.all(events.map((e, i) => served.post(msg(e, `m-${i}`))));
    assert.deepEqual(first, [500, 500, 500]);
    assert.ok(crashLog.called);
    assert.ok(calls.length > 0);
    assert.equal((await deadLetters()).length, 0);
    assert.ok(lines.some((l) => l.severity === 'ERROR' && l.message.includes('redeliver')));

    failing = false;
    const again = await Promise.all(events.map((e, i) => served.post(msg(e, `m-${i}`))));
    assert.deepEqual(again, [204, 204, 204]);
    assert.equal((await count('orders')) + (await count('inventory')) + (await count('user_activity')), 3);
  });

  it('answers 500 when the archive is unavailable even though the warehouse write succeeded', async () => {
    await setup();
    const rt = runtime();
    sinon.stub(console, 'error');
    const real = rt.get('eventArchive');
    let failing = true;
    rt.override({
      eventArchive: {
        write: async (...a) =>
          failing ? Promise.reject(transient('STORAGE_UNAVAILABLE', 'bucket unreachable')) : real.write(...a),
      },
    });
    assert.equal(await served.post(msg(order(1), 'm-1')), 500);
    failing = false;
    assert.equal(await served.post(msg(order(1), 'm-1')), 204);
    assert.equal(await count('orders'), 1);
    assert.equal((await archivedEvents()).length, 1);
  });

  it('group-commits invocations that arrive during a flush into one flush, and answers none before its write', async () => {
    // No timer can fire (60 s): the first event goes out at once, the next five wait for that flush
    // and then share one.
    await setup({ SMELTER_BATCH_MAX_ROWS: '100', SMELTER_BATCH_MAX_MS: '60000' });
    const rt = runtime();
    const real = { warehouse: rt.get('eventWarehouse') };
    const gates: { entered: () => void; writing: Promise<void>; release: () => void; open: Promise<void> }[] =
      [0, 1].map(() => {
        let entered!: () => void;
        let release!: () => void;
        const writing = new Promise<void>((r) => (entered = r));
        const open = new Promise<void>((r) => (release = r));
        return { entered, writing, release, open };
      });
    const batches: number[] = [];
    const warehouse: EventWarehouse = {
      kind: 'gated',
      prepare: (c) => real.warehouse.prepare?.(c) ?? Promise.resolve(),
      insertEvents: async (c, rows) => {
        const g = gates[batches.length];
        batches.push(rows.length);
        g?.entered();
        await g?.open;
        return real.warehouse.insertEvents(c, rows);
      },
      insertDeadLetters: (rows) => real.warehouse.insertDeadLetters(rows),
      close: async () => undefined,
    };
    const router = rt.override({ eventWarehouse: warehouse }).get('eventRouter');
    const until = async (ok: () => boolean): Promise<void> => {
      while (!ok()) await new Promise((r) => setTimeout(r, 2));
    };
    const answered = new Set<number>();
    const post = (i: number): Promise<number> =>
      served.post(msg(order(i), `m-${i}`), i % 2 ? 'binary' : 'push').then((s) => {
        answered.add(i);
        return s;
      });

    const first = post(1);
    await gates[0]?.writing; // a lone event is flushed without waiting for a timer
    const rest = [2, 3, 4, 5, 6].map(post);
    await until(() => router.stats().batcher.pending === 5); // they reached the batcher and wait
    assert.equal(answered.size, 0, 'no invocation may return before its row is written');
    gates[0]?.release();
    assert.equal(await first, 204);
    await gates[1]?.writing; // the five that arrived during the first flush go out together
    assert.deepEqual([...answered], [1], 'the others wait for their own write');
    gates[1]?.release();
    assert.deepEqual(await Promise.all(rest), Array(5).fill(204));
    assert.deepEqual(batches, [1, 5]);
    assert.equal(await count('orders'), 6);
    const files = await archivedEvents();
    assert.equal(
      files.reduce((n, f) => n + f.rows.length, 0),
      6,
    );
  });

  it('loses nothing when the emulator restarts and numbers messages from "1" again', async () => {
    await setup();
    const before = '2024-05-01T10:00:00.000Z';
    const after = '2024-05-01T10:05:00.000Z';
    const send = (payloads: unknown[], publishTime: string): Promise<number[]> =>
      Promise.all(payloads.map((p, i) => served.post(msg(p, String(i + 1), { publishTime }))));
    assert.deepEqual(await send([order(1), inventory(1), 'not json'], before), [204, 204, 204]);
    // The emulator restarted: the same ids, other events, later publish times.
    assert.deepEqual(await send([order(2), inventory(2), '{"broken'], after), [204, 204, 204]);
    // And a redelivery of the second round changes nothing.
    assert.deepEqual(await send([order(2), inventory(2), '{"broken'], after), [204, 204, 204]);

    const archived = (await archivedEvents()).flatMap((o) => o.rows.map((r) => r.event_id)).sort();
    assert.deepEqual(archived, ['inv-1', 'inv-2', 'ord-1', 'ord-2']);
    assert.equal((await count('orders')) + (await count('inventory')), 4);
    const dead = await query<{ message_id: string; t: string }>(
      `SELECT message_id, strftime(publish_time, '%M') AS t FROM events.dead_letter ORDER BY 2`,
    );
    assert.deepEqual(dead, [
      { message_id: '3', t: '00' },
      { message_id: '3', t: '05' },
    ]);
  });

  it('with SMELTER_BATCH_MAX_ROWS=1 every event is its own flush', async () => {
    await setup({ SMELTER_BATCH_MAX_ROWS: '1' });
    const statuses = await Promise.all([1, 2, 3].map((i) => served.post(msg(inventory(i), `m-${i}`))));
    assert.deepEqual(statuses, [204, 204, 204]);
    const s = runtime().get('eventRouter').stats();
    assert.equal(s.batcher.flushes, 3);
    assert.equal(s.batcher.largestBatch, 1);
    assert.equal(await count('inventory'), 3);
  });

  it('picks up a new event type from a contract file without a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contracts-'));
    fs.mkdirSync(path.join(dir, 'events'));
    try {
      await setup({ SMELTER_CONTRACTS_DIR: dir });
      assert.equal(
        await served.post(
          msg(
            { event_type: 'refund', event_id: 'r-1', event_time: '2024-05-01T00:00:00Z', amount: '3' },
            'm-1',
          ),
        ),
        204,
      );
      fs.writeFileSync(
        path.join(dir, 'events', 'refund.json'),
        JSON.stringify({
          event_type: 'refund',
          table: 'refunds',
          cluster: ['order_id'],
          fields: [
            { name: 'order_id', type: 'string', required: true },
            { name: 'amount', type: 'numeric', required: true },
          ],
        }),
      );
      // The registry re-scans at most once a second; a fresh runtime's router sees the file at once.
      await closeRuntime();
      useRuntime({ config: h.cfg, log, store: h.store });
      assert.equal(
        await served.post(
          msg(
            {
              event_type: 'refund',
              event_id: 'r-2',
              event_time: '2024-05-01T00:00:00Z',
              order_id: 'O-1',
              amount: '3',
            },
            'm-2',
          ),
        ),
        204,
      );
      assert.deepEqual(
        await query(`SELECT event_id, order_id, amount::VARCHAR AS amount FROM events.refunds`),
        [{ event_id: 'r-2', order_id: 'O-1', amount: '3.000000000' }],
      );
      assert.equal((await deadLetters())[0]?.reasons[0]?.code, 'unknown_type');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
