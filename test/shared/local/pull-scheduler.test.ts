/** The local pull scheduler: one pull message per source on its cron schedule (UTC), optionally at start. */
import assert from 'node:assert/strict';
import { loadConfig } from '../../../shared/config';
import { createLogger } from '../../../shared/log';
import { PullScheduler } from '../../../shared/local/pull-scheduler';
import type { LocalPubsub, StackContext } from '../../../shared/local/stack';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { writeRunRecord } from '../../../shared/pull/state';

describe('local pull scheduler', () => {
  it('publishes {"source"} on the pull topic at start and shows each schedule, next run and last run', async () => {
    const published: { topic: string; data: string }[] = [];
    const pubsub: LocalPubsub = {
      mode: 'embedded',
      publish: async (topic, data) => {
        published.push({ topic, data: data.toString() });
        return String(published.length);
      },
      status: async () => ({}),
    };
    const store = new MemoryObjectStore();
    await store.ensureBucket('bronze');
    const cfg = loadConfig({});
    const ctx = {
      cfg,
      log: createLogger({ format: 'silent' }),
      store,
      endpoints: {},
      pubsub,
      statusSections: new Map(),
    } as unknown as StackContext;
    const now = Date.parse('2026-11-10T06:29:30Z');
    const s = new PullScheduler({ immediate: true, now: () => now });
    await s.start(ctx);
    try {
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        published.sort((a, b) => a.data.localeCompare(b.data)),
        [
          { topic: 'pull', data: '{"source":"network"}' },
          { topic: 'pull', data: '{"source":"store"}' },
        ],
      );
      const byName = Object.fromEntries(s.status().map((e) => [e.source, e]));
      assert.equal(byName.network?.next, '2026-11-10T06:30:00.000Z');
      assert.equal(byName.store?.next, '2026-11-10T12:00:00.000Z');
      await writeRunRecord(store, 'bronze', {
        source: 'store',
        run: 'r',
        status: 'failed',
        startedAt: 'x',
        pages: 0,
        records: 0,
        objects: 0,
        error: { code: 'SOURCE_HTTP_ERROR', message: 'HTTP 401', status: 401 },
      });
      const section = (await ctx.statusSections.get('pulls')?.()) as Record<
        string,
        { published: number; lastRun?: { status: string } }
      >;
      assert.equal(section.store?.published, 1);
      assert.equal(section.store?.lastRun?.status, 'failed');
    } finally {
      await s.stop();
    }
  });
});
