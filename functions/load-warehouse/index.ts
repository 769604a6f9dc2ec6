/**
 * loadWarehouse — two triggers, dispatched on the CloudEvent type:
 * - `google.cloud.storage.object.v1.finalized` on the bronze bucket: a manifest (rawToBronze's commit,
 *   written once the file's counts balance) loads its Parquet into the Bronze table, MERGEs Silver and
 *   rebuilds the affected Gold partitions; the Parquet's own event and other objects are ignored;
 * - `google.cloud.pubsub.topic.v1.messagePublished` on the refresh topic (Cloud Scheduler on GCP, the
 *   local stack's timer): bring event tables into Silver/Gold from the watermarks. The message may
 *   carry `{"dataset": "…"}` to refresh one dataset.
 * Both run under the delivery policy (shared/delivery). A permanent failure (schema, model, audit) is
 * recorded by the warehouse — the file stays in Bronze and its ledger row says failed/blocked — then
 * logged with the model and query and acknowledged.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import {
  eventAgeMs,
  PUBSUB_PUBLISHED,
  STORAGE_FINALIZED,
  type MessagePublishedData,
  type StorageObjectData,
} from '../../shared/cloudevents';
import { deliver, storageTrigger } from '../../shared/delivery/trigger';
import { runtime } from '../../shared/composition/runtime';

/** The refresh message: an optional JSON object naming a dataset. */
export function parseRefreshMessage(data: MessagePublishedData | undefined): { dataset?: string } {
  const raw = data?.message?.data;
  const attrDataset = data?.message?.attributes?.dataset;
  let body: unknown;
  if (raw) {
    try {
      body = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
    } catch {
      body = undefined; // Cloud Scheduler may send any payload: treat it as "refresh everything".
    }
  }
  const ds =
    (body && typeof body === 'object' && typeof (body as { dataset?: unknown }).dataset === 'string'
      ? (body as { dataset: string }).dataset
      : undefined) ?? attrDataset;
  return ds ? { dataset: ds } : {};
}

const loadObject = storageTrigger({
  name: 'loadWarehouse',
  env: () => {
    const rt = runtime();
    return { rt, log: rt.log, bucket: rt.cfg.bronzeBucket, maxEventAgeMs: rt.cfg.maxEventAgeMs };
  },
  async handle(ref, log, { rt }) {
    const started = Date.now();
    const wh = await rt.get('warehouse');
    const out = await wh.loadFinalized(rt.store, {
      bucket: ref.bucket,
      name: ref.name,
      generation: ref.generation,
    });
    if (out.status === 'loaded')
      log.info('loaded into the warehouse', {
        dataset: out.dataset,
        rows: out.rows,
        jobId: out.jobId,
        models: out.summary.models.map((m) => `${m.model}:${m.rows}`).join(' '),
        durationMs: Date.now() - started,
      });
    else log.debug(`${out.status}: ${out.reason}`);
  },
});

async function refresh(ce: CloudEvent<unknown>): Promise<void> {
  const rt = runtime();
  const log = rt.log.child({ eventId: ce.id, eventType: ce.type });
  await deliver({
    name: 'loadWarehouse',
    log,
    ageMs: eventAgeMs(ce.time),
    maxAgeMs: rt.cfg.maxEventAgeMs,
    async run() {
      const started = Date.now();
      const msg = parseRefreshMessage(ce.data as MessagePublishedData | undefined);
      const wh = await rt.get('warehouse');
      const out = await wh.refresh({ ...msg, trigger: msg.dataset ? `refresh ${msg.dataset}` : 'refresh' });
      log.info('refreshed', {
        dataset: msg.dataset,
        models: out.summary?.models.map((m) => `${m.model}:${m.rows}`).join(' ') ?? '',
        retried: out.retried.length,
        skipped: out.skipped.join(', ') || undefined,
        durationMs: Date.now() - started,
      });
    },
  });
}

export async function loadWarehouse(ce: CloudEvent<unknown>): Promise<void> {
  if (ce.type === STORAGE_FINALIZED) return loadObject(ce as CloudEvent<StorageObjectData>);
  if (ce.type === PUBSUB_PUBLISHED) return refresh(ce);
  runtime().log.warn('unexpected event type; acknowledged', { eventId: ce.id, eventType: ce.type });
}
