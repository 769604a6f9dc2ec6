/**
 * A failed flush settles only once every write of its batch has: found by the fault campaign
 * (test/fault/events.test.ts), where closing the instance right after a failed batch closed DuckDB under
 * a sibling INSERT still running and crashed the process (SIGSEGV).
 */
import assert from 'node:assert/strict';
import { config } from '../../../shared/config';
import { transient } from '../../../shared/errors';
import { EventContractRegistry } from '../../../shared/events/contract';
import type {
  DeadLetterPublisher,
  EventArchive,
  EventWarehouse,
  WarehouseRejection,
} from '../../../shared/events/ports';
import { EventRouter } from '../../../shared/events/router';
import { b64, captureLogger, order } from '../../support/events';

describe('EventRouter: a failed flush leaves no write running', () => {
  it('rejects the batch only after its other writes have ended', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const running = new Set<string>();
    const warehouse: EventWarehouse = {
      kind: 'slow',
      async insertEvents(): Promise<WarehouseRejection[]> {
        running.add('insertEvents');
        await gate;
        running.delete('insertEvents');
        return [];
      },
      insertDeadLetters: async () => undefined,
      close: async () => undefined,
    };
    const archive: EventArchive = {
      write: async () => {
        throw transient('STORAGE_UNAVAILABLE', 'archive bucket unavailable');
      },
    };
    const deadLetters: DeadLetterPublisher = {
      kind: 'fake',
      publish: async () => undefined,
      close: async () => undefined,
    };
    const router = new EventRouter(
      {
        contracts: new EventContractRegistry(config().contractsDir),
        warehouse,
        archive,
        deadLetters,
        log: captureLogger().log,
        piiKey: () => 'router-settle-test-key-0123456789',
      },
      { maxEventBytes: 1 << 20, maxEventAgeMs: 3600_000, batchMaxRows: 10, batchMaxMs: 0 },
    );
    const routed = router.route({
      data: b64(order(1)),
      attributes: {},
      messageId: 'm-1',
      publishTime: new Date().toISOString(),
    });
    let settled = false;
    void routed.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(running.has('insertEvents'), 'the insert is under way');
    assert.equal(settled, false, 'the message is not answered while its insert still runs');
    release();
    await assert.rejects(routed, /archive bucket unavailable/);
    assert.equal(running.size, 0);
    await router.close();
  });
});
