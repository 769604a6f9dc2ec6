/**
 * The delivery policy: whether a triggered function acknowledges an event or has the platform
 * redeliver it. Every trigger (rawToBronze, loadWarehouse, the event router, pullSource) asks this one function.
 *
 * - success → acknowledge;
 * - transient failure → retry (throw), unless the event is older than the max age: a fault that has
 *   outlived it is not going away, so the event is recorded (quarantine / dead letter) and acknowledged;
 * - permanent failure → record it with its reason, then acknowledge (retrying cannot help);
 * - the recording itself failed → retry, so nothing is lost; once past the max age even that stops
 *   (abandon: acknowledged with the event in an ERROR log line) so a poison event is not retried forever.
 *
 * An event of unknown age is never treated as expired.
 */
import { errorKind, errorMessage, isSmelterError, permanent, SmelterError } from '../errors';

export interface DeliveryFacts {
  /** The work's result: `{ ok: true }` or the error it failed with. */
  result: { ok: true } | { ok: false; error: unknown };
  /** Time since the event was published, in ms; undefined when the event does not say. */
  ageMs: number | undefined;
  /** SMELTER_MAX_EVENT_AGE_MS. */
  maxAgeMs: number;
  /** Recording a failure (quarantine, dead letter) was attempted and failed. */
  recordingFailed?: boolean;
}

export type DeliveryDecision =
  | { action: 'ack' }
  | { action: 'retry'; reason: string }
  /** Record the event with `reason`, then acknowledge. */
  | { action: 'record'; cause: 'permanent' | 'expired'; reason: string }
  /** Acknowledge without a record: log the event whole at ERROR. */
  | { action: 'abandon'; reason: string };

export type RecordDecision = Extract<DeliveryDecision, { action: 'record' }>;

export function isExpired(ageMs: number | undefined, maxAgeMs: number): boolean {
  return ageMs !== undefined && ageMs > maxAgeMs;
}

export function decideDelivery(facts: DeliveryFacts): DeliveryDecision {
  const { result, ...rest } = facts;
  return result.ok ? { action: 'ack' } : decideFailure({ ...rest, error: result.error });
}

export type FailureDecision = Exclude<DeliveryDecision, { action: 'ack' }>;

/** `decideDelivery` for work that failed with `error`. */
export function decideFailure(facts: Omit<DeliveryFacts, 'result'> & { error: unknown }): FailureDecision {
  const { error, ageMs, maxAgeMs } = facts;
  const msg = errorMessage(error);
  const expired = isExpired(ageMs, maxAgeMs);
  if (facts.recordingFailed)
    return expired
      ? { action: 'abandon', reason: `too old to retry and could not be recorded: ${msg}` }
      : { action: 'retry', reason: `could not be recorded: ${msg}` };
  if (errorKind(error) === 'permanent') return { action: 'record', cause: 'permanent', reason: msg };
  if (expired)
    return {
      action: 'record',
      cause: 'expired',
      reason: `still failing ${Math.round((ageMs ?? 0) / 1000)} s after publication (SMELTER_MAX_EVENT_AGE_MS): ${msg}`,
    };
  return { action: 'retry', reason: msg };
}

/** The error a record carries: the permanent error itself, or RETRIES_EXHAUSTED wrapping the last fault. */
export function recordedError(err: unknown, decision: RecordDecision): SmelterError {
  if (decision.cause === 'permanent' && err instanceof SmelterError) return err;
  return permanent('RETRIES_EXHAUSTED', decision.reason, {
    cause: err,
    details: isSmelterError(err) ? { lastCode: err.code } : {},
  });
}
