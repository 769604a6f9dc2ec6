/**
 * Running a triggered function's work under the delivery policy, so each function root only says what
 * to do with an event and how to record one that will not be retried.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import {
  eventAgeMs,
  parseStorageObject,
  type StorageObjectData,
  type StorageObjectRef,
} from '../cloudevents';
import { errorMessage, isSmelterError, permanent } from '../errors';
import type { LogFields, Logger } from '../log';
import { decideFailure, type RecordDecision } from './policy';

export interface Delivery {
  /** The function's name, for log lines. */
  name: string;
  log: Logger;
  ageMs: number | undefined;
  maxAgeMs: number;
  /** The work; what it returns is logged at DEBUG when it succeeds. */
  run: () => Promise<LogFields | void>;
  /** Records an event that will not be retried; throwing means it could not be recorded. */
  record?: (err: unknown, decision: RecordDecision) => Promise<void>;
  now?: () => number;
}

/** Resolves to acknowledge, rejects (with the work's error) to have the platform redeliver. */
export async function deliver(d: Delivery): Promise<void> {
  const now = d.now ?? Date.now;
  const started = now();
  const took = (): number => now() - started;
  let error: unknown;
  try {
    const fields = await d.run();
    d.log.debug(`${d.name} done`, { ...fields, durationMs: took() });
    return;
  } catch (err) {
    error = err;
  }
  const facts = { error, ageMs: d.ageMs, maxAgeMs: d.maxAgeMs };
  const decision = decideFailure(facts);
  if (decision.action === 'retry') {
    d.log.error(`${d.name} failed; will be retried: ${decision.reason}`, {
      err: error,
      retry: true,
      durationMs: took(),
    });
    throw error;
  }
  if (decision.action === 'record') {
    try {
      await d.record?.(error, decision);
    } catch (recordErr) {
      const next = decideFailure({ ...facts, recordingFailed: true });
      if (next.action === 'retry') {
        d.log.error(`${d.name} failed and could not record it; will be retried`, {
          err: error,
          recordErr,
          retry: true,
          durationMs: took(),
        });
        throw error;
      }
      d.log.error(`${d.name} abandoned an event: ${next.reason}`, { err: error, recordErr, ageMs: d.ageMs });
      return;
    }
    if (decision.cause === 'expired')
      d.log.error('giving up on an event older than SMELTER_MAX_EVENT_AGE_MS; recorded and acknowledged', {
        err: error,
        ageMs: d.ageMs,
      });
    else
      d.log.error(errorMessage(error), {
        ...(isSmelterError(error) ? { code: error.code, ...error.details } : {}),
        acknowledged: true,
        durationMs: took(),
      });
    return;
  }
  d.log.error(`${d.name} abandoned an event: ${decision.reason}`, { err: error, ageMs: d.ageMs });
}

/** GCS object names: 1–1024 bytes of well-formed UTF-8, no carriage return or line feed. */
export function checkObjectName(name: string): void {
  // A lone surrogate (\p{Cs} under /u) is not valid UTF-8.
  if (Buffer.byteLength(name) > 1024 || /[\r\n]|\p{Cs}/u.test(name))
    throw permanent(
      'BAD_EVENT',
      `Storage event names an object GCS cannot hold: ${JSON.stringify(name.slice(0, 200))}`,
    );
}

export interface TriggerEnv {
  log: Logger;
  maxEventAgeMs: number;
  /** The bucket this function owns; events for any other are acknowledged. */
  bucket: string;
}

export interface StorageTrigger<E extends TriggerEnv> {
  name: string;
  /** Per invocation: the services, logger and options. */
  env: () => E;
  handle: (ref: StorageObjectRef, log: Logger, env: E) => Promise<LogFields | void>;
  record?: (
    ref: StorageObjectRef,
    err: unknown,
    decision: RecordDecision,
    log: Logger,
    env: E,
  ) => Promise<void>;
}

/**
 * A `google.cloud.storage.object.v1.finalized` handler: parses and checks the event (its object name is
 * untrusted), acknowledges what it cannot use or does not own, and runs `handle` under the policy.
 */
export function storageTrigger<E extends TriggerEnv>(
  t: StorageTrigger<E>,
): (ce: CloudEvent<StorageObjectData>) => Promise<void> {
  return async (ce) => {
    const env = t.env();
    const elog = env.log.child({ eventId: ce.id, eventType: ce.type });
    let ref: StorageObjectRef;
    try {
      ref = parseStorageObject(ce.data);
      checkObjectName(ref.name);
    } catch (err) {
      // A malformed event can never succeed and names nothing to record: acknowledge it, loudly.
      elog.error('unusable storage event; acknowledged', { err });
      return;
    }
    if (ref.bucket !== env.bucket) {
      elog.warn('event for a bucket this function does not own; acknowledged', {
        bucket: ref.bucket,
        expected: env.bucket,
      });
      return;
    }
    const log = elog.child({ object: ref.name, generation: ref.generation });
    const record = t.record;
    await deliver({
      name: t.name,
      log,
      ageMs: eventAgeMs(ce.time),
      maxAgeMs: env.maxEventAgeMs,
      run: () => t.handle(ref, log, env),
      ...(record ? { record: (err, d) => record(ref, err, d, log, env) } : {}),
    });
  };
}
