/** In-memory driver: for unit tests and the contract suite's reference behaviour. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { SmelterError } from '../../errors';
import {
  assertValidBucketName,
  assertValidObjectName,
  compareObjectNames,
  guessContentType,
  type ObjectMeta,
  type ObjectStore,
  type ReadOptions,
  type WriteOptions,
  type WriteSource,
} from '../../storage/object-store';
import { toReadable } from './fs';

interface Entry {
  meta: ObjectMeta;
  data: Buffer;
}

export class MemoryObjectStore implements ObjectStore {
  readonly driver = 'memory';
  private readonly buckets = new Map<string, Map<string, Entry>>();
  private lastGeneration = BigInt(Date.now()) * 1000n;

  private bucket(bucket: string): Map<string, Entry> {
    assertValidBucketName(bucket);
    let b = this.buckets.get(bucket);
    if (!b) {
      b = new Map();
      this.buckets.set(bucket, b);
    }
    return b;
  }

  async ensureBucket(bucket: string): Promise<void> {
    this.bucket(bucket);
  }

  async read(bucket: string, name: string, opts: ReadOptions = {}): Promise<Readable> {
    assertValidObjectName(name);
    const e = this.bucket(bucket).get(name);
    if (!e || (opts.generation !== undefined && e.meta.generation !== String(opts.generation)))
      throw new SmelterError('NOT_FOUND', `No such object: gs://${bucket}/${name}`, { kind: 'permanent' });
    return Readable.from([e.data]);
  }

  async write(
    bucket: string,
    name: string,
    source: WriteSource,
    opts: WriteOptions = {},
  ): Promise<ObjectMeta> {
    assertValidObjectName(name);
    const chunks: Buffer[] = [];
    for await (const c of toReadable(source)) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    const data = Buffer.concat(chunks);
    const b = this.bucket(bucket);
    if (
      opts.ifGenerationMatch !== undefined &&
      opts.ifGenerationMatch !== '0' &&
      b.get(name)?.meta.generation !== opts.ifGenerationMatch
    )
      throw new SmelterError(
        'PRECONDITION_FAILED',
        `Generation ${opts.ifGenerationMatch} of gs://${bucket}/${name} is not live`,
        {
          kind: 'permanent',
        },
      );
    if ((opts.ifAbsent || opts.ifGenerationMatch === '0') && b.has(name))
      throw new SmelterError('PRECONDITION_FAILED', `Object already exists: gs://${bucket}/${name}`, {
        kind: 'permanent',
      });
    const now = BigInt(Date.now()) * 1000n;
    this.lastGeneration = now > this.lastGeneration ? now : this.lastGeneration + 1n;
    const ts = new Date().toISOString();
    const meta: ObjectMeta = {
      bucket,
      name,
      generation: this.lastGeneration.toString(),
      size: data.length,
      contentType: opts.contentType ?? guessContentType(name),
      timeCreated: ts,
      updated: ts,
      md5Hash: createHash('md5').update(data).digest('base64'),
      ...(opts.metadata ? { metadata: { ...opts.metadata } } : {}),
    };
    b.set(name, { meta, data });
    return { ...meta };
  }

  async stat(bucket: string, name: string): Promise<ObjectMeta | undefined> {
    assertValidObjectName(name);
    const e = this.bucket(bucket).get(name);
    return e ? { ...e.meta } : undefined;
  }

  async *list(bucket: string, prefix = ''): AsyncIterable<ObjectMeta> {
    const names = [...this.bucket(bucket).keys()]
      .filter((n) => n.startsWith(prefix))
      .sort(compareObjectNames);
    for (const n of names) {
      const e = this.bucket(bucket).get(n);
      if (e) yield { ...e.meta };
    }
  }

  async delete(bucket: string, name: string): Promise<boolean> {
    assertValidObjectName(name);
    return this.bucket(bucket).delete(name);
  }
}
