/**
 * Gzipped NDJSON parts of one pull unit (a window, or a run): `<dataset>/pulled/<source>/<unit>/part-NNNNN.ndjson.gz`.
 * Pages are appended to the open part and streamed through gzip into the object store, so only the
 * current page is held; a part closes at the first page boundary past `recordsPerPart`, which makes its
 * boundaries — and names — the same when a run is retried. Parts are created with ifGenerationMatch=0:
 * a part that already exists (an earlier attempt committed it) is left alone and its pages skipped.
 */
import { PassThrough } from 'node:stream';
import { createGzip, type Gzip } from 'node:zlib';
import { isSmelterError } from '../errors';
import type { ObjectStore } from '../storage/object-store';

export const partName = (prefix: string, n: number): string =>
  `${prefix}/part-${String(n).padStart(5, '0')}.ndjson.gz`;

/** Folder of one unit: `<dataset>/pulled/<source>/<unit>`. */
export const unitPrefix = (dataset: string, source: string, unit: string): string =>
  `${dataset}/pulled/${source}/${unit}`;

interface OpenPart {
  name: string;
  records: number;
  /** undefined when the part already exists (its pages are skipped). */
  gzip?: Gzip;
  body?: PassThrough;
  done?: Promise<unknown>;
}

export interface PartsResult {
  /** Parts written by this attempt. */
  written: string[];
  /** Parts an earlier attempt had already committed. */
  existing: string[];
  records: number;
}

export class PartWriter {
  private n = 0;
  private open: OpenPart | undefined;
  private readonly result: PartsResult = { written: [], existing: [], records: 0 };

  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly recordsPerPart: number,
    private readonly metadata: Record<string, string>,
    // Fastest level: 2× the speed of the default for ~10% larger parts (Bronze is ZSTD Parquet anyway).
    private readonly gzipLevel = 1,
  ) {}

  /** Appends one page's records (already filtered and scrubbed). */
  async add(records: unknown[]): Promise<void> {
    if (records.length === 0) return;
    const part = this.open ?? (await this.start());
    part.records += records.length;
    this.result.records += records.length;
    if (part.gzip) {
      let text = '';
      for (const r of records) text += JSON.stringify(r) + '\n';
      if (!part.gzip.write(text)) await waitDrain(part.gzip, part.done);
    }
    if (part.records >= this.recordsPerPart) await this.close();
  }

  /** Appends one page's records already as NDJSON bytes (`count` lines, each ending in a newline). */
  async addText(text: Buffer, count: number): Promise<void> {
    if (count === 0) return;
    const part = this.open ?? (await this.start());
    part.records += count;
    this.result.records += count;
    if (part.gzip && !part.gzip.write(text)) await waitDrain(part.gzip, part.done);
    if (part.records >= this.recordsPerPart) await this.close();
  }

  private async start(): Promise<OpenPart> {
    const name = partName(this.prefix, this.n++);
    if (await this.store.stat(this.bucket, name)) {
      this.open = { name, records: 0 };
      return this.open;
    }
    const gzip = createGzip({ level: this.gzipLevel });
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    gzip.pipe(body);
    const done = this.store
      .write(this.bucket, name, body, {
        ifAbsent: true,
        contentType: 'application/x-ndjson',
        metadata: this.metadata,
      })
      .then(
        () => 'written' as const,
        (err: unknown) => {
          // Another attempt committed the same part in between: same name, same pages.
          if (isSmelterError(err, 'PRECONDITION_FAILED')) return 'existing' as const;
          throw err;
        },
      );
    // Surface a failed upload at the next write or close, not as an unhandled rejection.
    done.catch(() => undefined);
    this.open = { name, records: 0, gzip, body, done };
    return this.open;
  }

  /** Commits the open part (if any). */
  async close(): Promise<void> {
    const part = this.open;
    this.open = undefined;
    if (!part) return;
    if (!part.gzip) {
      this.result.existing.push(part.name);
      return;
    }
    part.gzip.end();
    const how = await part.done;
    (how === 'existing' ? this.result.existing : this.result.written).push(part.name);
  }

  async finish(): Promise<PartsResult> {
    await this.close();
    return this.result;
  }

  /** Abandons the open part: nothing is committed under its name. */
  async abort(err: Error): Promise<void> {
    const part = this.open;
    this.open = undefined;
    if (part?.gzip) {
      // The upload sees the error (nothing is committed); gzip just stops.
      part.body?.destroy(err);
      part.gzip.destroy();
      await part.done?.catch(() => undefined);
    }
  }
}

function waitDrain(gzip: Gzip, done: Promise<unknown> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ok = (): void => {
      gzip.off('error', bad);
      resolve();
    };
    const bad = (e: Error): void => {
      gzip.off('drain', ok);
      reject(e);
    };
    gzip.once('drain', ok);
    gzip.once('error', bad);
    done?.then(
      () => undefined,
      (e: unknown) => {
        gzip.off('drain', ok);
        gzip.off('error', bad);
        reject(e as Error);
      },
    );
  });
}
