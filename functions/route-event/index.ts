// Placeholder until the routeEvent function lands.
import type { CloudEventV1 as CloudEvent } from 'cloudevents';
import type { MessagePublishedData } from '../../shared/cloudevents';
export async function routeEvent(_ce: CloudEvent<MessagePublishedData>): Promise<void> {
  throw new Error('routeEvent is not implemented yet');
}
