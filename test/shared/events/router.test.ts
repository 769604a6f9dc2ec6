/** The router's decisions, with in-memory adapters (no DuckDB, no HTTP). */
import assert from 'node:assert/strict';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { ObjectStoreArchive } from '../../../shared/adapters/events/archive-store';
import { config } from '../../../shared/config';
import { SmelterError, transient } from '../../../shared/errors';
import { EventContractRegistry, type ContractLookup } from '../../../shared/events/contract';
import type {
  DeadLetterMessage,
  DeadLetterPublisher,
  DeadLetterRecord,
  EventRow,
  EventWarehouse,
  IncomingMessage,
  WarehouseRejection,
} from '../../../shared/events/ports';
import { EventRouter, type RouterOptions } from '../../../shared/events/router';
import { hmacHex } from '../../../shared/governance/hmac';
import { readAll } from '../../support/home';
import { b64, captureLogger, inventory, order } from '../../support/events';

class FakeWarehouse implements EventWarehouse {
  readonly kind = 'fake';
  rows = new Map<string, EventRow[]>();
  dead: DeadLetterRecord[] = [];
  failEvents: Error | undefined;
  failDead: Error | undefined;
  reject: (row: EventRow) => string | undefined = () => undefined;
  async insertEvents(c: { table: string }, rows: readonly EventRow[]): Promise<WarehouseRejection[]> {
    if (this.failEvents) throw this.failEvents;
    const out: WarehouseRejection[] = [];
    const t = this.rows.get(c.table) ?? [];
    rows.forEach((r, index) => {
      const reason = this.reject(r);
      if (reason) out.push({ index, reason });
      else if (!t.some((x) => x.event_id === r.event_id)) t.push(r);
    });
    this.rows.set(c.table, t);
    return out;
  }
  async insertDeadLetters(rows: readonly DeadLetterRecord[]): Promise<void> {
    if (this.failDead) throw this.failDead;
    // Keyed like the real tables: (message_id, publish_time).
    for (const r of rows)
      if (!this.dead.some((d) => d.message_id === r.message_id && d.publish_time === r.publish_time))
        this.dead.push(r);
  }
  async close(): Promise<void> {}
}

class FakeTopic implements DeadLetterPublisher {
  readonly kind = 'fake';
  messages: DeadLetterMessage[] = [];
  fail: Error | undefined;
  async publish(m: readonly DeadLetterMessage[]): Promise<void> {
    if (this.fail) throw this.fail;
    this.messages.push(...m);
  }
  async close(): Promise<void> {}
}

const KEY = 'router-test-key-0123456789';
/** An order as a dead letter keeps it: the street (declared `hash`) hashed. */
const kept = (o: Record<string, unknown>): Record<string, unknown> => {
  const a = o.shipping_address as Record<string, unknown>;
  return { ...o, shipping_address: { ...a, street: hmacHex(KEY, String(a.street)) } };
};

describe('EventRouter', () => {
  const contracts: ContractLookup = new EventContractRegistry(config().contractsDir);
  let warehouse: FakeWarehouse;
  let topic: FakeTopic;
  let store: MemoryObjectStore;
  let cap: ReturnType<typeof captureLogger>;
  let now: number;

  const router = (opts: Partial<RouterOptions> = {}, lookup = contracts): EventRouter =>
    new EventRouter(
      {
        contracts: lookup,
        warehouse,
        archive: new ObjectStoreArchive(store, 'archive'),
        deadLetters: topic,
        log: cap.log,
        now: () => now,
        piiKey: () => KEY,
      },
      { maxEventBytes: 1024 * 1024, maxEventAgeMs: 3600_000, batchMaxRows: 10, batchMaxMs: 0, ...opts },
    );
  const message = (payload: unknown, id: string, ageMs = 0): IncomingMessage => ({
    data: b64(payload),
    attributes: { origin: 'test' },
    messageId: id,
    publishTime: new Date(now - ageMs).toISOString(),
  });
  const archived = async (): Promise<string[]> => {
    const ids: string[] = [];
    for await (const o of store.list('archive'))
      for (const l of (await readAll(await store.read('archive', o.name)))
        .toString()
        .split('\n')
        .filter(Boolean))
        ids.push((JSON.parse(l) as { event_id: string }).event_id);
    return ids.sort();
  };

  beforeEach(() => {
    warehouse = new FakeWarehouse();
    topic = new FakeTopic();
    store = new MemoryObjectStore();
    cap = captureLogger();
    now = Date.parse('2024-05-01T12:00:00Z');
  });

  it('stores a valid event in its table and the archive, and dead-letters an invalid one to table and topic', async () => {
    const r = router();
    const [ok, bad] = await Promise.all([
      r.route(message(order(1), 'm-1')),
      r.route(message(order(2, { status: 'lost' }), 'm-2')),
    ]);
    assert.equal(ok.status, 'stored');
    assert.equal(bad.status, 'dead-lettered');
    assert.equal(warehouse.rows.get('orders')?.length, 1);
    assert.deepEqual(await archived(), ['ord-1']);
    assert.equal(warehouse.dead[0]?.message_id, 'm-2');
    const body = JSON.parse(topic.messages[0]?.data.toString() ?? '{}') as Record<string, unknown>;
    const {
      smelter_pii_hashed: hashed,
      smelter_pii_sig: sig,
      ...original
    } = body.attributes as Record<string, string>;
    assert.deepEqual(original, { origin: 'test' }, 'the original attributes, as an object');
    assert.equal(hashed, 'shipping_address.street', 'plus what the kept payload holds hashed');
    assert.match(sig ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(body.reasons, [
      { path: '$.status', code: 'not_accepted', reason: bad.reasons?.[0]?.reason },
    ]);
    assert.deepEqual(
      JSON.parse(Buffer.from(body.data_base64 as string, 'base64').toString()),
      kept(order(2, { status: 'lost' })),
    );
    assert.deepEqual(topic.messages[0]?.attributes, {
      source_message_id: 'm-2',
      reason_codes: 'not_accepted',
      dead_lettered_at: '2024-05-01T12:00:00.000Z',
      event_type: 'order',
      event_id: 'ord-2',
    });
    const s = r.stats();
    assert.deepEqual([s.received, s.stored, s.deadLettered, s.batcher.flushes], [2, 1, 1, 1]);
  });

  it('writes a message delivered twice into one batch once, and an event_id once per table', async () => {
    const r = router();
    await Promise.all([
      r.route(message(order(1), 'm-1')),
      r.route(message(order(1), 'm-1')),
      r.route(message(order(1), 'm-9')),
    ]);
    assert.equal(warehouse.rows.get('orders')?.length, 1);
    // m-1 once, m-9 (another message with the same event) too: the archive is at-least-once.
    assert.deepEqual(await archived(), ['ord-1', 'ord-1']);
  });

  it('tells messages apart by id and publish time: ids reused after an emulator restart lose nothing', async () => {
    const r = router();
    const at = (payload: unknown, id: string, publishTime: string): IncomingMessage => ({
      ...message(payload, id),
      publishTime,
    });
    // One batch holding message "1" from before a restart and message "1" from after it, both twice.
    const early = '2024-05-01T11:00:00.000Z';
    const late = '2024-05-01T11:30:00.000Z';
    const out = await Promise.all([
      r.route(at(order(1), '1', early)),
      r.route(at(order(2), '1', late)),
      r.route(at(order(2), '1', late)),
      r.route(at('not json', '2', early)),
      r.route(at('{"neither": "is this"', '2', late)),
      r.route(at('{"neither": "is this"', '2', late)),
    ]);
    assert.equal(r.stats().batcher.flushes, 1);
    assert.deepEqual(
      out.map((o) => o.status),
      ['stored', 'stored', 'stored', 'dead-lettered', 'dead-lettered', 'dead-lettered'],
    );
    assert.deepEqual(await archived(), ['ord-1', 'ord-2']);
    assert.deepEqual(
      warehouse.dead.map((d) => [d.message_id, d.publish_time]),
      [
        ['2', early],
        ['2', late],
      ],
    );
    assert.equal(topic.messages.length, 2, 'one dead-letter message per message, not per delivery');
  });

  it('dead-letters rows the warehouse refuses (warehouse_rejected), with their original bytes', async () => {
    warehouse.reject = (row) => (row.event_id === 'inv-2' ? 'no such field: quantity_after' : undefined);
    const r = router();
    const out = await Promise.all([
      r.route(message(inventory(1), 'm-1')),
      r.route(message(inventory(2), 'm-2')),
    ]);
    assert.deepEqual(
      out.map((o) => o.status),
      ['stored', 'dead-lettered'],
    );
    assert.equal(warehouse.dead[0]?.reasons[0]?.code, 'warehouse_rejected');
    assert.match(warehouse.dead[0]?.reasons[0]?.reason ?? '', /no such field/);
    assert.equal(
      JSON.parse(Buffer.from(warehouse.dead[0]?.data_base64 ?? '', 'base64').toString()).event_id,
      'inv-2',
    );
    assert.equal(topic.messages.length, 1);
  });

  it('throws (redelivery) on a transient failure, for every event of the batch', async () => {
    warehouse.failEvents = transient('WAREHOUSE_UNAVAILABLE', 'down');
    const r = router();
    const out = await Promise.allSettled([
      r.route(message(order(1), 'm-1')),
      r.route(message(order(2, { status: 'x' }), 'm-2')),
    ]);
    assert.deepEqual(
      out.map((o) => o.status),
      ['rejected', 'rejected'],
    );
    assert.equal(r.stats().failed, 2);
    // The dead letter's own failure is also retried, not acknowledged.
    warehouse.failEvents = undefined;
    warehouse.failDead = transient('WAREHOUSE_UNAVAILABLE', 'down');
    await assert.rejects(r.route(message(order(3, { status: 'x' }), 'm-3')), /down/);
  });

  it('stores a too-old valid event when it can, and dead-letters it instead of retrying forever when it cannot', async () => {
    const r = router({ maxEventAgeMs: 60_000 });
    assert.equal((await r.route(message(order(1), 'm-1', 120_000))).status, 'stored');

    warehouse.failEvents = transient('WAREHOUSE_UNAVAILABLE', 'BigQuery 503');
    const out = await r.route(message(order(2), 'm-2', 120_000));
    assert.equal(out.status, 'dead-lettered');
    assert.equal(out.reasons?.[0]?.code, 'retries_exhausted');
    assert.match(out.reasons?.[0]?.reason ?? '', /120 s after publication.*BigQuery 503/);
    assert.equal(warehouse.dead[0]?.event_id, 'ord-2');
    assert.equal(topic.messages.length, 1);
    // A young one is still retried.
    await assert.rejects(r.route(message(order(3), 'm-3', 1000)));
  });

  it('acknowledges a too-old event with an ERROR log holding its bytes when even the dead letter is down', async () => {
    warehouse.failEvents = transient('WAREHOUSE_UNAVAILABLE', 'down');
    warehouse.failDead = transient('WAREHOUSE_UNAVAILABLE', 'down');
    topic.fail = transient('PUBSUB_UNAVAILABLE', 'down');
    const r = router({ maxEventAgeMs: 60_000 });
    const m = message(order(1), 'm-1', 3600_000);
    const out = await r.route(m);
    assert.equal(out.status, 'abandoned');
    const line = cap.lines.find((l) => l.message.startsWith('event abandoned'));
    assert.equal(line?.severity, 'ERROR');
    // Its bytes as a dead letter would keep them: personal data applied.
    assert.deepEqual(
      JSON.parse(Buffer.from(String(line?.fields.data_base64), 'base64').toString()),
      kept(order(1)),
    );
    assert.equal(line?.fields.message_id, 'm-1');
    assert.equal(r.stats().abandoned, 1);
  });

  it('retries events of a type whose contract file is broken (transient), without affecting other types', async () => {
    const broken: ContractLookup = {
      get: (t) => {
        if (t === 'order')
          throw new SmelterError('CONTRACT_INVALID', 'order.json is not valid JSON', { kind: 'transient' });
        return contracts.get(t);
      },
      types: () => contracts.types(),
      all: () => contracts.all(),
    };
    const r = router({}, broken);
    await assert.rejects(r.route(message(order(1), 'm-1')), /not valid JSON/);
    assert.equal((await r.route(message(inventory(1), 'm-2'))).status, 'stored');
  });

  it('dead-letters a CloudEvent without a Pub/Sub message', async () => {
    const r = router();
    const out = await r.routeCloudEvent({
      id: 'ce-1',
      source: '//x',
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      specversion: '1.0',
      data: { hello: 'world' },
    });
    assert.equal(out.status, 'dead-lettered');
    assert.equal(warehouse.dead[0]?.message_id, 'ce-1');
    assert.equal(warehouse.dead[0]?.reasons[0]?.code, 'no_message');
    assert.equal(Buffer.from(warehouse.dead[0]?.data_base64 ?? '', 'base64').toString(), '{"hello":"world"}');
  });
});
