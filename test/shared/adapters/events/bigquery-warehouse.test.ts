/**
 * The BigQuery event sink at the client boundary: the real @google-cloud/bigquery Table.insert runs,
 * only its HTTP call (`Table#request`) is stubbed — no BigQuery emulator exists for our machines.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { BigQuery } from '@google-cloud/bigquery';
import { BigQueryEventWarehouse } from '../../../../shared/adapters/events/bigquery-warehouse';
import { config } from '../../../../shared/config';
import { isSmelterError } from '../../../../shared/errors';
import { EventContractRegistry, type EventContract } from '../../../../shared/events/contract';
import type {
  DeadLetterMessage,
  DeadLetterRecord,
  EventRow,
  IncomingMessage,
} from '../../../../shared/events/ports';
import { EventRouter } from '../../../../shared/events/router';
import { MemoryObjectStore } from '../../../../shared/adapters/storage/memory';
import { ObjectStoreArchive } from '../../../../shared/adapters/events/archive-store';
import { b64, captureLogger, order } from '../../../support/events';

interface InsertAllBody {
  rows: { insertId: string; json: Record<string, unknown> }[];
  skipInvalidRows?: boolean;
  ignoreUnknownValues?: boolean;
}

describe('BigQuery event warehouse (client boundary)', () => {
  const orders = new EventContractRegistry(config().contractsDir).get('order') as EventContract;
  let wh: BigQueryEventWarehouse;
  let request: sinon.SinonStub;
  const rows = (n: number, from = 0): EventRow[] =>
    Array.from({ length: n }, (_, i) => ({
      event_id: `e-${from + i}`,
      event_type: 'order',
      event_time: '2024-05-01T00:00:00.000Z',
    }));
  const bodies = (): InsertAllBody[] =>
    request.getCalls().map((c) => (c.args[0] as { json: InsertAllBody }).json);

  const savedDetection = process.env.METADATA_SERVER_DETECTION;
  after(() => {
    if (savedDetection === undefined) delete process.env.METADATA_SERVER_DETECTION;
    else process.env.METADATA_SERVER_DETECTION = savedDetection;
  });
  beforeEach(() => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    wh = new BigQueryEventWarehouse({
      datasetId: 'smelter_events',
      client: new BigQuery({ projectId: 'smelter-test' }),
    });
    request = sinon.stub(wh.table('orders'), 'request');
  });
  afterEach(() => sinon.restore());

  it('streams raw rows with event_id as the insert id into <prefix>_events.<table>', async () => {
    request.resolves([{ kind: 'bigquery#tableDataInsertAllResponse' }]);
    assert.deepEqual(await wh.insertEvents(orders, rows(2)), []);
    assert.equal(request.callCount, 1);
    const call = request.firstCall.args[0] as { method: string; uri: string; json: InsertAllBody };
    assert.equal(call.method, 'POST');
    assert.equal(call.uri, '/insertAll');
    assert.deepEqual(
      call.json.rows.map((r) => r.insertId),
      ['e-0', 'e-1'],
    );
    assert.deepEqual(call.json.rows[0]?.json, rows(1)[0]);
    assert.equal(call.json.skipInvalidRows, false);
    assert.equal(call.json.ignoreUnknownValues, false);
    const t = wh.table('orders');
    assert.equal(t.id, 'orders');
    assert.equal(t.dataset.id, 'smelter_events');
  });

  it('keeps requests within insertAll limits (500 rows)', async () => {
    request.resolves([{}]);
    await wh.insertEvents(orders, rows(1201));
    assert.deepEqual(
      bodies().map((b) => b.rows.length),
      [500, 500, 201],
    );
    assert.equal(bodies()[2]?.rows[0]?.insertId, 'e-1000');
  });

  it('returns rows BigQuery calls invalid as rejections and re-inserts the stopped ones once', async () => {
    request.onFirstCall().resolves([
      {
        insertErrors: [
          { index: 0, errors: [{ reason: 'stopped', message: '' }] },
          { index: 1, errors: [{ reason: 'invalid', message: 'no such field: coupon.' }] },
          { index: 2, errors: [{ reason: 'stopped', message: '' }] },
        ],
      },
    ]);
    request.onSecondCall().resolves([{}]);
    const rejected = await wh.insertEvents(orders, rows(3));
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]?.index, 1);
    assert.match(rejected[0]?.reason ?? '', /smelter_events\.orders: no such field: coupon/);
    assert.deepEqual(
      bodies()[1]?.rows.map((r) => r.insertId),
      ['e-0', 'e-2'],
      'the retry keeps the insert ids (dedup) and drops the invalid row',
    );
  });

  it('maps 5xx, network errors, per-row backend errors and a missing table to transient errors', async () => {
    const cases: [unknown, RegExp][] = [
      [Object.assign(new Error('Backend error'), { code: 503 }), /HTTP 503/],
      [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), /socket hang up/],
      [
        Object.assign(new Error('Not found: Table smelter-test:smelter_events.orders'), { code: 404 }),
        /deploy creates smelter_events\.orders/,
      ],
    ];
    for (const [err, re] of cases) {
      request.reset();
      request.rejects(err);
      await assert.rejects(
        wh.insertEvents(orders, rows(1)),
        (e: unknown) =>
          isSmelterError(e, 'WAREHOUSE_UNAVAILABLE') && e.kind === 'transient' && re.test(e.message),
      );
    }
    request.reset();
    request.resolves([
      { insertErrors: [{ index: 0, errors: [{ reason: 'backendError', message: 'try again' }] }] },
    ]);
    await assert.rejects(
      wh.insertEvents(orders, rows(1)),
      (e: unknown) => isSmelterError(e) && e.kind === 'transient',
    );
  });

  /** insertAll as BigQuery answers a body holding text it cannot parse: HTTP 400 for the whole request. */
  const refuseUnparsable =
    (stored: string[]) =>
    async (req: { json: InsertAllBody }): Promise<unknown> => {
      // JSON.stringify writes an unpaired surrogate, and only that, as a \uD8xx–\uDFxx escape.
      if (req.json.rows.some((r) => /\\ud[89a-f][0-9a-f]{2}/i.test(JSON.stringify(r.json))))
        throw Object.assign(new Error('Invalid JSON payload received. Invalid \\u escape.'), {
          code: 400,
          errors: [{ reason: 'invalid', message: 'Invalid JSON payload received.' }],
        });
      stored.push(...req.json.rows.map((r) => r.insertId));
      return [{}];
    };

  it('bisects a request BigQuery refuses as a whole (400): only the row it refuses alone is rejected', async () => {
    const stored: string[] = [];
    request.callsFake(refuseUnparsable(stored));
    const batch = rows(7);
    (batch[4] as EventRow).customer_id = 'C-\ud800';
    const rejected = await wh.insertEvents(orders, batch);
    assert.deepEqual(
      rejected.map((r) => r.index),
      [4],
    );
    assert.match(rejected[0]?.reason ?? '', /smelter_events\.orders \(HTTP 400\): Invalid JSON payload/);
    assert.deepEqual(stored.sort(), ['e-0', 'e-1', 'e-2', 'e-3', 'e-5', 'e-6']);
  });

  it('through the router: a row BigQuery refuses is dead-lettered with the reason, its batch-mates land', async () => {
    const stored: string[] = [];
    request.callsFake(refuseUnparsable(stored));
    const deadRows: DeadLetterRecord[] = [];
    const dl: sinon.SinonStub = sinon.stub(wh.table('dead_letter'), 'request');
    dl.callsFake(async (req: { json: InsertAllBody }) => {
      deadRows.push(...req.json.rows.map((r) => r.json as unknown as DeadLetterRecord));
      return [{}];
    });
    const topic: DeadLetterMessage[] = [];
    const router = new EventRouter(
      {
        contracts: new EventContractRegistry(config().contractsDir),
        warehouse: wh,
        archive: new ObjectStoreArchive(new MemoryObjectStore(), 'archive'),
        deadLetters: { kind: 'memory', publish: async (m) => void topic.push(...m), close: async () => {} },
        log: captureLogger().log,
        piiKey: () => 'bigquery-test-key-0123456789',
      },
      { maxEventBytes: 1 << 20, maxEventAgeMs: 3600_000, batchMaxRows: 100, batchMaxMs: 0 },
    );
    const message = (payload: unknown, id: string): IncomingMessage => ({
      data: b64(payload),
      attributes: {},
      messageId: id,
      publishTime: new Date().toISOString(),
    });
    const poison = JSON.stringify(order(8)).replace('"C-2"', '"C-\\udbff"');
    const outcomes = await Promise.all([
      router.route(message(order(1), 'm-1')),
      router.route(message(order(2), 'm-\udfff')), // passes the contract; BigQuery cannot parse it
      router.route(message(poison, 'm-3')), // refused up front
      router.route(message(order(4), 'm-4')),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['stored', 'dead-lettered', 'dead-lettered', 'stored'],
    );
    assert.deepEqual(stored.sort(), ['ord-1', 'ord-4']);
    assert.deepEqual(deadRows.map((d) => [d.message_id, d.reasons.map((r) => r.code)]).sort(), [
      ['m-3', ['lone_surrogate']],
      ['m-\ufffd', ['warehouse_rejected']],
    ]);
    assert.equal(topic.length, 2);
    await router.close();
  });

  it('writes dead letters to <prefix>_events.dead_letter with a hash of (message_id, publish_time) as the insert id', async () => {
    const dl = sinon.stub(wh.table('dead_letter'), 'request').resolves([{}]);
    const rec: DeadLetterRecord = {
      message_id: 'm-1',
      publish_time: '2024-05-01T00:00:00.000Z',
      event_type: null,
      event_id: null,
      attributes: '{}',
      data_base64: 'e30=',
      data_bytes: 2,
      data_truncated: false,
      reasons: [{ path: '$', code: 'missing_type', reason: 'no type' }],
      subscription: null,
      delivery_attempt: null,
      dead_lettered_at: '2024-05-01T00:00:01.000Z',
    };
    // The emulator reuses message ids after a restart: same id, later publish time → another message.
    const reused: DeadLetterRecord = { ...rec, publish_time: '2024-05-01T01:00:00.000Z' };
    await wh.insertDeadLetters([rec, reused]);
    await wh.insertDeadLetters([rec]); // a redelivery
    const [first, again] = dl.getCalls().map((c) => (c.args[0] as { json: InsertAllBody }).json);
    const ids = first?.rows.map((r) => r.insertId) ?? [];
    assert.match(ids[0] ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(ids[0], ids[1], 'a reused message id is not deduplicated away');
    assert.equal(again?.rows[0]?.insertId, ids[0], 'a redelivery has the same insert id');
    assert.deepEqual(first?.rows[0]?.json, rec);
    // A refused dead letter has nowhere else to go: retried.
    dl.resolves([{ insertErrors: [{ index: 0, errors: [{ reason: 'invalid', message: 'bad' }] }] }]);
    await assert.rejects(
      wh.insertDeadLetters([rec]),
      (e: unknown) => isSmelterError(e) && e.kind === 'transient',
    );
  });
});
