/**
 * The local stand-in for the per-source Cloud Scheduler jobs: publishes `{"source": "<name>"}` on the
 * pull topic at each source contract's cron schedule (UTC), through the stack's Pub/Sub, which pushes
 * it to pullSource as the deployed jobs do. Optionally once at start, so a fresh stack has data at once.
 * Its status section lists each source's schedule, next run and the last run's outcome.
 */
import { listSources, loadSourceContract, type SourceContract } from '../pull/contract';
import { nextCronTime } from '../pull/cron';
import { readRunRecord } from '../pull/state';
import type { StackContext, StackPart } from './stack';

export interface PullSchedulerOptions {
  /** Publish one pull per source right after start (default false). */
  immediate?: boolean;
  now?: () => number;
}

interface Entry {
  source: string;
  schedule: string;
  next?: string;
  published: number;
  failures: number;
  lastPublishedAt?: string;
  lastError?: string;
}

/** setTimeout cannot wait longer than ~24.8 days; far schedules are re-checked hourly. */
const MAX_WAIT_MS = 3_600_000;

export class PullScheduler implements StackPart {
  readonly name = 'pull-scheduler';
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly entries = new Map<string, Entry>();
  private ctx: StackContext | undefined;
  private stopped = false;

  constructor(private readonly opts: PullSchedulerOptions = {}) {}

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  async start(ctx: StackContext): Promise<void> {
    this.ctx = ctx;
    const contracts: SourceContract[] = [];
    for (const name of listSources(ctx.cfg.contractsDir)) {
      try {
        contracts.push(loadSourceContract(ctx.cfg.contractsDir, name));
      } catch (err) {
        ctx.log.warn(`pull scheduler: source "${name}" skipped`, { err });
      }
    }
    for (const c of contracts) {
      if (!c.cron || !c.schedule) continue;
      this.entries.set(c.source, { source: c.source, schedule: c.schedule, published: 0, failures: 0 });
      this.arm(c);
    }
    ctx.statusSections.set('pulls', async () => {
      const out: Record<string, unknown> = {};
      for (const name of listSources(ctx.cfg.contractsDir)) {
        const e = this.entries.get(name);
        const last = await readRunRecord(ctx.store, ctx.cfg.bronzeBucket, name).catch(() => undefined);
        out[name] = { ...(e ?? { schedule: null }), ...(last ? { lastRun: last } : {}) };
      }
      return out;
    });
    if (this.entries.size)
      ctx.log.info('pull scheduler: sources on their schedules (UTC)', {
        sources: [...this.entries.values()].map((e) => `${e.source} "${e.schedule}"`).join(', '),
      });
    if (this.opts.immediate) for (const c of contracts) void this.publish(c.source);
  }

  private arm(c: SourceContract): void {
    if (this.stopped || !c.cron) return;
    const entry = this.entries.get(c.source) as Entry;
    const next = nextCronTime(c.cron, new Date(this.now()));
    entry.next = next?.toISOString();
    if (!next) return;
    const wait = next.getTime() - this.now();
    const t = setTimeout(
      () => {
        this.timers.delete(c.source);
        if (this.now() >= next.getTime() - 1000) void this.publish(c.source);
        this.arm(c);
      },
      Math.max(0, Math.min(wait, MAX_WAIT_MS)),
    );
    t.unref();
    this.timers.set(c.source, t);
  }

  /** Publishes one pull message for `source` (the scheduler's tick; also used by tests). */
  async publish(source: string): Promise<boolean> {
    const ctx = this.ctx;
    if (!ctx) return false;
    const entry = this.entries.get(source) ?? { source, schedule: '', published: 0, failures: 0 };
    this.entries.set(source, entry);
    if (!ctx.pubsub) {
      ctx.log.warn(`pull scheduler: no local Pub/Sub in this stack; run \`smelter pull ${source}\``);
      return false;
    }
    const at = new Date(this.now()).toISOString();
    try {
      await ctx.pubsub.publish(ctx.cfg.pullTopic, Buffer.from(JSON.stringify({ source })), {
        source: 'smelter-scheduler',
      });
      entry.published++;
      entry.lastPublishedAt = at;
      return true;
    } catch (err) {
      entry.failures++;
      entry.lastError = (err as Error).message;
      ctx.log.warn('pull scheduler: publishing failed; the next schedule retries', { source, err });
      return false;
    }
  }

  status(): Entry[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

export function pullSchedulerPart(opts: PullSchedulerOptions = {}): PullScheduler {
  return new PullScheduler(opts);
}
