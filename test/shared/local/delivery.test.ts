/** At-least-once delivery of the Eventarc stand-in: retries with backoff, parking, the concurrency bound. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { statusCommand } from '../../../cli/commands/status';
import { createLogger } from '../../../shared/log';
import { DeliveryQueue, listParked, type OutgoingEvent } from '../../../shared/local/delivery';
import { storageEvent } from '../../../shared/local/storage-triggers';
import { testHome, type TestHome } from '../../support/home';
import { Endpoint, sleep, waitFor } from '../../support/local';

const log = createLogger({ format: 'silent' });

function event(i: number): OutgoingEvent {
  const now = new Date().toISOString();
  return storageEvent({
    bucket: 'raw',
    name: `rainfall/f${i}.csv`,
    generation: String(1_700_000_000_000_000 + i),
    size: 10,
    contentType: 'text/csv',
    timeCreated: now,
    updated: now,
  });
}

describe('local stack: DeliveryQueue (retries, parking, concurrency)', () => {
  let h: TestHome;
  let ep: Endpoint;
  let stateDir: string;
  const settled: { id: string; ok: boolean }[] = [];
  const queue = (o: Partial<{ maxAttempts: number; retryBaseMs: number; concurrency: number }> = {}) =>
    new DeliveryQueue(ep.url, {
      maxAttempts: o.maxAttempts ?? h.cfg.localMaxAttempts,
      retryBaseMs: o.retryBaseMs ?? h.cfg.localRetryBaseMs,
      concurrency: o.concurrency ?? 1,
      stateDir,
      log,
      onSettled: (e, ok) => settled.push({ id: e.id, ok }),
    });

  beforeEach(async () => {
    h = await testHome({ SMELTER_LOCAL_RETRY_BASE_MS: '10', SMELTER_LOCAL_MAX_ATTEMPTS: '4' });
    stateDir = path.join(h.home, 'state', 'eventarc');
    settled.length = 0;
    ep = new Endpoint();
    await ep.listen();
  });
  afterEach(async () => {
    await ep.close();
    await h.cleanup();
  });

  it('retries non-2xx answers with exponential backoff: 500, 500, 204 → delivered on the 3rd attempt', async () => {
    let n = 0;
    ep.answer = () => Promise.resolve(++n <= 2 ? { status: 500, body: 'not yet' } : { status: 204 });
    const q = queue({ retryBaseMs: 50 });
    const e = event(1);
    q.enqueue(e);
    await q.idle();
    assert.equal(ep.requests.length, 3);
    assert.deepEqual(
      ep.requests.map((r) => r.headers['ce-id']),
      [e.id, e.id, e.id],
      'the same event is redelivered',
    );
    // Backoff doubles: ≥ 50 ms before the 2nd attempt, ≥ 100 ms before the 3rd (lower bounds only).
    const [a, b, c] = ep.requests.map((r) => r.at) as [number, number, number];
    assert.ok(b - a >= 45, `first retry after ${b - a} ms`);
    assert.ok(c - b >= 95, `second retry after ${c - b} ms`);
    assert.equal(q.delivered, 1);
    assert.equal(q.failedAttempts, 2);
    assert.equal(q.parked, 0);
    assert.equal(q.pending, 0);
    assert.deepEqual(settled, [{ id: e.id, ok: true }]);
    assert.deepEqual(listParked(stateDir), []);
  });

  it('parks an event after SMELTER_LOCAL_MAX_ATTEMPTS failures, with its last error, shown by `smelter status --json`', async () => {
    ep.answer = () => Promise.resolve({ status: 500, body: 'boom: the function crashed' });
    const q = queue();
    const e = event(2);
    q.enqueue(e);
    await q.idle();
    assert.equal(h.cfg.localMaxAttempts, 4);
    assert.equal(ep.requests.length, 4);
    assert.equal(q.parked, 1);
    assert.equal(q.delivered, 0);
    assert.deepEqual(settled, [{ id: e.id, ok: false }]);
    await sleep(60); // no further attempt after parking
    assert.equal(ep.requests.length, 4);

    const parked = listParked(stateDir);
    assert.equal(parked.length, 1);
    const p = parked[0]!;
    assert.equal(p.event.id, e.id);
    assert.equal(p.event.subject, 'objects/rainfall/f2.csv');
    assert.deepEqual(p.event.data, e.data);
    assert.equal(p.target, ep.url);
    assert.equal(p.attempts, 4);
    assert.equal(p.lastError, 'HTTP 500: boom: the function crashed');
    assert.ok(!Number.isNaN(Date.parse(p.parkedAt)));

    // A connection that cannot be made is a failure too.
    const dead = new DeliveryQueue('http://127.0.0.1:9', {
      maxAttempts: 2,
      retryBaseMs: 10,
      concurrency: 1,
      stateDir,
      log,
    });
    dead.enqueue(event(3));
    await dead.idle();
    assert.match(listParked(stateDir)[1]?.lastError ?? '', /^request failed: /);

    const lines: string[] = [];
    const savedStderrFlag = process.env.SMELTER_LOG_STDERR;
    try {
      const code = await statusCommand.run({
        args: [],
        flags: { json: true },
        out: (l) => lines.push(l),
        err: () => undefined,
      });
      assert.equal(code, 0);
    } finally {
      if (savedStderrFlag === undefined) delete process.env.SMELTER_LOG_STDERR;
      else process.env.SMELTER_LOG_STDERR = savedStderrFlag;
    }
    const report = JSON.parse(lines.join('\n')) as {
      home: string;
      parked: { id: string; subject: string; target: string; attempts: number; lastError: string }[];
    };
    assert.equal(report.home, h.home);
    assert.equal(report.parked.length, 2);
    assert.deepEqual(report.parked[0], {
      id: e.id,
      subject: 'objects/rainfall/f2.csv',
      target: ep.url,
      attempts: 4,
      lastError: 'HTTP 500: boom: the function crashed',
      parkedAt: p.parkedAt,
    });
  });

  it('never has more requests in flight than the concurrency bound, retries included', async () => {
    let failedOnce = false;
    ep.answer = async (r) => {
      // Hold each request until three are in flight (or a while has passed), so an unbounded queue shows.
      await waitFor('three in flight', () => ep.inFlight >= 3, 300).catch(() => undefined);
      if (r.headers['ce-subject'] === 'objects/rainfall/f0.csv' && !failedOnce) {
        failedOnce = true;
        return { status: 503 };
      }
      return { status: 204 };
    };
    const q = queue({ concurrency: 3 });
    const events = Array.from({ length: 9 }, (_, i) => event(i));
    for (const e of events) q.enqueue(e);
    assert.ok(q.pending >= 9);
    await q.idle();
    assert.equal(ep.maxInFlight, 3);
    assert.equal(q.delivered, 9);
    assert.equal(q.failedAttempts, 1);
    assert.equal(ep.requests.length, 10);
    assert.deepEqual(settled.map((s) => s.id).sort(), events.map((e) => e.id).sort());
  });

  it('stop() drops queued work and resolves idle()', async () => {
    ep.answer = () => Promise.resolve({ status: 500 });
    const q = queue({ retryBaseMs: 60_000 });
    q.enqueue(event(4));
    await waitFor('first attempt', () => ep.requests.length === 1);
    await waitFor('retry scheduled', () => q.failedAttempts === 1);
    assert.equal(q.pending, 1);
    const idle = q.idle();
    q.stop();
    await idle;
    assert.equal(q.pending, 0);
    assert.deepEqual(listParked(stateDir), []);
  });
});
