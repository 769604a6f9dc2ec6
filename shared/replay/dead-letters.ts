/**
 * Replaying dead letters after a contract fix: the original message bytes and attributes are published
 * again to the events topic, with lineage attributes saying what they replay. The router treats a
 * replayed event like any other (a second dead letter if it is still invalid, with the lineage in its
 * attributes); duplicates of events that already landed are dropped by event_id as for any redelivery.
 * The stored payload already has its personal data applied; its `smelter_pii_*` attributes travel with
 * it, so the router does not hash those fields twice (shared/events/privacy.ts).
 *
 * Pure: the warehouse query, the publisher and the ledger's store are handed in.
 */
import { permanent } from '../errors';
import { PII_WITHHELD_ATTR } from '../events/privacy';
import { markerName, replayKey, type ReplayLedger } from './ledger';

/** Attributes a replayed message carries (lineage). */
export const REPLAY_OF_ATTR = 'smelter_replay_of';
export const REPLAY_REASONS_ATTR = 'smelter_replay_reasons';

export interface DeadLetterFilter {
  /** Violation codes (any of them matches), e.g. `unknown_type`, `required`. */
  reasons?: string[];
  type?: string;
  /** ISO 8601: only dead letters recorded at or after this time. */
  since?: string;
}

const CODE = /^[a-z_]{1,64}$/;
const TYPE = /^[A-Za-z0-9_.-]{1,128}$/;

/** Validates CLI filters (they end up in SQL, so nothing but the expected shapes passes). */
export function parseDeadLetterFilter(raw: {
  reason?: string | undefined;
  type?: string | undefined;
  since?: string | undefined;
}): DeadLetterFilter {
  const f: DeadLetterFilter = {};
  if (raw.reason !== undefined) {
    const codes = raw.reason.split(',').map((s) => s.trim());
    for (const c of codes)
      if (!CODE.test(c))
        throw permanent(
          'BAD_REQUEST',
          `--reason ${JSON.stringify(c)}: a violation code such as unknown_type`,
        );
    f.reasons = codes;
  }
  if (raw.type !== undefined) {
    if (!TYPE.test(raw.type))
      throw permanent('BAD_REQUEST', `--type ${JSON.stringify(raw.type)}: an event type such as order`);
    f.type = raw.type;
  }
  if (raw.since !== undefined) {
    const t = Date.parse(raw.since);
    if (!Number.isFinite(t))
      throw permanent('BAD_REQUEST', `--since ${JSON.stringify(raw.since)}: a date or ISO 8601 time`);
    f.since = new Date(t).toISOString();
  }
  return f;
}

/**
 * The dialect-neutral query (`@ref` resolves per engine). The type filter is inlined only after
 * validation; reasons and time are filtered in code, since their SQL differs between engines.
 */
export function deadLetterSql(f: DeadLetterFilter): string {
  return (
    'SELECT message_id, publish_time, event_type, event_id, attributes, data_base64, data_truncated, reasons, dead_lettered_at ' +
    `FROM @ref(events.dead_letter)${f.type ? ` WHERE event_type = '${f.type}'` : ''} ` +
    'ORDER BY dead_lettered_at, message_id'
  );
}

export interface StoredDeadLetter {
  message_id: string;
  publish_time: unknown;
  event_type: string | null;
  event_id: string | null;
  attributes: unknown;
  data_base64: string | null;
  data_truncated: unknown;
  reasons: unknown;
  dead_lettered_at: unknown;
}

const iso = (v: unknown): string => {
  if (v instanceof Date) return v.toISOString();
  const s =
    typeof v === 'object' && v !== null && 'value' in v ? String((v as { value: unknown }).value) : String(v);
  const t = Date.parse(s.includes('T') || s.includes('Z') || /[+-]\d\d(:?\d\d)?$/.test(s) ? s : `${s}Z`);
  return Number.isFinite(t) ? new Date(t).toISOString() : s;
};

const json = (v: unknown): unknown => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

export function reasonCodes(r: StoredDeadLetter): string[] {
  const list = json(r.reasons);
  if (!Array.isArray(list)) return [];
  return list
    .map((x) => (x && typeof x === 'object' ? (x as { code?: unknown }).code : undefined))
    .filter((c): c is string => typeof c === 'string');
}

/** The dead letter's identity, as the router keys it: message id + publish time. */
export const deadLetterKey = (r: StoredDeadLetter): string => `${r.message_id}@${iso(r.publish_time)}`;

export function matches(r: StoredDeadLetter, f: DeadLetterFilter): boolean {
  if (f.type && r.event_type !== f.type) return false;
  if (f.since && iso(r.dead_lettered_at) < f.since) return false;
  if (f.reasons && !reasonCodes(r).some((c) => f.reasons?.includes(c))) return false;
  return true;
}

export interface ReplayMessage {
  key: string;
  data: Buffer;
  attributes: Record<string, string>;
  eventId: string | null;
  eventType: string | null;
  reasons: string[];
}

/** The message to publish again, or why it cannot be replayed. */
export function replayMessage(r: StoredDeadLetter): ReplayMessage | { key: string; unreplayable: string } {
  const key = deadLetterKey(r);
  const attrs = json(r.attributes);
  if (attrs && typeof attrs === 'object' && Object.hasOwn(attrs, PII_WITHHELD_ATTR))
    return {
      key,
      unreplayable: 'the payload was withheld: it did not parse, and its type declares drop/hash fields',
    };
  if (r.data_truncated === true || r.data_truncated === 'true')
    return { key, unreplayable: 'only the first bytes of the message were kept (data_truncated)' };
  if (r.data_base64 === null || r.data_base64 === undefined)
    return { key, unreplayable: 'the message had no data' };
  const attributes: Record<string, string> = {};
  if (attrs && typeof attrs === 'object' && !Array.isArray(attrs))
    for (const [k, v] of Object.entries(attrs as Record<string, unknown>))
      if (typeof v === 'string' && !k.startsWith('smelter_replay_')) attributes[k] = v;
  const reasons = reasonCodes(r);
  attributes[REPLAY_OF_ATTR] = key;
  attributes[REPLAY_REASONS_ATTR] = reasons.join(',').slice(0, 1000);
  return {
    key,
    data: Buffer.from(r.data_base64, 'base64'),
    attributes,
    eventId: r.event_id,
    eventType: r.event_type,
    reasons,
  };
}

export interface DeadLetterReplayDeps {
  /** Runs the (dialect-neutral) SQL of deadLetterSql. */
  query(sql: string): Promise<StoredDeadLetter[]>;
  /** Publishes a batch to the events topic; resolves with the message ids once accepted. */
  publish(batch: ReplayMessage[]): Promise<string[]>;
  ledger: ReplayLedger;
  now?: () => Date;
}

export interface DeadLetterReplayResult {
  matched: number;
  replayed: number;
  alreadyReplayed: number;
  unreplayable: { key: string; reason: string }[];
  byReason: Record<string, number>;
  byType: Record<string, number>;
  messageIds: string[];
  eventIds: (string | null)[];
  dryRun: boolean;
}

const BATCH = 500;

/**
 * Publishes before marking: a crash in between replays the batch again next time, and the router
 * drops the events that already landed by event_id (at-least-once, never a duplicate row).
 */
export async function replayDeadLetters(
  deps: DeadLetterReplayDeps,
  filter: DeadLetterFilter,
  opts: { dryRun?: boolean } = {},
): Promise<DeadLetterReplayResult> {
  const now = deps.now ?? (() => new Date());
  const rows = (await deps.query(deadLetterSql(filter))).filter((r) => matches(r, filter));
  const res: DeadLetterReplayResult = {
    matched: rows.length,
    replayed: 0,
    alreadyReplayed: 0,
    unreplayable: [],
    byReason: {},
    byType: {},
    messageIds: [],
    eventIds: [],
    dryRun: Boolean(opts.dryRun),
  };
  let batch: ReplayMessage[] = [];
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const ids = await deps.publish(batch);
    for (const [i, m] of batch.entries())
      await deps.ledger.mark(markerName('dead-letters', replayKey(m.key)), {
        deadLetter: m.key,
        eventType: m.eventType,
        eventId: m.eventId,
        reasons: m.reasons,
        replayedAs: ids[i] ?? null,
        replayedAt: now().toISOString(),
      });
    res.messageIds.push(...ids);
    res.eventIds.push(...batch.map((m) => m.eventId));
    batch = [];
  };
  for (const r of rows) {
    const m = replayMessage(r);
    if ('unreplayable' in m) {
      res.unreplayable.push({ key: m.key, reason: m.unreplayable });
      continue;
    }
    if (await deps.ledger.has(markerName('dead-letters', replayKey(m.key)))) {
      res.alreadyReplayed++;
      continue;
    }
    res.replayed++;
    for (const c of new Set(m.reasons)) res.byReason[c] = (res.byReason[c] ?? 0) + 1;
    const t = m.eventType ?? '(unknown)';
    res.byType[t] = (res.byType[t] ?? 0) + 1;
    if (opts.dryRun) continue;
    batch.push(m);
    if (batch.length >= BATCH) await flush();
  }
  if (!opts.dryRun) await flush();
  return res;
}
