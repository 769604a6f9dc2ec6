/**
 * The dead-letter topic when no Pub/Sub is reachable (local backend without PUBSUB_EMULATOR_HOST):
 * messages are appended as NDJSON to `<home>/state/topics/<topic>.ndjson`, one Pub/Sub-shaped
 * message per line — `{"messageId","publishTime","attributes","data" (base64),"loggedAt"}`, the
 * TopicLogEntry format of shared/local/pubsub/topic-log.ts, where the local stack keeps every dead
 * letter. One append and fsync per flush.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { transient } from '../../errors';
import type { DeadLetterMessage, DeadLetterPublisher } from '../../events/ports';

export function topicFile(home: string, topic: string): string {
  return path.join(home, 'state', 'topics', `${topic}.ndjson`);
}

export class FileDeadLetterPublisher implements DeadLetterPublisher {
  readonly kind = 'file';
  readonly file: string;
  private tail: Promise<void> = Promise.resolve();

  constructor(home: string, topic: string) {
    this.file = topicFile(home, topic);
  }

  publish(messages: readonly DeadLetterMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    const publishTime = new Date().toISOString();
    const text = messages
      .map((m) =>
        JSON.stringify({
          messageId: randomUUID(),
          publishTime,
          attributes: m.attributes,
          data: m.data.toString('base64'),
          loggedAt: publishTime,
        }),
      )
      .join('\n');
    // Appends are chained so lines from concurrent flushes never interleave.
    const run = this.tail.then(() => this.append(text + '\n'));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async append(text: string): Promise<void> {
    try {
      await fsp.mkdir(path.dirname(this.file), { recursive: true });
      const fh = await fsp.open(this.file, 'a');
      try {
        await fh.write(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw transient(
        'PUBSUB_UNAVAILABLE',
        `Cannot append to the local dead-letter topic ${this.file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {
    await this.tail;
  }
}
