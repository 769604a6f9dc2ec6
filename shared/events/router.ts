/**
 * The event router: the whole of `routeEvent` minus the wiring. One message in →
 *   valid:   a row in its type's table (at most once per event_id) AND a line in the archive;
 *   invalid: a row in the dead-letter table AND a message on the dead-letter topic, with every reason;
 * and only then does `route()` resolve (the platform acknowledges on return). Transient failures
 * reject, so the platform redelivers. Writes go through a shared micro-batcher.
 *
 * Retrying is bounded by age: when a message published more than `maxEventAgeMs` ago still cannot be
 * written, it is dead-lettered (reason `retries_exhausted`) and acknowledged; if even that fails it is
 * logged at ERROR with its bytes and acknowledged — a poison message must not be retried forever.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import { errorKind, errorMessage } from '../errors';
import type { Logger } from '../log';
import { MicroBatcher, type BatcherStats } from './batcher';
import type { ContractLookup } from './contract';
import { archiveKey } from './archive';
import { messageFromCloudEvent, messageKey } from './message';
import {
  DEAD_LETTER_MAX_DATA_BYTES,
  decodeBase64Head,
  decodeMessageData,
  MAX_JSON_DEPTH,
  wellFormed,
} from './parse';
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
  batcher: BatcherStats;
}

export class EventRouter {
  private readonly batcher: MicroBatcher<Item, ItemResult>;
  private readonly now: () => number;
  private readonly counts = { received: 0, stored: 0, deadLettered: 0, abandoned: 0, failed: 0 };
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
    if (preViolation)
      return this.dead(
        msg,
        decodeBase64Head(msg.data ?? '', DEAD_LETTER_MAX_DATA_BYTES),
        null,
        [preViolation],
        null,
        null,
      );
    const decoded = decodeMessageData(msg.data, {
      maxEventBytes: this.options.maxEventBytes,
      maxDepth: this.options.maxDepth ?? MAX_JSON_DEPTH,
    });
    if (!decoded.ok) {
      const type = msg.attributes.event_type ?? null;
      return this.dead(msg, decoded.bytes, decoded.size, [decoded.violation], type, null);
    }
    const result = validateEvent(decoded.value, msg.attributes, this.deps.contracts, {
      messageId: msg.messageId,
      // A message that does not say when it was published is stored with when it arrived.
      publishTime: msg.receivedAt ?? msg.publishTime,
      processedAt,
      text: decoded.text,
    });
    if (!result.row || !result.contract)
      return this.dead(
        msg,
        decoded.bytes,
        decoded.bytes.length,
        result.violations,
        result.eventType,
        result.eventId,
      );
    const event: AcceptedEvent = { contract: result.contract, row: result.row, message: msg };
    if (result.extra) event.extra = result.extra;
    return { kind: 'event', event };
  }

  private dead(
    msg: IncomingMessage,
    bytes: Buffer,
    size: number | null,
    reasons: Violation[],
    eventType: string | null,
    eventId: string | null,
  ): Item {
    return { kind: 'dead', record: this.record(msg, bytes, size, reasons, eventType, eventId) };
  }

  private record(
    msg: IncomingMessage,
    bytes: Buffer,
    size: number | null,
    reasons: Violation[],
    eventType: string | null,
    eventId: string | null,
  ): DeadLetterRecord {
    const kept =
      bytes.length > DEAD_LETTER_MAX_DATA_BYTES ? bytes.subarray(0, DEAD_LETTER_MAX_DATA_BYTES) : bytes;
    const total = size ?? bytes.length;
    // The record's text must be storable even when the message's is not (the bytes stay in data_base64).
    const text = (s: string | null): string | null => (s === null ? null : wellFormed(s));
    const attributes = Object.fromEntries(
      Object.entries(msg.attributes).map(([k, v]) => [wellFormed(k), wellFormed(v)]),
    );
    return {
      message_id: wellFormed(msg.messageId),
      publish_time: msg.publishTime,
      event_type: text(eventType),
      event_id: text(eventId),
      attributes: JSON.stringify(attributes),
      data_base64: kept.toString('base64'),
      data_bytes: total,
      data_truncated: kept.length < total,
      reasons: reasons.map((r) => ({ ...r, path: wellFormed(r.path), reason: wellFormed(r.reason) })),
      subscription: text(msg.subscription ?? null),
      delivery_attempt: msg.deliveryAttempt ?? null,
      dead_lettered_at: new Date(this.now()).toISOString(),
    };
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
    const ageMs = Number.isFinite(published) ? this.now() - published : 0;
    const tooOld = ageMs > this.options.maxEventAgeMs;
    if (errorKind(err) === 'transient' && !tooOld) {
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
      reason: tooOld
        ? `still failing ${Math.round(ageMs / 1000)} s after publication (SMELTER_MAX_EVENT_AGE_MS): ${errorMessage(err)}`
        : `could not be written: ${errorMessage(err)}`,
    };
    const bytes = decodeBase64Head(msg.data ?? '', DEAD_LETTER_MAX_DATA_BYTES);
    const prior = item?.kind === 'dead' ? item.record.reasons : [];
    const rec = this.record(msg, bytes, null, [...prior, reason], ids.eventType, ids.eventId);
    const [table, topic] = await Promise.allSettled([
      this.deps.warehouse.insertDeadLetters([rec]),
      this.deps.deadLetters.publish([deadLetterMessage(rec, msg.attributes)]),
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
    if (!tooOld) {
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
        attributes: msg.attributes,
        publishTime: msg.publishTime,
        data_base64: msg.data?.slice(0, 256 * 1024),
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
    // A message delivered twice into one batch is written once. Messages are told apart by id AND
    // publish time: the local emulator reuses ids after a restart.
    const seenDead = new Set<string>();
    const deadRecords = items.flatMap((it) => {
      if (it.kind !== 'dead') return [];
      const key = messageKey({ messageId: it.record.message_id, publishTime: it.record.publish_time });
      if (seenDead.has(key)) return [];
      seenDead.add(key);
      return [it.record];
    });
    const eventIdx = items.flatMap((it, i) => (it.kind === 'event' ? [i] : []));

    const seenMessages = new Set<string>();
    const toArchive: AcceptedEvent[] = [];
    const byTable = new Map<
      string,
      { events: AcceptedEvent[]; items: number[][]; ids: Map<string, number> }
    >();
    for (const i of eventIdx) {
      const ev = (items[i] as { event: AcceptedEvent }).event;
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

    // Tables, archive and dead letters are written in parallel (DuckDB too: separate statements on
    // separate connections beat one transaction here); each must succeed.
    const rejected: { items: number[]; reason: string }[] = [];
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
    if (deadRecords.length) tasks.push(this.writeDeadLetters(deadRecords, items));
    await Promise.all(tasks);

    if (rejected.length) {
      const late: DeadLetterRecord[] = [];
      for (const r of rejected)
        for (const i of r.items) {
          const ev = (items[i] as { event: AcceptedEvent }).event;
          const reasons: Violation[] = [{ path: '$', code: 'warehouse_rejected', reason: r.reason }];
          const bytes = decodeBase64Head(ev.message.data ?? '', DEAD_LETTER_MAX_DATA_BYTES);
          const total = Buffer.byteLength(ev.message.data ?? '', 'base64');
          late.push(
            this.record(ev.message, bytes, total, reasons, ev.contract.event_type, ev.row.event_id as string),
          );
          results[i] = { status: 'dead-lettered', reasons };
        }
      await this.writeDeadLetters(late, items);
    }
    this.deps.log.debug('batch written', {
      events: eventIdx.length,
      deadLetters: deadRecords.length,
      rejected: rejected.length,
      durationMs: this.now() - t0,
    });
    return results;
  }

  private async writeDeadLetters(records: DeadLetterRecord[], items: Item[]): Promise<void> {
    const attrs = new Map<string, Record<string, string>>();
    for (const it of items) {
      if (it.kind === 'dead')
        attrs.set(
          messageKey({ messageId: it.record.message_id, publishTime: it.record.publish_time }),
          JSON.parse(it.record.attributes) as Record<string, string>,
        );
      else
        attrs.set(
          messageKey({ ...it.event.message, messageId: wellFormed(it.event.message.messageId) }),
          it.event.message.attributes,
        );
    }
    const attributesOf = (r: DeadLetterRecord): Record<string, string> =>
      attrs.get(messageKey({ messageId: r.message_id, publishTime: r.publish_time })) ?? {};
    await Promise.all([
      this.deps.warehouse.insertDeadLetters(records),
      this.deps.deadLetters.publish(records.map((r) => deadLetterMessage(r, attributesOf(r)))),
    ]);
  }
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
