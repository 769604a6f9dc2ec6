/**
 * rawToBronze — triggered by `google.cloud.storage.object.v1.finalized` on the raw bucket.
 * A thin composition root: parse the event, guard its age, run the Bronze flow.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import { eventAgeMs, parseStorageObject, type StorageObjectData } from '../../shared/cloudevents';
import { errorKind, isSmelterError } from '../../shared/errors';
import { rawToBronzeFlow } from '../../shared/ingest/bronze';
import { progressBus } from '../../shared/ingest/progress';
import { runtime } from '../../shared/composition/runtime';

export async function rawToBronze(ce: CloudEvent<StorageObjectData>): Promise<void> {
  const rt = runtime();
  const { cfg, log, store } = rt;
  const started = Date.now();
  let ref;
  try {
    ref = parseStorageObject(ce.data);
  } catch (err) {
    // A malformed event can never succeed: acknowledge it, loudly.
    log.error('unusable storage event; acknowledged', { err, eventId: ce.id, eventType: ce.type });
    return;
  }
  if (ref.bucket !== cfg.rawBucket) {
    log.warn('event for a bucket this function does not own; acknowledged', {
      bucket: ref.bucket,
      expected: cfg.rawBucket,
    });
    return;
  }
  const elog = log.child({ eventId: ce.id, object: ref.name, generation: ref.generation });
  try {
    const uri = `gs://${ref.bucket}/${ref.name}`;
    const onProgress = (bytes: number): boolean => progressBus.emit('progress', { uri, bytes });
    const outcome = await rawToBronzeFlow(ref, {
      cfg,
      store,
      engines: rt.get('engines'),
      log: elog,
      onProgress,
    });
    elog.debug('rawToBronze done', { status: outcome.status, durationMs: Date.now() - started });
  } catch (err) {
    const age = eventAgeMs(ce.time);
    if (errorKind(err) === 'transient' && age !== undefined && age > cfg.maxEventAgeMs) {
      elog.error('giving up on an event older than SMELTER_MAX_EVENT_AGE_MS; acknowledged', {
        err,
        ageMs: age,
      });
      return;
    }
    elog.error(isSmelterError(err) ? err.message : 'rawToBronze failed', {
      err,
      retry: true,
      durationMs: Date.now() - started,
    });
    throw err;
  }
}
