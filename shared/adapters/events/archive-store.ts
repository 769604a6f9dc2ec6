/**
 * The event archive over the ObjectStore port (filesystem bucket locally, GCS on the platform): each
 * flushed batch becomes one NDJSON object per type and hour (names and layout: shared/events/archive.ts).
 * Writes overwrite — a retried batch rewrites the same names with the same events.
 */
import { SmelterError, transient } from '../../errors';
import { planArchive } from '../../events/archive';
import type { AcceptedEvent, EventArchive } from '../../events/ports';
import type { ObjectStore } from '../../storage/object-store';

export class ObjectStoreArchive implements EventArchive {
  private bucketReady: Promise<void> | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly bucket: string,
  ) {}

  async write(events: readonly AcceptedEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    this.bucketReady ??= this.store.ensureBucket(this.bucket).catch((err: unknown) => {
      this.bucketReady = undefined;
      throw err;
    });
    await this.bucketReady;
    const objects = planArchive(events);
    try {
      await Promise.all(
        objects.map((o) =>
          this.store.write(this.bucket, o.name, o.body, {
            contentType: 'application/x-ndjson',
            metadata: { events: String(o.events) },
          }),
        ),
      );
    } catch (err) {
      // Whatever the store says, an archive write that did not happen must be retried, not acknowledged.
      if (err instanceof SmelterError && err.kind === 'transient') throw err;
      throw transient(
        'STORAGE_UNAVAILABLE',
        `Archive write to gs://${this.bucket} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return objects.map((o) => o.name);
  }
}
