/**
 * The byte side of ingestion: a generation-pinned streamed read of the raw object, size limits,
 * transparent gunzip (decompressed-size and decompression-ratio caps stop gzip bombs), BOM stripping
 * and a peek at the head so the format and CSV header are known before DuckDB starts.
 */
import { pipeline, Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { permanent } from '../errors';
import { localFileOf, type ObjectStore } from '../storage/object-store';
import { detectFormat, isGzip, stripBom, type InputFormat } from './format';

export interface SourceLimits {
  maxObjectBytes: number;
  maxDecompressedBytes: number;
  /** Decompressed ÷ stored bytes a gzipped object may reach (beyond RATIO_FLOOR_BYTES). */
  maxDecompressionRatio: number;
  maxLineBytes: number;
}

/** Below this many decompressed bytes the ratio is not checked: small files may compress very well. */
export const RATIO_FLOOR_BYTES = 16 * 1024 ** 2;

export interface OpenedSource {
  format: InputFormat | 'empty';
  gzip: boolean;
  /** Decompressed, BOM-stripped head (at least the first line when one fits in maxLineBytes). */
  head: Buffer;
  /** The whole decompressed content, head included. */
  stream: Readable;
  /** Bytes read from storage so far / decompressed so far (live counters for progress). */
  counters: { storedBytes: number; bytes: number };
  /**
   * The same bytes as a local file an engine may open itself (local stores, uncompressed objects):
   * pinned to this generation until released — whoever opened the source releases it.
   */
  file?: { path: string; release: () => void };
}

/** Reads from `it` until `want(buffer)` says enough or the stream ends; returns the bytes and the rest. */
async function peek(
  it: AsyncIterator<Buffer>,
  want: (b: Buffer) => boolean,
): Promise<{ head: Buffer; done: boolean }> {
  const parts: Buffer[] = [];
  let len = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { head: Buffer.concat(parts, len), done: true };
    parts.push(r.value);
    len += r.value.length;
    const b = Buffer.concat(parts, len);
    if (want(b)) return { head: b, done: false };
  }
}

function resume(head: Buffer, it: AsyncIterator<Buffer>, done: boolean): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1 });
}

export async function openSource(
  store: ObjectStore,
  ref: { bucket: string; name: string; generation: string; contentType?: string; size?: number },
  limits: SourceLimits,
): Promise<OpenedSource> {
  const counters = { storedBytes: 0, bytes: 0 };
  const raw = await store.read(ref.bucket, ref.name, { generation: ref.generation });
  // Taken before the stream is consumed (the driver's offer ends when the stream closes).
  const file = localFileOf(raw)?.open();
  try {
    const opened = await openStream(raw, ref, limits, counters);
    if (!file) return opened;
    if (opened.gzip) {
      file.release();
      return opened;
    }
    return { ...opened, file };
  } catch (err) {
    file?.release();
    throw err;
  }
}

async function openStream(
  raw: Readable,
  ref: { name: string; contentType?: string; size?: number },
  limits: SourceLimits,
  counters: OpenedSource['counters'],
): Promise<OpenedSource> {
  const noop = (): void => undefined;
  // pipeline() (not .pipe) so an error anywhere destroys every stage and reaches the consumer.
  const counted = pipeline(
    raw,
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        counters.storedBytes += chunk.length;
        if (counters.storedBytes > limits.maxObjectBytes)
          return cb(
            permanent(
              'OBJECT_TOO_LARGE',
              `Object exceeds SMELTER_MAX_OBJECT_BYTES (${limits.maxObjectBytes} bytes)`,
            ),
          );
        cb(null, chunk);
      },
    }),
    noop,
  );
  const it1 = counted[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await peek(it1, (b) => b.length >= 2);
  const gzip = isGzip(first.head);
  const ratioLimit =
    ref.size === undefined ? Infinity : Math.max(RATIO_FLOOR_BYTES, ref.size * limits.maxDecompressionRatio);
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      counters.bytes += chunk.length;
      if (gzip && counters.bytes > limits.maxDecompressedBytes)
        return cb(
          permanent(
            'DECOMPRESSED_TOO_LARGE',
            `Decompressed size exceeds SMELTER_MAX_DECOMPRESSED_BYTES (${limits.maxDecompressedBytes} bytes): possible gzip bomb`,
          ),
        );
      if (gzip && counters.bytes > ratioLimit)
        return cb(
          permanent(
            'DECOMPRESSED_TOO_LARGE',
            `Decompressed size exceeds ${limits.maxDecompressionRatio}× the ${ref.size} bytes stored (SMELTER_MAX_DECOMPRESSION_RATIO): possible gzip bomb`,
            { details: { storedBytes: ref.size, ratio: limits.maxDecompressionRatio } },
          ),
        );
      cb(null, chunk);
    },
  });
  const stages: (Readable | Transform)[] = [resume(first.head, it1, first.done)];
  if (gzip) {
    const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
    stages.push(gunzip);
  }
  const content = (pipeline as unknown as (...s: unknown[]) => Readable)(...stages, counter, noop);
  // Peek the decompressed head: enough for format detection and a CSV header line.
  const it2 = content[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const second = await peek(
    it2,
    (b) =>
      (b.length >= 64 * 1024 && (b.includes(0x0a) || b.includes(0x0d))) || b.length > limits.maxLineBytes,
  );
  const head = stripBom(second.head);
  const format = detectFormat(
    { name: ref.name, ...(ref.contentType ? { contentType: ref.contentType } : {}) },
    head,
  );
  const stream = resume(head, it2, second.done);
  // A consumer that stops early destroys what it reads: let that reach the object's own stream (an
  // abandoned generator would leave it, and its file handle, open).
  stream.once('close', () => raw.destroy());
  return { format, gzip, head, stream, counters };
}

/** zlib failures (corrupt or truncated gzip) are data errors, not faults worth a retry. */
export function classifySourceError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { kind?: string };
  if (e && !e.kind && typeof e.code === 'string' && e.code.startsWith('Z_'))
    return permanent('BAD_DATA', `Corrupt gzip stream: ${e.message}`, { cause: e });
  if (e && !e.kind && e.message === 'unexpected end of file')
    return permanent('BAD_DATA', 'Truncated gzip stream', { cause: e });
  return err;
}
