/**
 * Replaying quarantine after a contract fix. Two kinds of quarantined input:
 * - a file that could not be converted at all (`_failed/<dataset>/…/error.json`), and
 * - a file that converted with rejected rows (`<dataset>/ingest_date=…/….rejects.ndjson`).
 * Either way the source object, at the generation that was converted, is copied back into the raw bucket
 * under `<dataset>/_replay/<key>/<name>` (ifAbsent, deterministic): its finalize event runs the normal
 * chain with today's contract. A file with rejects is replayed whole — its good rows are already in
 * Silver and MERGE on the primary key keeps them once — so only datasets with a primary key replay rows.
 *
 * Pure: the object store and the contract lookup are handed in.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isSmelterError } from '../errors';
import { readObjectJson, type ObjectStore } from '../storage/object-store';
import { markerName, replayKey, type ReplayLedger } from './ledger';

export interface QuarantinedSource {
  kind: 'file' | 'rows';
  bucket: string;
  name: string;
  generation: string;
  /** Why it is quarantined: the error code of a failed file, or the count of rejected rows. */
  reason: string;
  /** `gs://` URI of a copy kept in quarantine (failed files only), used when the source is gone. */
  copy?: string | null;
  /** The quarantine object that records it. */
  record: string;
}

interface FailedRecord {
  source?: { bucket?: string; name?: string; generation?: string };
  error?: { code?: string };
  copy?: string | null;
}

interface Manifest {
  source?: { bucket?: string; name?: string; generation?: string };
  rejected?: number;
}

/** Every quarantined source of one dataset, found by listing the quarantine (and Bronze manifests). */
export async function* quarantinedSources(
  store: ObjectStore,
  buckets: { quarantine: string; bronze: string },
  dataset: string,
): AsyncIterable<QuarantinedSource> {
  for await (const o of store.list(buckets.quarantine, `_failed/${dataset}/`)) {
    if (!o.name.endsWith('/error.json')) continue;
    const rec = await readObjectJson<FailedRecord>(store, buckets.quarantine, o.name);
    const s = rec?.source;
    if (!s?.bucket || !s.name || !s.generation) continue;
    yield {
      kind: 'file',
      bucket: s.bucket,
      name: s.name,
      generation: s.generation,
      reason: rec?.error?.code ?? 'UNKNOWN',
      copy: rec?.copy ?? null,
      record: o.name,
    };
  }
  for await (const o of store.list(buckets.quarantine, `${dataset}/ingest_date=`)) {
    if (!o.name.endsWith('.rejects.ndjson')) continue;
    const manifestName = o.name.replace(/\.rejects\.ndjson$/, '.manifest.json');
    const m = await readObjectJson<Manifest>(store, buckets.bronze, manifestName);
    const s = m?.source;
    if (!s?.bucket || !s.name || !s.generation) continue;
    yield {
      kind: 'rows',
      bucket: s.bucket,
      name: s.name,
      generation: s.generation,
      reason: `${m?.rejected ?? '?'} rejected row(s)`,
      record: o.name,
    };
  }
}

/** Where a quarantined source is replayed: deterministic, name-safe, in the dataset's raw folder. */
export function replayObjectName(
  dataset: string,
  src: { bucket: string; name: string; generation: string },
): string {
  const key = replayKey(`gs://${src.bucket}/${src.name}#${src.generation}`).slice(0, 16);
  const base =
    path.posix
      .basename(src.name)
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(-120) || 'object';
  return `${dataset}/_replay/${key}/${base}`;
}

export interface QuarantineReplayDeps {
  store: ObjectStore;
  buckets: { quarantine: string; bronze: string; raw: string };
  ledger: ReplayLedger;
  /** The dataset's primary key (empty: none), from its contract. */
  primaryKey(dataset: string): Promise<string[]>;
  now?: () => Date;
}

export interface QuarantineReplayItem {
  kind: 'file' | 'rows';
  source: string;
  reason: string;
  replayedAs?: string;
  skipped?: string;
}

export interface QuarantineReplayResult {
  dataset: string;
  found: number;
  replayed: number;
  alreadyReplayed: number;
  skipped: number;
  items: QuarantineReplayItem[];
  dryRun: boolean;
}

const gsName = (uri: string, bucket: string): string | undefined =>
  uri.startsWith(`gs://${bucket}/`) ? uri.slice(`gs://${bucket}/`.length) : undefined;

/** Opens the source at its converted generation, or the quarantine's copy when it is gone. */
async function openSource(deps: QuarantineReplayDeps, q: QuarantinedSource): Promise<Readable | undefined> {
  try {
    return await deps.store.read(q.bucket, q.name, { generation: q.generation });
  } catch (err) {
    if (!isSmelterError(err, 'NOT_FOUND')) throw err;
  }
  const copy = q.copy ? gsName(q.copy, deps.buckets.quarantine) : undefined;
  if (!copy) return undefined;
  try {
    return await deps.store.read(deps.buckets.quarantine, copy);
  } catch (err) {
    if (isSmelterError(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
}

export async function replayQuarantine(
  deps: QuarantineReplayDeps,
  dataset: string,
  opts: { dryRun?: boolean } = {},
): Promise<QuarantineReplayResult> {
  const now = deps.now ?? (() => new Date());
  const res: QuarantineReplayResult = {
    dataset,
    found: 0,
    replayed: 0,
    alreadyReplayed: 0,
    skipped: 0,
    items: [],
    dryRun: Boolean(opts.dryRun),
  };
  const pk = await deps.primaryKey(dataset);
  for await (const q of quarantinedSources(deps.store, deps.buckets, dataset)) {
    res.found++;
    const source = `gs://${q.bucket}/${q.name}#${q.generation}`;
    const marker = markerName('quarantine', replayKey(source), dataset);
    const item: QuarantineReplayItem = { kind: q.kind, source, reason: q.reason };
    res.items.push(item);
    if (await deps.ledger.has(marker)) {
      res.alreadyReplayed++;
      item.skipped = 'already replayed';
      continue;
    }
    if (q.kind === 'rows' && pk.length === 0) {
      res.skipped++;
      item.skipped = `dataset ${dataset} has no primary key: replaying the whole file would duplicate its good rows`;
      continue;
    }
    const target = replayObjectName(dataset, q);
    item.replayedAs = `gs://${deps.buckets.raw}/${target}`;
    if (opts.dryRun) {
      res.replayed++;
      continue;
    }
    const body = await openSource(deps, q);
    if (!body) {
      res.skipped++;
      delete item.replayedAs;
      item.skipped = 'the source generation is gone and no copy was kept';
      continue;
    }
    try {
      await deps.store.write(deps.buckets.raw, target, body, {
        ifAbsent: true,
      });
    } catch (err) {
      // A previous run copied it and stopped before its marker: the copy is the replay.
      if (!isSmelterError(err, 'PRECONDITION_FAILED')) throw err;
    }
    await deps.ledger.mark(marker, {
      dataset,
      kind: q.kind,
      source,
      reason: q.reason,
      quarantineRecord: q.record,
      replayedAs: item.replayedAs,
      replayedAt: now().toISOString(),
    });
    res.replayed++;
  }
  return res;
}
