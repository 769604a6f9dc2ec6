/** The pull message: `{"source": "store"}`, optionally `"from"`/`"to"` (a window) and `"run"`. */
import type { MessagePublishedData } from '../cloudevents';
import { permanent } from '../errors';
import { SOURCE_NAME } from './contract';

export interface PullMessage {
  source: string;
  run: string;
  from?: string;
  to?: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}(T[0-9:.]+Z)?$/;

/**
 * The run id defaults to the publish time and message id: stable across redeliveries of one message
 * (same part names), sorted by time in listings.
 */
export function parsePullMessage(data: MessagePublishedData | undefined, eventId: string): PullMessage {
  const m = data?.message;
  let body: Record<string, unknown> = {};
  if (m?.data) {
    try {
      const v: unknown = JSON.parse(Buffer.from(m.data, 'base64').toString('utf8'));
      if (v && typeof v === 'object' && !Array.isArray(v)) body = v as Record<string, unknown>;
      else throw new Error('not an object');
    } catch {
      throw permanent('BAD_EVENT', 'pull message data is not a JSON object');
    }
  }
  const source = typeof body.source === 'string' ? body.source : m?.attributes?.source;
  if (typeof source !== 'string' || !SOURCE_NAME.test(source))
    throw permanent(
      'BAD_EVENT',
      `pull message names no valid source (got ${JSON.stringify(source ?? null)})`,
    );
  const out: PullMessage = { source, run: '' };
  for (const k of ['from', 'to'] as const) {
    const v = body[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !DATE.test(v))
      throw permanent('BAD_EVENT', `pull message "${k}" must be YYYY-MM-DD`);
    out[k] = v;
  }
  const id = m?.messageId ?? m?.message_id ?? eventId;
  const at = m?.publishTime ?? m?.publish_time;
  const stamp =
    at && Number.isFinite(Date.parse(at))
      ? new Date(at).toISOString().replace(/[-:]/g, '').slice(0, 15) + 'Z'
      : '';
  out.run = typeof body.run === 'string' && body.run ? body.run : [stamp, id].filter(Boolean).join('-');
  return out;
}
