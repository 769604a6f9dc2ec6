/**
 * The event router: the whole of `routeEvent` minus the wiring. One message in →
 *   valid:   a row in its type's table (at most once per event_id) AND a line in the archive;
 *   invalid: a row in the dead-letter table AND a message on the dead-letter topic, with every reason;
 * and only then does `route()` resolve (the platform acknowledges on return). Transient failures
 * reject, so the platform redelivers. Writes go through a shared micro-batcher.
 *
 * Failures follow the delivery policy (shared/delivery/policy.ts): a message that cannot be written is
 * redelivered until it is older than `maxEventAgeMs`, then dead-lettered (reason `retries_exhausted`)
 * and acknowledged; if even that fails it is logged at ERROR with its bytes and acknowledged.
 *
 * Personal data (./privacy.ts): `drop` and `hash` fields are applied to the row right after validation
 * and to every payload a dead letter or log line keeps, so neither a table, the archive, a dead letter
 * nor a log line holds a dropped value or a hashed one in clear.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import { decideFailure } from '../delivery/policy';
import { SmelterError } from '../errors';
import type { Logger } from '../log';
import { MicroBatcher, type BatcherStats } from './batcher';
import type { ContractLookup, EventContract } from './contract';
import { archiveKey } from './archive';
import { messageFromCloudEvent, messageKey } from './message';
import {
  DEAD_LETTER_MAX_DATA_BYTES,
  decodeBase64Head,
  decodeMessageData,
  MAX_JSON_DEPTH,
  parseJsonSafely,
  wellFormed,
} from './parse';
import {
  hashedAttributes,
  PII_HASHED_ATTR,
  PII_WITHHELD_ATTR,
  protect,
  sensitiveFields,
  verifiedPrehashed,
  withoutMarkers,
  type SensitiveField,
} from './privacy';
import type {
  AcceptedEvent,
  DeadLetterMessage,
  DeadLetterPublisher,
  DeadLetterRecord,
  EventArchive,
  EventWarehouse,
  IncomingMessage,
  Violation,
} from './ports';
import { validateEvent } from './validate';

export interface RouterOptions {
  maxEventBytes: number;
  maxEventAgeMs: number;
  batchMaxRows: number;
  batchMaxMs: number;
  /** Flushes allowed to run at once (1 = group commit; more helps high-latency sinks such as BigQuery). */
  flushConcurrency?: number;
  maxDepth?: number;
}

export interface RouterDeps {
  contracts: ContractLookup;
  warehouse: EventWarehouse;
  archive: EventArchive;
  deadLetters: DeadLetterPublisher;
  log: Logger;
  now?: () => number;
  /** The key of `hash` fields (SMELTER_PII_HASH_KEY); asked for only when a contract declares some. */
  piiKey?: () => string;
}

/** A dead letter's payload as it may be kept: personal data applied, or withheld. */
interface SafePayload {
  bytes: Buffer;
  /** The message's attributes plus the router's markers (hashed fields, or withheld). */
  attributes: Record<string, string>;
  /** False when `bytes` is only the head of the payload, or nothing (withheld). */
  complete: boolean;
}

export type RouteStatus = 'stored' | 'dead-lettered' | 'abandoned';

export interface RouteOutcome {
  status: RouteStatus;
  messageId: string;
  eventType: string | null;
  eventId: string | null;
  reasons?: Violation[];
}

type Item = { kind: 'event'; event: AcceptedEvent } | { kind: 'dead'; record: DeadLetterRecord };

type ItemResult = { status: 'stored' } | { status: 'dead-lettered'; reasons: Violation[] };

export interface RouterStats {
  received: number;
  stored: number;
  deadLettered: number;
  abandoned: number;
  failed: number;
  /** Undeclared fields of `additional_fields: ignore` contracts left out (a schema-drift signal; never their values). */
  ignoredFields: number;
  batcher: BatcherStats;
}

export class EventRouter {
  private readonly batcher: MicroBatcher<Item, ItemResult>;
  private readonly now: () => number;
  private readonly counts = {
    received: 0,
    stored: 0,
    deadLettered: 0,
    abandoned: 0,
    failed: 0,
    ignoredFields: 0,
  };
  private closing: Promise<void> | undefined;
  private prepared: Promise<void> | undefined;

  constructor(
    private readonly deps: RouterDeps,
    readonly options: RouterOptions,
  ) {
    this.now = deps.now ?? Date.now;
    this.batcher = new MicroBatcher((items) => this.write(items), {
      maxRows: options.batchMaxRows,
      maxMs: options.batchMaxMs,
      concurrency: options.flushConcurrency ?? 1,
    });
  }

  /** Entry point for a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent. */
  routeCloudEvent(ce: CloudEvent<unknown>): Promise<RouteOutcome> {
    const { message, violation } = messageFromCloudEvent(ce, this.now());
    return this.route(message, violation);
  }

  /**
   * Routes one message; resolves once it is durably stored or dead-lettered, rejects (transient) when
   * it must be redelivered.
   */
  async route(msg: IncomingMessage, preViolation?: Violation): Promise<RouteOutcome> {
    const t0 = this.now();
    this.counts.received++;
    let item: Item;
    try {
      item = this.prepare(msg, preViolation);
    } catch (err) {
      // A broken contract file: transient (retried until fixed), bounded by age like any failure.
      return this.fail(msg, undefined, err, t0);
    }
    let result: ItemResult;
    try {
      result = await this.batcher.add(item);
    } catch (err) {
      return this.fail(msg, item, err, t0);
    }
    const ids = this.ids(msg, item);
    const durationMs = this.now() - t0;
    if (result.status === 'stored') {
      this.counts.stored++;
      this.deps.log.debug('event stored', { ...logIds(ids), durationMs });
      return { status: 'stored', ...ids };
    }
    this.counts.deadLettered++;
    this.deps.log.warn('event dead-lettered', { ...logIds(ids), reasons: result.reasons, durationMs });
    return { status: 'dead-lettered', ...ids, reasons: result.reasons };
  }

  /**
   * Lets the warehouse create what it can ahead of the first event (local tables). Called before the
   * first flush; the local stack may call it at start-up so empty tables are queryable at once.
   */
  ready(): Promise<void> {
    const prepare = this.deps.warehouse.prepare?.bind(this.deps.warehouse);
    if (!prepare) return Promise.resolve();
    this.prepared ??= prepare(this.deps.contracts.all()).catch((err: unknown) => {
      this.prepared = undefined;
      throw err;
    });
    return this.prepared;
  }

  /** Writes whatever is pending now (the benchmark and shutdown use it). */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  /** Stops accepting messages, flushes, and closes the adapters the router owns. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.batcher.close();
      await Promise.allSettled([this.deps.warehouse.close(), this.deps.deadLetters.close()]);
    })();
    return this.closing;
  }

  stats(): RouterStats {
    return { ...this.counts, batcher: { ...this.batcher.stats } };
  }

  // --- validation -------------------------------------------------------------------------------------

  private prepare(msg: IncomingMessage, preViolation?: Violation): Item {
    const processedAt = new Date(this.now()).toISOString();
    const type = msg.attributes.event_type ?? null;
    if (preViolation) {
      const head = decodeBase64Head(msg.data ?? '', DEAD_LETTER_MAX_DATA_BYTES);
      return this.dead(msg, this.unparsedPayload(msg, head, true), null, [preViolation], type, null);
    }
    const decoded = decodeMessageData(msg.data, {
      maxEventBytes: this.options.maxEventBytes,
      maxDepth: this.options.maxDepth ?? MAX_JSON_DEPTH,
    });
    if (!decoded.ok) {
      const complete = decoded.bytes.length === decoded.size;
      const payload = this.unparsedPayload(msg, decoded.bytes, complete);
      return this.dead(msg, payload, decoded.size, [decoded.violation], type, null);
    }
    const prehashed =
      msg.attributes[PII_HASHED_ATTR] !== undefined
        ? verifiedPrehashed(msg.attributes, decoded.bytes, () => this.key())
        : new Set<string>();
    const result = validateEvent(decoded.value, msg.attributes, this.deps.contracts, {
      messageId: msg.messageId,
      // A message that does not say when it was published is stored with when it arrived.
      publishTime: msg.receivedAt ?? msg.publishTime,
      processedAt,
      text: decoded.text,
      prehashed,
    });
    if (!result.row || !result.contract) {
      const payload = result.contract
        ? this.parsedPayload(msg, decoded.text, result.contract, prehashed)
        : this.keptPayload(msg, decoded.bytes, true);
      const size = decoded.bytes.length;
      return this.dead(msg, payload, size, result.violations, result.eventType, result.eventId);
    }
    const fields = this.protectedFields(result.contract);
    if (fields.length) protect(result.row, fields, () => this.key(), prehashed);
    const event: AcceptedEvent = { contract: result.contract, row: result.row, message: msg };
    if (result.extra) event.extra = result.extra;
    if (result.ignored) this.counts.ignoredFields += result.ignored;
    return { kind: 'event', event };
  }

  private dead(
    msg: IncomingMessage,
    payload: SafePayload,
    size: number | null,
    reasons: Violation[],
    eventType: string | null,
    eventId: string | null,
  ): Item {
    return { kind: 'dead', record: this.record(msg, payload, size, reasons, eventType, eventId) };
  }

  private record(
    msg: IncomingMessage,
    payload: SafePayload,
    size: number | null,
    reasons: Violation[],
    eventType: string | null,
    eventId: string | null,
  ): DeadLetterRecord {
    const { bytes } = payload;
    const kept =
      bytes.length > DEAD_LETTER_MAX_DATA_BYTES ? bytes.subarray(0, DEAD_LETTER_MAX_DATA_BYTES) : bytes;
    const total = size ?? bytes.length;
    // The record's text must be storable even when the message's is not (the bytes stay in data_base64).
    const text = (s: string | null): string | null => (s === null ? null : wellFormed(s));
    const attributes = Object.fromEntries(
      Object.entries(payload.attributes).map(([k, v]) => [wellFormed(k), wellFormed(v)]),
    );
    return {
      message_id: wellFormed(msg.messageId),
      publish_time: msg.publishTime,
      event_type: text(eventType),
      event_id: text(eventId),
      attributes: JSON.stringify(attributes),
      data_base64: kept.toString('base64'),
      data_bytes: total,
      data_truncated: kept.length < bytes.length || !payload.complete,
      reasons: reasons.map((r) => ({ ...r, path: wellFormed(r.path), reason: wellFormed(r.reason) })),
      subscription: text(msg.subscription ?? null),
      delivery_attempt: msg.deliveryAttempt ?? null,
      dead_lettered_at: new Date(this.now()).toISOString(),
    };
  }

  // --- personal data in what the router keeps ---------------------------------------------------------

  private readonly fieldsByContract = new WeakMap<EventContract, SensitiveField[]>();

  /** The contract's `drop` and `hash` fields (cached per contract object: a reload makes a new one). */
  private protectedFields(c: EventContract): SensitiveField[] {
    let f = this.fieldsByContract.get(c);
    if (!f) this.fieldsByContract.set(c, (f = sensitiveFields(c).filter((x) => x.policy !== 'mask')));
    return f;
  }

  private key(): string {
    const key = this.deps.piiKey?.();
    if (!key)
      throw new SmelterError(
        'CONFIG_INVALID',
        'an event contract has hash fields but routeEvent has no SMELTER_PII_HASH_KEY',
        { kind: 'transient' },
      );
    return key;
  }

  /** Bytes kept as received: nothing declared applies (unknown type, or a type without drop/hash fields). */
  private keptPayload(msg: IncomingMessage, bytes: Buffer, complete: boolean): SafePayload {
    return { bytes, attributes: withoutMarkers(msg.attributes), complete };
  }

  /** The payload with its contract's drop/hash fields applied, marked with what it holds hashed. */
  private parsedPayload(
    msg: IncomingMessage,
    text: string,
    contract: EventContract,
    prehashed: ReadonlySet<string>,
  ): SafePayload {
    const fields = this.protectedFields(contract);
    if (!fields.length) return this.keptPayload(msg, Buffer.from(text, 'utf8'), true);
    const parsed = parseJsonSafely(text, this.options.maxDepth ?? MAX_JSON_DEPTH);
    if (!parsed.ok) return this.withheld(msg);
    const hashed = protect(parsed.value, fields, () => this.key(), prehashed);
    const bytes = Buffer.from(JSON.stringify(parsed.value), 'utf8');
    const marks = hashed.length ? hashedAttributes(this.key(), hashed, bytes) : {};
    return { bytes, attributes: { ...withoutMarkers(msg.attributes), ...marks }, complete: true };
  }

  /**
   * A payload that did not decode or parse, of the type its attribute names: kept when that type
   * declares no drop/hash field (or is unknown), else protected if it parses after all (a lone
   * surrogate), else withheld — the router cannot tell where its personal data is.
   */
  private unparsedPayload(msg: IncomingMessage, bytes: Buffer, complete: boolean): SafePayload {
    const type = msg.attributes.event_type;
    let contract: EventContract | undefined;
    try {
      contract = type ? this.deps.contracts.get(type) : undefined;
    } catch {
      // The type's contract cannot be read (a broken file): what it declares is unknown.
    }
    if (!contract || !this.protectedFields(contract).length) return this.keptPayload(msg, bytes, complete);
    if (!complete) return this.withheld(msg);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return this.withheld(msg);
    }
    const prehashed = verifiedPrehashed(msg.attributes, bytes, () => this.key());
    return this.parsedPayload(msg, text, contract, prehashed);
  }

  private withheld(msg: IncomingMessage): SafePayload {
    return {
      bytes: Buffer.alloc(0),
      complete: false,
      attributes: {
        ...withoutMarkers(msg.attributes),
        [PII_WITHHELD_ATTR]: 'unparsable payload of a type with drop/hash fields',
      },
    };
  }

  /** The payload a dead letter of this message may keep, whatever stage it failed at. */
  private safePayload(msg: IncomingMessage, item: Item | undefined): SafePayload {
    if (item?.kind === 'dead')
      return {
        bytes: Buffer.from(item.record.data_base64, 'base64'),
        attributes: JSON.parse(item.record.attributes) as Record<string, string>,
        complete: !item.record.data_truncated,
      };
    const decoded = decodeMessageData(msg.data, {
      maxEventBytes: this.options.maxEventBytes,
      maxDepth: this.options.maxDepth ?? MAX_JSON_DEPTH,
    });
    if (item?.kind === 'event' && decoded.ok) {
      const prehashed = verifiedPrehashed(msg.attributes, decoded.bytes, () => this.key());
      return this.parsedPayload(msg, decoded.text, item.event.contract, prehashed);
    }
    return this.unparsedPayload(msg, decoded.bytes, decoded.ok || decoded.bytes.length === decoded.size);
  }

  private ids(
    msg: IncomingMessage,
    item: Item | undefined,
  ): Pick<RouteOutcome, 'messageId' | 'eventType' | 'eventId'> {
    if (item?.kind === 'event')
      return {
        messageId: msg.messageId,
        eventType: item.event.contract.event_type,
        eventId: item.event.row.event_id as string,
      };
    if (item?.kind === 'dead')
      return { messageId: msg.messageId, eventType: item.record.event_type, eventId: item.record.event_id };
    return { messageId: msg.messageId, eventType: msg.attributes.event_type ?? null, eventId: null };
  }

  // --- failure handling ------------------------------------------------------------------------------

  private async fail(
    msg: IncomingMessage,
    item: Item | undefined,
    err: unknown,
    t0: number,
  ): Promise<RouteOutcome> {
    const ids = this.ids(msg, item);
    const published = Date.parse(msg.receivedAt ?? msg.publishTime);
    const facts = {
      error: err,
      ageMs: Number.isFinite(published) ? this.now() - published : undefined,
      maxAgeMs: this.options.maxEventAgeMs,
    };
    const ageMs = facts.ageMs ?? 0;
    const decision = decideFailure(facts);
    if (decision.action !== 'record') {
      this.counts.failed++;
      this.deps.log.error('event not written; the platform will redeliver it', {
        ...logIds(ids),
        error: err,
        durationMs: this.now() - t0,
      });
      throw err;
    }
    // Retrying cannot help (permanent sink error) or has gone on long enough: dead-letter it directly.
    const reason: Violation = {
      path: '$',
      code: 'retries_exhausted',
      reason: decision.cause === 'expired' ? decision.reason : `could not be written: ${decision.reason}`,
    };
    const payload = this.safePayload(msg, item);
    const prior = item?.kind === 'dead' ? item.record.reasons : [];
    const size = item?.kind === 'dead' ? item.record.data_bytes : null;
    const rec = this.record(msg, payload, size, [...prior, reason], ids.eventType, ids.eventId);
    const [table, topic] = await Promise.allSettled([
      this.deps.warehouse.insertDeadLetters([rec]),
      this.deps.deadLetters.publish([deadLetterMessage(rec, payload.attributes)]),
    ]);
    if (table.status === 'fulfilled' || topic.status === 'fulfilled') {
      this.counts.deadLettered++;
      this.deps.log.warn('event dead-lettered after failing to be written', {
        ...logIds(ids),
        reasons: rec.reasons,
        ageMs,
        deadLetterTable: table.status === 'fulfilled',
        deadLetterTopic: topic.status === 'fulfilled',
        durationMs: this.now() - t0,
      });
      return { status: 'dead-lettered', ...ids, reasons: rec.reasons };
    }
    if (decideFailure({ ...facts, recordingFailed: true }).action === 'retry') {
      // The dead letter itself failed: better to be redelivered than to drop the message.
      this.counts.failed++;
      throw err;
    }
    this.counts.abandoned++;
    this.deps.log.error(
      'event abandoned: too old to retry and the dead letter is unavailable; its bytes are in this log line',
      {
        ...logIds(ids),
        ageMs,
        reasons: rec.reasons,
        attributes: payload.attributes,
        publishTime: msg.publishTime,
        data_base64: payload.bytes.subarray(0, 192 * 1024).toString('base64'),
        error: err,
      },
    );
    return { status: 'abandoned', ...ids, reasons: rec.reasons };
  }

  // --- the flush -------------------------------------------------------------------------------------

  /** Writes one batch: events to their tables and the archive, invalid ones to the dead letter — in parallel. */
  private async write(items: Item[]): Promise<ItemResult[]> {
    const t0 = this.now();
    await this.ready();
    const results: ItemResult[] = items.map((it) =>
      it.kind === 'event' ? { status: 'stored' } : { status: 'dead-lettered', reasons: it.record.reasons },
    );
    const deadRecords = uniqueDeadLetters(items);
    const { byTable, toArchive, events } = groupEvents(items);
    const rejected = await this.writeAll(byTable, toArchive, deadRecords);
    if (rejected.length) await this.deadLetterRejected(rejected, items, results);
    this.deps.log.debug('batch written', {
      events,
      deadLetters: deadRecords.length,
      rejected: rejected.length,
      durationMs: this.now() - t0,
    });
    return results;
  }

  /**
   * Tables, archive and dead letters are written in parallel (DuckDB too: separate statements on
   * separate connections beat one transaction here); each must succeed. Resolves with the rows the
   * warehouse refused for good, by batch item.
   */
  private async writeAll(
    byTable: Map<string, TableGroup>,
    toArchive: AcceptedEvent[],
    deadRecords: DeadLetterRecord[],
  ): Promise<Rejected[]> {
    const rejected: Rejected[] = [];
    const tasks: Promise<unknown>[] = [];
    for (const g of byTable.values()) {
      const contract = (g.events[0] as AcceptedEvent).contract;
      tasks.push(
        this.deps.warehouse
          .insertEvents(
            contract,
            g.events.map((e) => e.row),
          )
          .then((rej) => {
            for (const r of rej) rejected.push({ items: g.items[r.index] ?? [], reason: r.reason });
          }),
      );
    }
    if (toArchive.length) tasks.push(this.deps.archive.write(toArchive));
    if (deadRecords.length) tasks.push(this.writeDeadLetters(deadRecords));
    await settleAll(tasks);
    return rejected;
  }

  /** Rows the warehouse refused become dead letters (their items' results say so). */
  private async deadLetterRejected(
    rejected: Rejected[],
    items: Item[],
    results: ItemResult[],
  ): Promise<void> {
    const late: DeadLetterRecord[] = [];
    for (const r of rejected)
      for (const i of r.items) {
        const item = items[i] as Item & { kind: 'event' };
        const ev = item.event;
        const reasons: Violation[] = [{ path: '$', code: 'warehouse_rejected', reason: r.reason }];
        const total = Buffer.byteLength(ev.message.data ?? '', 'base64');
        const payload = this.safePayload(ev.message, item);
        late.push(
          this.record(ev.message, payload, total, reasons, ev.contract.event_type, ev.row.event_id as string),
        );
        results[i] = { status: 'dead-lettered', reasons };
      }
    await this.writeDeadLetters(late);
  }

  private async writeDeadLetters(records: DeadLetterRecord[]): Promise<void> {
    await settleAll([
      this.deps.warehouse.insertDeadLetters(records),
      this.deps.deadLetters.publish(
        records.map((r) => deadLetterMessage(r, JSON.parse(r.attributes) as Record<string, string>)),
      ),
    ]);
  }
}

/**
 * Waits for every write, then fails with the first failure. A failed flush must not leave a sibling
 * write running: its messages are redelivered while it still runs, and closing the instance (the
 * DuckDB file) under a running statement crashes the process.
 */
async function settleAll(tasks: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(tasks)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

interface TableGroup {
  events: AcceptedEvent[];
  /** Per stored event, the batch items it stands for (a message delivered twice into one batch). */
  items: number[][];
  ids: Map<string, number>;
}

interface Rejected {
  items: number[];
  reason: string;
}

/**
 * The batch's dead letters, each message once. Messages are told apart by id AND publish time: the
 * local emulator reuses ids after a restart.
 */
function uniqueDeadLetters(items: readonly Item[]): DeadLetterRecord[] {
  const seen = new Set<string>();
  return items.flatMap((it) => {
    if (it.kind !== 'dead') return [];
    const key = messageKey({ messageId: it.record.message_id, publishTime: it.record.publish_time });
    if (seen.has(key)) return [];
    seen.add(key);
    return [it.record];
  });
}

/** The batch's events by table (one row per event_id) and for the archive (one line per message). */
function groupEvents(items: readonly Item[]): {
  byTable: Map<string, TableGroup>;
  toArchive: AcceptedEvent[];
  events: number;
} {
  const seenMessages = new Set<string>();
  const toArchive: AcceptedEvent[] = [];
  const byTable = new Map<string, TableGroup>();
  let events = 0;
  for (const [i, it] of items.entries()) {
    if (it.kind !== 'event') continue;
    events++;
    const ev = it.event;
    const key = archiveKey(ev);
    if (!seenMessages.has(key)) {
      seenMessages.add(key);
      toArchive.push(ev);
    }
    let g = byTable.get(ev.contract.table);
    if (!g) byTable.set(ev.contract.table, (g = { events: [], items: [], ids: new Map() }));
    const id = ev.row.event_id as string;
    const at = g.ids.get(id);
    if (at !== undefined) (g.items[at] as number[]).push(i);
    else {
      g.ids.set(id, g.events.length);
      g.events.push(ev);
      g.items.push([i]);
    }
  }
  return { byTable, toArchive, events };
}

type Ids = Pick<RouteOutcome, 'messageId' | 'eventType' | 'eventId'>;
const logIds = (i: Ids): Record<string, unknown> => ({
  event_type: i.eventType,
  event_id: i.eventId,
  message_id: i.messageId,
});

/**
 * The dead-letter topic message: the record as JSON (original bytes base64, original attributes as an
 * object, every reason) with a few attributes to filter on without parsing.
 */
export function deadLetterMessage(
  rec: DeadLetterRecord,
  attributes: Record<string, string>,
): DeadLetterMessage {
  const clip = (s: string): string =>
    Buffer.byteLength(s) > 1024 ? Buffer.from(s).subarray(0, 1000).toString('utf8') : s;
  attributes = Object.fromEntries(Object.entries(attributes).map(([k, v]) => [wellFormed(k), wellFormed(v)]));
  const attrs: Record<string, string> = {
    source_message_id: clip(rec.message_id),
    reason_codes: clip([...new Set(rec.reasons.map((r) => r.code))].join(',')),
    dead_lettered_at: rec.dead_lettered_at,
  };
  if (rec.event_type) attrs.event_type = clip(rec.event_type);
  if (rec.event_id) attrs.event_id = clip(rec.event_id);
  return { data: Buffer.from(JSON.stringify({ ...rec, attributes })), attributes: attrs };
}
