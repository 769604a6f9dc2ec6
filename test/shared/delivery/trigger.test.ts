/** The trigger helper: the policy applied around a function's work, and untrusted storage events. */
import assert from 'node:assert/strict';
import { deliver, storageTrigger, checkObjectName } from '../../../shared/delivery/trigger';
import { isSmelterError, permanent, transient } from '../../../shared/errors';
import { captureLogger } from '../../support/events';

const MAX = 60_000;

describe('delivery trigger', () => {
  it('acknowledges success, retries a young transient failure, records a permanent one', async () => {
    const { log } = captureLogger();
    const recorded: string[] = [];
    const record = async (_err: unknown, d: { cause: string }): Promise<void> => {
      recorded.push(d.cause);
    };
    await deliver({ name: 'f', log, ageMs: 0, maxAgeMs: MAX, run: async () => ({ rows: 1 }), record });
    const down = transient('STORAGE_UNAVAILABLE', '503');
    await assert.rejects(
      deliver({ name: 'f', log, ageMs: 0, maxAgeMs: MAX, run: () => Promise.reject(down), record }),
      /503/,
    );
    await deliver({ name: 'f', log, ageMs: MAX + 1, maxAgeMs: MAX, run: () => Promise.reject(down), record });
    const bad = permanent('BAD_DATA', 'not CSV');
    await deliver({ name: 'f', log, ageMs: 0, maxAgeMs: MAX, run: () => Promise.reject(bad), record });
    assert.deepEqual(recorded, ['expired', 'permanent']);
  });

  it('retries when the record cannot be written, and abandons (logged whole) once too old', async () => {
    const { log, lines } = captureLogger();
    const bad = permanent('BAD_DATA', 'not CSV');
    const record = (): Promise<void> => Promise.reject(transient('STORAGE_UNAVAILABLE', 'quarantine down'));
    await assert.rejects(
      deliver({ name: 'f', log, ageMs: 0, maxAgeMs: MAX, run: () => Promise.reject(bad), record }),
      /not CSV/,
    );
    await deliver({ name: 'f', log, ageMs: MAX + 1, maxAgeMs: MAX, run: () => Promise.reject(bad), record });
    const last = lines.at(-1);
    assert.equal(last?.severity, 'ERROR');
    assert.match(last?.message ?? '', /abandoned/);
  });

  it('acknowledges storage events that are malformed, name an impossible object or another bucket', async () => {
    const { log, lines } = captureLogger();
    const handled: string[] = [];
    const trigger = storageTrigger({
      name: 't',
      env: () => ({ log, maxEventAgeMs: MAX, bucket: 'raw' }),
      handle: async (ref) => {
        handled.push(ref.name);
      },
    });
    const ce = (data: unknown): Parameters<typeof trigger>[0] =>
      ({
        id: '1',
        source: '//x',
        type: 'google.cloud.storage.object.v1.finalized',
        specversion: '1.0',
        data,
      }) as Parameters<typeof trigger>[0];
    await trigger(ce({ bucket: 'raw', name: 'a\nb.csv', generation: '1' }));
    await trigger(ce({ bucket: 'raw', name: 'x'.repeat(1025), generation: '1' }));
    await trigger(ce({ bucket: 'raw', name: 'a\ud800.csv', generation: '1' }));
    await trigger(ce({ bucket: 'raw', generation: '1' }));
    await trigger(ce({ bucket: 'other', name: 'ds/a.csv', generation: '1' }));
    await trigger(ce({ bucket: 'raw', name: 'ds/a\tb.csv', generation: '1' }));
    assert.deepEqual(handled, ['ds/a\tb.csv']);
    assert.equal(lines.filter((l) => l.message.startsWith('unusable storage event')).length, 4);
  });

  it('checks object names against what GCS can hold', () => {
    assert.doesNotThrow(() => checkObjectName('rainfall/2024/ü.csv'));
    assert.throws(
      () => checkObjectName('a\rb'),
      (e: unknown) => isSmelterError(e, 'BAD_EVENT') && e.kind === 'permanent',
    );
  });
});
