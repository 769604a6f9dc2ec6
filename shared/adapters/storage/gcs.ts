// Placeholder: replaced by the real GCS driver (see test/storage contract suite).
import type { ObjectStore } from '../../storage/object-store';
export class GcsObjectStore {
  constructor(readonly opts: { projectId?: string; apiEndpoint?: string }) {}
}
export type _Check = ObjectStore;
