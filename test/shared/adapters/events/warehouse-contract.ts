/**
 * The event warehouse contract (EventWarehouse in shared/events/ports.ts), run against every driver:
 * the local DuckDB tables and BigQuery's streaming insert at its HTTP boundary. The router relies on
 * these answers whatever the backend: valid rows stored once per event_id, dead letters once per
 * (message_id, publish_time), a row the table refuses handed back as a rejection while its batch-mates
 * are stored, an outage thrown as a transient error that a retry heals.
 */
import assert from 'node:assert/strict';
import { config } from '../../../../shared/config';
import { isSmelterError } from '../../../../shared/errors';
import { EventContractRegistry, type EventContract } from '../../../../shared/events/contract';
import type { DeadLetterRecord, EventRow, EventWarehouse } from '../../../../shared/events/ports';
import { validateEvent } from '../../../../shared/events/validate';
import { activity, inventory, order } from '../../../support/events';

export const contracts = new EventContractRegistry(config().contractsDir);
const get = (type: string): EventContract => contracts.get(type) as EventContract;

export interface EventWarehouseHarness {
  wh: EventWarehouse;
  /** The event_id of every row stored in `table`, sorted. */
  eventIds(table: string): Promise<string[]>;
  /** `<message_id>@<publish_time as epoch ms>` of every stored dead letter, sorted. */
  deadLetterKeys(): Promise<string[]>;
  /** The next write fails as the backend does when it is unreachable. */
  outage(): void;
  close(): Promise<void>;
}

export interface EventWarehouseDriver {
  name: string;
  /** A warehouse with the tables of every contract and the dead-letter table, empty. */
  open(): Promise<EventWarehouseHarness>;
}

/** A warehouse row as routeEvent builds it. */
export function eventRow(
  build: (i: number, over?: Record<string, unknown>) => Record<string, unknown>,
  i: number,
  over: Record<string, unknown> = {},
): EventRow {
  const r = validateEvent(build(i, over), {}, contracts, {
    messageId: `m-${i}`,
    publishTime: '2024-05-01T10:00:01.000Z',
    processedAt: new Date().toISOString(),
  }).row;
  assert.ok(r, `sample event ${i} is valid`);
  return r;
}

export function deadLetter(messageId: string, publishTime: string): DeadLetterRecord {
  return {
    message_id: messageId,
    publish_time: publishTime,
    event_type: null,
    event_id: null,
    attributes: '{"k":"v"}',
    data_base64: Buffer.from(`payload of ${messageId} at ${publishTime}`).toString('base64'),
    data_bytes: 10,
    data_truncated: false,
    reasons: [{ path: '$', code: 'not_json', reason: 'not JSON' }],
    subscription: 'route-event-events',
    delivery_attempt: 1,
    dead_lettered_at: '2024-05-01T10:00:05.000Z',
  };
}

const key = (messageId: string, publishTime: string): string => `${messageId}@${Date.parse(publishTime)}`;

export function runEventWarehouseContract(driver: EventWarehouseDriver): void {
  describe(`event warehouse contract: ${driver.name}`, () => {
    let x: EventWarehouseHarness;
    beforeEach(async () => (x = await driver.open()));
    afterEach(async () => x.close());

    const orders = get('order');
    const ord = (i: number, over: Record<string, unknown> = {}): EventRow => eventRow(order, i, over);

    it('stores the rows of each contract in its own table, refusing none', async () => {
      assert.deepEqual(await x.wh.insertEvents(orders, [ord(1), ord(2)]), []);
      assert.deepEqual(await x.wh.insertEvents(get('inventory'), [eventRow(inventory, 1)]), []);
      assert.deepEqual(await x.wh.insertEvents(get('user_activity'), [eventRow(activity, 1)]), []);
      assert.deepEqual(await x.eventIds(orders.table), ['ord-1', 'ord-2']);
      assert.deepEqual(await x.eventIds(get('inventory').table), ['inv-1']);
      assert.deepEqual(await x.eventIds(get('user_activity').table), ['act-1']);
    });

    it('writes nothing for an empty batch', async () => {
      assert.deepEqual(await x.wh.insertEvents(orders, []), []);
      await x.wh.insertDeadLetters([]);
      assert.deepEqual(await x.eventIds(orders.table), []);
      assert.deepEqual(await x.deadLetterKeys(), []);
    });

    it('stores an event once however often its batch is redelivered, also mixed with new events', async () => {
      await x.wh.insertEvents(orders, [ord(1), ord(2)]);
      await x.wh.insertEvents(orders, [ord(2), ord(3), ord(1)]);
      await x.wh.insertEvents(orders, [ord(3), ord(3)]);
      await x.wh.insertEvents(orders, [ord(4), ord(4)]); // twice in one batch, new to the table
      assert.deepEqual(await x.eventIds(orders.table), ['ord-1', 'ord-2', 'ord-3', 'ord-4']);
    });

    it('stores a batch larger than one request whole', async () => {
      const rows = Array.from({ length: 1201 }, (_, i) => ord(i));
      assert.deepEqual(await x.wh.insertEvents(orders, rows), []);
      const ids = await x.eventIds(orders.table);
      assert.equal(ids.length, 1201);
      assert.equal(new Set(ids).size, 1201);
    });

    it('keys dead letters by (message_id, publish_time): a redelivery is one row, a reused id another', async () => {
      const t10 = '2024-05-01T10:00:00.000Z';
      const t11 = '2024-05-01T11:00:00.000Z';
      await x.wh.insertDeadLetters([deadLetter('1', t10), deadLetter('2', t10)]);
      // The emulator restarted: message ids start from "1" again, with later publish times.
      await x.wh.insertDeadLetters([deadLetter('1', t11)]);
      // A redelivery of the same messages is still recorded once.
      await x.wh.insertDeadLetters([deadLetter('1', t11), deadLetter('2', t10)]);
      assert.deepEqual(await x.deadLetterKeys(), [key('1', t10), key('1', t11), key('2', t10)]);
    });

    it('throws a transient WAREHOUSE_UNAVAILABLE in an outage; the redelivery stores the batch once', async () => {
      x.outage();
      await assert.rejects(
        x.wh.insertEvents(orders, [ord(1), ord(2)]),
        (e: unknown) => isSmelterError(e, 'WAREHOUSE_UNAVAILABLE') && e.kind === 'transient',
      );
      assert.deepEqual(await x.eventIds(orders.table), []);
      assert.deepEqual(await x.wh.insertEvents(orders, [ord(1), ord(2)]), []);
      assert.deepEqual(await x.eventIds(orders.table), ['ord-1', 'ord-2']);

      x.outage();
      const dl = deadLetter('9', '2024-05-01T10:00:00.000Z');
      await assert.rejects(
        x.wh.insertDeadLetters([dl]),
        (e: unknown) => isSmelterError(e, 'WAREHOUSE_UNAVAILABLE') && e.kind === 'transient',
      );
      await x.wh.insertDeadLetters([dl]);
      assert.deepEqual(await x.deadLetterKeys(), [key('9', dl.publish_time)]);
    });

    it('hands back the rows its table refuses, by index and with the reason; stores their batch-mates', async () => {
      // Neither passes a contract (the router refuses them first), but they stand for what a table refuses
      // after drift or for text no warehouse stores.
      const batch = [
        ord(1),
        { ...ord(2), event_time: 'not a time' },
        ord(3),
        { ...ord(4), customer_id: 'C-\ud800' },
        ord(5),
      ];
      const rejected = await x.wh.insertEvents(orders, batch);
      assert.deepEqual(
        rejected.map((r) => r.index),
        [1, 3],
      );
      for (const r of rejected) assert.match(r.reason, new RegExp(`\\.${orders.table}\\b`));
      assert.deepEqual(await x.eventIds(orders.table), ['ord-1', 'ord-3', 'ord-5']);
      // A redelivery of the same batch stores nothing twice and refuses the same rows.
      assert.deepEqual(
        (await x.wh.insertEvents(orders, batch)).map((r) => r.index),
        [1, 3],
      );
      assert.deepEqual(await x.eventIds(orders.table), ['ord-1', 'ord-3', 'ord-5']);
    });
  });
}
