/**
 * A micro-batcher shared by concurrent invocations of one instance, with group commit:
 * - when no flush is running, what is pending goes out at once (at the end of the current event-loop
 *   turn, so invocations that arrived together still share it) — a lone event never waits for a timer;
 * - items arriving while a flush runs accumulate and go out together when it completes (or as soon as
 *   `maxRows` of them are pending, if a flush slot is free);
 * - with `concurrency` > 1 and some (not all) slots busy, `maxMs` bounds how long the accumulated items
 *   wait for a running flush before taking a free slot. When every slot is busy nothing can go out
 *   earlier than the first flush to complete.
 * Batches hold at most `maxRows` items; `maxRows: 1` disables batching.
 *
 * `add()` settles only when the flush holding the item has settled — the caller (and so the Pub/Sub
 * acknowledgement) never runs ahead of the write, and a failed flush rejects every item in it so each
 * is redelivered.
 */
export interface BatcherOptions {
  maxRows: number;
  maxMs: number;
  concurrency?: number;
}

export type FlushFn<I, O> = (items: I[]) => Promise<O[]>;

interface Entry<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export interface BatcherStats {
  flushes: number;
  failedFlushes: number;
  items: number;
  largestBatch: number;
  pending: number;
  inflight: number;
}

export class MicroBatcher<I, O> {
  private pending: Entry<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** The pending items may go out as soon as a slot is free (timer fired, a flush completed, flush()). */
  private due = false;
  private inflight = 0;
  private closed = false;
  private idle: (() => void)[] = [];
  private readonly maxRows: number;
  private readonly maxMs: number;
  private readonly concurrency: number;
  readonly stats: BatcherStats = {
    flushes: 0,
    failedFlushes: 0,
    items: 0,
    largestBatch: 0,
    pending: 0,
    inflight: 0,
  };

  constructor(
    private readonly flushFn: FlushFn<I, O>,
    opts: BatcherOptions,
  ) {
    this.maxRows = Math.max(1, Math.floor(opts.maxRows));
    this.maxMs = Math.max(0, opts.maxMs);
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
  }

  add(item: I): Promise<O> {
    if (this.closed) return Promise.reject(new Error('The batcher is closed'));
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxRows) this.pump();
      else if (this.inflight === 0) this.soon();
      else this.arm();
      this.stats.pending = this.pending.length;
    });
  }

  /** Flushes everything pending now and waits until no flush is running. */
  async flush(): Promise<void> {
    this.due = this.pending.length > 0;
    this.pump();
    if (this.pending.length === 0 && this.inflight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Refuses new items, flushes the pending ones and waits for them. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Idle batcher: flush at the end of this event-loop turn (I/O callbacks of the same turn join in). */
  private soon(): void {
    this.immediate ??= setImmediate(() => {
      this.immediate = undefined;
      if (this.inflight === 0) this.due = true;
      this.pump();
    });
  }

  /** Busy batcher: bound the wait of the oldest pending item by maxMs. */
  private arm(): void {
    if (this.timer || this.due || this.inflight >= this.concurrency) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = true;
      this.pump();
    }, this.maxMs);
  }

  private pump(): void {
    while (
      this.pending.length > 0 &&
      this.inflight < this.concurrency &&
      (this.due || this.inflight === 0 || this.pending.length >= this.maxRows)
    ) {
      const batch = this.pending.splice(0, this.maxRows);
      this.clearTimer();
      // A full batch left more behind: those go out as soon as a slot frees (group commit).
      this.due = this.pending.length > 0;
      void this.run(batch);
    }
    if (this.pending.length === 0) this.due = false;
    else this.arm();
    this.stats.pending = this.pending.length;
    this.stats.inflight = this.inflight;
    if (this.pending.length === 0 && this.inflight === 0) for (const f of this.idle.splice(0)) f();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(batch: Entry<I, O>[]): Promise<void> {
    this.inflight++;
    this.stats.flushes++;
    this.stats.items += batch.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    try {
      const out = await this.flushFn(batch.map((e) => e.item));
      batch.forEach((e, i) => e.resolve(out[i] as O));
    } catch (err) {
      this.stats.failedFlushes++;
      for (const e of batch) e.reject(err);
    } finally {
      this.inflight--;
      // Group commit: what accumulated during this flush goes out now.
      if (this.pending.length > 0) this.due = true;
      this.pump();
    }
  }
}
