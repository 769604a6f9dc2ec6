/**
 * Reading the Pub/Sub message out of a `messagePublished` CloudEvent, whatever produced it
 * (Eventarc, functions-framework's conversion of a push request, a hand-made binary/structured event).
 */
import { createHash } from 'node:crypto';
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import { FORBIDDEN_KEYS } from './contract';
import type { IncomingMessage, Violation } from './ports';
import { normaliseTimestamp } from './validate';

export interface ExtractedMessage {
  message: IncomingMessage;
  /** Set when the CloudEvent does not carry a usable Pub/Sub message. */
  violation?: Violation;
}

const MAX_KEPT = 64 * 1024;

/**
 * The publish time of a message that does not say when it was published (a plain HTTP POST): its key
 * must not depend on when it arrived, or every redelivery would be a new dead letter.
 */
export const UNKNOWN_PUBLISH_TIME = '1970-01-01T00:00:00.000Z';

/**
 * The id of a message that carries none (no `messageId`, no CloudEvent id): a hash of what it holds —
 * data and attributes — so each distinct message has its own key and a redelivery the same one.
 */
export function contentMessageId(data: string | undefined, attributes: Record<string, string>): string {
  const attrs = Object.keys(attributes)
    .sort()
    .map((k) => [k, attributes[k]]);
  const digest = createHash('sha256')
    .update(JSON.stringify([data ?? null, attrs]))
    .digest('hex');
  return `sha256-${digest.slice(0, 40)}`;
}

/**
 * What identifies a Pub/Sub message: its id AND its publish time. Ids are unique per topic on GCP, but
 * the local emulator numbers messages from "1" again after every restart; a redelivery keeps both.
 */
export function messageKey(m: Pick<IncomingMessage, 'messageId' | 'publishTime'>): string {
  return `${m.messageId}\u0000${m.publishTime}`;
}

/** What the CloudEvent says around the message: its data object, the message, its own id and time. */
interface Envelope {
  data: Record<string, unknown> | undefined;
  message: unknown;
  ceId: string | undefined;
  ceTime: string | undefined;
}

function readEnvelope(ce: CloudEvent<unknown>): Envelope {
  // A POST of a push body without `subscription` is not converted by functions-framework: the body
  // itself arrives as the event, its message at the top.
  const bare = ce.data === undefined && Object.hasOwn(ce, 'message');
  let data: unknown = bare ? { message: (ce as unknown as { message: unknown }).message } : ce.data;
  if (typeof data === 'string' || Buffer.isBuffer(data)) {
    try {
      data = JSON.parse(data.toString());
    } catch {
      /* reported as "no message" */
    }
  }
  const d =
    data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
  return {
    data: d,
    message: d && Object.hasOwn(d, 'message') ? d.message : undefined,
    ceId: typeof ce.id === 'string' && ce.id ? ce.id : undefined,
    ceTime: (typeof ce.time === 'string' && normaliseTimestamp(ce.time)) || undefined,
  };
}

/** The message's time when it says one; else a fixed one (its key must not change between deliveries). */
function timeOf(given: string | undefined, now: number): Pick<IncomingMessage, 'publishTime' | 'receivedAt'> {
  return given
    ? { publishTime: given }
    : { publishTime: UNKNOWN_PUBLISH_TIME, receivedAt: new Date(now).toISOString() };
}

/** A CloudEvent without a usable message: what was sent is kept (bounded) for the dead letter. */
function noMessage(ce: CloudEvent<unknown>, env: Envelope, now: number): ExtractedMessage {
  let sent = '';
  try {
    // Without data, what was sent is the event itself (a plain POST's body); a trace header is not.
    const { traceparent: _, ...event } = ce as unknown as Record<string, unknown>;
    sent = JSON.stringify(ce.data === undefined ? event : ce.data) ?? '';
  } catch {
    /* nothing to keep */
  }
  const kept = Buffer.from(sent, 'utf8').subarray(0, MAX_KEPT).toString('base64');
  return {
    message: {
      data: kept,
      attributes: {},
      messageId: env.ceId ?? contentMessageId(sent, {}),
      ...timeOf(env.ceTime, now),
    },
    violation: {
      path: '$',
      code: 'no_message',
      reason: 'the CloudEvent carries no Pub/Sub message (data.message)',
    },
  };
}

/** String attributes only; prototype-polluting keys never become properties. */
function readAttributes(msg: Record<string, unknown>): Record<string, string> {
  const attributes: Record<string, string> = {};
  const raw = Object.hasOwn(msg, 'attributes') ? msg.attributes : undefined;
  if (raw && typeof raw === 'object' && !Array.isArray(raw))
    for (const [k, v] of Object.entries(raw)) {
      if (FORBIDDEN_KEYS.has(k)) continue;
      attributes[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  return attributes;
}

/** The message's data: a base64 string as sent; any other JSON kind is kept (bounded) and refused. */
function withData(message: IncomingMessage, raw: unknown): ExtractedMessage {
  if (raw === undefined || raw === null || typeof raw === 'string') {
    message.data = raw ?? undefined;
    return { message };
  }
  message.data = Buffer.from(JSON.stringify(raw) ?? '', 'utf8')
    .subarray(0, MAX_KEPT)
    .toString('base64');
  return {
    message,
    violation: {
      path: '$',
      code: 'not_base64',
      reason: `message.data must be a base64 string, got ${Array.isArray(raw) ? 'array' : typeof raw}`,
    },
  };
}

export function messageFromCloudEvent(ce: CloudEvent<unknown>, now: number = Date.now()): ExtractedMessage {
  const env = readEnvelope(ce);
  const m = env.message;
  if (!m || typeof m !== 'object' || Array.isArray(m)) return noMessage(ce, env, now);
  const msg = m as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    const v = Object.hasOwn(msg, k) ? msg[k] : undefined;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const attributes = readAttributes(msg);
  const publish = str('publishTime') ?? str('publish_time');
  const raw = Object.hasOwn(msg, 'data') ? msg.data : undefined;
  const message: IncomingMessage = {
    data: undefined,
    attributes,
    messageId:
      str('messageId') ??
      str('message_id') ??
      env.ceId ??
      contentMessageId(typeof raw === 'string' ? raw : JSON.stringify(raw ?? null), attributes),
    ...timeOf((publish && normaliseTimestamp(publish)) || env.ceTime, now),
  };
  const d = env.data;
  if (d && typeof d.subscription === 'string') message.subscription = d.subscription;
  const attempt = d ? Number(d.deliveryAttempt) : NaN;
  if (Number.isSafeInteger(attempt) && attempt > 0) message.deliveryAttempt = attempt;
  return withData(message, raw);
}
