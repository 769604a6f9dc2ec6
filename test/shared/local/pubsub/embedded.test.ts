/**
 * The embedded delivery (no emulator): push in the Pub/Sub push format to a functions-framework
 * server, redelivery with backoff, dead-lettering after N attempts, bounded concurrency.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger } from '../../../../shared/log';
import { EmbeddedPubsub } from '../../../../shared/local/pubsub/embedded';
import {
  BacklogLog,
  backlogDir,
  readLog,
  type LoggedMessage,
} from '../../../../shared/local/pubsub/backlog-log';
import { startLocalPubsub, type SmelterPubsub } from '../../../../shared/local/pubsub/local-pubsub';
import { functionSpec } from '../../../../shared/manifest';
import type { ServedFunction } from '../../../../shared/local/pubsub/serve';
import { testHome, type TestHome } from '../../../support/home';
import { decoded, serveSink, sink } from '../../../support/pubsub';
import { runLocalPubsubContract } from './contract';

const silent = createLogger({ format: 'silent' });

runLocalPubsubContract({
  name: 'embedded',
  mode: 'embedded',
  env: () => ({ SMELTER_PUBSUB_EMULATOR: 'off', SMELTER_LOCAL_MAX_ATTEMPTS: '3' }),
  options: { embedded: { backoff: { initialMs: 5, maxMs: 20 } } },
  maxAttempts: 3,
  pullDeadLetters: (ps) =>
    (ps as unknown as { bus: EmbeddedPubsub }).bus.pull('events-dead-letter-pull', 10, { ack: true }),
  // Unsettled messages wait in a write-ahead log under the home for the next bus.
  durable: true,
});

describe('pubsub: embedded delivery', () => {
  let h: TestHome;
  let served: ServedFunction;
  let ps: SmelterPubsub | undefined;

  before(async () => {
    served = await serveSink();
  });
  after(async () => served.close());
  beforeEach(async () => {
    h = await testHome({ SMELTER_PUBSUB_EMULATOR: 'off', SMELTER_LOCAL_MAX_ATTEMPTS: '3' });
    sink.reset();
  });
  afterEach(async () => {
    await ps?.close();
    ps = undefined;
    await h.cleanup();
  });

  const start = (): Promise<SmelterPubsub> =>
    startLocalPubsub({
      cfg: h.cfg,
      log: silent,
      endpoints: { routeEvent: served.url },
      functions: [functionSpec('routeEvent')],
      embedded: { backoff: { initialMs: 5, maxMs: 20 } },
    });

  it('status counts deliveries, failed attempts and dead letters per subscription', async () => {
    ps = await start();
    sink.fail = (ce, attempt) => decoded(ce) === 'poison' || attempt < 3;
    const ok = await ps.publish('events', Buffer.from('x'));
    await ps.publish('events', Buffer.from('poison'));
    assert.equal(await ps.idle(5000), true);
    assert.equal(sink.attempts.get(ok), 3);
    const st = (await ps.status()) as {
      delivered: number;
      backlog: number;
      deadLettered: number;
      topics: { subscriptions: { failedAttempts: number }[] }[];
    };
    assert.equal(st.delivered, 1);
    assert.equal(st.backlog, 0);
    assert.equal(st.deadLettered, 1);
    assert.equal(st.topics.find((t) => t.subscriptions.length)?.subscriptions[0]?.failedAttempts, 2 + 3);
  });

  it('keeps at most `concurrency` pushes in flight and delivers every message', async () => {
    let inFlight = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const server = http.createServer((req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      req.resume();
      release.push(() => {
        inFlight--;
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/projects/p/topics/t`;
    const bus = new EmbeddedPubsub({ project: 'p', home: h.home, concurrency: 4 });
    try {
      bus.createTopic('t');
      bus.createSubscription({ name: 's', topic: 't', pushEndpoint: url });
      for (let i = 0; i < 20; i++) await bus.publish('t', Buffer.from(String(i)));
      let done = 0;
      while (done < 20) {
        await sink.until(() => release.length > 0);
        assert.ok(inFlight <= 4, `${inFlight} in flight`);
        release.shift()?.();
        done++;
      }
      await bus.idle();
      assert.equal(peak, 4);
      assert.equal((await bus.status()).delivered, 20);
    } finally {
      await bus.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('loses nothing a publish acknowledged when the process is killed with SIGKILL', async function () {
    this.timeout(60_000);
    const n = 500;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'fixtures', 'publish-and-wait.ts'), h.home, String(n)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)));
    while (!out.includes('\n')) {
      assert.equal(child.exitCode, null, 'the publisher died early');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const acknowledged = JSON.parse(out) as string[];
    assert.equal(acknowledged.length, n);

    // The next bus on this home delivers every acknowledged message, with its id and attributes.
    const url = `${served.url}/projects/p/topics/t`;
    const bus = new EmbeddedPubsub({ project: 'p', home: h.home, backoff: { initialMs: 5, maxMs: 20 } });
    try {
      bus.createTopic('t');
      bus.createSubscription({ name: 's', topic: 't', pushEndpoint: url });
      await bus.idle();
      const got = new Set(sink.events.map((e) => e.data?.message.messageId));
      assert.deepEqual(
        acknowledged.filter((id) => !got.has(id)),
        [],
        'every acknowledged message is delivered',
      );
      const first = sink.events.find((e) => e.data?.message.messageId === acknowledged[7]);
      assert.equal(decoded(first!), 'message 7');
      assert.deepEqual(first?.data?.message.attributes, { i: '7' });
    } finally {
      await bus.close();
    }
    // Delivered and settled: a third bus has nothing left to deliver.
    const before = sink.events.length;
    const again = new EmbeddedPubsub({ project: 'p', home: h.home });
    again.createTopic('t');
    again.createSubscription({ name: 's', topic: 't', pushEndpoint: url });
    await again.idle();
    await again.close();
    assert.equal(sink.events.length, before);
  });

  it('a bus closed with undelivered messages leaves them to the next one', async () => {
    const dead = 'http://127.0.0.1:9/projects/p/topics/t';
    const bus = new EmbeddedPubsub({ project: 'p', home: h.home, backoff: { initialMs: 1000, maxMs: 1000 } });
    bus.createTopic('t');
    bus.createSubscription({ name: 's', topic: 't', pushEndpoint: dead });
    const ids = await Promise.all([1, 2, 3].map((i) => bus.publish('t', Buffer.from(String(i)))));
    await bus.close();
    const next = new EmbeddedPubsub({ project: 'p', home: h.home, backoff: { initialMs: 5, maxMs: 20 } });
    try {
      next.createTopic('t');
      next.createSubscription({ name: 's', topic: 't', pushEndpoint: `${served.url}/projects/p/topics/t` });
      await next.idle();
      assert.deepEqual(
        ids.filter((id) => !sink.attempts.has(id)),
        [],
      );
    } finally {
      await next.close();
    }
  });

  it('the write-ahead log rewrites itself with only the unsettled messages when it outgrows its limit', async () => {
    const dir = backlogDir(h.home);
    const live = new Map<string, LoggedMessage>();
    const wal = new BacklogLog(dir, () => live.values(), 2048);
    for (let i = 0; i < 100; i++) {
      const m: LoggedMessage = {
        topic: 't',
        msg: { id: `m${i}`, data: Buffer.from('x'.repeat(50)), attributes: {}, publishTime: 'now' },
        subs: ['a', 'b'],
      };
      live.set(m.msg.id, m);
      await wal.append(m);
      if (i % 10) {
        // settled by both subscriptions
        wal.ack(m.msg.id, 'a');
        wal.ack(m.msg.id, 'b');
        live.delete(m.msg.id);
      } else {
        wal.ack(m.msg.id, 'a');
        m.subs = ['b'];
      }
    }
    await wal.close(true);
    assert.ok(fs.statSync(wal.path).size < 4096, 'rewritten, not grown to ~10 kB');
    assert.deepEqual(
      readLog(wal.path).map((m) => [m.msg.id, m.subs]),
      Array.from({ length: 10 }, (_, i) => [`m${i * 10}`, ['b']]),
    );
    const next = new BacklogLog(dir, () => []);
    assert.equal(next.recovered.length, 10);
    assert.deepEqual(fs.readdirSync(dir), [path.basename(next.path)], 'the old log is gone');
    await next.close(false);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('drops messages of topics without subscriptions, refuses unknown topics', async () => {
    const bus = new EmbeddedPubsub({ project: 'p', home: h.home });
    bus.createTopic('lonely');
    assert.match(await bus.publish('lonely', Buffer.from('x')), /^\d+$/);
    await assert.rejects(bus.publish('nope', Buffer.from('x')), /No topic nope/);
    await bus.close();
    await assert.rejects(bus.publish('lonely', Buffer.from('x')), /stopped/);
  });

  it('auto mode falls back to the embedded delivery with a notice when the emulator is absent; on mode fails', async () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', sink: (l) => lines.push(l) });
    const absent = () => ({
      found: false as const,
      reason: 'the Google Cloud CLI (gcloud) is not installed',
      searched: [],
    });
    const saved = process.env.PUBSUB_EMULATOR_HOST;
    delete process.env.PUBSUB_EMULATOR_HOST;
    try {
      ps = await startLocalPubsub({ cfg: h.cfg, log, endpoints: {}, emulator: 'auto', discover: absent });
      assert.equal(ps.mode, 'embedded');
      assert.ok(
        lines.some((l) =>
          /NOTICE.*emulator not available.*gcloud.*not installed.*falling back.*install/i.test(l),
        ),
        lines.join('\n'),
      );
      await assert.rejects(
        startLocalPubsub({ cfg: h.cfg, log, endpoints: {}, emulator: 'on', discover: absent }),
        (e: Error & { code?: string }) =>
          e.code === 'PUBSUB_UNAVAILABLE' && /SMELTER_PUBSUB_EMULATOR=on/.test(e.message),
      );
    } finally {
      if (saved !== undefined) process.env.PUBSUB_EMULATOR_HOST = saved;
    }
  });
});
