/**
 * The Eventarc stand-in for storage triggers: watches the local bucket folders and delivers a
 * `google.cloud.storage.object.v1.finalized` CloudEvent, in the documented shape, for every new object
 * generation to the functions the manifest subscribes to that bucket.
 *
 * A file copied in by hand is delivered once its size and mtime have been stable for a moment (a file
 * manager writes progressively); objects written through the object-store driver are atomic and go at
 * once. Settled generations (delivered or parked) are kept in a ledger, so a restart only delivers what
 * arrived meanwhile — and what was still queued or waiting for a retry when the stack stopped.
 *
 * A file whose name no object name can address (a newline, a tab, bytes that are not UTF-8) is never
 * delivered: it is copied to the quarantine bucket with the reason (`_failed/_unaddressable/…`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FsObjectStore, UnaddressableFile } from '../adapters/storage/fs';
import { STORAGE_FINALIZED, type StorageObjectData } from '../cloudevents';
import { bucketName, FUNCTIONS } from '../manifest';
import { LocalFile, type ObjectMeta } from '../storage/object-store';
import { DeliveryQueue, eventId, type OutgoingEvent } from './delivery';
import type { StackContext, StackPart } from './stack';

const IGNORED = /(^|\/)\.|\.(tmp|part|crdownload|swp|partial)$|~$/i;

export function storageEvent(meta: ObjectMeta): OutgoingEvent {
  const data: StorageObjectData & Record<string, unknown> = {
    kind: 'storage#object',
    id: `${meta.bucket}/${meta.name}/${meta.generation}`,
    selfLink: `https://www.googleapis.com/storage/v1/b/${meta.bucket}/o/${encodeURIComponent(meta.name)}`,
    mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${meta.bucket}/o/${encodeURIComponent(meta.name)}?generation=${meta.generation}&alt=media`,
    name: meta.name,
    bucket: meta.bucket,
    generation: meta.generation,
    metageneration: '1',
    contentType: meta.contentType ?? 'application/octet-stream',
    timeCreated: meta.timeCreated,
    updated: meta.updated,
    storageClass: 'STANDARD',
    timeStorageClassUpdated: meta.timeCreated,
    size: String(meta.size),
    ...(meta.md5Hash ? { md5Hash: meta.md5Hash } : {}),
    ...(meta.metadata ? { metadata: meta.metadata } : {}),
  };
  return {
    id: eventId(['finalize', meta.bucket, meta.name, meta.generation]),
    source: `//storage.googleapis.com/projects/_/buckets/${meta.bucket}`,
    type: STORAGE_FINALIZED,
    subject: `objects/${meta.name}`,
    time: meta.updated,
    data,
  };
}

interface Seen {
  generation: string;
  size: number;
  since: number;
}

export interface StorageTriggersOptions {
  pollMs?: number;
  stableMs?: number;
}

export class StorageTriggers implements StackPart {
  readonly name = 'storage-triggers';
  private readonly queues = new Map<string, DeliveryQueue[]>();
  /** Ledger keys already enqueued in this run or settled in an earlier one: never enqueued again. */
  private readonly delivered = new Set<string>();
  /** Event id → its ledger key and the number of queues that have not settled it yet. */
  private readonly unsettled = new Map<string, { ledgerKey: string; left: number }>();
  private readonly ledgerWrites = new Set<Promise<void>>();
  private readonly seen = new Map<string, Seen>();
  private watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private scanning = false;
  private rescan = false;
  private ledgerFile = '';
  private ctx: StackContext | undefined;
  private store: FsObjectStore | undefined;

  constructor(private readonly opts: StorageTriggersOptions = {}) {}

  async start(ctx: StackContext): Promise<void> {
    this.ctx = ctx;
    this.store = ctx.store;
    const stateDir = path.join(ctx.cfg.home, 'state', 'eventarc');
    await fsp.mkdir(stateDir, { recursive: true });
    this.ledgerFile = path.join(stateDir, 'delivered.ndjson');
    for (const line of (await fsp.readFile(this.ledgerFile, 'utf8').catch(() => '')).split('\n'))
      if (line) this.delivered.add(line);

    for (const fn of FUNCTIONS) {
      for (const t of fn.triggers) {
        if (t.kind !== 'storage.finalized') continue;
        const base = ctx.endpoints[fn.entryPoint];
        if (!base) continue;
        const bucket = bucketName(ctx.cfg, t.bucket);
        await ctx.store.ensureBucket(bucket);
        const q = new DeliveryQueue(base, {
          maxAttempts: ctx.cfg.localMaxAttempts,
          retryBaseMs: ctx.cfg.localRetryBaseMs,
          concurrency: fn.concurrency,
          stateDir,
          log: ctx.log.child({ trigger: `${bucket} → ${fn.entryPoint}` }),
          onSettled: (e) => this.settled(e.id),
        });
        this.queues.set(bucket, [...(this.queues.get(bucket) ?? []), q]);
      }
    }
    for (const bucket of this.queues.keys()) {
      try {
        const w = fs.watch(ctx.store.bucketDir(bucket), { recursive: true }, () => this.kick());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        /* recursive watch unsupported: polling alone still works */
      }
    }
    const poll = this.opts.pollMs ?? 1000;
    this.timer = setInterval(() => this.kick(), poll);
    this.timer.unref();
    await this.scan();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const qs of this.queues.values()) for (const q of qs) q.stop();
    await Promise.all(this.ledgerWrites);
  }

  /** Resolves when every delivery queue is idle (used by `drop --wait` and tests). */
  async idle(): Promise<void> {
    for (;;) {
      await this.scan();
      await Promise.all([...this.queues.values()].flat().map((q) => q.idle()));
      await Promise.all(this.ledgerWrites);
      if ([...this.queues.values()].flat().every((q) => q.pending === 0) && !this.hasUnstable()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stats(): Record<string, { delivered: number; retries: number; parked: number; pending: number }> {
    const out: Record<string, { delivered: number; retries: number; parked: number; pending: number }> = {};
    for (const [bucket, qs] of this.queues)
      for (const q of qs)
        out[`${bucket} → ${q.target}`] = {
          delivered: q.delivered,
          retries: q.failedAttempts,
          parked: q.parked,
          pending: q.pending,
        };
    return out;
  }

  /**
   * Records an event in the ledger once every queue it went to has delivered or parked it. Recording it
   * when enqueued would lose it for good if the stack stopped before it was delivered.
   */
  private settled(eventId: string): void {
    const u = this.unsettled.get(eventId);
    if (!u || --u.left > 0) return;
    this.unsettled.delete(eventId);
    this.record(u.ledgerKey);
  }

  private record(ledgerKey: string): void {
    const w = fsp
      .appendFile(this.ledgerFile, ledgerKey + '\n')
      .catch((err: unknown) => this.ctx?.log.warn('cannot record a delivered event', { err }))
      .finally(() => this.ledgerWrites.delete(w));
    this.ledgerWrites.add(w);
  }

  private hasUnstable(): boolean {
    return [...this.seen.entries()].some(([k, s]) => !this.delivered.has(`${k}\0${s.generation}`));
  }

  private kick(): void {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    void this.scan();
  }

  private async scan(): Promise<void> {
    if (!this.store || !this.ctx) return;
    if (this.scanning) {
      this.rescan = true;
      while (this.scanning) await new Promise((r) => setTimeout(r, 10));
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        for (const bucket of this.queues.keys()) await this.scanBucket(bucket);
      } while (this.rescan);
    } catch (err) {
      this.ctx.log.warn('bucket scan failed', { err });
    } finally {
      this.scanning = false;
    }
  }

  private async scanBucket(bucket: string): Promise<void> {
    const store = this.store as FsObjectStore;
    const stableMs = this.opts.stableMs ?? 400;
    const now = Date.now();
    const live = new Set<string>();
    for await (const meta of store.list(bucket)) {
      if (IGNORED.test(meta.name)) continue;
      const key = `${bucket}\0${meta.name}`;
      live.add(key);
      const ledgerKey = `${key}\0${meta.generation}`;
      if (this.delivered.has(ledgerKey)) continue;
      const prev = this.seen.get(key);
      // Written through the driver (md5 recorded) = atomic and complete; otherwise wait until stable.
      const atomic = meta.md5Hash !== undefined;
      if (!atomic && (!prev || prev.generation !== meta.generation || prev.size !== meta.size)) {
        this.seen.set(key, { generation: meta.generation, size: meta.size, since: now });
        continue;
      }
      if (!atomic && prev && now - prev.since < stableMs) continue;
      this.seen.delete(key);
      this.delivered.add(ledgerKey);
      const event = storageEvent(meta);
      const queues = this.queues.get(bucket) ?? [];
      this.unsettled.set(event.id, { ledgerKey, left: queues.length });
      for (const q of queues) q.enqueue(event);
    }
    await this.quarantineUnaddressable(bucket, now, stableMs, live);
    for (const k of this.seen.keys()) if (k.startsWith(bucket + '\0') && !live.has(k)) this.seen.delete(k);
  }

  /**
   * Files no object name can address (newline, tab, invalid UTF-8…) cannot be delivered: once stable,
   * each generation is copied to the quarantine bucket with a record of why, as rawToBronze does for a
   * file it cannot use, so `smelter status` counts it. The original stays where it was put.
   */
  private async quarantineUnaddressable(
    bucket: string,
    now: number,
    stableMs: number,
    live: Set<string>,
  ): Promise<void> {
    const store = this.store as FsObjectStore;
    for await (const f of store.unaddressable(bucket)) {
      const shown = f.name.toString('utf8'); // lossy: for the ignore rule, logs and the record only
      if (IGNORED.test(shown)) continue;
      const key = `${bucket}\0unaddressable\0${f.name.toString('hex')}`;
      live.add(key);
      const ledgerKey = `${key}\0${f.generation}`;
      if (this.delivered.has(ledgerKey)) continue;
      const prev = this.seen.get(key);
      if (!prev || prev.generation !== f.generation || prev.size !== f.size) {
        this.seen.set(key, { generation: f.generation, size: f.size, since: now });
        continue;
      }
      if (now - prev.since < stableMs) continue;
      try {
        await this.quarantineFile(bucket, f, shown);
        this.seen.delete(key);
        this.delivered.add(ledgerKey);
        this.record(ledgerKey);
      } catch (err) {
        this.ctx?.log.warn('cannot quarantine a file with an unusable name; retrying at the next scan', {
          bucket,
          name: shown,
          err,
        });
      }
    }
  }

  private async quarantineFile(bucket: string, f: UnaddressableFile, shown: string): Promise<void> {
    const { cfg, log } = this.ctx as StackContext;
    const store = this.store as FsObjectStore;
    const base = (shown.split('/').pop() ?? '').replace(/[^A-Za-z0-9._-]/g, '_').slice(-100);
    const hash = createHash('sha256').update(f.name).digest('hex').slice(0, 16);
    const dir = `_failed/_unaddressable/${bucket}/${/^\.*$/.test(base) ? '_' : base}-${hash}-g${f.generation}`;
    const copy = `${dir}/original`;
    await store.write(cfg.quarantineBucket, copy, new LocalFile(f.path));
    const record = {
      source: {
        bucket,
        name: shown,
        nameBase64: f.name.toString('base64'),
        generation: f.generation,
        uri: `gs://${bucket}/${JSON.stringify(shown).slice(1, -1)}`,
      },
      error: {
        code: 'INVALID_OBJECT_NAME',
        message: `${f.reason}: quarantined by the local bucket watcher, never delivered (rename the file to process it)`,
      },
      copy: `gs://${cfg.quarantineBucket}/${copy}`,
      quarantinedAt: new Date().toISOString(),
    };
    await store.write(cfg.quarantineBucket, `${dir}/error.json`, JSON.stringify(record, null, 2) + '\n', {
      contentType: 'application/json',
    });
    log.warn('quarantined a file whose name no object name can address', {
      bucket,
      name: shown,
      reason: f.reason,
      quarantine: `gs://${cfg.quarantineBucket}/${dir}/error.json`,
    });
  }
}
