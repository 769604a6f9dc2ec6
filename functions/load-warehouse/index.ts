/**
 * loadWarehouse — two triggers, dispatched on the CloudEvent type:
 * - `google.cloud.storage.object.v1.finalized` on the bronze bucket: a manifest (rawToBronze's commit,
 *   written once the file's counts balance) loads its Parquet into the Bronze table, MERGEs Silver and
 *   rebuilds the affected Gold partitions; the Parquet's own event and other objects are ignored;
 * - `google.cloud.pubsub.topic.v1.messagePublished` on the refresh topic (Cloud Scheduler on GCP, the
 *   local stack's timer): bring event tables into Silver/Gold from the watermarks. The message may
 *   carry `{"dataset": "…"}` to refresh one dataset.
 * Transient failures throw (the platform retries); permanent ones (schema, model, audit) are logged
 * with the model and query and acknowledged — the file stays in Bronze and in the load ledger.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import {
  eventAgeMs,
  parseStorageObject,
  PUBSUB_PUBLISHED,
  STORAGE_FINALIZED,
  type MessagePublishedData,
} from '../../shared/cloudevents';
import { errorKind, isSmelterError } from '../../shared/errors';
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

export async function loadWarehouse(ce: CloudEvent<unknown>): Promise<void> {
  const rt = runtime();
  const { cfg, log } = rt;
  const elog = log.child({ eventId: ce.id, eventType: ce.type });
  const started = Date.now();
  try {
    if (ce.type === STORAGE_FINALIZED) {
      let ref;
      try {
        ref = parseStorageObject(ce.data);
      } catch (err) {
        elog.error('unusable storage event; acknowledged', { err });
        return;
      }
      if (ref.bucket !== cfg.bronzeBucket) {
        elog.warn('event for a bucket this function does not own; acknowledged', {
          bucket: ref.bucket,
          expected: cfg.bronzeBucket,
        });
        return;
      }
      const wh = await rt.get('warehouse');
      const out = await wh.loadFinalized(rt.store, {
        bucket: ref.bucket,
        name: ref.name,
        generation: ref.generation,
      });
      if (out.status === 'loaded')
        elog.info('loaded into the warehouse', {
          object: ref.name,
          dataset: out.dataset,
          rows: out.rows,
          jobId: out.jobId,
          models: out.summary.models.map((m) => `${m.model}:${m.rows}`).join(' '),
          durationMs: Date.now() - started,
        });
      else elog.debug(`${out.status}: ${out.reason}`, { object: ref.name });
      return;
    }
    if (ce.type === PUBSUB_PUBLISHED) {
      const msg = parseRefreshMessage(ce.data as MessagePublishedData | undefined);
      const wh = await rt.get('warehouse');
      const out = await wh.refresh({ ...msg, trigger: msg.dataset ? `refresh ${msg.dataset}` : 'refresh' });
      elog.info('refreshed', {
        dataset: msg.dataset,
        models: out.summary?.models.map((m) => `${m.model}:${m.rows}`).join(' ') ?? '',
        retried: out.retried.length,
        skipped: out.skipped.join(', ') || undefined,
        durationMs: Date.now() - started,
      });
      return;
    }
    elog.warn('unexpected event type; acknowledged');
  } catch (err) {
    if (errorKind(err) === 'permanent') {
      // Retrying cannot help: report with the model and query, acknowledge. Nothing is lost — the
      // Bronze object and the ledger row (failed/blocked) stay for a later refresh or backfill.
      elog.error(isSmelterError(err) ? err.message : String(err), {
        code: isSmelterError(err) ? err.code : undefined,
        ...(isSmelterError(err) ? err.details : {}),
        durationMs: Date.now() - started,
      });
      return;
    }
    const age = eventAgeMs(ce.time);
    if (age !== undefined && age > cfg.maxEventAgeMs) {
      elog.error('giving up on an event older than SMELTER_MAX_EVENT_AGE_MS; acknowledged', {
        err,
        ageMs: age,
      });
      return;
    }
    elog.error('loadWarehouse failed; will be retried', { err, durationMs: Date.now() - started });
    throw err;
  }
}
