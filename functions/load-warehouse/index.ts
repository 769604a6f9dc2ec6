// Placeholder until the loadWarehouse function lands.
import type { CloudEventV1 as CloudEvent } from 'cloudevents';

export async function loadWarehouse(_ce: CloudEvent<unknown>): Promise<void> {
  throw new Error('loadWarehouse is not implemented yet');
}
