/**
 * The local DuckDB event warehouse beyond the contract (warehouse-contract.ts): table creation under
 * concurrency, re-keying tables of older layouts, and the insert-id dedup window.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDbEventWarehouse, idHash } from '../../../../shared/adapters/events/duckdb-warehouse';
import { getLocalWarehouse, type LocalWarehouse } from '../../../../shared/adapters/warehouse/duckdb-local';
import { config } from '../../../../shared/config';
import { EventContractRegistry, type EventContract } from '../../../../shared/events/contract';
import type { DeadLetterRecord, EventRow, ViolationCode } from '../../../../shared/events/ports';
import { validateEvent } from '../../../../shared/events/validate';
import { order } from '../../../support/events';

const contracts = new EventContractRegistry(config().contractsDir);
const orders = contracts.get('order') as EventContract;

/** A warehouse row as routeEvent builds it. */
const row = (
  i: number,
  over: Record<string, unknown> = {},
  processedAt = '2024-05-01T10:00:02.000Z',
): EventRow => {
  const r = validateEvent(order(i, over), {}, contracts, {
    messageId: `m-${i}`,
    publishTime: '2024-05-01T10:00:01.000Z',
    processedAt,
  }).row;
  assert.ok(r);
  return r;
};

const dead = (
  messageId: string,
  publishTime: string,
  code: ViolationCode = 'not_json',
): DeadLetterRecord => ({
  message_id: messageId,
  publish_time: publishTime,
  event_type: null,
  event_id: null,
  attributes: '{}',
  data_base64: Buffer.from(`payload of ${messageId} at ${publishTime}`).toString('base64'),
  data_bytes: 10,
  data_truncated: false,
  reasons: [{ path: '$', code, reason: 'not JSON' }],
  subscription: null,
  delivery_attempt: null,
  dead_lettered_at: '2024-05-01T10:00:05.000Z',
});

describe('DuckDB event warehouse (local)', () => {
  let home: string;
  let wh: LocalWarehouse;
  const open = (): Promise<LocalWarehouse> => getLocalWarehouse(home);

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-dwh-'));
    wh = await open();
  });
  afterEach(async () => {
    await wh.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('creates tables on first use without catalog conflicts when flushes start at once', async () => {
    // Two adapters on one file (two routers in one process) and several schemas, all at first use:
    // concurrent CREATE … IF NOT EXISTS used to fail with "Catalog write-write conflict on create".
    const writes: Promise<unknown>[] = [];
    for (const schema of ['events', 'ev_a', 'ev_b', 'ev_c'])
      for (const a of [new DuckDbEventWarehouse(open, schema), new DuckDbEventWarehouse(open, schema)]) {
        writes.push(a.prepare(contracts.all()));
        for (const c of contracts.all()) writes.push(a.insertEvents(c, []));
        writes.push(a.insertEvents(orders, [row(1)]));
        writes.push(a.insertDeadLetters([dead('1', '2024-05-01T10:00:00.000Z')]));
      }
    const results = await Promise.allSettled(writes);
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    assert.deepEqual(failed, []);
    for (const schema of ['events', 'ev_a', 'ev_b', 'ev_c']) {
      const [n] = await wh.query<{ o: string; d: string }>(
        `SELECT (SELECT count(*) FROM ${schema}.orders) AS o, (SELECT count(*) FROM ${schema}.dead_letter) AS d`,
      );
      assert.deepEqual(n, { o: '1', d: '1' }, schema);
    }
  });

  it('re-keys a dead-letter table of the first layout (message_id only), keeping its rows', async () => {
    await wh.run(`CREATE SCHEMA events;
      CREATE TABLE events.dead_letter (message_id VARCHAR PRIMARY KEY, publish_time TIMESTAMPTZ,
        event_type VARCHAR, event_id VARCHAR, attributes JSON, data_base64 VARCHAR, data_bytes BIGINT,
        data_truncated BOOLEAN, reasons STRUCT(path VARCHAR, code VARCHAR, reason VARCHAR)[],
        subscription VARCHAR, delivery_attempt BIGINT, dead_lettered_at TIMESTAMPTZ, operator_note VARCHAR);
      INSERT INTO events.dead_letter (message_id, publish_time, data_base64, reasons, dead_lettered_at, operator_note)
        VALUES ('1', '2024-05-01T10:00:00Z', 'b2xk', [{'path': '$', 'code': 'not_json', 'reason': 'x'}], '2024-05-01T10:00:05Z', 'kept'),
               ('7', NULL, 'bm90aW1l', [], '2024-05-01T09:00:00Z', NULL);`);
    const a = new DuckDbEventWarehouse(open);
    await a.insertDeadLetters([dead('1', '2024-05-01T11:00:00.000Z')]);
    const rows = await wh.query<{
      message_id: string;
      t: string;
      data_base64: string;
      operator_note: string;
    }>(
      `SELECT message_id, strftime(publish_time, '%H') AS t, data_base64, operator_note
         FROM events.dead_letter ORDER BY 1, 2`,
    );
    assert.deepEqual(
      rows.map((r) => [r.message_id, r.t, r.operator_note]),
      [
        ['1', '10', 'kept'],
        ['1', '11', null],
        ['7', '09', null], // no publish time: its dead-letter time stands in
      ],
    );
    const [pk] = await wh.query<{ cols: string[] }>(
      `SELECT constraint_column_names AS cols FROM duckdb_constraints()
        WHERE schema_name = 'events' AND table_name = 'dead_letter' AND constraint_type = 'PRIMARY KEY'`,
    );
    assert.deepEqual(pk?.cols, ['message_id', 'publish_time']);
    // A second adapter (a later cold start) finds the new layout and leaves it alone.
    await new DuckDbEventWarehouse(open).insertDeadLetters([dead('1', '2024-05-01T11:00:00.000Z')]);
    assert.equal((await wh.query('SELECT * FROM events.dead_letter')).length, 3);
  });
  describe('insert-id dedup window (no primary-key index on event tables)', () => {
    const MIN = 60_000;
    let clock: number;
    const at = (): string => new Date(clock).toISOString();
    const adapter = (): DuckDbEventWarehouse =>
      new DuckDbEventWarehouse(open, 'events', { dedupWindowMs: 10 * MIN, now: () => clock });
    const ids = async (): Promise<string[]> =>
      (await wh.query<{ event_id: string }>('SELECT event_id FROM events.orders ORDER BY 1')).map(
        (r) => r.event_id,
      );
    const primaryKeys = async (table: string): Promise<number> => {
      const [pk] = await wh.query<{ n: string }>(
        `SELECT count(*) AS n FROM duckdb_constraints()
          WHERE schema_name = 'events' AND table_name = '${table}' AND constraint_type = 'PRIMARY KEY'`,
      );
      return Number(pk?.n);
    };
    beforeEach(() => (clock = Date.parse('2026-11-22T10:00:00Z')));

    it('stores a redelivery within the window once, and one after it again (Silver dedups those)', async () => {
      const a = adapter();
      await a.insertEvents(orders, [row(1, {}, at())]);
      clock += 9 * MIN;
      await a.insertEvents(orders, [row(1, {}, at()), row(2, {}, at())]);
      assert.deepEqual(await ids(), ['ord-1', 'ord-2']);
      clock += 12 * MIN; // ord-1 was stored 21 min ago, ord-2 12 min ago: both outside the window
      await a.insertEvents(orders, [row(1, {}, at()), row(2, {}, at())]);
      assert.deepEqual(await ids(), ['ord-1', 'ord-1', 'ord-2', 'ord-2']);
      assert.equal(await primaryKeys('orders'), 0);
    });

    it('survives a restart: the window is reloaded from _processed_at', async () => {
      await adapter().insertEvents(orders, [row(1, {}, at()), row(2, {}, at())]);
      await wh.close();
      wh = await open(); // a new DuckDB instance: nothing in memory
      clock += 2 * MIN;
      await adapter().insertEvents(orders, [row(2, {}, at()), row(1, {}, at()), row(3, {}, at())]);
      assert.deepEqual(await ids(), ['ord-1', 'ord-2', 'ord-3']);
    });

    it('never drops an event whose id only shares a hash with a stored one', async () => {
      // Find two ids with the same 30-bit hash (birthday bound: ~2^15 tries).
      const seen = new Map<number, string>();
      let pair: [string, string] | undefined;
      for (let i = 0; !pair; i++) {
        const id = `evt-${i}`;
        const h = idHash(id);
        const other = seen.get(h);
        if (other) pair = [other, id];
        else seen.set(h, id);
      }
      const [first, second] = pair;
      assert.equal(idHash(first), idHash(second));
      const a = adapter();
      await a.insertEvents(orders, [row(1, { event_id: first }, at())]);
      await a.insertEvents(orders, [row(2, { event_id: second }, at()), row(1, { event_id: first }, at())]);
      assert.deepEqual((await ids()).sort(), [first, second].sort());
    });

    it('dedups an id redelivered with a different event_time (found outside the event_time bound)', async () => {
      const a = adapter();
      await a.insertEvents(orders, [row(1, {}, at())]);
      await a.insertEvents(orders, [row(1, { event_time: '2024-05-02T00:00:00Z' }, at())]);
      assert.deepEqual(await ids(), ['ord-1']);
    });

    it('rebuilds an event table of the first layout (PRIMARY KEY event_id) without the key, keeping rows', async () => {
      const a = adapter();
      await a.insertEvents(orders, [row(1, {}, at())]);
      const cols = await wh.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'events' AND table_name = 'orders' ORDER BY ordinal_position`,
      );
      // Recreate it as the first layout had it: same columns, keyed by event_id.
      await wh.run(`DROP TABLE events.orders; CREATE TABLE events.orders (${cols
        .map((c) => `"${c.column_name}" ${c.data_type}`)
        .join(', ')}, PRIMARY KEY (event_id));
        INSERT INTO events.orders (event_id, event_type, event_time) VALUES ('old-1', 'order', '2024-01-01T00:00:00Z');`);
      await wh.close();
      wh = await open();
      await adapter().insertEvents(orders, [row(2, {}, at())]);
      assert.deepEqual(await ids(), ['old-1', 'ord-2']);
      assert.equal(await primaryKeys('orders'), 0);
    });
  });
});
