/**
 * The local stand-in for Cloud Scheduler: publishes a refresh message to the refresh topic every N
 * seconds through the stack's Pub/Sub (emulator or embedded), which pushes it to loadWarehouse like
 * the deployed scheduler job does. Ticks never overlap; a failed publish is logged and retried at the
 * next tick.
 */
import type { LocalPubsub, StackContext, StackPart } from './stack';

export interface SchedulerOptions {
  /** Interval between refresh messages (default: SMELTER_REFRESH_INTERVAL_MS). */
  intervalMs?: number;
  /** Topic (default: cfg.refreshTopic). */
  topic?: string;
  /** Publish once right after start (default true: a fresh stack catches up immediately). */
  immediate?: boolean;
}

export interface SchedulerStats {
  topic: string;
  intervalMs: number;
  published: number;
  failures: number;
  lastPublishedAt?: string;
  lastError?: string;
}

export class RefreshScheduler implements StackPart {
  readonly name = 'scheduler';
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stats: SchedulerStats | undefined;
  private ctx: Pick<StackContext, 'log' | 'pubsub'> | undefined;
  private warned = false;

  constructor(private readonly opts: SchedulerOptions = {}) {}

  async start(ctx: StackContext): Promise<void> {
    // The options table validates SMELTER_REFRESH_INTERVAL_MS (≥ 1 s) and defaults it.
    const intervalMs = this.opts.intervalMs ?? ctx.cfg.refreshIntervalMs;
    const topic = this.opts.topic ?? ctx.cfg.refreshTopic;
    this.stats = { topic, intervalMs, published: 0, failures: 0 };
    // Pub/Sub is read at each tick: the part providing it may start after this one.
    this.ctx = ctx;
    ctx.statusSections.set('scheduler', async () => ({ ...this.stats }));
    const tick = (): void => void this.tick();
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    if (this.opts.immediate ?? true) tick();
    ctx.log.info('scheduler: refresh messages', { topic, everyMs: intervalMs });
  }

  /** Publishes one refresh message unless the previous one is still being published. */
  async tick(): Promise<boolean> {
    const stats = this.stats;
    const ctx = this.ctx;
    if (this.running || !stats || !ctx) return false;
    const pubsub: LocalPubsub | undefined = ctx.pubsub;
    if (!pubsub) {
      if (!this.warned)
        ctx.log.warn('scheduler: no local Pub/Sub in this stack; refresh with `smelter refresh`');
      this.warned = true;
      return false;
    }
    this.running = true;
    const at = new Date().toISOString();
    try {
      await pubsub.publish(stats.topic, Buffer.from(JSON.stringify({ reason: 'schedule', at })), {
        source: 'smelter-scheduler',
      });
      stats.published++;
      stats.lastPublishedAt = at;
      return true;
    } catch (err) {
      stats.failures++;
      stats.lastError = (err as Error).message;
      ctx.log.warn('scheduler: publishing the refresh message failed; next tick retries', { err });
      return false;
    } finally {
      this.running = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): SchedulerStats | undefined {
    return this.stats ? { ...this.stats } : undefined;
  }
}

/** The stack part named 'scheduler'. */
export function schedulerPart(opts: SchedulerOptions = {}): RefreshScheduler {
  return new RefreshScheduler(opts);
}
