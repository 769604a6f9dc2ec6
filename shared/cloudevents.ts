/**
 * Typed payloads of the CloudEvents Smelter consumes, and tolerant parsing of their fields
 * (`generation` and `size` arrive as strings from Eventarc and as numbers from some emulators).
 */
import { permanent } from './errors';

export const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';
export const PUBSUB_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

/** The Cloud Storage object resource carried as `data` by storage events. */
export interface StorageObjectData {
  bucket: string;
  name: string;
  generation: string | number;
  metageneration?: string | number;
  size?: string | number;
  contentType?: string;
  contentEncoding?: string;
  timeCreated?: string;
  updated?: string;
  md5Hash?: string;
  crc32c?: string;
  id?: string;
  selfLink?: string;
  storageClass?: string;
  metadata?: Record<string, string>;
}

/** The Pub/Sub `messagePublished` payload. */
export interface MessagePublishedData {
  message: {
    data?: string;
    attributes?: Record<string, string>;
    messageId?: string;
    message_id?: string;
    publishTime?: string;
    publish_time?: string;
    orderingKey?: string;
  };
  subscription?: string;
  deliveryAttempt?: number;
}

export interface StorageObjectRef {
  bucket: string;
  name: string;
  generation: string;
  size?: number;
  contentType?: string;
  contentEncoding?: string;
  timeCreated?: string;
}

/** Validates the parts of a storage event Smelter relies on; anything else is a permanent BAD_EVENT. */
export function parseStorageObject(data: unknown): StorageObjectRef {
  let d = data;
  if (typeof d === 'string' || Buffer.isBuffer(d)) {
    try {
      d = JSON.parse(d.toString());
    } catch {
      throw permanent('BAD_EVENT', 'Storage event data is not JSON');
    }
  }
  if (!d || typeof d !== 'object') throw permanent('BAD_EVENT', 'Storage event has no data');
  const o = d as Partial<StorageObjectData>;
  if (typeof o.bucket !== 'string' || !o.bucket)
    throw permanent('BAD_EVENT', 'Storage event data has no bucket');
  if (typeof o.name !== 'string' || !o.name)
    throw permanent('BAD_EVENT', 'Storage event data has no object name');
  const gen = typeof o.generation === 'number' ? BigInt(Math.trunc(o.generation)).toString() : o.generation;
  if (typeof gen !== 'string' || !/^\d{1,20}$/.test(gen))
    throw permanent('BAD_EVENT', `Storage event has an invalid generation: ${String(o.generation)}`);
  const size = o.size === undefined ? undefined : Number(o.size);
  const ref: StorageObjectRef = { bucket: o.bucket, name: o.name, generation: gen };
  if (size !== undefined && Number.isFinite(size) && size >= 0) ref.size = size;
  if (typeof o.contentType === 'string') ref.contentType = o.contentType;
  if (typeof o.contentEncoding === 'string') ref.contentEncoding = o.contentEncoding;
  if (typeof o.timeCreated === 'string') ref.timeCreated = o.timeCreated;
  return ref;
}

/** Age of an event from its CloudEvent `time` (or a fallback), in ms; undefined when unknown. */
export function eventAgeMs(time: string | undefined, now = Date.now()): number | undefined {
  if (!time) return undefined;
  const t = Date.parse(time);
  return Number.isFinite(t) ? now - t : undefined;
}
