/**
 * The event archive layout: NDJSON objects under `events/<type>/YYYY/MM/DD/HH/` (hour of event_time,
 * UTC), one object per type and hour per flushed batch.
 *
 * Names are `<sha256 of the sorted message ids, 32 hex>.ndjson`: a redelivered batch with the same
 * messages rewrites the same object (overwrite-safe), and two different batches never share a name.
 * A redelivered message that lands in a different batch is archived twice — the archive is
 * at-least-once and never loses an acknowledged event; Silver deduplicates on event_id.
 */
import { createHash } from 'node:crypto';
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

/** One NDJSON line: the warehouse row, plus `_extra` (undeclared fields) when there were any. */
export function archiveLine(e: AcceptedEvent): string {
  return JSON.stringify(e.extra ? { ...e.row, _extra: e.extra } : e.row);
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
    const ids = list.map((e) => e.message.messageId).sort();
    const hash = createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 32);
    out.push({
      name: `${folder}${hash}.ndjson`,
      body: list.map(archiveLine).join('\n') + '\n',
      events: list.length,
    });
  }
  return out;
}
