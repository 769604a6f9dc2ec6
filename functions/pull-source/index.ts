/**
 * pullSource — triggered by `google.cloud.pubsub.topic.v1.messagePublished` on the pull topic (Cloud
 * Scheduler publishes `{"source": "store"}` per source; `smelter pull` and backfills may add
 * `"from"`/`"to"`). Pulls every page of the source into gzipped NDJSON parts in the raw bucket; the
 * finalize chain takes it to Bronze, Silver and Gold. The run id is the message id, so a redelivered
 * message writes the same part names. Transient failures throw (Pub/Sub redelivers, then dead-letters);
 * permanent ones (401/403/404, bad bodies, limits) are recorded for `smelter status` and acknowledged.
 * Domain: shared/pull; wiring: shared/composition/pull.ts; adapters: shared/adapters/{pull,http}.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import type { MessagePublishedData } from '../../shared/cloudevents';
import { errorKind, isSmelterError } from '../../shared/errors';
import { pullFromConfig } from '../../shared/composition/pull';
import { runtime } from '../../shared/composition/runtime';
import { parsePullMessage } from '../../shared/pull/message';

export async function pullSource(ce: CloudEvent<MessagePublishedData>): Promise<void> {
  const rt = runtime();
  const elog = rt.log.child({ eventId: ce.id, eventType: ce.type });
  let msg;
  try {
    msg = parsePullMessage(ce.data, ce.id);
  } catch (err) {
    elog.error('unusable pull message; acknowledged', { err });
    return;
  }
  const log = elog.child({ source: msg.source, run: msg.run });
  try {
    const s = await pullFromConfig({ cfg: rt.cfg, store: rt.store, log }, msg);
    log.info('pulled', {
      pages: s.pages,
      records: s.records,
      objects: s.objects,
      existingObjects: s.existingObjects,
      windows: s.windows.length,
      retries: s.retries,
      stoppedAt: s.stoppedAt,
      durationMs: s.durationMs,
    });
  } catch (err) {
    if (errorKind(err) === 'permanent') {
      log.error(isSmelterError(err) ? err.message : String(err), {
        code: isSmelterError(err) ? err.code : undefined,
        acknowledged: true,
      });
      return;
    }
    log.error('pullSource failed; will be retried', { err });
    throw err;
  }
}
