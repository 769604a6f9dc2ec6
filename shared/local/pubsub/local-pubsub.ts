/**
 * The local Pub/Sub of the stack, in either mode:
 * - `emulator`: the Cloud SDK emulator (started here, or one already answering at PUBSUB_EMULATOR_HOST),
 *   configured through `@google-cloud/pubsub`; PUBSUB_EMULATOR_HOST is set for this process and its
 *   children so every client (functions, CLI, user scripts) talks to it.
 * - `embedded`: the in-process delivery of embedded.ts, when the emulator is absent or switched off.
 */
import type { PubsubClient, StreamingSubscriber } from '../../adapters/pubsub/client';
import type { Config } from '../../config';
import { SmelterError } from '../../errors';
import type { Logger } from '../../log';
import type { FunctionSpec } from '../../manifest';
import type { EntryPoint, LocalPubsub } from '../stack';
import { discoverEmulator, INSTALL_HINT, type EmulatorDiscovery } from './discovery';
import { EmbeddedPubsub } from './embedded';
import { emulatorReady, startEmulator, type EmulatorHandle } from './emulator';
import { planPubsub, type Delivery, type PubsubPlan } from './plan';
import { PushRelay } from './relay';
import { TopicLog, type TopicLogEntry } from './topic-log';

export interface SmelterPubsub extends LocalPubsub {
  readonly plan: PubsubPlan;
  /** The most recent dead letters (from `<home>/state/topics/<dead-letter topic>.ndjson`). */
  deadLetters(limit?: number): TopicLogEntry[];
  /** Resolves when nothing is queued for delivery, as far as this process can tell (see status().backlog). */
  idle(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface StartLocalPubsubOptions {
  cfg: Config;
  log: Logger;
  /** Base URL of each served function; Pub/Sub triggers of functions not listed get no subscription. */
  endpoints: Partial<Record<EntryPoint, string>>;
  /** Overrides cfg.pubsubEmulator. */
  emulator?: 'auto' | 'on' | 'off';
  /** Emulator mode: its own serial push loop (`push`, default) or pull + concurrent relay (`relay`). */
  delivery?: Delivery;
  functions?: readonly FunctionSpec[];
  /** Test seams. */
  discover?: () => EmulatorDiscovery;
  embedded?: Partial<ConstructorParameters<typeof EmbeddedPubsub>[0]>;
  relayBackoff?: { initialMs: number; maxMs: number };
}

export async function startLocalPubsub(o: StartLocalPubsubOptions): Promise<SmelterPubsub> {
  const want = o.emulator ?? o.cfg.pubsubEmulator;
  if (want === 'off') {
    o.log.notice('Pub/Sub: using the embedded in-process delivery (SMELTER_PUBSUB_EMULATOR=off)');
    return startEmbedded(o);
  }
  // An emulator the user already runs (e.g. `gcloud beta emulators pubsub start`) is reused, not owned.
  const preset = process.env.PUBSUB_EMULATOR_HOST;
  if (preset) {
    if (await emulatorReady(preset)) {
      o.log.info(`Pub/Sub: using the emulator already running at ${preset}`);
      return startOnEmulator(o, preset, undefined);
    }
    o.log.warn(`Pub/Sub: PUBSUB_EMULATOR_HOST=${preset} does not answer; starting an emulator instead`);
  }
  const found = (o.discover ?? discoverEmulator)();
  if (!found.found) {
    if (want === 'on')
      throw new SmelterError(
        'PUBSUB_UNAVAILABLE',
        `SMELTER_PUBSUB_EMULATOR=on but the Pub/Sub emulator cannot be used: ${found.reason}. To fix: ${INSTALL_HINT}; or set SMELTER_PUBSUB_EMULATOR=auto to fall back to the embedded delivery.`,
        {
          kind: 'permanent',
          details: { searched: found.searched },
        },
      );
    o.log.notice(
      `Pub/Sub: emulator not available (${found.reason}) — falling back to the embedded in-process delivery ` +
        `(push, retries, dead letters; other processes cannot subscribe). To use the real emulator: ${INSTALL_HINT}.`,
    );
    return startEmbedded(o);
  }
  const handle = await startEmulator({ launcher: found.launcher, home: o.cfg.home, log: o.log });
  try {
    return await startOnEmulator(o, handle.host, handle);
  } catch (err) {
    await handle.stop();
    throw err;
  }
}

async function startEmbedded(o: StartLocalPubsubOptions): Promise<SmelterPubsub> {
  const plan = planPubsub(o.cfg, o.endpoints, {
    mode: 'embedded',
    ...(o.functions ? { functions: o.functions } : {}),
  });
  const bus = new EmbeddedPubsub({ project: o.cfg.project, home: o.cfg.home, log: o.log, ...o.embedded });
  for (const t of plan.topics) bus.createTopic(t.name, { log: t.log });
  for (const s of plan.subscriptions) {
    bus.createSubscription(s);
    if (s.pushEndpoint) o.log.info(`Pub/Sub: ${s.topic} → ${s.pushEndpoint}`, { subscription: s.name });
  }
  return new EmbeddedLocalPubsub(bus, plan, new TopicLog(o.cfg.home, o.cfg.deadLetterTopic));
}

class EmbeddedLocalPubsub implements SmelterPubsub {
  readonly mode = 'embedded' as const;
  constructor(
    readonly bus: EmbeddedPubsub,
    readonly plan: PubsubPlan,
    private readonly dlLog: TopicLog,
  ) {}

  publish(topic: string, data: Buffer, attributes?: Record<string, string>): Promise<string> {
    return this.bus.publish(topic, data, attributes);
  }

  status(): Promise<Record<string, unknown>> {
    // The record also holds routeEvent's own dead letters (its file publisher appends to the same file).
    return this.bus
      .status()
      .then((s) => ({ ...s, deadLetterLog: this.dlLog.file, deadLetterRecord: this.dlLog.total() }));
  }

  deadLetters(limit?: number): TopicLogEntry[] {
    return this.dlLog.tail(limit);
  }

  async idle(timeoutMs = 30_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      this.bus.idle().then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  async close(): Promise<void> {
    await this.bus.close();
  }
}

class EmulatorPubsub implements SmelterPubsub {
  readonly mode = 'emulator' as const;
  private published = 0;
  private readonly relays = new Map<string, PushRelay>();
  private dlSub?: StreamingSubscriber;
  private readonly dlLog: TopicLog;
  private readonly previousEnv: string | undefined;

  constructor(
    readonly emulatorHost: string,
    readonly client: PubsubClient,
    readonly plan: PubsubPlan,
    private readonly o: StartLocalPubsubOptions,
    private readonly handle: EmulatorHandle | undefined,
  ) {
    this.dlLog = new TopicLog(o.cfg.home, o.cfg.deadLetterTopic);
    this.previousEnv = process.env.PUBSUB_EMULATOR_HOST;
  }

  async setUp(): Promise<void> {
    const { log } = this.o;
    if (this.o.cfg.localMaxAttempts < this.plan.maxDeliveryAttempts)
      log.warn(
        `SMELTER_LOCAL_MAX_ATTEMPTS=${this.o.cfg.localMaxAttempts} raised to ${this.plan.maxDeliveryAttempts}: the emulator's minimum`,
      );
    for (const t of this.plan.topics) await this.client.ensureTopic(t.name);
    for (const s of this.plan.subscriptions) {
      const r = await this.client.ensureSubscription(s);
      const to = s.pushEndpoint ?? (s.relayTo ? `${s.relayTo} (relay)` : 'pull');
      log.info(`Pub/Sub: ${s.topic} → ${to}`, { subscription: s.name, [r]: true });
    }
    // Every process started from here on (functions, scripts) talks to this emulator.
    process.env.PUBSUB_EMULATOR_HOST = this.emulatorHost;
    for (const s of this.plan.subscriptions) {
      if (!s.relayTo) continue;
      const relay = new PushRelay({
        client: this.client,
        subscription: s.name,
        endpoint: s.relayTo,
        concurrency: s.concurrency ?? 32,
        log,
        ...(s.ackDeadlineSeconds ? { ackDeadlineSeconds: s.ackDeadlineSeconds } : {}),
        ...(this.o.relayBackoff ? { backoff: this.o.relayBackoff } : {}),
      });
      relay.start();
      this.relays.set(s.name, relay);
    }
    const logSub = this.plan.subscriptions.find((s) => s.role === 'dead-letter-log');
    if (logSub)
      this.dlSub = this.client.subscribe(
        logSub.name,
        (m) => {
          this.dlLog.append(m);
          m.ack();
        },
        { maxMessages: 100, onError: (err) => log.warn(`dead-letter log: ${err.message}`) },
      );
  }

  async publish(topic: string, data: Buffer, attributes: Record<string, string> = {}): Promise<string> {
    const id = await this.client.publish(topic, data, attributes);
    this.published++;
    return id;
  }

  deadLetters(limit?: number): TopicLogEntry[] {
    return this.dlLog.tail(limit);
  }

  async idle(timeoutMs = 30_000): Promise<boolean> {
    // Only relayed subscriptions expose their progress; the emulator's push loop does not.
    const until = Date.now() + timeoutMs;
    for (;;) {
      if ([...this.relays.values()].every((r) => r.inFlight === 0 && r.retryWaiting === 0)) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async status(): Promise<Record<string, unknown>> {
    let topics: string[] = [];
    let subscriptions: Record<string, unknown>[] = [];
    let error: string | undefined;
    try {
      topics = await this.client.listTopics();
      subscriptions = (await this.client.listSubscriptions()).map((s) => ({
        ...s,
        ...(this.relays.get(s.name) ? { relay: this.relays.get(s.name)?.stats() } : {}),
      }));
    } catch (e) {
      error = (e as Error).message;
    }
    return {
      mode: this.mode,
      emulatorHost: this.emulatorHost,
      ...(this.handle ? { pid: this.handle.pid, logFile: this.handle.logFile } : { external: true }),
      delivery: this.o.delivery ?? 'push',
      topics,
      subscriptions,
      publishedHere: this.published,
      // The emulator exposes no backlog metrics; relayed subscriptions report theirs above.
      backlog: this.relays.size ? [...this.relays.values()].reduce((n, r) => n + r.inFlight, 0) : null,
      delivered: this.relays.size ? [...this.relays.values()].reduce((n, r) => n + r.delivered, 0) : null,
      deadLettered: this.dlLog.total(),
      deadLetterLog: this.dlLog.file,
      ...(error ? { error } : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.relays.values()].map((r) => r.stop()));
    this.relays.clear();
    await this.dlSub?.close();
    await this.client.close();
    if (this.handle) {
      await this.handle.stop();
      if (process.env.PUBSUB_EMULATOR_HOST === this.emulatorHost) {
        if (this.previousEnv === undefined || this.previousEnv === this.emulatorHost)
          delete process.env.PUBSUB_EMULATOR_HOST;
        else process.env.PUBSUB_EMULATOR_HOST = this.previousEnv;
      }
    }
  }
}

/** Required when the emulator is used, not at the top: the embedded mode must not load @google-cloud/pubsub. */
function pubsubClient(): typeof import('../../adapters/pubsub/client') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../../adapters/pubsub/client') as typeof import('../../adapters/pubsub/client');
}

async function startOnEmulator(
  o: StartLocalPubsubOptions,
  host: string,
  handle: EmulatorHandle | undefined,
): Promise<SmelterPubsub> {
  const plan = planPubsub(o.cfg, o.endpoints, {
    mode: 'emulator',
    delivery: o.delivery ?? 'push',
    ...(o.functions ? { functions: o.functions } : {}),
  });
  const client = new (pubsubClient().PubsubClient)({ projectId: o.cfg.project, emulatorHost: host });
  const ps = new EmulatorPubsub(host, client, plan, o, handle);
  try {
    await ps.setUp();
  } catch (err) {
    await client.close();
    throw err;
  }
  return ps;
}
