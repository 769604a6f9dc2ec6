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

export function messageFromCloudEvent(ce: CloudEvent<unknown>, now: number = Date.now()): ExtractedMessage {
  // A POST of a push body without `subscription` is not converted by functions-framework: the body
  // itself arrives as the event, its message at the top.
  const bare = ce.data === undefined && Object.hasOwn(ce, 'message');
  let data: unknown = bare ? { message: (ce as unknown as { message: unknown }).message } : ce.data;
  if (typeof data === 'string' || Buffer.isBuffer(data)) {
    try {
      data = JSON.parse(data.toString());
    } catch {
      /* reported below as "no message" */
    }
  }
  const d =
    data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
  const m = d && Object.hasOwn(d, 'message') ? d.message : undefined;
  const ceId = typeof ce.id === 'string' && ce.id ? ce.id : undefined;
  const ceTime = (typeof ce.time === 'string' && normaliseTimestamp(ce.time)) || undefined;
  /** The message's time when it says one; else a fixed one (its key must not change between deliveries). */
  const timeOf = (given: string | undefined): Pick<IncomingMessage, 'publishTime' | 'receivedAt'> =>
    given
      ? { publishTime: given }
      : { publishTime: UNKNOWN_PUBLISH_TIME, receivedAt: new Date(now).toISOString() };

  if (!m || typeof m !== 'object' || Array.isArray(m)) {
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
        messageId: ceId ?? contentMessageId(sent, {}),
        ...timeOf(ceTime),
      },
      violation: {
        path: '$',
        code: 'no_message',
        reason: 'the CloudEvent carries no Pub/Sub message (data.message)',
      },
    };
  }
  const msg = m as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    const v = Object.hasOwn(msg, k) ? msg[k] : undefined;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const attributes: Record<string, string> = {};
  const rawAttrs = Object.hasOwn(msg, 'attributes') ? msg.attributes : undefined;
  if (rawAttrs && typeof rawAttrs === 'object' && !Array.isArray(rawAttrs))
    for (const [k, v] of Object.entries(rawAttrs)) {
      if (FORBIDDEN_KEYS.has(k)) continue;
      attributes[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
  const publish = str('publishTime') ?? str('publish_time');
  const raw = Object.hasOwn(msg, 'data') ? msg.data : undefined;
  const message: IncomingMessage = {
    data: undefined,
    attributes,
    messageId:
      str('messageId') ??
      str('message_id') ??
      ceId ??
      contentMessageId(typeof raw === 'string' ? raw : JSON.stringify(raw ?? null), attributes),
    ...timeOf((publish && normaliseTimestamp(publish)) || ceTime),
  };
  if (d && typeof d.subscription === 'string') message.subscription = d.subscription;
  const attempt = d ? Number(d.deliveryAttempt) : NaN;
  if (Number.isSafeInteger(attempt) && attempt > 0) message.deliveryAttempt = attempt;

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
