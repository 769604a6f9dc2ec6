/**
 * What became of published messages in the local warehouse (`smelter publish --wait`): for each
 * message, whether routeEvent stored it as a row (`events.<table>`, by `_message_id`), dead-lettered it
 * (`events.dead_letter`, by `message_id`), or dropped it as a duplicate of an `event_id` already stored.
 *
 * Message ids alone are ambiguous locally — the emulator numbers messages from 1 again after every
 * restart — so matches are limited to rows processed since the publish began.
 */
import type { LocalWarehouse } from '../../adapters/warehouse/duckdb-local';

export interface LandedQuery {
  messageIds: string[];
  /** event_id of each message that has one (same length as messageIds; null when unknown). */
  eventIds?: (string | null)[];
  /** ISO time the publish began; rows processed before it are ignored. */
  since: string;
}

export interface LandedReport {
  /** Messages stored as rows, per table. */
  rows: Record<string, number>;
  deadLetters: number;
  /** Dead letters by violation code. */
  reasons: Record<string, number>;
  /** Messages whose event_id is stored from another message (insert-id dedup). */
  duplicates: number;
  /** Messages not accounted for yet. */
  pending: number;
  /** Ids of the pending messages (at most 20). */
  pendingIds: string[];
}

const CHUNK = 2000;
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

export async function landedReport(wh: Pick<LocalWarehouse, 'query'>, q: LandedQuery): Promise<LandedReport> {
  // Small margin: the publisher's clock and routeEvent's are the same machine's, but ms are truncated.
  const since = new Date(Date.parse(q.since) - 2000).toISOString();
  const tables = await wh.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'events'`,
  );
  const cols = new Map<string, Set<string>>();
  for (const t of tables)
    (cols.get(t.table_name) ?? cols.set(t.table_name, new Set()).get(t.table_name))?.add(t.column_name);

  const rowOf = new Map<string, string>();
  const deadLettered = new Set<string>();
  const reasons: Record<string, number> = {};
  const storedEventIds = new Set<string>();
  const wantedEventIds = [...new Set((q.eventIds ?? []).filter((x): x is string => !!x))];

  for (const [table, c] of cols) {
    if (table === 'dead_letter') {
      if (!c.has('message_id')) continue;
      const time = c.has('dead_lettered_at') ? `AND dead_lettered_at >= ${lit(since)}::TIMESTAMPTZ` : '';
      const reasonsCol = c.has('reasons') ? `, to_json(reasons) AS reasons` : '';
      for (let i = 0; i < q.messageIds.length; i += CHUNK) {
        const ids = q.messageIds
          .slice(i, i + CHUNK)
          .map(lit)
          .join(',');
        const found = await wh.query<{ message_id: string; reasons?: string }>(
          `SELECT message_id${reasonsCol} FROM events.dead_letter WHERE message_id IN (${ids}) ${time}`,
        );
        for (const r of found) {
          if (deadLettered.has(r.message_id)) continue;
          deadLettered.add(r.message_id);
          for (const code of reasonCodes(r.reasons)) reasons[code] = (reasons[code] ?? 0) + 1;
        }
      }
      continue;
    }
    if (!c.has('_message_id') || !c.has('event_id')) continue;
    const time = c.has('_processed_at') ? `AND _processed_at >= ${lit(since)}::TIMESTAMPTZ` : '';
    for (let i = 0; i < q.messageIds.length; i += CHUNK) {
      const ids = q.messageIds
        .slice(i, i + CHUNK)
        .map(lit)
        .join(',');
      const found = await wh.query<{ _message_id: string }>(
        `SELECT _message_id FROM events.${ident(table)} WHERE _message_id IN (${ids}) ${time}`,
      );
      for (const r of found) rowOf.set(r._message_id, table);
    }
    for (let i = 0; i < wantedEventIds.length; i += CHUNK) {
      const ids = wantedEventIds
        .slice(i, i + CHUNK)
        .map(lit)
        .join(',');
      const found = await wh.query<{ event_id: string }>(
        `SELECT DISTINCT event_id FROM events.${ident(table)} WHERE event_id IN (${ids})`,
      );
      for (const r of found) storedEventIds.add(r.event_id);
    }
  }

  const rows: Record<string, number> = {};
  let duplicates = 0;
  const pendingIds: string[] = [];
  let pending = 0;
  q.messageIds.forEach((id, i) => {
    const table = rowOf.get(id);
    if (table) rows[table] = (rows[table] ?? 0) + 1;
    else if (deadLettered.has(id)) return;
    else {
      const ev = q.eventIds?.[i];
      if (ev && storedEventIds.has(ev)) duplicates++;
      else {
        pending++;
        if (pendingIds.length < 20) pendingIds.push(id);
      }
    }
  });
  return { rows, deadLetters: deadLettered.size, reasons, duplicates, pending, pendingIds };
}

function reasonCodes(json: string | undefined): string[] {
  if (!json) return [];
  try {
    const list = JSON.parse(json) as { code?: string }[];
    return [...new Set(list.map((r) => r.code ?? 'unknown'))];
  } catch {
    return [];
  }
}
