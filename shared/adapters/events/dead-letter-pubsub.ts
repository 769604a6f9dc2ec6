/**
 * The dead-letter topic on Pub/Sub (`@google-cloud/pubsub`, which targets PUBSUB_EMULATOR_HOST when it
 * is set). With `createTopic` (local emulator only) a missing topic is created on first use; on GCP the
 * topic belongs to deploy and a missing one is a transient error, so events are redelivered, not lost.
 */
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { transient } from '../../errors';
import type { DeadLetterMessage, DeadLetterPublisher } from '../../events/ports';

export interface PubSubDeadLetterOptions {
  projectId: string;
  topic: string;
  createTopic?: boolean;
  client?: PubSub;
}

const NOT_FOUND = 5;

export class PubSubDeadLetterPublisher implements DeadLetterPublisher {
  readonly kind = 'pubsub';
  readonly client: PubSub;
  private readonly topic: Topic;
  private created: Promise<void> | undefined;

  constructor(readonly opts: PubSubDeadLetterOptions) {
    this.client = opts.client ?? new PubSub({ projectId: opts.projectId });
    // Small client-side batches: a flush's dead letters go out together, quickly.
    this.topic = this.client.topic(opts.topic, { batching: { maxMessages: 100, maxMilliseconds: 5 } });
  }

  async publish(messages: readonly DeadLetterMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      await this.publishAll(messages);
    } catch (err) {
      if ((err as { code?: unknown }).code === NOT_FOUND && this.opts.createTopic) {
        await this.ensureTopic();
        try {
          await this.publishAll(messages);
          return;
        } catch (again) {
          throw mapError(again, this.opts.topic);
        }
      }
      throw mapError(err, this.opts.topic);
    }
  }

  private async publishAll(messages: readonly DeadLetterMessage[]): Promise<void> {
    await Promise.all(
      messages.map((m) => this.topic.publishMessage({ data: m.data, attributes: m.attributes })),
    );
  }

  private ensureTopic(): Promise<void> {
    this.created ??= this.topic
      .create()
      .then(() => undefined)
      .catch((err: { code?: unknown }) => {
        if (err.code !== 6 /* ALREADY_EXISTS */) {
          this.created = undefined;
          throw err;
        }
      });
    return this.created;
  }

  async close(): Promise<void> {
    try {
      await this.topic.flush();
    } finally {
      await this.client.close();
    }
  }
}

function mapError(err: unknown, topic: string): Error {
  const e = err as Error & { code?: unknown };
  const hint =
    e.code === NOT_FOUND ? ' — the topic does not exist (deploy, or `smelter up` locally, creates it)' : '';
  return transient(
    'PUBSUB_UNAVAILABLE',
    `Publishing to the dead-letter topic ${topic} failed: ${e.message}${hint}`,
    {
      cause: err,
      details: { topic, grpcCode: e.code },
    },
  );
}
