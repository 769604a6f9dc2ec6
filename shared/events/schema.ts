/**
 * Table layouts derived from event contracts — one definition for the local DuckDB tables, the
 * BigQuery tables (created by deploy) and the dead-letter table.
 */
import { createHash } from 'node:crypto';
import { type BigQueryField, bigqueryField, type FieldSpec } from '../contracts/types';
import type { EventContract } from './contract';
import { storedEventFields } from './privacy';

export const ENVELOPE_FIELDS: readonly FieldSpec[] = [
  {
    name: 'event_id',
    type: 'string',
    required: true,
    description: 'Producer-assigned id; the BigQuery insert id.',
  },
  { name: 'event_type', type: 'string', required: true, description: 'Event contract name.' },
  { name: 'event_time', type: 'timestamp', required: true, description: 'When the event happened (UTC).' },
];

export const METADATA_FIELDS: readonly FieldSpec[] = [
  { name: '_message_id', type: 'string', required: true, description: 'Pub/Sub message id.' },
  { name: '_publish_time', type: 'timestamp', required: true, description: 'Pub/Sub publish time.' },
  {
    name: '_processed_at',
    type: 'timestamp',
    required: true,
    description: 'When routeEvent validated the event.',
  },
];

/**
 * Every column of an event table, in order: envelope, contract fields as stored (`drop` fields left
 * out, `hash` fields as strings), processing metadata.
 */
export function eventTableFields(c: Pick<EventContract, 'fields'>): FieldSpec[] {
  return [...ENVELOPE_FIELDS, ...storedEventFields(c.fields), ...METADATA_FIELDS];
}

export const DEAD_LETTER_TABLE = 'dead_letter';

/**
 * The dead-letter table's key: a redelivered message is recorded once, and a different message that
 * reuses an id (the local emulator numbers messages from "1" again after a restart) is a new row.
 */
export const DEAD_LETTER_KEY = ['message_id', 'publish_time'] as const;

/** The BigQuery insert id of a dead letter: a hash of its key (message_id + publish_time). */
export function deadLetterInsertId(r: { message_id: string; publish_time: string }): string {
  return createHash('sha256').update(`${r.message_id}\u0000${r.publish_time}`).digest('hex').slice(0, 32);
}

const REASON: FieldSpec = {
  name: 'reasons',
  type: {
    array: {
      struct: [
        {
          name: 'path',
          type: 'string',
          description: 'JSONPath of the offending value ($ = the whole message).',
        },
        { name: 'code', type: 'string', description: 'Stable violation code, e.g. not_accepted.' },
        { name: 'reason', type: 'string', description: 'Human-readable explanation.' },
      ],
    },
  },
  description: 'Every violation found.',
};

export const DEAD_LETTER_FIELDS: readonly FieldSpec[] = [
  { name: 'message_id', type: 'string', required: true, description: 'Pub/Sub message id (the insert id).' },
  { name: 'publish_time', type: 'timestamp', description: 'Pub/Sub publish time.' },
  { name: 'event_type', type: 'string', description: 'Event type, when it could be read.' },
  { name: 'event_id', type: 'string', description: 'Event id, when it could be read.' },
  { name: 'attributes', type: 'json', description: 'Message attributes.' },
  {
    name: 'data_base64',
    type: 'string',
    description: 'Original message bytes, base64 (truncated when data_truncated).',
  },
  { name: 'data_bytes', type: 'int64', description: 'Size of the original message data in bytes.' },
  { name: 'data_truncated', type: 'bool', description: 'True when data_base64 holds only the first bytes.' },
  REASON,
  { name: 'subscription', type: 'string', description: 'Subscription that delivered the message.' },
  { name: 'delivery_attempt', type: 'int64', description: 'Delivery attempt, when the platform reports it.' },
  {
    name: 'dead_lettered_at',
    type: 'timestamp',
    required: true,
    description: 'When routeEvent dead-lettered it.',
  },
];

export interface BigQueryTableSpec {
  table: string;
  description?: string;
  schema: BigQueryField[];
  timePartitioning: { type: 'DAY'; field: string };
  clustering?: { fields: string[] };
}

/** What deploy creates for an event type: `<prefix>_events.<table>`, DAY-partitioned, clustered. */
export function bigqueryTableSpec(c: EventContract): BigQueryTableSpec {
  return {
    table: c.table,
    ...(c.description ? { description: c.description } : {}),
    schema: eventTableFields(c).map(bigqueryField),
    timePartitioning: { type: 'DAY', field: c.partition },
    ...(c.cluster.length ? { clustering: { fields: [...c.cluster] } } : {}),
  };
}

export function bigqueryDeadLetterSpec(): BigQueryTableSpec {
  return {
    table: DEAD_LETTER_TABLE,
    description: 'Events routeEvent could not accept, with the original bytes and every reason.',
    schema: DEAD_LETTER_FIELDS.map(bigqueryField),
    timePartitioning: { type: 'DAY', field: 'dead_lettered_at' },
    clustering: { fields: ['event_type'] },
  };
}
