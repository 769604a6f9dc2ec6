import assert from 'node:assert/strict';
import sinon from 'sinon';
import { MicroBatcher } from '../../../shared/events/batcher';

/** A flush function whose calls are recorded and settled by the test. */
function controlled() {
  const calls: { items: number[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const fn = (items: number[]): Promise<string[]> =>
    new Promise((resolve, reject) => {
      calls.push({ items, resolve: () => resolve(items.map((i) => `ok-${i}`)), reject });
    });
  return { calls, fn };
}

const settled = async <T>(p: Promise<T>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

describe('MicroBatcher', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  afterEach(() => clock.restore());

  it('flushes a lone item at once when idle, without waiting for maxMs', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 100, maxMs: 60_000 });
    const p = b.add(1);
    await clock.tickAsync(0); // the end of this event-loop turn, not maxMs
    assert.deepEqual(calls[0]?.items, [1]);
    assert.equal(await settled(p), false, 'not before its flush has settled');
    calls[0]?.resolve();
    assert.equal(await p, 'ok-1');
  });

  it('puts items that arrive in the same event-loop turn into one flush', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 100, maxMs: 60_000 });
    const ps = [1, 2, 3].map((i) => b.add(i));
    await clock.tickAsync(0);
    assert.deepEqual(
      calls.map((c) => c.items),
      [[1, 2, 3]],
    );
    calls[0]?.resolve();
    assert.deepEqual(await Promise.all(ps), ['ok-1', 'ok-2', 'ok-3']);
  });

  it('group-commits what arrives during a flush as soon as it completes, not after maxMs', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 100, maxMs: 60_000 });
    const p1 = b.add(1);
    await clock.tickAsync(0);
    const rest = [2, 3, 4].map((i) => b.add(i));
    await clock.tickAsync(120_000);
    assert.equal(calls.length, 1, 'one flush at a time: the others wait for it');
    calls[0]?.resolve();
    assert.equal(await p1, 'ok-1');
    assert.deepEqual(calls[1]?.items, [2, 3, 4]);
    assert.equal(await settled(rest[0] as Promise<string>), false);
    calls[1]?.resolve();
    assert.deepEqual(await Promise.all(rest), ['ok-2', 'ok-3', 'ok-4']);
  });

  it('flushes at maxRows, and each add resolves only when its flush has', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 3, maxMs: 1000 });
    const ps = [1, 2, 3].map((i) => b.add(i));
    assert.equal(calls.length, 1, 'a full batch goes out without waiting for the turn to end');
    assert.deepEqual(calls[0]?.items, [1, 2, 3]);
    assert.equal(await settled(ps[0] as Promise<string>), false);
    calls[0]?.resolve();
    assert.deepEqual(await Promise.all(ps), ['ok-1', 'ok-2', 'ok-3']);
  });

  it('caps group commits at maxRows', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 2, maxMs: 1000, concurrency: 1 });
    const ps = [1, 2, 3, 4, 5].map((i) => b.add(i));
    assert.equal(calls.length, 1, 'the second batch waits for the first');
    calls[0]?.resolve();
    await Promise.all(ps.slice(0, 2));
    assert.deepEqual(calls[1]?.items, [3, 4]);
    calls[1]?.resolve();
    await Promise.all(ps.slice(2, 4));
    // The leftover went out as soon as the slot freed, without waiting for the timer.
    assert.deepEqual(calls[2]?.items, [5]);
    calls[2]?.resolve();
    assert.equal(await ps[4], 'ok-5');
  });

  it('with free slots but a flush running, waits at most maxMs before using another slot', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 100, maxMs: 20, concurrency: 2 });
    const p1 = b.add(1);
    await clock.tickAsync(0);
    const p2 = b.add(2);
    await clock.tickAsync(10);
    const p3 = b.add(3);
    await clock.tickAsync(9);
    assert.equal(calls.length, 1);
    await clock.tickAsync(1); // 20 ms after item 2
    assert.deepEqual(calls[1]?.items, [2, 3]);
    for (const c of calls) c.resolve();
    assert.deepEqual(await Promise.all([p1, p2, p3]), ['ok-1', 'ok-2', 'ok-3']);
  });

  it('rejects every item of a failed flush, and keeps working', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 2, maxMs: 5 });
    const ps = [b.add(1), b.add(2)];
    calls[0]?.reject(new Error('warehouse down'));
    for (const p of ps) await assert.rejects(p, /warehouse down/);
    const p3 = b.add(3);
    await clock.tickAsync(0);
    calls[1]?.resolve();
    assert.equal(await p3, 'ok-3');
    assert.equal(b.stats.failedFlushes, 1);
  });

  it('with maxRows 1 does not batch', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 1, maxMs: 1000, concurrency: 4 });
    const ps = [1, 2, 3].map((i) => b.add(i));
    assert.deepEqual(
      calls.map((c) => c.items),
      [[1], [2], [3]],
    );
    for (const c of calls) c.resolve();
    await Promise.all(ps);
  });

  it('flush() and close() write what is pending; close refuses new items', async () => {
    const { calls, fn } = controlled();
    const b = new MicroBatcher(fn, { maxRows: 100, maxMs: 60_000 });
    const p = b.add(1);
    const closing = b.close();
    assert.deepEqual(calls[0]?.items, [1]);
    assert.equal(await settled(closing), false, 'close waits for the running flush');
    calls[0]?.resolve();
    await closing;
    assert.equal(await p, 'ok-1');
    await assert.rejects(b.add(2), /closed/);
  });
});
