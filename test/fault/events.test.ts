/**
 * Fault campaign, events: routeEvent receiving a burst of valid and invalid messages (three micro-batches
 * written to the event tables, the archive and the dead letter in parallel), killed at every
 * side-effecting operation of its ports (event warehouse, archive bucket, dead-letter topic) — before it,
 * after it, mid-write for archive objects. The platform then redelivers every message that was not
 * acknowledged to a fresh instance. Afterwards each valid event is exactly once in its table and in the
 * archive, each invalid message exactly once in the dead-letter table and at least once on its topic.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { CloudEventV1 } from 'cloudevents';
import { routeEvent } from '../../functions/route-event';
import { topicFile } from '../../shared/adapters/events/dead-letter-file';
import { getLocalWarehouse, type LocalWarehouse } from '../../shared/adapters/warehouse/duckdb-local';
import { closeRuntime, useRuntime } from '../../shared/composition/runtime';
import { createLogger } from '../../shared/log';
import { readAll, testHome, type TestHome } from '../support/home';
import { activity, b64, inventory, order, PROJECT } from '../support/events';
import {
  dyingDeadLetters,
  dyingEventWarehouse,
  dyingStore,
  Killed,
  killPoints,
  Reaper,
  type KillPoint,
} from './dying';

const log = createLogger({ format: 'silent' });
const TABLES = { order: 'orders', inventory: 'inventory', user_activity: 'user_activity' } as const;

interface Sent {
  ce: CloudEventV1<unknown>;
  eventId?: string;
  table?: string;
  messageId: string;
}

/** 9 messages: 6 valid events of three types, 3 invalid ones; ids unique to the run `tag`. */
function burst(tag: string): Sent[] {
  const at = { event_time: '2024-05-01T10:15:00Z' };
  const valid = [
    order(1, at),
    order(2, at),
    inventory(1, at),
    activity(1, at),
    order(3, at),
    inventory(2, at),
  ].map((e) => ({ ...e, event_id: `${tag}-${String(e.event_id)}` }));
  const invalid: Record<string, unknown>[] = [
    order(90, { ...at, status: 'teleported', event_id: `${tag}-bad-1` }),
    { event_type: 'refund', event_id: `${tag}-bad-2`, event_time: '2024-05-01T10:00:00Z' },
    inventory(91, { ...at, quantity_after: -5, event_id: `${tag}-bad-3` }),
  ];
  // Two micro-batches of 5 and 4 (SMELTER_BATCH_MAX_ROWS=5), each with valid and invalid messages.
  const [bad1, bad2, bad3] = invalid as [
    Record<string, unknown>,
    Record<string, unknown>,
    Record<string, unknown>,
  ];
  const all: Record<string, unknown>[] = [
    ...valid.slice(0, 3),
    bad1,
    ...valid.slice(3, 4),
    bad2,
    ...valid.slice(4),
    bad3,
  ];
  const publishTime = new Date().toISOString();
  return all.map((payload, i) => {
    const messageId = `${tag}-m${i}`;
    const isValid = (valid as Record<string, unknown>[]).includes(payload);
    const type = String(payload.event_type) as keyof typeof TABLES;
    return {
      messageId,
      ...(isValid ? { eventId: String(payload.event_id), table: TABLES[type] } : {}),
      ce: {
        id: messageId,
        specversion: '1.0',
        type: 'google.cloud.pubsub.topic.v1.messagePublished',
        source: `//pubsub.googleapis.com/projects/${PROJECT}/topics/events`,
        time: publishTime,
        data: {
          message: { data: b64(payload), messageId, publishTime, attributes: {} },
          subscription: `projects/${PROJECT}/subscriptions/route-event`,
        },
      },
    };
  });
}

describe('fault campaign: an event batch killed at every operation, then redelivered', function () {
  this.timeout(60_000);
  let h: TestHome;
  let db: LocalWarehouse;

  before(async () => {
    delete process.env.PUBSUB_EMULATOR_HOST;
    h = await testHome({ SMELTER_BATCH_MAX_ROWS: '5' });
    // The DuckDB file outlives the instances (its statements are atomic: what a killed instance wrote
    // is there or not); each instance gets its own router, batcher, dedup window and adapters.
    db = await getLocalWarehouse(h.home, { threads: 1, memoryLimit: h.cfg.warehouseMemoryLimit });
  });
  after(async () => {
    await db.close();
    await h.cleanup();
  });

  /**
   * One instance's life: the messages arrive together; returns the ones it acknowledged. With a kill
   * point, its ports die there; its state (router, batcher, DuckDB handle) goes with it.
   */
  async function instance(
    messages: Sent[],
    point?: KillPoint,
    check?: (db: LocalWarehouse) => Promise<void>,
  ): Promise<{ acked: Sent[]; reaper: Reaper; errors: unknown[] }> {
    const reaper = new Reaper(point);
    const rt = useRuntime({
      config: h.cfg,
      log,
      store: dyingStore(h.store, reaper),
      localDuckDb: () => Promise.resolve(db),
    });
    rt.override({
      eventWarehouse: dyingEventWarehouse(rt.get('eventWarehouse'), reaper),
      deadLetters: dyingDeadLetters(rt.get('deadLetters'), reaper),
    });
    const settled = await Promise.allSettled(messages.map((m) => routeEvent(m.ce as never)));
    await reaper.quiesce();
    try {
      if (check) await check(db);
    } finally {
      await closeRuntime().catch(() => undefined);
    }
    const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    return { acked: messages.filter((_, i) => settled[i]?.status === 'fulfilled'), reaper, errors };
  }

  async function archived(): Promise<Map<string, number>> {
    const n = new Map<string, number>();
    for await (const o of h.store.list(h.cfg.archiveBucket, 'events/'))
      for (const line of (await readAll(await h.store.read(h.cfg.archiveBucket, o.name)))
        .toString('utf8')
        .split('\n')
        .filter(Boolean)) {
        const id = String((JSON.parse(line) as { event_id: string }).event_id);
        n.set(id, (n.get(id) ?? 0) + 1);
      }
    return n;
  }

  function topic(): Map<string, number> {
    const n = new Map<string, number>();
    const file = topicFile(h.home, h.cfg.deadLetterTopic);
    if (!fs.existsSync(file)) return n;
    for (const l of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const id = (JSON.parse(l) as { attributes: { source_message_id: string } }).attributes
        .source_message_id;
      n.set(id, (n.get(id) ?? 0) + 1);
    }
    return n;
  }

  /** In the warehouse: each valid event once in its table, each invalid message once in the dead letters. */
  const tablesExact =
    (tag: string, sent: Sent[], what: string) =>
    async (db: LocalWarehouse): Promise<void> => {
      const like = `'${tag}-%'`;
      for (const table of new Set(Object.values(TABLES))) {
        const rows = await db.query<{ event_id: string; n: string }>(
          `SELECT event_id, count(*) AS n FROM events.${table} WHERE event_id LIKE ${like} GROUP BY 1 ORDER BY 1`,
        );
        const expected = sent
          .filter((s) => s.table === table)
          .map((s) => s.eventId)
          .sort();
        assert.deepEqual(
          rows.map((r) => r.event_id),
          expected,
          `${what}: events.${table}`,
        );
        assert.ok(
          rows.every((r) => Number(r.n) === 1),
          `${what}: events.${table} once each`,
        );
      }
      const dead = await db.query<{ message_id: string; n: string }>(
        `SELECT message_id, count(*) AS n FROM events.dead_letter WHERE message_id LIKE ${like} GROUP BY 1 ORDER BY 1`,
      );
      const invalid = sent
        .filter((s) => !s.eventId)
        .map((s) => s.messageId)
        .sort();
      assert.deepEqual(
        dead.map((r) => r.message_id),
        invalid,
        `${what}: dead letters`,
      );
      assert.ok(
        dead.every((r) => Number(r.n) === 1),
        `${what}: dead letters once each`,
      );
    };

  /** In the archive and on the topic (emptied afterwards: each run is checked on its own). */
  async function filesExact(sent: Sent[], what: string): Promise<void> {
    const arch = await archived();
    const valid = sent.filter((x) => x.eventId);
    assert.deepEqual([...arch.keys()].sort(), valid.map((s) => s.eventId).sort(), `${what}: archived events`);
    assert.ok(
      [...arch.values()].every((n) => n === 1),
      `${what}: archived once each ${JSON.stringify([...arch])}`,
    );
    const top = topic();
    for (const s of sent.filter((x) => !x.eventId))
      assert.ok((top.get(s.messageId) ?? 0) >= 1, `${what}: ${s.messageId} on the dead-letter topic`);
    fs.rmSync(path.join(h.home, 'buckets', h.cfg.archiveBucket, 'events'), { recursive: true, force: true });
    fs.rmSync(topicFile(h.home, h.cfg.deadLetterTopic), { force: true });
  }

  it('every event exactly once in its table and the archive, every invalid one once in the dead letters', async () => {
    const first = burst('clean');
    const clean = await instance(first, undefined, tablesExact('clean', first, 'clean run'));
    assert.equal(clean.acked.length, first.length);
    await filesExact(first, 'clean run');
    const ops = clean.reaper.ops;
    assert.ok(ops.length >= 10, ops.join('\n'));

    let i = 0;
    // (Mid-write kills of the store are the conversion campaign's: the archive uses the same store.)
    for (const { at, when } of killPoints(ops).filter((p) => p.when !== 'during')) {
      const tag = `k${i++}`;
      const what = `kill ${when} #${at} (${ops[at - 1]})`;
      const sent = burst(tag);
      const died = await instance(sent, { at, when });
      assert.ok(died.reaper.dead, `${what}: the kill point was not reached`);
      for (const e of died.errors)
        if (!(e instanceof Killed) && !/KILLED/.test(String(e)))
          assert.fail(`${what}: failed with ${String(e)} instead of dying`);
      // Pub/Sub redelivers what was not acknowledged, in one burst, to a fresh instance.
      const redelivered = sent.filter((s) => !died.acked.includes(s));
      const retry = await instance(redelivered, undefined, tablesExact(tag, sent, what));
      assert.equal(retry.acked.length, redelivered.length, `${what}: retry ${String(retry.errors[0])}`);
      await filesExact(sent, what);
    }
    assert.ok(i >= 10, `only ${i} kill points`);
    assert.deepEqual(
      fs.readdirSync(path.join(h.home, 'tmp', 'objects')).filter((f) => f.endsWith('.part')),
      [],
      'no partial object left',
    );
  });
});
