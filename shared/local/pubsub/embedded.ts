/**
 * In-process Pub/Sub for machines without the emulator, with the semantics Smelter relies on:
 * - publish returns a message id; a topic without subscriptions drops the message (as Pub/Sub does);
 * - push subscriptions POST the push JSON to `<function>/projects/P/topics/T`, at most `concurrency`
 *   requests in flight per subscription; a 2xx acknowledges;
 * - a non-2xx answer, a refused connection or no answer within the ack deadline is retried with
 *   exponential backoff (0.5 s doubling, capped) — at-least-once, so the function may see a message
 *   again after a slow success;
 * - after `maxDeliveryAttempts` the message is dead-lettered: published to the dead-letter topic with
 *   the `CloudPubSubDeadLetterSource*` attributes real Pub/Sub adds (measured on the emulator too);
 * - pull subscriptions (the dead-letter inspection one) keep messages until pulled with `ack`;
 * - every message reaching a dead-letter topic is appended to `<home>/state/topics/<topic>.ndjson`;
 * - `publish` resolves once the message is in a write-ahead log on disk (backlog-log.ts, fsynced in
 *   groups): what a push subscription has not settled when the process stops or crashes is delivered
 *   by the next bus on the same home. Pull subscriptions (dead-letter inspection) stay in memory; their
 *   messages are in the topic's NDJSON record anyway.
 */
import type { SubscriptionSpec } from '../../adapters/pubsub/client';
import { SmelterError } from '../../errors';
import type { Logger } from '../../log';
import type { LocalPubsub } from '../stack';
import { BacklogLog, backlogDir, type LoggedMessage } from './backlog-log';
import { backoffMs, postPush, pushBody, type PushMessage, type PushResult } from './push';
import { TopicLog } from './topic-log';

export interface EmbeddedPubsubOptions {
  project: string;
  home: string;
  log?: Logger;
  /** Push requests in flight per subscription. */
  concurrency?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Test seam: the HTTP push. */
  post?: (endpoint: string, body: string, timeoutMs: number) => Promise<PushResult>;
  /** Keep accepted messages in a write-ahead log under `<home>/state/pubsub/embedded` (default true). */
  durable?: boolean;
}

interface Delivery {
  msg: PushMessage;
  attempts: number;
}

interface SubscriptionState {
  spec: SubscriptionSpec;
  path: string;
  ready: Delivery[];
  waiting: Set<NodeJS.Timeout>;
  inFlight: number;
  delivered: number;
  failedAttempts: number;
  deadLettered: number;
  lastError?: string;
  /** Pull subscriptions only. */
  held: PushMessage[];
}

interface TopicState {
  name: string;
  published: number;
  subs: SubscriptionState[];
  log?: TopicLog;
}

const MAX_HELD = 10_000;

export class EmbeddedPubsub implements LocalPubsub {
  readonly mode = 'embedded' as const;
  private readonly topics = new Map<string, TopicState>();
  private readonly subs = new Map<string, SubscriptionState>();
  private readonly idPrefix = BigInt(Date.now()) * 1_000_000n;
  private seq = 0n;
  private closed = false;
  private readonly concurrency: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly post: NonNullable<EmbeddedPubsubOptions['post']>;
  private idleWaiters: (() => void)[] = [];
  /** Messages some push subscription has not settled (delivered or dead-lettered) yet, by id. */
  private readonly unsettled = new Map<string, LoggedMessage>();
  /** Unsettled messages of an earlier bus, waiting for their subscription to be created. */
  private readonly recovered = new Map<string, PushMessage[]>();
  private readonly wal: BacklogLog | undefined;

  constructor(private readonly opts: EmbeddedPubsubOptions) {
    this.concurrency = Math.max(1, opts.concurrency ?? 32);
    this.backoff = opts.backoff ?? { initialMs: 500, maxMs: 8000 };
    this.post = opts.post ?? postPush;
    if (opts.durable === false) return;
    this.wal = new BacklogLog(backlogDir(opts.home), () => this.unsettled.values());
    for (const m of this.wal.recovered) {
      this.unsettled.set(m.msg.id, m);
      for (const sub of m.subs) {
        const list = this.recovered.get(sub) ?? [];
        list.push(m.msg);
        this.recovered.set(sub, list);
      }
    }
    if (this.wal.recovered.length)
      opts.log?.notice(
        `embedded Pub/Sub: ${this.wal.recovered.length} message(s) accepted by an earlier run and not yet delivered will be delivered`,
      );
  }

  /** `log`: append every message of this topic to its NDJSON record (dead-letter topics). */
  createTopic(name: string, opts: { log?: boolean } = {}): 'created' | 'exists' {
    const existing = this.topics.get(name);
    if (existing) {
      if (opts.log) existing.log ??= new TopicLog(this.opts.home, name);
      return 'exists';
    }
    this.topics.set(name, {
      name,
      published: 0,
      subs: [],
      ...(opts.log ? { log: new TopicLog(this.opts.home, name) } : {}),
    });
    return 'created';
  }

  /** Same spec as the emulator setup; re-creating converges the existing subscription. */
  createSubscription(spec: SubscriptionSpec): 'created' | 'updated' {
    const topic = this.requireTopic(spec.topic);
    if (spec.deadLetter) {
      this.requireTopic(spec.deadLetter.topic).log ??= new TopicLog(this.opts.home, spec.deadLetter.topic);
    }
    const existing = this.subs.get(spec.name);
    if (existing) {
      if (existing.spec.topic !== spec.topic)
        throw new Error(`Subscription ${spec.name} belongs to ${existing.spec.topic}`);
      existing.spec = spec;
      this.pump(existing);
      return 'updated';
    }
    const s: SubscriptionState = {
      spec,
      path: `projects/${this.opts.project}/subscriptions/${spec.name}`,
      ready: [],
      waiting: new Set(),
      inFlight: 0,
      delivered: 0,
      failedAttempts: 0,
      deadLettered: 0,
      held: [],
    };
    this.subs.set(spec.name, s);
    topic.subs.push(s);
    const earlier = this.recovered.get(spec.name);
    if (earlier && spec.pushEndpoint) {
      this.recovered.delete(spec.name);
      for (const msg of earlier) s.ready.push({ msg, attempts: 0 });
      this.pump(s);
    }
    return 'created';
  }

  /** Resolves with the message id once the message is durably accepted. */
  async publish(topic: string, data: Buffer, attributes: Record<string, string> = {}): Promise<string> {
    const { id, durable } = this.accept(topic, data, attributes);
    await durable;
    return id;
  }

  /** Publishes without waiting for the log (the benchmark's publisher); a crash may lose the last group. */
  publishSync(topic: string, data: Buffer, attributes: Record<string, string> = {}): string {
    const { id, durable } = this.accept(topic, data, attributes);
    durable.catch((err: unknown) =>
      this.opts.log?.error('embedded Pub/Sub: a message could not be logged', { id, err }),
    );
    return id;
  }

  private accept(
    topic: string,
    data: Buffer,
    attributes: Record<string, string>,
  ): { id: string; durable: Promise<void> } {
    if (this.closed) throw new SmelterError('PUBSUB_UNAVAILABLE', 'The embedded Pub/Sub is stopped');
    const t = this.requireTopic(topic);
    const msg: PushMessage = {
      id: String(this.idPrefix + ++this.seq),
      data: Buffer.from(data),
      attributes: { ...attributes },
      publishTime: new Date().toISOString(),
    };
    t.published++;
    t.log?.append(msg);
    const push = t.subs.filter((s) => s.spec.pushEndpoint);
    let durable = Promise.resolve();
    if (push.length && this.wal) {
      const logged: LoggedMessage = { topic, msg, subs: push.map((s) => s.spec.name) };
      this.unsettled.set(msg.id, logged);
      durable = this.wal.append(logged);
    }
    for (const s of t.subs) {
      if (s.spec.pushEndpoint) {
        s.ready.push({ msg, attempts: 0 });
        this.pump(s);
      } else if (s.held.length < MAX_HELD) s.held.push(msg);
    }
    return { id: msg.id, durable };
  }

  /** The subscription is done with the message (delivered or dead-lettered). */
  private settle(s: SubscriptionState, msg: PushMessage): void {
    const u = this.unsettled.get(msg.id);
    if (!u) return;
    u.subs = u.subs.filter((n) => n !== s.spec.name);
    if (!u.subs.length) this.unsettled.delete(msg.id);
    this.wal?.ack(msg.id, s.spec.name);
  }

  /** Reads a pull subscription; messages stay there unless `ack`. */
  async pull(
    subscription: string,
    maxMessages: number,
    opts: { ack?: boolean } = {},
  ): Promise<PushMessage[]> {
    const s = this.subs.get(subscription);
    if (!s) throw new SmelterError('NOT_FOUND', `No subscription ${subscription}`);
    const out = s.held.slice(0, maxMessages);
    if (opts.ack) s.held.splice(0, out.length);
    return out;
  }

  /** Resolves once no push subscription has anything queued, waiting for a retry, or in flight. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async status(): Promise<Record<string, unknown>> {
    const topics = [...this.topics.values()].map((t) => ({
      name: t.name,
      published: t.published,
      ...(t.log ? { deadLetterLog: t.log.file } : {}),
      subscriptions: t.subs.map((s) => ({
        name: s.spec.name,
        type: s.spec.pushEndpoint ? 'push' : 'pull',
        ...(s.spec.pushEndpoint ? { endpoint: s.spec.pushEndpoint } : {}),
        backlog: s.spec.pushEndpoint ? s.ready.length + s.waiting.size + s.inFlight : s.held.length,
        inFlight: s.inFlight,
        delivered: s.delivered,
        failedAttempts: s.failedAttempts,
        deadLettered: s.deadLettered,
        ...(s.spec.deadLetter
          ? {
              deadLetterTopic: s.spec.deadLetter.topic,
              maxDeliveryAttempts: s.spec.deadLetter.maxDeliveryAttempts,
            }
          : {}),
        ...(s.lastError ? { lastError: s.lastError } : {}),
      })),
    }));
    const sum = (k: 'delivered' | 'deadLettered'): number =>
      [...this.subs.values()].reduce((n, s) => n + s[k], 0);
    return {
      mode: this.mode,
      topics,
      backlog: [...this.subs.values()]
        .filter((s) => s.spec.pushEndpoint)
        .reduce((n, s) => n + s.ready.length + s.waiting.size + s.inFlight, 0),
      delivered: sum('delivered'),
      deadLettered: sum('deadLettered'),
    };
  }

  /** Stops deliveries; what is undelivered stays in the log for the next bus on this home. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let undelivered = 0;
    for (const s of this.subs.values()) {
      for (const t of s.waiting) clearTimeout(t);
      undelivered += s.ready.length + s.waiting.size;
      s.waiting.clear();
      s.ready.length = 0;
    }
    const until = Date.now() + 5000;
    while ([...this.subs.values()].some((s) => s.inFlight > 0) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    await this.wal?.close(this.unsettled.size > 0);
    if (undelivered)
      this.opts.log?.warn(
        this.wal
          ? `embedded Pub/Sub stopped with ${undelivered} undelivered message(s); the next start delivers them`
          : `embedded Pub/Sub stopped with ${undelivered} undelivered message(s), dropped`,
      );
    this.notifyIdle();
  }

  private requireTopic(name: string): TopicState {
    const t = this.topics.get(name);
    if (!t)
      throw new SmelterError('NOT_FOUND', `No topic ${name} (topics: ${[...this.topics.keys()].join(', ')})`);
    return t;
  }

  private pump(s: SubscriptionState): void {
    while (!this.closed && s.inFlight < this.concurrency && s.ready.length) {
      const d = s.ready.shift() as Delivery;
      s.inFlight++;
      void this.deliver(s, d);
    }
  }

  private async deliver(s: SubscriptionState, d: Delivery): Promise<void> {
    d.attempts++;
    const endpoint = s.spec.pushEndpoint as string;
    let r: PushResult;
    try {
      r = await this.post(
        endpoint,
        pushBody(d.msg, s.path, s.spec.deadLetter ? d.attempts : undefined),
        (s.spec.ackDeadlineSeconds ?? 10) * 1000,
      );
    } catch (e) {
      r = { ok: false, status: 0, error: (e as Error).message };
    }
    s.inFlight--;
    if (r.ok) {
      s.delivered++;
      this.settle(s, d.msg);
    } else if (!this.closed) this.failed(s, d, r);
    this.pump(s);
    if (this.isIdle()) this.notifyIdle();
  }

  private failed(s: SubscriptionState, d: Delivery, r: PushResult): void {
    s.failedAttempts++;
    s.lastError = r.status ? `HTTP ${r.status}` : (r.error ?? 'no response');
    const dl = s.spec.deadLetter;
    if (dl && d.attempts >= dl.maxDeliveryAttempts) {
      s.deadLettered++;
      this.opts.log?.warn(`dead-lettering message ${d.msg.id} after ${d.attempts} attempts`, {
        subscription: s.spec.name,
        deadLetterTopic: dl.topic,
        lastError: s.lastError,
      });
      this.publishSync(dl.topic, d.msg.data, {
        ...d.msg.attributes,
        CloudPubSubDeadLetterSourceDeliveryCount: String(d.attempts),
        CloudPubSubDeadLetterSourceSubscription: s.spec.name,
        CloudPubSubDeadLetterSourceSubscriptionProject: this.opts.project,
        CloudPubSubDeadLetterSourceTopicPublishTime: d.msg.publishTime,
      });
      this.settle(s, d.msg);
      return;
    }
    const t = setTimeout(
      () => {
        s.waiting.delete(t);
        s.ready.push(d);
        this.pump(s);
      },
      backoffMs(d.attempts, this.backoff.initialMs, this.backoff.maxMs),
    );
    s.waiting.add(t);
  }

  private isIdle(): boolean {
    for (const s of this.subs.values()) if (s.ready.length || s.waiting.size || s.inFlight) return false;
    return true;
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
