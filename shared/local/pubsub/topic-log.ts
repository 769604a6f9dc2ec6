/**
 * Append-only NDJSON record of the messages of one topic (`<home>/state/topics/<topic>.ndjson`): the
 * local stack keeps every dead letter there, in emulator and embedded mode alike, so they survive
 * restarts and can be inspected with any text tool.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PushMessage } from './push';

export interface TopicLogEntry {
  messageId: string;
  publishTime: string;
  attributes: Record<string, string>;
  /** base64 of the original bytes (they may not be UTF-8). */
  data: string;
  loggedAt: string;
}

export function topicLogFile(home: string, topic: string): string {
  return path.join(home, 'state', 'topics', `${topic}.ndjson`);
}

export class TopicLog {
  readonly file: string;
  private count = 0;

  constructor(
    home: string,
    readonly topic: string,
  ) {
    this.file = topicLogFile(home, topic);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
  }

  /** Entries appended by this process. */
  get appended(): number {
    return this.count;
  }

  /** Synchronous append: one small line per dead letter, durable before the message is acknowledged. */
  append(m: PushMessage): void {
    const e: TopicLogEntry = {
      messageId: m.id,
      publishTime: m.publishTime,
      attributes: m.attributes,
      data: m.data.toString('base64'),
      loggedAt: new Date().toISOString(),
    };
    fs.appendFileSync(this.file, JSON.stringify(e) + '\n');
    this.count++;
  }

  /** The last `limit` entries (the whole file is read: it only holds dead letters). */
  tail(limit = 100): TopicLogEntry[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n').filter(Boolean);
    const out: TopicLogEntry[] = [];
    for (const l of lines.slice(-limit)) {
      try {
        out.push(JSON.parse(l) as TopicLogEntry);
      } catch {
        /* a torn last line after a crash */
      }
    }
    return out;
  }

  total(): number {
    try {
      return fs.readFileSync(this.file, 'utf8').split('\n').filter(Boolean).length;
    } catch {
      return 0;
    }
  }
}
