/**
 * Fault injection at the ports: a "process" whose side-effecting port calls are numbered, and which
 * dies at the k-th one — before it runs, after it ran (the caller never hears back), or in the middle of
 * a streamed write. Once dead, every later call of every port refuses with the same error, as a killed
 * instance would never make another call. A run without a kill point counts the operations of a clean
 * run (N), so a campaign can kill at k = 1..N.
 */
import { Readable } from 'node:stream';
import type { DeadLetterPublisher, EventWarehouse } from '../../shared/events/ports';
import type { ObjectStore, WriteSource } from '../../shared/storage/object-store';
import type { WarehouseEngine } from '../../shared/warehouse/engine';

/** What a killed process leaves its callers with: distinctive, so a test can tell it from real errors. */
export class Killed extends Error {
  constructor(readonly at: string) {
    super(`KILLED (fault injection) at ${at}`);
    this.name = 'Killed';
  }
}

export type When = 'before' | 'after' | 'during';

export interface KillPoint {
  /** 1-based index of the side-effecting operation. */
  at: number;
  when: When;
}

export class Reaper {
  /** Side-effecting operations begun, in order (`store.write bronze/x.parquet`, `engine.exec CREATE …`). */
  readonly ops: string[] = [];
  private killedAt: string | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly streams = new Set<Readable>();

  constructor(readonly point?: KillPoint) {}

  get dead(): boolean {
    return this.killedAt !== undefined;
  }

  /** Tracks a port call until it settles (see quiesce). */
  track<T>(p: T): T {
    if (p instanceof Promise) {
      const q = p.then(
        () => undefined,
        () => undefined,
      );
      this.inflight.add(q);
      void q.then(() => this.inflight.delete(q));
    }
    return p;
  }

  /**
   * Waits for the calls already under way when the process died. A killed process takes its in-flight
   * calls with it; here they run to their end (or fail), which is one of the outcomes a kill can have —
   * and the test must not close a database under a running statement.
   */
  async quiesce(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
    // The files a dead process had open are closed by its death.
    if (this.dead) for (const s of this.streams) s.destroy();
    this.streams.clear();
  }

  /** A stream the process reads: closed when it dies (see quiesce). */
  own(s: Readable): Readable {
    this.streams.add(s);
    s.once('close', () => this.streams.delete(s));
    return s;
  }

  /** Throws if the process is dead (every call checks). */
  alive(what: string): void {
    if (this.killedAt !== undefined) throw new Killed(`${this.killedAt} (then refused ${what})`);
  }

  private die(label: string): Killed {
    this.killedAt ??= label;
    return new Killed(label);
  }

  /** Runs a side-effecting operation, dying around it if it is the chosen one. */
  async effect<T>(label: string, run: (cut?: () => Killed) => Promise<T>): Promise<T> {
    this.alive(label);
    this.ops.push(label);
    const p = this.point;
    if (!p || p.at !== this.ops.length) return run();
    const tag = `#${p.at} ${p.when} ${label}`;
    if (p.when === 'before') throw this.die(tag);
    // During: a streamed write is cut after its first chunk. After: the operation took effect (or
    // failed on its own), then the process died. Either way the caller never hears back.
    await run(p.when === 'during' ? () => this.die(tag) : undefined).catch(() => undefined);
    throw this.die(tag);
  }
}

/**
 * The kill points of a run whose operations are `ops` (in order, one at a time): before each of them,
 * after the last (the instance dies before it acknowledges), and in the middle of each streamed write.
 * Dying after operation k leaves what dying before k + 1 leaves — nothing but computation happens in
 * between — so "after" is only needed for the last one.
 */
export function killPoints(ops: readonly string[]): KillPoint[] {
  const points: KillPoint[] = ops.map((_, i) => ({ at: i + 1, when: 'before' as const }));
  if (ops.length) points.push({ at: ops.length, when: 'after' });
  ops.forEach((op, i) => {
    if (op.startsWith('store.write')) points.push({ at: i + 1, when: 'during' });
  });
  return points;
}

/** A stream source cut short: the first chunk passes, then the stream fails (the writer dies mid-upload). */
function cutShort(source: WriteSource, cut: () => Killed): Readable {
  const input: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof source === 'string' || Buffer.isBuffer(source)
      ? [Buffer.from(source).subarray(0, Math.ceil(Buffer.byteLength(source) / 2))]
      : source;
  async function* firstChunkOnly(): AsyncGenerator<Uint8Array | string> {
    for await (const c of input) {
      yield c;
      break;
    }
    throw cut();
  }
  return Readable.from(firstChunkOnly(), { objectMode: false });
}

/** Every method refuses once dead; `effects` names the side-effecting ones (their label, or undefined). */
function dying<T extends object>(
  target: T,
  reaper: Reaper,
  port: string,
  effect: (method: string, args: unknown[]) => string | undefined,
  passThrough: readonly string[] = ['close'],
): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (passThrough.includes(prop)) return fn.bind(t);
      return (...args: unknown[]) => {
        const label = effect(prop, args);
        if (label === undefined) {
          reaper.alive(`${port}.${prop}`);
          return reaper.track(fn.apply(t, args));
        }
        return reaper.track(reaper.effect(`${port}.${label}`, () => fn.apply(t, args) as Promise<unknown>));
      };
    },
  });
}

/** The object store: writes, deletes and bucket creation are the side effects; a write can die mid-stream. */
export function dyingStore(store: ObjectStore, reaper: Reaper): ObjectStore {
  const base = dying(store, reaper, 'store', () => undefined, []);
  return new Proxy(base, {
    get(t, prop, receiver) {
      if (prop === 'write')
        return (bucket: string, name: string, source: WriteSource, opts?: never) =>
          reaper.track(
            reaper.effect(`store.write ${bucket}/${name}`, (cut) =>
              store.write(bucket, name, cut ? cutShort(source, cut) : source, opts),
            ),
          );
      if (prop === 'delete')
        return (bucket: string, name: string) =>
          reaper.track(reaper.effect(`store.delete ${bucket}/${name}`, () => store.delete(bucket, name)));
      if (prop === 'ensureBucket')
        return (bucket: string) =>
          reaper.track(reaper.effect(`store.ensureBucket ${bucket}`, () => store.ensureBucket(bucket)));
      if (prop === 'read')
        return async (bucket: string, name: string, opts?: never) => {
          reaper.alive(`store.read ${bucket}/${name}`);
          return reaper.own(await reaper.track(store.read(bucket, name, opts)));
        };
      if (prop === 'list')
        return (bucket: string, prefix?: string) => {
          reaper.alive('store.list');
          return store.list(bucket, prefix);
        };
      return Reflect.get(t, prop, receiver) as unknown;
    },
  });
}

const READ_ONLY_SQL = /^\s*(\(|SELECT|WITH|DESCRIBE|SHOW|SUMMARIZE|EXPLAIN|PRAGMA\s+table_info)/i;
const head = (sql: unknown): string => String(sql).replace(/\s+/g, ' ').trim().slice(0, 60);

/** The warehouse engine: statements that are not plain reads, and loads, are the side effects. */
export function dyingEngine(engine: WarehouseEngine, reaper: Reaper): WarehouseEngine {
  return dying(engine, reaper, 'engine', (m, a) => {
    if (m === 'loadParquet') return `loadParquet ${(a[0] as { name: string }).name}`;
    if (m === 'exec') return `exec ${head(a[0])}`;
    if (m === 'query' && !READ_ONLY_SQL.test(String(a[0]))) return `query ${head(a[0])}`;
    return undefined;
  });
}

/** The event warehouse: table creation and every insert are side effects. */
export function dyingEventWarehouse(wh: EventWarehouse, reaper: Reaper): EventWarehouse {
  return dying(wh, reaper, 'events', (m, a) => {
    if (m === 'insertEvents') return `insertEvents ${(a[0] as { table: string }).table}`;
    if (m === 'insertDeadLetters') return 'insertDeadLetters';
    if (m === 'prepare') return 'prepare';
    return undefined;
  });
}

/** The dead-letter topic: every publish is a side effect. */
export function dyingDeadLetters(p: DeadLetterPublisher, reaper: Reaper): DeadLetterPublisher {
  return dying(p, reaper, 'deadLetters', (m) => (m === 'publish' ? 'publish' : undefined));
}
