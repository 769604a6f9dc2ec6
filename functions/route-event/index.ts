/**
 * routeEvent — triggered by `google.cloud.pubsub.topic.v1.messagePublished` on the events topic.
 * Validates each event against its contract and routes it to its warehouse table and the archive, or
 * to the dead letter; returns only once the write is durable, throws on transient failures (the
 * platform redelivers). Domain: shared/events; adapters and wiring: shared/adapters/events.
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import type { MessagePublishedData } from '../../shared/cloudevents';
import { getRuntime, type Runtime } from '../../shared/runtime';
import { createEventRouter } from '../../shared/adapters/events/wiring';
import type { EventRouter } from '../../shared/events/router';

let current: { rt: Runtime | undefined; router: EventRouter } | undefined;

/** The instance's router (one per cold start, so concurrent invocations share its batcher). */
export function getEventRouter(): EventRouter {
  const rt = getRuntime();
  if (!current || (current.rt !== undefined && current.rt !== rt)) {
    // The runtime was reset (tests, the local stack): let the old router finish its batches.
    void current?.router.close();
    current = { rt, router: createEventRouter(rt) };
  }
  return current.router;
}

/** Installs a router built elsewhere (tests, the benchmark); `undefined` goes back to the default. */
export function setEventRouter(router: EventRouter | undefined): void {
  current = router ? { rt: undefined, router } : undefined;
}

/** Flushes and closes the current router (the shared DuckDB file stays open: its owner closes it). */
export async function closeEventRouter(): Promise<void> {
  const c = current;
  current = undefined;
  await c?.router.close();
}

export async function routeEvent(ce: CloudEvent<MessagePublishedData>): Promise<void> {
  await getEventRouter().routeCloudEvent(ce);
}
