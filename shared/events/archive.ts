/**
 * The event archive layout: NDJSON objects under `events/<type>/YYYY/MM/DD/HH/` (hour of event_time,
 * UTC), one object per type and hour per flushed batch.
 *
 * Names are `<sha256 of the members' archive keys, sorted, 32 hex>.ndjson`, where a member's key is
 * its event_id, Pub/Sub message id and publish time. So:
 * - a retried batch (the same messages again) rewrites the same objects with the same events
 *   (overwrite-safe);
 * - two different batches never share a name — also across restarts of the local Pub/Sub emulator,
 *   which numbers messages from "1" again (message ids alone would collide and the later batch would
 *   overwrite the earlier one); the publish time tells those messages apart.
 * A redelivered message that lands in a different batch is archived twice: the archive is
 * at-least-once and never loses an acknowledged event; Silver deduplicates on event_id.
 */
import { createHash } from 'node:crypto';
import { messageKey } from './message';
import type { AcceptedEvent } from './ports';

export const ARCHIVE_PREFIX = 'events';

export interface ArchiveObject {
  name: string;
  body: string;
  events: number;
}

/** `events/order/2024/05/01/13/` for an event_time of 2024-05-01T13:…Z. */
export function archiveFolder(eventType: string, eventTime: string): string {
  // event_time is normalised (YYYY-MM-DDTHH:…Z), so the hour folder is a slice of it.
  const y = eventTime.slice(0, 4);
  const mo = eventTime.slice(5, 7);
  const d = eventTime.slice(8, 10);
  const h = eventTime.slice(11, 13);
  return `${ARCHIVE_PREFIX}/${eventType}/${y}/${mo}/${d}/${h}/`;
}

/** One NDJSON line: the warehouse row, plus `_extra` (undeclared fields of a `keep` contract) when there were any. */
export function archiveLine(e: AcceptedEvent): string {
  return JSON.stringify(e.extra ? { ...e.row, _extra: e.extra } : e.row);
}

/**
 * What identifies an archived event: a redelivery of the same message has the same key, a different
 * message (even one reusing a message id after an emulator restart) a different one.
 */
export function archiveKey(e: AcceptedEvent): string {
  return `${String(e.row.event_id)}\u0000${messageKey(e.message)}`;
}

export function planArchive(events: readonly AcceptedEvent[]): ArchiveObject[] {
  const groups = new Map<string, AcceptedEvent[]>();
  for (const e of events) {
    const folder = archiveFolder(e.contract.event_type, e.row.event_time as string);
    let g = groups.get(folder);
    if (!g) groups.set(folder, (g = []));
    g.push(e);
  }
  const out: ArchiveObject[] = [];
  for (const [folder, list] of groups) {
    const keys = list.map(archiveKey).sort();
    const hash = createHash('sha256').update(keys.join('\n')).digest('hex').slice(0, 32);
    out.push({
      name: `${folder}${hash}.ndjson`,
      body: list.map(archiveLine).join('\n') + '\n',
      events: list.length,
    });
  }
  return out;
}
