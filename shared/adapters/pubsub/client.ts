/**
 * The one place Smelter talks to Pub/Sub through `@google-cloud/pubsub` outside the functions: topic
 * and subscription setup on the emulator (idempotent, converging existing resources), publishing,
 * streaming pull and synchronous pull. Works against the emulator (`emulatorHost`) or real Pub/Sub.
 */
import { PubSub, v1, type Topic } from '@google-cloud/pubsub';
import { SmelterError } from '../../errors';

export interface PubsubClientOptions {
  projectId: string;
  /** `host:port` of an emulator; real Pub/Sub when absent. */
  emulatorHost?: string;
}

export interface SubscriptionSpec {
  name: string;
  topic: string;
  /** Push endpoint; a pull subscription when absent. */
  pushEndpoint?: string;
  ackDeadlineSeconds?: number;
  deadLetter?: { topic: string; maxDeliveryAttempts: number };
}

/** A pulled message, SDK-free. */
export interface PulledMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: string;
  /** 1-based; 0 when the subscription has no dead-letter policy. */
  deliveryAttempt: number;
  ack(): void;
  nack(): void;
}

export interface StreamingSubscriber {
  close(): Promise<void>;
}

const GRPC_ALREADY_EXISTS = 6;
const GRPC_NOT_FOUND = 5;
const code = (err: unknown): number | undefined => (err as { code?: number }).code;

export class PubsubClient {
  readonly pubsub: PubSub;
  private readonly topics = new Map<string, Topic>();

  constructor(readonly opts: PubsubClientOptions) {
    this.pubsub = new PubSub({
      projectId: opts.projectId,
      ...(opts.emulatorHost ? { apiEndpoint: opts.emulatorHost, emulatorMode: true } : {}),
    });
  }

  topicPath(name: string): string {
    return `projects/${this.opts.projectId}/topics/${name}`;
  }

  subscriptionPath(name: string): string {
    return `projects/${this.opts.projectId}/subscriptions/${name}`;
  }

  async ensureTopic(name: string): Promise<'created' | 'exists'> {
    try {
      await this.pubsub.createTopic(name);
      return 'created';
    } catch (err) {
      if (code(err) === GRPC_ALREADY_EXISTS) return 'exists';
      throw unavailable(`creating topic ${name}`, err);
    }
  }

  /** Creates the subscription, or converges an existing one (push endpoint, dead-letter policy, ack deadline). */
  async ensureSubscription(spec: SubscriptionSpec): Promise<'created' | 'updated'> {
    const options = {
      pushConfig: spec.pushEndpoint ? { pushEndpoint: spec.pushEndpoint } : {},
      ...(spec.ackDeadlineSeconds ? { ackDeadlineSeconds: spec.ackDeadlineSeconds } : {}),
      ...(spec.deadLetter
        ? {
            deadLetterPolicy: {
              deadLetterTopic: this.topicPath(spec.deadLetter.topic),
              maxDeliveryAttempts: spec.deadLetter.maxDeliveryAttempts,
            },
          }
        : {}),
    };
    try {
      await this.pubsub.topic(spec.topic).createSubscription(spec.name, options);
      return 'created';
    } catch (err) {
      if (code(err) !== GRPC_ALREADY_EXISTS) throw unavailable(`creating subscription ${spec.name}`, err);
    }
    const sub = this.pubsub.subscription(spec.name);
    try {
      const [meta] = await sub.getMetadata();
      if (meta.topic !== this.topicPath(spec.topic)) {
        // Subscriptions cannot move between topics: recreate.
        await sub.delete();
        await this.pubsub.topic(spec.topic).createSubscription(spec.name, options);
        return 'updated';
      }
      await sub.modifyPushConfig(options.pushConfig);
      await sub.setMetadata({
        ...(spec.ackDeadlineSeconds ? { ackDeadlineSeconds: spec.ackDeadlineSeconds } : {}),
        deadLetterPolicy: options.deadLetterPolicy ?? null,
      });
      return 'updated';
    } catch (err) {
      throw unavailable(`updating subscription ${spec.name}`, err);
    }
  }

  async deleteSubscription(name: string): Promise<void> {
    try {
      await this.pubsub.subscription(name).delete();
    } catch (err) {
      if (code(err) !== GRPC_NOT_FOUND) throw unavailable(`deleting subscription ${name}`, err);
    }
  }

  async listTopics(): Promise<string[]> {
    const [topics] = await this.pubsub.getTopics();
    return topics.map((t) => t.name.split('/').pop() as string);
  }

  async listSubscriptions(): Promise<
    { name: string; topic: string; pushEndpoint?: string; deadLetterTopic?: string }[]
  > {
    const [subs] = await this.pubsub.getSubscriptions();
    return subs.map((s) => {
      const m = s.metadata ?? {};
      const out: { name: string; topic: string; pushEndpoint?: string; deadLetterTopic?: string } = {
        name: s.name.split('/').pop() as string,
        topic: String(m.topic ?? '')
          .split('/')
          .pop() as string,
      };
      if (m.pushConfig?.pushEndpoint) out.pushEndpoint = m.pushConfig.pushEndpoint;
      if (m.deadLetterPolicy?.deadLetterTopic)
        out.deadLetterTopic = m.deadLetterPolicy.deadLetterTopic.split('/').pop() as string;
      return out;
    });
  }

  /**
   * A publisher for one topic. `maxMilliseconds` bounds the client-side batching delay (1 ms keeps
   * publish latency low; larger batches give throughput).
   */
  private topic(name: string, maxMilliseconds = 1): Topic {
    const key = `${name}\u0000${maxMilliseconds}`;
    let t = this.topics.get(key);
    if (!t) {
      t = this.pubsub.topic(name, {
        batching: { maxMessages: 1000, maxMilliseconds, maxBytes: 9 * 1024 ** 2 },
      });
      this.topics.set(key, t);
    }
    return t;
  }

  async publish(
    topic: string,
    data: Buffer,
    attributes: Record<string, string> = {},
    opts: { maxMilliseconds?: number } = {},
  ): Promise<string> {
    try {
      return await this.topic(topic, opts.maxMilliseconds).publishMessage({ data, attributes });
    } catch (err) {
      throw unavailable(`publishing to ${topic}`, err);
    }
  }

  /** Streaming pull with flow control; `onMessage` must ack or nack every message. */
  subscribe(
    subscription: string,
    onMessage: (m: PulledMessage) => void,
    opts: { maxMessages?: number; onError?: (err: Error) => void } = {},
  ): StreamingSubscriber {
    const sub = this.pubsub.subscription(subscription, {
      flowControl: { maxMessages: opts.maxMessages ?? 1000, allowExcessMessages: false },
      batching: { maxMessages: 1000, maxMilliseconds: 5 },
    });
    sub.on('message', (m) =>
      onMessage({
        id: m.id,
        data: m.data,
        attributes: m.attributes ?? {},
        publishTime: m.publishTime.toISOString(),
        deliveryAttempt: m.deliveryAttempt ?? 0,
        ack: () => m.ack(),
        nack: () => m.nack(),
      }),
    );
    // An unhandled 'error' event would crash the process (e.g. the emulator stopping first).
    sub.on('error', (err: Error) => opts.onError?.(err));
    return {
      close: async () => {
        await sub.close().catch(() => undefined);
        sub.removeAllListeners();
      },
    };
  }

  /** Synchronous pull (no streaming): inspects a subscription; acknowledges only when asked. */
  async pull(
    subscription: string,
    maxMessages: number,
    opts: { ack?: boolean } = {},
  ): Promise<Omit<PulledMessage, 'ack' | 'nack'>[]> {
    const client = new v1.SubscriberClient(
      this.pubsub.options as ConstructorParameters<typeof v1.SubscriberClient>[0],
    );
    try {
      const [res] = await client.pull({
        subscription: this.subscriptionPath(subscription),
        maxMessages,
        returnImmediately: true,
      });
      const received = res.receivedMessages ?? [];
      const ackIds = received.map((r) => r.ackId).filter((x): x is string => !!x);
      if (ackIds.length) {
        if (opts.ack) await client.acknowledge({ subscription: this.subscriptionPath(subscription), ackIds });
        // Give them back at once rather than after the ack deadline.
        else
          await client.modifyAckDeadline({
            subscription: this.subscriptionPath(subscription),
            ackIds,
            ackDeadlineSeconds: 0,
          });
      }
      return received.map((r) => {
        const m = r.message ?? {};
        const pt = m.publishTime;
        return {
          id: String(m.messageId ?? ''),
          data: Buffer.from(m.data ?? ''),
          attributes: (m.attributes ?? {}) as Record<string, string>,
          publishTime:
            pt?.seconds != null
              ? new Date(Number(pt.seconds) * 1000 + Math.floor((pt.nanos ?? 0) / 1e6)).toISOString()
              : '',
          deliveryAttempt: r.deliveryAttempt ?? 0,
        };
      });
    } catch (err) {
      throw unavailable(`pulling from ${subscription}`, err);
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.topics.values()].map((t) => t.flush().catch(() => undefined)));
    this.topics.clear();
    await this.pubsub.close().catch(() => undefined);
  }
}

function unavailable(what: string, err: unknown): SmelterError {
  const e = err as { message?: string; details?: string };
  return new SmelterError(
    'PUBSUB_UNAVAILABLE',
    `Pub/Sub failed ${what}: ${e.details ?? e.message ?? String(err)}`,
    {
      cause: err,
    },
  );
}
