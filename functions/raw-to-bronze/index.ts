/**
 * rawToBronze — triggered by `google.cloud.storage.object.v1.finalized` on the raw bucket: runs the
 * Bronze flow under the delivery policy (shared/delivery). A failure the flow did not record itself
 * (one that escaped, or a transient one past SMELTER_MAX_EVENT_AGE_MS) is recorded in quarantine.
 */
import { recordedError } from '../../shared/delivery/policy';
import { storageTrigger } from '../../shared/delivery/trigger';
import { quarantineSource, rawToBronzeFlow } from '../../shared/ingest/bronze';
import { progressBus } from '../../shared/ingest/progress';
import { runtime } from '../../shared/composition/runtime';

export const rawToBronze = storageTrigger({
  name: 'rawToBronze',
  env: () => {
    const rt = runtime();
    return { rt, log: rt.log, bucket: rt.cfg.rawBucket, maxEventAgeMs: rt.cfg.maxEventAgeMs };
  },
  async handle(ref, log, { rt }) {
    const uri = `gs://${ref.bucket}/${ref.name}`;
    const onProgress = (bytes: number): boolean => progressBus.emit('progress', { uri, bytes });
    const { cfg, store } = rt;
    const outcome = await rawToBronzeFlow(ref, { cfg, store, engines: rt.get('engines'), log, onProgress });
    return { status: outcome.status };
  },
  async record(ref, err, decision, log, { rt }) {
    await quarantineSource(ref, { cfg: rt.cfg, store: rt.store, log }, recordedError(err, decision));
  },
});
