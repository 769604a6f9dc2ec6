/**
 * The embedded Pub/Sub's write-ahead log: what `publish` accepted survives a crash of the process.
 *
 * One append-only NDJSON file per bus (`<home>/state/pubsub/embedded/<pid>-<random>.log`): a `m` line
 * per accepted message (with the push subscriptions it must reach), an `a` line per (message,
 * subscription) settled — delivered or dead-lettered. Lines are written in groups with one write and
 * one fdatasync; `append` resolves only once its line is on disk, so a publish acknowledged to its
 * caller is never lost. Acks ride along unsynced: a lost ack means a redelivery (at-least-once).
 *
 * On start, the logs of buses no longer running (their process is gone, or they were closed in this
 * one) are read back: every message not settled for a subscription is returned for redelivery and
 * copied into the new log before the old files are removed. A torn last line (a crash mid-write) was
 * never acknowledged and is skipped. When the file outgrows `maxBytes`, it is rewritten with only the
 * messages still unsettled.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PushMessage } from './push';

/** A message and the push subscriptions that have not settled it yet. */
export interface LoggedMessage {
  topic: string;
  msg: PushMessage;
  subs: string[];
}

interface MessageLine {
  t: 'm';
  id: string;
  topic: string;
  publishTime: string;
  attributes: Record<string, string>;
  data: string;
  subs: string[];
}

interface AckLine {
  t: 'a';
  id: string;
  sub: string;
}

export function backlogDir(home: string): string {
  return path.join(home, 'state', 'pubsub', 'embedded');
}

/** Log files open in this process: never recovered from under a running bus. */
const openHere = new Set<string>();

const messageLine = (m: LoggedMessage): string =>
  JSON.stringify({
    t: 'm',
    id: m.msg.id,
    topic: m.topic,
    publishTime: m.msg.publishTime,
    attributes: m.msg.attributes,
    data: m.msg.data.toString('base64'),
    subs: m.subs,
  } satisfies MessageLine) + '\n';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Owner pid of a log file name, or undefined when the name is not one of ours. */
const ownerOf = (file: string): number | undefined => {
  const m = /^(\d+)-[0-9a-f]+(?:-\d+)?\.log$/.exec(file);
  return m ? Number(m[1]) : undefined;
};

export class BacklogLog {
  private file: string;
  private fd: number;
  private size = 0;
  private rotations = 0;
  private lines: string[] = [];
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private closed = false;
  private readonly base: string;

  /**
   * Opens a new log and takes over the logs of buses no longer running; `recovered` holds their
   * unsettled messages in publication order.
   */
  readonly recovered: LoggedMessage[];

  constructor(
    readonly dir: string,
    /** Everything still unsettled, for a rewrite when the file outgrows maxBytes. */
    private readonly live: () => Iterable<LoggedMessage>,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.base = `${process.pid}-${randomBytes(4).toString('hex')}`;
    this.file = path.join(dir, `${this.base}.log`);
    const orphans = fs
      .readdirSync(dir)
      .filter((f) => {
        const pid = ownerOf(f);
        const full = path.join(dir, f);
        if (pid === undefined || openHere.has(full)) return false;
        return pid === process.pid || !pidAlive(pid);
      })
      .sort();
    this.recovered = orphans.flatMap((f) => readLog(path.join(dir, f)));
    // The new log holds the recovered messages before the old files go: a crash in between
    // leaves them in both (a redelivery), never in neither.
    this.fd = fs.openSync(this.file, 'wx');
    openHere.add(this.file);
    if (this.recovered.length) {
      const text = this.recovered.map(messageLine).join('');
      fs.writeSync(this.fd, text);
      this.size = Buffer.byteLength(text);
      fs.fdatasyncSync(this.fd);
    }
    for (const f of orphans) fs.rmSync(path.join(dir, f), { force: true });
    fsyncDir(dir);
  }

  get path(): string {
    return this.file;
  }

  /** Resolves once the message is durably logged. */
  append(m: LoggedMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error('The Pub/Sub log is closed'));
    return new Promise<void>((resolve, reject) => {
      this.lines.push(messageLine(m));
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Records that `sub` settled message `id`; written with the next group, not waited for. */
  ack(id: string, sub: string): void {
    if (this.closed) return;
    this.lines.push(JSON.stringify({ t: 'a', id, sub } satisfies AckLine) + '\n');
    this.schedule();
  }

  /** Writes what is pending, then closes; the file stays for the next bus when anything is unsettled. */
  async close(unsettled: boolean): Promise<void> {
    if (this.closed) return;
    await this.drain();
    this.closed = true;
    fs.closeSync(this.fd);
    openHere.delete(this.file);
    if (!unsettled) fs.rmSync(this.file, { force: true });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // The rest of this event-loop turn joins the group.
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.lines.length) this.schedule();
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.flushing || this.scheduled || this.lines.length) {
      if (this.flushing) await this.flushing;
      else if (this.lines.length && !this.scheduled) this.schedule();
      else await new Promise((r) => setImmediate(r));
    }
  }

  private async flush(): Promise<void> {
    const lines = this.lines;
    const waiters = this.waiters;
    this.lines = [];
    this.waiters = [];
    if (!lines.length) return;
    try {
      const buf = Buffer.from(lines.join(''));
      const fh = this.fd;
      await new Promise<void>((resolve, reject) =>
        fs.write(fh, buf, 0, buf.length, null, (err, n) =>
          err
            ? reject(err)
            : n < buf.length
              ? reject(new Error('short write to the Pub/Sub log'))
              : resolve(),
        ),
      );
      this.size += buf.length;
      await new Promise<void>((resolve, reject) => fs.fdatasync(fh, (e) => (e ? reject(e) : resolve())));
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    if (this.size > this.maxBytes) {
      try {
        this.rewrite();
      } catch {
        // Not fatal: the current file still holds everything; retried after the next group.
      }
    }
  }

  /**
   * Replaces the file by one holding only what is unsettled (synced before the old one goes). Rare
   * (every maxBytes of traffic), so plain synchronous calls.
   */
  private rewrite(): void {
    const next = path.join(this.dir, `${this.base}-${++this.rotations}.log`);
    const text = [...this.live()].map(messageLine).join('');
    const fd = fs.openSync(next, 'wx');
    try {
      fs.writeSync(fd, text);
      fs.fdatasyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(next, { force: true });
      throw err;
    }
    openHere.add(next);
    fsyncDir(this.dir);
    fs.closeSync(this.fd);
    openHere.delete(this.file);
    fs.rmSync(this.file, { force: true });
    this.fd = fd;
    this.file = next;
    this.size = Buffer.byteLength(text);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* not supported here: the file's own fsync still holds its bytes */
  }
}

/** The unsettled messages of one log file, in order. */
export function readLog(file: string): LoggedMessage[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const byId = new Map<string, LoggedMessage>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    let r: MessageLine | AckLine;
    try {
      r = JSON.parse(line) as MessageLine | AckLine;
    } catch {
      continue; // a torn line from a crash: its publish was never acknowledged
    }
    if (r.t === 'm')
      byId.set(r.id, {
        topic: r.topic,
        msg: {
          id: r.id,
          publishTime: r.publishTime,
          attributes: r.attributes,
          data: Buffer.from(r.data, 'base64'),
        },
        subs: [...r.subs],
      });
    else if (r.t === 'a') {
      const m = byId.get(r.id);
      if (!m) continue;
      m.subs = m.subs.filter((s) => s !== r.sub);
      if (!m.subs.length) byId.delete(r.id);
    }
  }
  return [...byId.values()];
}
