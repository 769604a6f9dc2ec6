/**
 * The event router's records and the ports its adapters implement (shared/adapters/events/**).
 */
import type { EventContract } from './contract';

export type ViolationCode =
  | 'no_message'
  | 'no_data'
  | 'not_base64'
  | 'too_large'
  | 'not_utf8'
  | 'lone_surrogate'
  | 'not_json'
  | 'too_deep'
  | 'not_object'
  | 'forbidden_key'
  | 'missing_type'
  | 'type_conflict'
  | 'unknown_type'
  | 'required'
  | 'wrong_type'
  | 'not_accepted'
  | 'below_min'
  | 'above_max'
  | 'pattern'
  | 'too_long'
  | 'too_few_items'
  | 'too_many_items'
  | 'null_element'
  | 'unknown_field'
  | 'too_many_violations'
  | 'warehouse_rejected'
  | 'retries_exhausted';

/** One problem of one message: where (JSONPath, `$` = the whole message) and why. */
export interface Violation {
  path: string;
  code: ViolationCode;
  reason: string;
}

/** A Pub/Sub message as routeEvent receives it (from the CloudEvent's `data.message`). */
export interface IncomingMessage {
  /** Base64 as delivered; undefined when the message has no data. */
  data: string | undefined;
  attributes: Record<string, string>;
  messageId: string;
  /** ISO 8601: the message's publish time, else the CloudEvent's time, else UNKNOWN_PUBLISH_TIME (epoch). */
  publishTime: string;
  /** Set when the publish time is unknown: when this delivery arrived (retries are bounded by it). */
  receivedAt?: string;
  subscription?: string;
  deliveryAttempt?: number;
}

/** A validated, normalised warehouse row: envelope, contract fields, `_message_id`, `_publish_time`, `_processed_at`. */
export type EventRow = Record<string, unknown>;

export interface AcceptedEvent {
  contract: EventContract;
  row: EventRow;
  /** Undeclared fields (contract `additional_fields: keep` only), by JSONPath; archived as `_extra`. */
  extra?: Record<string, unknown>;
  message: IncomingMessage;
}

/** A row of the dead-letter table; also the JSON body of the dead-letter topic message. */
export interface DeadLetterRecord {
  /** With publish_time, the record's key (the emulator reuses message ids after a restart). */
  message_id: string;
  publish_time: string;
  event_type: string | null;
  event_id: string | null;
  /** JSON text of the message attributes. */
  attributes: string;
  data_base64: string;
  data_bytes: number;
  data_truncated: boolean;
  reasons: Violation[];
  subscription: string | null;
  delivery_attempt: number | null;
  dead_lettered_at: string;
}

/** A row the warehouse refused although it passed the contract (e.g. table schema drift). */
export interface WarehouseRejection {
  /** Index into the rows passed to insertEvents. */
  index: number;
  reason: string;
}

/** Per-type event tables and the dead-letter table. */
export interface EventWarehouse {
  readonly kind: string;
  /** Optional: creates what is missing for these contracts and the dead-letter table (local backend). */
  prepare?(contracts: readonly EventContract[]): Promise<void>;
  /**
   * Writes rows to the contract's table, at most once per `event_id` (insert-id dedup). Resolves with
   * the rows refused for good (they are dead-lettered); throws a transient SmelterError otherwise.
   */
  insertEvents(contract: EventContract, rows: readonly EventRow[]): Promise<WarehouseRejection[]>;
  /** At most once per (`message_id`, `publish_time`) — the same message redelivered. */
  insertDeadLetters(rows: readonly DeadLetterRecord[]): Promise<void>;
  /** Releases what the adapter owns (not a shared DuckDB instance). */
  close(): Promise<void>;
}

/** The NDJSON archive (`events/<type>/YYYY/MM/DD/HH/…`) in the archive bucket. */
export interface EventArchive {
  /** Writes the events, batched into objects; resolves with the object names once all are durable. */
  write(events: readonly AcceptedEvent[]): Promise<string[]>;
}

export interface DeadLetterMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/** The dead-letter topic. */
export interface DeadLetterPublisher {
  readonly kind: string;
  /** Resolves once every message is accepted by the topic; throws a transient SmelterError otherwise. */
  publish(messages: readonly DeadLetterMessage[]): Promise<void>;
  close(): Promise<void>;
}
