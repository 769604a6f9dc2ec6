/**
 * A micro-batcher shared by concurrent invocations of one instance: items are flushed together when
 * `maxRows` are pending or the oldest has waited `maxMs`. `add()` settles only when the flush holding
 * the item has settled — the caller (and so the Pub/Sub acknowledgement) never runs ahead of the
 * write, and a failed flush rejects every item in it so each is redelivered.
 *
 * At most `concurrency` flushes run at once; items arriving meanwhile accumulate and go out as soon
 * as a slot frees (group commit). `maxRows: 1` disables batching.
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
      this.pump();
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

  private pump(): void {
    while (
      this.pending.length > 0 &&
      this.inflight < this.concurrency &&
      (this.due || this.pending.length >= this.maxRows)
    ) {
      const batch = this.pending.splice(0, this.maxRows);
      this.clearTimer();
      // Leftovers arrived while the slots were busy: they go out as soon as a slot frees.
      this.due = this.pending.length > 0;
      void this.run(batch);
    }
    if (this.pending.length > 0 && !this.due && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.due = true;
        this.pump();
      }, this.maxMs);
    }
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
      this.pump();
    }
  }
}
