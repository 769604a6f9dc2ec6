/**
 * What the local Pub/Sub must contain, derived from the trigger manifest: the four topics and, for
 * every Pub/Sub trigger of a served function, a subscription delivering to that function at
 * `<function URL>/projects/<project>/topics/<topic>`, with a dead-letter policy; plus a pull
 * subscription on the dead-letter topic so dead letters can be inspected (`gcloud pubsub
 * subscriptions pull events-dead-letter-pull` against the emulator, or `smelter` status).
 */
import type { SubscriptionSpec } from '../../adapters/pubsub/client';
import type { Config } from '../../config';
import { FUNCTIONS, topicName, type FunctionSpec } from '../../manifest';
import type { EntryPoint } from '../stack';
import { pushEndpoint } from './push';

/** Real Pub/Sub (and the emulator) accept 5..100 delivery attempts in a dead-letter policy. */
export const MIN_DELIVERY_ATTEMPTS = 5;
export const MAX_DELIVERY_ATTEMPTS = 100;

export type Delivery = 'push' | 'relay';

export interface PlannedSubscription extends SubscriptionSpec {
  role: 'trigger' | 'dead-letter-pull' | 'dead-letter-log';
  entryPoint?: EntryPoint;
  /** Relay delivery: the subscription is a pull one and the relay POSTs here. */
  relayTo?: string;
  concurrency?: number;
}

export interface PubsubPlan {
  topics: { name: string; log: boolean }[];
  subscriptions: PlannedSubscription[];
  /** Functions with Pub/Sub triggers that are not served (no endpoint): nothing delivers to them. */
  skipped: EntryPoint[];
  maxDeliveryAttempts: number;
}

export function planPubsub(
  cfg: Config,
  endpoints: Partial<Record<EntryPoint, string>>,
  opts: { mode: 'emulator' | 'embedded'; delivery?: Delivery; functions?: readonly FunctionSpec[] },
): PubsubPlan {
  const functions = opts.functions ?? FUNCTIONS;
  const dl = cfg.deadLetterTopic;
  const names = [cfg.eventsTopic, dl, cfg.refreshTopic, cfg.pullTopic];
  const topics = [...new Set(names)].map((name) => ({ name, log: name === dl }));
  // SMELTER_LOCAL_MAX_ATTEMPTS is the local knob; the emulator enforces the platform's range.
  const maxDeliveryAttempts =
    opts.mode === 'emulator'
      ? Math.min(MAX_DELIVERY_ATTEMPTS, Math.max(MIN_DELIVERY_ATTEMPTS, cfg.localMaxAttempts))
      : cfg.localMaxAttempts;
  const subscriptions: PlannedSubscription[] = [];
  const skipped: EntryPoint[] = [];
  for (const fn of functions) {
    for (const t of fn.triggers) {
      if (t.kind !== 'pubsub') continue;
      const base = endpoints[fn.entryPoint];
      if (!base) {
        skipped.push(fn.entryPoint);
        continue;
      }
      const topic = topicName(cfg, t.topic);
      const endpoint = pushEndpoint(base, cfg.project, topic);
      const relay = opts.mode === 'emulator' && opts.delivery === 'relay';
      subscriptions.push({
        role: 'trigger',
        entryPoint: fn.entryPoint,
        name: `${fn.name}-${topic}`,
        topic,
        ...(relay ? { relayTo: endpoint } : { pushEndpoint: endpoint }),
        ackDeadlineSeconds: t.ackDeadlineSeconds,
        concurrency: fn.concurrency,
        // A subscription of the dead-letter topic itself must not dead-letter into it.
        ...(topic === dl ? {} : { deadLetter: { topic: dl, maxDeliveryAttempts } }),
      });
    }
  }
  subscriptions.push({ role: 'dead-letter-pull', name: `${dl}-pull`, topic: dl });
  // The emulator keeps messages in memory only; this subscription feeds the NDJSON record.
  if (opts.mode === 'emulator')
    subscriptions.push({ role: 'dead-letter-log', name: `${dl}-smelter-log`, topic: dl });
  return { topics, subscriptions, skipped, maxDeliveryAttempts };
}
