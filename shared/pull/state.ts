/**
 * The pull state of a source (`_pull/<source>/state.json` in the bronze bucket, beside the Bronze
 * manifests and ignored by the warehouse loader): per endpoint, the end of the last committed window or
 * the largest value of the incremental field. It only moves forward, with a generation precondition,
 * after every part of a window (or run) is committed. `last-run.json` beside it is what `smelter
 * status` shows: the outcome of the latest run, its error included.
 */
import { permanent, isSmelterError } from '../errors';
import { readObjectJson, type ObjectStore } from '../storage/object-store';

export interface EndpointState {
  /** End (exclusive, ISO 8601) of the last committed window. */
  windowEnd?: string;
  /** Largest value of the incremental field committed so far. */
  max?: string | number;
}

export interface SourceState {
  source: string;
  endpoints: Record<string, EndpointState>;
  updatedAt: string;
  run?: string;
}

export interface RunRecord {
  source: string;
  run: string;
  status: 'ok' | 'failed' | 'running';
  startedAt: string;
  finishedAt?: string;
  pages: number;
  records: number;
  objects: number;
  error?: { code: string; message: string; endpoint?: string; status?: number; url?: string };
}

export const PULL_PREFIX = '_pull/';
export const stateObjectName = (source: string): string => `${PULL_PREFIX}${source}/state.json`;
export const lastRunObjectName = (source: string): string => `${PULL_PREFIX}${source}/last-run.json`;

export interface StateHandle {
  state: SourceState;
  /** Generation of the state object read; undefined when there was none. */
  generation?: string;
}

export async function readState(store: ObjectStore, bucket: string, source: string): Promise<StateHandle> {
  const name = stateObjectName(source);
  const meta = await store.stat(bucket, name);
  if (!meta) return { state: { source, endpoints: {}, updatedAt: new Date(0).toISOString() } };
  const chunks: Buffer[] = [];
  for await (const c of await store.read(bucket, name, { generation: meta.generation }))
    chunks.push(c as Buffer);
  let state: SourceState;
  try {
    state = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SourceState;
  } catch {
    throw permanent(
      'BAD_DATA',
      `gs://${bucket}/${name} is not JSON: delete it to pull the source from its start`,
    );
  }
  if (!state || typeof state !== 'object' || typeof state.endpoints !== 'object')
    throw permanent(
      'BAD_DATA',
      `gs://${bucket}/${name} is not a pull state: delete it to pull the source from its start`,
    );
  return { state, generation: meta.generation };
}

/** Compare-and-swap: replaces exactly the generation read (or creates the object if there was none). */
export async function advanceState(
  store: ObjectStore,
  bucket: string,
  h: StateHandle,
  next: SourceState,
): Promise<StateHandle> {
  try {
    const meta = await store.write(bucket, stateObjectName(next.source), JSON.stringify(next, null, 2), {
      ifGenerationMatch: h.generation ?? '0',
      contentType: 'application/json',
    });
    return { state: next, generation: meta.generation };
  } catch (err) {
    if (isSmelterError(err, 'PRECONDITION_FAILED'))
      throw permanent(
        'PRECONDITION_FAILED',
        `Another run of source "${next.source}" advanced its state meanwhile; this run stops (its committed parts stay and load once)`,
        {
          cause: err,
          details: { source: next.source },
        },
      );
    throw err;
  }
}

export async function writeRunRecord(store: ObjectStore, bucket: string, r: RunRecord): Promise<void> {
  await store.write(bucket, lastRunObjectName(r.source), JSON.stringify(r, null, 2), {
    contentType: 'application/json',
  });
}

export async function readRunRecord(
  store: ObjectStore,
  bucket: string,
  source: string,
): Promise<RunRecord | undefined> {
  return readObjectJson<RunRecord>(store, bucket, lastRunObjectName(source));
}
