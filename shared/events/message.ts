/**
 * Reading the Pub/Sub message out of a `messagePublished` CloudEvent, whatever produced it
 * (Eventarc, functions-framework's conversion of a push request, a hand-made binary/structured event).
 */
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
 * What identifies a Pub/Sub message: its id AND its publish time. Ids are unique per topic on GCP, but
 * the local emulator numbers messages from "1" again after every restart; a redelivery keeps both.
 */
export function messageKey(m: Pick<IncomingMessage, 'messageId' | 'publishTime'>): string {
  return `${m.messageId}\u0000${m.publishTime}`;
}

export function messageFromCloudEvent(ce: CloudEvent<unknown>, now: number = Date.now()): ExtractedMessage {
  let data: unknown = ce.data;
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
  const fallbackId = typeof ce.id === 'string' && ce.id ? ce.id : `ce-${now}`;
  const fallbackTime =
    (typeof ce.time === 'string' && normaliseTimestamp(ce.time)) || new Date(now).toISOString();

  if (!m || typeof m !== 'object' || Array.isArray(m)) {
    let kept = '';
    try {
      kept = Buffer.from(JSON.stringify(ce.data ?? null) ?? '', 'utf8')
        .subarray(0, MAX_KEPT)
        .toString('base64');
    } catch {
      /* nothing to keep */
    }
    return {
      message: { data: kept, attributes: {}, messageId: fallbackId, publishTime: fallbackTime },
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
  const message: IncomingMessage = {
    data: undefined,
    attributes,
    messageId: str('messageId') ?? str('message_id') ?? fallbackId,
    publishTime: (publish && normaliseTimestamp(publish)) || fallbackTime,
  };
  if (d && typeof d.subscription === 'string') message.subscription = d.subscription;
  const attempt = d ? Number(d.deliveryAttempt) : NaN;
  if (Number.isSafeInteger(attempt) && attempt > 0) message.deliveryAttempt = attempt;

  const raw = Object.hasOwn(msg, 'data') ? msg.data : undefined;
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
