/**
 * routeEvent — triggered by `google.cloud.pubsub.topic.v1.messagePublished` on the events topic.
 * Validates each event against its contract and routes it to its warehouse table and the archive, or
 * to the dead letter; returns only once the write is durable, throws on transient failures (the
 * platform redelivers). Domain: shared/events; adapters: shared/adapters/events, chosen by the
 * runtime (one router per runtime, so concurrent invocations share its batcher).
 */
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import type { MessagePublishedData } from '../../shared/cloudevents';
import { runtime } from '../../shared/composition/runtime';

export async function routeEvent(ce: CloudEvent<MessagePublishedData>): Promise<void> {
  await runtime().get('eventRouter').routeCloudEvent(ce);
}
