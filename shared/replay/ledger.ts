/**
 * The replay ledger: one marker object per replayed item, created ifAbsent in the quarantine bucket
 * under `_replayed/`. Creating the marker is the claim, so a replay run twice replays nothing twice,
 * and the markers are what `smelter status` counts. Backend-neutral: it only needs the object store.
 */
import { createHash } from 'node:crypto';
import { isSmelterError } from '../errors';
import type { ObjectStore } from '../storage/object-store';

export const REPLAY_PREFIX = '_replayed/';

export type ReplayKind = 'dead-letters' | 'quarantine';

/** A short, stable, name-safe key for anything we replay (message id + publish time, URI + generation). */
export const replayKey = (text: string): string =>
  createHash('sha256').update(text).digest('hex').slice(0, 32);

export const markerName = (kind: ReplayKind, key: string, scope?: string): string =>
  `${REPLAY_PREFIX}${kind}/${scope ? `${scope}/` : ''}${key}.json`;

export class ReplayLedger {
  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
  ) {}

  async has(name: string): Promise<boolean> {
    return (await this.store.stat(this.bucket, name)) !== undefined;
  }

  /** Records the replay; false when another run already recorded it. */
  async mark(name: string, record: Record<string, unknown>): Promise<boolean> {
    try {
      await this.store.write(this.bucket, name, JSON.stringify(record, null, 2) + '\n', {
        ifAbsent: true,
        contentType: 'application/json',
      });
      return true;
    } catch (err) {
      if (isSmelterError(err, 'PRECONDITION_FAILED')) return false;
      throw err;
    }
  }

  /** Markers of one kind (and scope), e.g. replayed dead letters, or one dataset's replayed files. */
  async count(kind: ReplayKind, scope?: string): Promise<number> {
    let n = 0;
    for await (const o of this.store.list(this.bucket, `${REPLAY_PREFIX}${kind}/${scope ? `${scope}/` : ''}`))
      if (o.name.endsWith('.json')) n++;
    return n;
  }
}
