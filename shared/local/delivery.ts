/**
 * At-least-once HTTP delivery of CloudEvents to a local function, as Eventarc does it: binary-mode
 * CloudEvents, retry of non-2xx answers with exponential backoff, and after the configured attempts the
 * event is parked (kept on disk with its last error) and shown by `smelter status`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log';

export interface OutgoingEvent {
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  data: unknown;
}

export interface ParkedEvent {
  event: OutgoingEvent;
  target: string;
  attempts: number;
  lastError: string;
  parkedAt: string;
}

export interface DeliveryOptions {
  maxAttempts: number;
  retryBaseMs: number;
  /** Maximum concurrent requests to this target (the function's concurrency). */
  concurrency: number;
  stateDir: string;
  log: Logger;
  /** Called after the final outcome of each event. */
  onSettled?: (e: OutgoingEvent, ok: boolean) => void;
}

/** One queue per target function, bounded by the function's concurrency. */
export class DeliveryQueue {
  private readonly queue: { e: OutgoingEvent; n: number }[] = [];
  private inFlight = 0;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: (() => void)[] = [];
  delivered = 0;
  failedAttempts = 0;
  parked = 0;

  constructor(
    readonly target: string,
    private readonly opts: DeliveryOptions,
  ) {}

  enqueue(e: OutgoingEvent): void {
    this.queue.push({ e, n: 1 });
    this.pump();
  }

  get pending(): number {
    return this.queue.length + this.inFlight + this.timers.size;
  }

  /** Resolves when nothing is queued, in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.pending === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      w.forEach((f) => f());
    }
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.opts.concurrency && this.queue.length) {
      const { e, n } = this.queue.shift() as { e: OutgoingEvent; n: number };
      this.inFlight++;
      void this.attempt(e, n).finally(() => {
        this.inFlight--;
        this.pump();
        this.checkIdle();
      });
    }
  }

  private async attempt(e: OutgoingEvent, n: number): Promise<void> {
    const err = await postCloudEvent(this.target, e);
    if (this.stopped) return;
    if (!err) {
      this.delivered++;
      this.opts.onSettled?.(e, true);
      return;
    }
    this.failedAttempts++;
    if (n >= this.opts.maxAttempts) {
      this.parked++;
      await park(this.opts.stateDir, {
        event: e,
        target: this.target,
        attempts: n,
        lastError: err,
        parkedAt: new Date().toISOString(),
      });
      this.opts.log.error(`event parked after ${n} attempts`, {
        eventId: e.id,
        subject: e.subject,
        target: this.target,
        lastError: err,
      });
      this.opts.onSettled?.(e, false);
      return;
    }
    const delay = Math.min(30_000, this.opts.retryBaseMs * 2 ** (n - 1));
    this.opts.log.warn(`delivery failed, retrying in ${delay} ms`, {
      eventId: e.id,
      subject: e.subject,
      attempt: n,
      error: err,
    });
    // Retries go back through the queue, so they respect the concurrency bound like fresh deliveries.
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.queue.push({ e, n: n + 1 });
      this.pump();
    }, delay);
    this.timers.add(t);
  }
}

/** POSTs a binary-mode CloudEvent; returns an error string, or undefined on 2xx. */
export async function postCloudEvent(
  target: string,
  e: OutgoingEvent,
  timeoutMs = 600_000,
): Promise<string | undefined> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'ce-specversion': '1.0',
    'ce-id': e.id,
    'ce-source': e.source,
    'ce-type': e.type,
    'ce-time': e.time,
  };
  if (e.subject) headers['ce-subject'] = e.subject;
  try {
    const res = await fetch(target, {
      method: 'POST',
      headers,
      body: JSON.stringify(e.data),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) return undefined;
    return `HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`;
  } catch (err) {
    return `request failed: ${(err as Error).message}`;
  }
}

export function eventId(parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

function parkedDir(stateDir: string): string {
  return path.join(stateDir, 'parked');
}

async function park(stateDir: string, p: ParkedEvent): Promise<void> {
  const dir = parkedDir(stateDir);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, `${p.event.id}.json`), JSON.stringify(p, null, 2));
}

export function listParked(stateDir: string): ParkedEvent[] {
  const dir = parkedDir(stateDir);
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ParkedEvent)
      .sort((a, b) => a.parkedAt.localeCompare(b.parkedAt));
  } catch {
    return [];
  }
}
