/**
 * pullSource — triggered by `google.cloud.pubsub.topic.v1.messagePublished` on the pull topic (Cloud
 * Scheduler publishes `{"source": "store"}` per source; `smelter pull` and backfills may add
 * `"from"`/`"to"`). Pulls every page of the source into gzipped NDJSON parts in the raw bucket; the
 * finalize chain takes it to Bronze, Silver and Gold. The run id is the message id, so a redelivered
 * message writes the same part names. Every run, failed or not, is recorded for `smelter status`
 * (shared/composition/pull.ts); the delivery policy (shared/delivery) then decides: permanent failures
 * (401/403/404, bad bodies, limits, an unusable message) are acknowledged, transient ones are retried
 * until SMELTER_MAX_EVENT_AGE_MS, then acknowledged (Pub/Sub's dead-letter policy is the backstop).
 * Domain: shared/pull; wiring: shared/composition/pull.ts; adapters: shared/adapters/{pull,http}.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import { eventAgeMs, type MessagePublishedData } from '../../shared/cloudevents';
import { deliver } from '../../shared/delivery/trigger';
import { pullFromConfig } from '../../shared/composition/pull';
import { runtime } from '../../shared/composition/runtime';
import { parsePullMessage } from '../../shared/pull/message';

export async function pullSource(ce: CloudEvent<MessagePublishedData>): Promise<void> {
  const rt = runtime();
  let log = rt.log.child({ eventId: ce.id, eventType: ce.type });
  await deliver({
    name: 'pullSource',
    log,
    ageMs: eventAgeMs(ce.time),
    maxAgeMs: rt.cfg.maxEventAgeMs,
    async run() {
      const msg = parsePullMessage(ce.data, ce.id);
      log = log.child({ source: msg.source, run: msg.run });
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
    },
  });
}
