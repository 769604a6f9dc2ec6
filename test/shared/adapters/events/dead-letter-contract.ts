/**
 * The dead-letter publisher contract (DeadLetterPublisher in shared/events/ports.ts), run against every
 * driver: the local topic file and Pub/Sub (the emulator). publish resolves once every message is on the
 * topic, bytes and attributes intact, each message once, however many flushes publish at the same time;
 * a topic that cannot take them is a transient PUBSUB_UNAVAILABLE (the router retries, nothing is lost).
 */
import assert from 'node:assert/strict';
import { isSmelterError } from '../../../../shared/errors';
import type { DeadLetterMessage, DeadLetterPublisher } from '../../../../shared/events/ports';

export interface TopicMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
}

export interface DeadLetterHarness {
  publisher: DeadLetterPublisher;
  /** Resolves with what the topic holds once it holds at least `n` messages. */
  received(n: number): Promise<TopicMessage[]>;
  /** A publisher of this driver whose topic cannot take messages. */
  broken(): DeadLetterPublisher;
  close(): Promise<void>;
}

export interface DeadLetterDriver {
  name: string;
  /** A publisher on a fresh topic. */
  open(): Promise<DeadLetterHarness>;
}

const byN = (a: TopicMessage, b: TopicMessage): number => Number(a.attributes.n) - Number(b.attributes.n);

export function runDeadLetterContract(driver: DeadLetterDriver): void {
  describe(`dead-letter publisher contract: ${driver.name}`, function () {
    this.timeout(30_000);
    let x: DeadLetterHarness;
    beforeEach(async () => (x = await driver.open()));
    afterEach(async () => x.close());

    it('puts each message on the topic with its bytes and attributes', async () => {
      const bytes = Buffer.from([0xff, 0x00, 0x7b, 0x0a]);
      await x.publisher.publish([
        { data: Buffer.from('{"reasons":[]}'), attributes: { n: '0', source_message_id: 'm-1' } },
        { data: bytes, attributes: { n: '1', reason_codes: 'not_json,too_large' } },
      ]);
      const got = (await x.received(2)).sort(byN);
      assert.equal(got.length, 2);
      assert.equal(got[0]?.data.toString(), '{"reasons":[]}');
      assert.deepEqual(got[0]?.attributes, { n: '0', source_message_id: 'm-1' });
      assert.deepEqual(got[1]?.data, bytes);
      assert.deepEqual(got[1]?.attributes, { n: '1', reason_codes: 'not_json,too_large' });
    });

    it('publishes concurrent flushes whole, each message once with its own id', async () => {
      const big = Buffer.alloc(200_000, 'a');
      const flushes: DeadLetterMessage[][] = Array.from({ length: 10 }, (_, f) =>
        [0, 1].map((k) => {
          const n = 2 * f + k;
          return { data: n % 2 ? big : Buffer.from(`m${n}`), attributes: { n: String(n) } };
        }),
      );
      await Promise.all(flushes.map((m) => x.publisher.publish(m)));
      const got = (await x.received(20)).sort(byN);
      assert.deepEqual(
        got.map((m) => Number(m.attributes.n)),
        [...Array(20).keys()],
      );
      assert.equal(got[0]?.data.toString(), 'm0');
      assert.deepEqual(got[1]?.data, big);
      assert.equal(new Set(got.map((m) => m.id)).size, 20);
    });

    it('publishes nothing for an empty flush, and close() resolves after what was published', async () => {
      await x.publisher.publish([]);
      const pending = x.publisher.publish([{ data: Buffer.from('last'), attributes: { n: '0' } }]);
      await pending;
      await x.publisher.close();
      const got = await x.received(1);
      assert.deepEqual(
        got.map((m) => m.data.toString()),
        ['last'],
      );
    });

    it('throws a transient PUBSUB_UNAVAILABLE when the topic cannot take the messages', async () => {
      const broken = x.broken();
      try {
        await assert.rejects(
          broken.publish([{ data: Buffer.from('x'), attributes: {} }]),
          (e: unknown) => isSmelterError(e, 'PUBSUB_UNAVAILABLE') && e.kind === 'transient',
        );
      } finally {
        await broken.close().catch(() => undefined);
      }
    });
  });
}
