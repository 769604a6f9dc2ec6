/**
 * The object-store port. Every function reads and writes objects through it; drivers exist for GCS,
 * the local filesystem and memory, and one contract suite (test/shared/adapters/storage/contract.ts) runs against all.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { permanent } from '../errors';

export interface ObjectMeta {
  bucket: string;
  name: string;
  /** GCS generation: a decimal int64 as a string (it does not fit a JS number safely). */
  generation: string;
  size: number;
  contentType?: string;
  timeCreated: string;
  updated: string;
  md5Hash?: string;
  crc32c?: string;
  metadata?: Record<string, string>;
}

export interface WriteOptions {
  /** Create only if no live object has this name (GCS `ifGenerationMatch: 0`). Fails with PRECONDITION_FAILED. */
  ifAbsent?: boolean;
  /** Replace only this live generation (GCS `ifGenerationMatch`): compare-and-swap of small state objects. */
  ifGenerationMatch?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

export interface ReadOptions {
  /** Read this generation; fails with NOT_FOUND if it is no longer live. */
  generation?: string;
}

export type WriteSource = Readable | AsyncIterable<Uint8Array | string> | Buffer | string;

/**
 * A regular file on the local disk as a write source. Any driver can stream it (it is an async
 * iterable of its bytes, opened afresh on each iteration); the filesystem driver copies it in the
 * kernel instead of passing every byte through JavaScript.
 */
export class LocalFile implements AsyncIterable<Buffer> {
  /** A Buffer for a name that is not valid UTF-8. */
  constructor(readonly path: string | Buffer) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return (fs.createReadStream(this.path) as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
}

/**
 * What a local driver's `read()` stream may also offer, under the LOCAL_FILE key: the same bytes as a
 * file of this machine, for an engine that opens files itself (DuckDB scans a seekable file on every
 * thread, a stream on one). `open()` pins the generation the stream reads until `release()`; it
 * returns undefined when that is no longer possible. Wrapping the stream drops the offer, so a store
 * that alters what `read()` yields never has its bytes read around it.
 */
export interface LocalFileOffer {
  open(): { path: string; release: () => void } | undefined;
}

export const LOCAL_FILE = Symbol('smelter.localFile');

/** The local file behind a `read()` stream, if its driver offers one. */
export function localFileOf(stream: Readable): LocalFileOffer | undefined {
  return (stream as Readable & { [LOCAL_FILE]?: LocalFileOffer })[LOCAL_FILE];
}

export interface ObjectStore {
  readonly driver: string;
  /** Creates the bucket if the driver can (local drivers); a no-op check elsewhere. */
  ensureBucket(bucket: string): Promise<void>;
  /** A streamed read. Rejects with NOT_FOUND when the object (or generation) does not exist. */
  read(bucket: string, name: string, opts?: ReadOptions): Promise<Readable>;
  /** Streams `source` into the object; atomic: readers never see a partial object. */
  write(bucket: string, name: string, source: WriteSource, opts?: WriteOptions): Promise<ObjectMeta>;
  stat(bucket: string, name: string): Promise<ObjectMeta | undefined>;
  /** Objects whose names start with `prefix`, in UTF-8 byte order (GCS's order; see compareObjectNames). */
  list(bucket: string, prefix?: string): AsyncIterable<ObjectMeta>;
  /** Returns false if nothing was there. */
  delete(bucket: string, name: string): Promise<boolean>;
}

const MAX_NAME_BYTES = 1024;

/**
 * Object names are untrusted input (they come from whoever can write to a bucket). GCS itself accepts
 * almost anything; we reject what can never be mapped safely or is certainly hostile.
 */
export function assertValidObjectName(name: unknown): asserts name is string {
  const fail = (why: string): never => {
    throw permanent(
      'INVALID_OBJECT_NAME',
      `Invalid object name ${JSON.stringify(String(name).slice(0, 200))}: ${why}`,
    );
  };
  if (typeof name !== 'string' || name.length === 0) fail('empty');
  const s = name as string;
  if (Buffer.byteLength(s, 'utf8') > MAX_NAME_BYTES) fail(`longer than ${MAX_NAME_BYTES} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) fail('contains a control character');
  if (s.includes('\ufffd')) fail('is not valid UTF-8');
  if (s === '.well-known/acme-challenge' || s.startsWith('.well-known/acme-challenge/'))
    fail('is reserved by GCS');
}

/** Stricter rules for names that must map onto a filesystem path. */
export function assertPathSafeObjectName(name: string): string[] {
  assertValidObjectName(name);
  if (name.startsWith('/'))
    throw permanent('INVALID_OBJECT_NAME', `Invalid object name ${JSON.stringify(name)}: absolute`);
  if (name.includes('\\'))
    throw permanent(
      'INVALID_OBJECT_NAME',
      `Invalid object name ${JSON.stringify(name)}: contains a backslash`,
    );
  const parts = name.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..')
      throw permanent(
        'INVALID_OBJECT_NAME',
        `Invalid object name ${JSON.stringify(name)}: empty, "." or ".." segment`,
      );
    if (Buffer.byteLength(p) > 255)
      throw permanent(
        'INVALID_OBJECT_NAME',
        `Invalid object name ${JSON.stringify(name)}: a segment exceeds 255 bytes`,
      );
  }
  return parts;
}

export function assertValidBucketName(bucket: string): void {
  if (!/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..'))
    throw permanent('INVALID_BUCKET_NAME', `Invalid bucket name ${JSON.stringify(bucket)}`);
}

export function guessContentType(name: string): string {
  const n = name.toLowerCase().replace(/\.gz$/, '');
  if (n.endsWith('.parquet')) return 'application/vnd.apache.parquet';
  if (n.endsWith('.csv')) return name.toLowerCase().endsWith('.gz') ? 'application/gzip' : 'text/csv';
  if (n.endsWith('.ndjson') || n.endsWith('.jsonl'))
    return name.toLowerCase().endsWith('.gz') ? 'application/gzip' : 'application/x-ndjson';
  if (n.endsWith('.json'))
    return name.toLowerCase().endsWith('.gz') ? 'application/gzip' : 'application/json';
  return name.toLowerCase().endsWith('.gz') ? 'application/gzip' : 'application/octet-stream';
}

/**
 * The order GCS lists objects in: by UTF-8 bytes. JS string comparison orders UTF-16 code units, which
 * differs for characters above U+FFFF (e.g. '😀' sorts before '～' in JS, after it on GCS).
 */
export function compareObjectNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** `gs://bucket/name` */
export const gsUri = (bucket: string, name: string): string => `gs://${bucket}/${name}`;

/** Reads a small JSON object (manifests, error records) whole; undefined if absent or not JSON. */
export async function readObjectJson<T>(
  store: ObjectStore,
  bucket: string,
  name: string,
): Promise<T | undefined> {
  try {
    const chunks: Buffer[] = [];
    for await (const c of await store.read(bucket, name))
      chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
