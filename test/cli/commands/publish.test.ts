/**
 * `smelter publish` end to end with the real routeEvent and the local DuckDB warehouse, on the
 * embedded delivery (fast; the emulator path of the same code is covered by emulator.test.ts):
 * - no stack running: routeEvent is served in-process until every message is handled;
 * - a stack running: publishing and `--wait` go through its admin routes (`publish`, `landed`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ff from '@google-cloud/functions-framework';
import { getFunction } from '@google-cloud/functions-framework/testing';
import { publishCommand } from '../../../cli/commands/publish';
import { AdminServer } from '../../../cli/local/admin';
import { routeEvent } from '../../../functions/route-event';
import { EventGenerator } from '../../../shared/events/generator';
import { createLogger } from '../../../shared/log';
import { pubsubAdminRoutes } from '../../../shared/local/pubsub/admin';
import { startLocalPubsub } from '../../../shared/local/pubsub/local-pubsub';
import { serveRegistered } from '../../../shared/local/pubsub/serve';
import { stackInfoFile, type StackContext, type StackInfo } from '../../../shared/local/stack';
import { functionSpec } from '../../../shared/manifest';
import { testHome, type TestHome } from '../../support/home';

interface PublishJson {
  published: number;
  invalid?: number;
  duplicates?: number;
  landed: {
    rows: Record<string, number>;
    deadLetters: number;
    reasons: Record<string, number>;
    duplicates: number;
    pending: number;
  };
}

async function run(argv: {
  args?: string[];
  flags: Record<string, string | boolean>;
}): Promise<{ code: number; json: PublishJson; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await publishCommand.run({
    args: argv.args ?? [],
    flags: { json: true, ...argv.flags },
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  return { code, json: JSON.parse(out.at(-1) ?? '{}') as PublishJson, err };
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);

describe('pubsub: smelter publish', function () {
  this.timeout(30_000);
  let h: TestHome;

  before(() => {
    if (!getFunction('routeEvent')) ff.cloudEvent('routeEvent', routeEvent);
  });
  beforeEach(async () => {
    h = await testHome({ SMELTER_PUBSUB_EMULATOR: 'off', SMELTER_LOG_LEVEL: 'ERROR' });
    delete process.env.PUBSUB_EMULATOR_HOST;
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('no stack: 10 valid + 3 invalid events from a file → 10 rows and 3 dead letters with reasons', async () => {
    const valid = new EventGenerator({ seed: 'file' }).take(10).map((m) => m.data.toString());
    const invalid = [
      '{"event_type":"order",',
      JSON.stringify({ event_type: 'refund', event_id: 'r1', event_time: new Date().toISOString() }),
      '{"event_type":"inventory","event_id":"i1"}',
    ];
    const file = path.join(h.home, 'events.ndjson');
    fs.writeFileSync(file, [...valid, ...invalid].join('\n') + '\n');
    const { code, json, err } = await run({ flags: { file, wait: true } });
    assert.equal(code, 0, err.join('\n'));
    assert.match(err.join('\n'), /no stack running/);
    assert.equal(json.published, 13);
    assert.equal(sum(json.landed.rows), 10);
    assert.equal(json.landed.deadLetters, 3);
    assert.equal(json.landed.pending, 0);
    assert.deepEqual(Object.keys(json.landed.reasons).sort(), ['not_json', 'required', 'unknown_type']);
  });

  it('no stack: generated events with invalid ones and duplicates all accounted for', async () => {
    const { code, json } = await run({
      flags: { generate: '120', invalid: '0.2', duplicates: '0.1', seed: 'gen', wait: true },
    });
    assert.equal(code, 0);
    assert.equal(json.published, 120);
    assert.equal(json.landed.deadLetters, json.invalid);
    assert.equal(json.landed.duplicates, json.duplicates);
    assert.equal(sum(json.landed.rows) + json.landed.deadLetters + json.landed.duplicates, 120);
  });

  it('rejects bad input before publishing', async () => {
    await assert.rejects(run({ args: ['{not json'], flags: {} }), /not JSON/);
    await assert.rejects(run({ args: ['[1]'], flags: {} }), /JSON object/);
    await assert.rejects(run({ args: ['{}'], flags: { generate: '3' } }), /exactly one/);
    await assert.rejects(run({ flags: { generate: '3', invalid: '2' } }), /between 0 and 1/);
  });

  it('stack running (embedded Pub/Sub): publishes through the admin route and waits through it', async () => {
    const log = createLogger({ format: 'silent' });
    const fn = await serveRegistered('routeEvent');
    const ps = await startLocalPubsub({
      cfg: h.cfg,
      log,
      endpoints: { routeEvent: fn.url },
      functions: [functionSpec('routeEvent')],
    });
    const ctx = {
      cfg: h.cfg,
      log,
      endpoints: { routeEvent: fn.url },
      pubsub: ps,
      statusSections: new Map(),
    } as unknown as StackContext;
    const admin = new AdminServer();
    for (const [name, handler] of Object.entries(pubsubAdminRoutes(ctx))) admin.route(name, handler);
    const adminUrl = await admin.listen(0);
    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      endpoints: ctx.endpoints,
      admin: adminUrl,
      pubsub: { mode: 'embedded' },
    };
    fs.mkdirSync(path.dirname(stackInfoFile(h.home)), { recursive: true });
    fs.writeFileSync(stackInfoFile(h.home), JSON.stringify(info));
    try {
      const event = {
        event_type: 'inventory',
        event_id: 'inv-1',
        event_time: new Date().toISOString(),
        product_id: 'SKU-1',
        warehouse_id: 'WH-1',
        change_type: 'restock',
        quantity_change: 5,
        quantity_after: 5,
      };
      const { code, json, err } = await run({ args: [JSON.stringify(event)], flags: { wait: true } });
      assert.equal(code, 0, err.join('\n'));
      assert.equal(err.length, 0, 'no in-process fallback');
      assert.deepEqual(json.landed.rows, { inventory: 1 });
      assert.equal(
        ((await ps.status()) as { topics: { name: string; published: number }[] }).topics.find(
          (t) => t.name === 'events',
        )?.published,
        1,
      );
      const again = await run({ args: [JSON.stringify(event)], flags: { wait: true } });
      assert.equal(again.json.landed.duplicates, 1, 'same event_id: stored once');

      const status = (await (await fetch(`${adminUrl}/_smelter/pubsub`, { method: 'POST' })).json()) as {
        mode: string;
      };
      assert.equal(status.mode, 'embedded');
      const bad = await fetch(`${adminUrl}/_smelter/publish`, {
        method: 'POST',
        body: JSON.stringify({ messages: [{ data: 42 }] }),
      });
      assert.equal(bad.status, 400);
    } finally {
      fs.rmSync(stackInfoFile(h.home), { force: true });
      await admin.close();
      await ps.close();
      await fn.close();
    }
  });
});
