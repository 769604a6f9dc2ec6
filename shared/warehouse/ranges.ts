/**
 * Date arithmetic for partition-scoped runs: which partitions changed, and which whole-grain time
 * ranges a downstream model must recompute.
 */
import { UNBOUNDED, type Grain, type TimeRange } from './dialect/types';

/**
 * What changed in a table: some DATE partitions (and, with `since`, every partition from that date
 * on — an incremental refresh's open-ended range), or possibly everything.
 */
export type Change = { all: true } | { all: false; dates: Set<string>; since?: string };

export const CHANGED_ALL: Change = { all: true };
export const changedDates = (dates: Iterable<string>, since?: string): Change => ({
  all: false,
  dates: new Set(dates),
  ...(since ? { since } : {}),
});

export function mergeChanges(a: Change | undefined, b: Change | undefined): Change | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.all || b.all) return CHANGED_ALL;
  const since = a.since && b.since ? (a.since < b.since ? a.since : b.since) : (a.since ?? b.since);
  return changedDates([...a.dates, ...b.dates], since);
}

export function isEmptyChange(c: Change | undefined): boolean {
  return !c || (!c.all && c.dates.size === 0 && !c.since);
}

const DAY = 86_400_000;

export function toDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function parseDate(d: string): number {
  const t = Date.parse(`${d}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(d) || Number.isNaN(t)) throw new Error(`not a date: ${d}`);
  return t;
}

export function addDays(d: string, n: number): string {
  return toDate(parseDate(d) + n * DAY);
}

/** Start of the grain containing `d` (ISO weeks start on Monday). */
export function floorGrain(d: string, grain: Grain): string {
  const t = new Date(parseDate(d));
  switch (grain) {
    case 'day':
      return d;
    case 'week': {
      const dow = (t.getUTCDay() + 6) % 7; // Monday = 0
      return toDate(t.getTime() - dow * DAY);
    }
    case 'month':
      return `${d.slice(0, 7)}-01`;
    case 'quarter': {
      const m = Math.floor(t.getUTCMonth() / 3) * 3 + 1;
      return `${d.slice(0, 4)}-${String(m).padStart(2, '0')}-01`;
    }
    case 'year':
      return `${d.slice(0, 4)}-01-01`;
  }
}

/** Start of the next grain after the one containing `d`. */
export function nextGrain(d: string, grain: Grain): string {
  const f = floorGrain(d, grain);
  const t = new Date(parseDate(f));
  switch (grain) {
    case 'day':
      return addDays(f, 1);
    case 'week':
      return addDays(f, 7);
    case 'month':
      return toDate(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
    case 'quarter':
      return toDate(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 3, 1));
    case 'year':
      return toDate(Date.UTC(t.getUTCFullYear() + 1, 0, 1));
  }
}

/** Widens a range to whole grains. */
export function alignRange(r: TimeRange, grain: Grain): TimeRange {
  const startDate = r.startDate <= UNBOUNDED.startDate ? UNBOUNDED.startDate : floorGrain(r.startDate, grain);
  const endDate =
    r.endDate >= UNBOUNDED.endDate
      ? UNBOUNDED.endDate
      : r.endDate === floorGrain(r.endDate, grain)
        ? r.endDate
        : nextGrain(r.endDate, grain);
  return { startDate, endDate };
}

/**
 * Turns changed dates into at most `max` whole-grain ranges: contiguous grains form one range; when
 * there are too many, the closest ranges are joined (recomputing a few unchanged partitions is
 * cheaper than many small jobs).
 */
export function rangesFor(change: Change, grain: Grain, max = 8): TimeRange[] {
  if (change.all) return [UNBOUNDED];
  const since = change.since ? floorGrain(change.since, grain) : undefined;
  const starts = [...new Set([...change.dates].map((d) => floorGrain(d, grain)))].filter(
    (s) => !since || s < since,
  );
  if (since) starts.push(since);
  starts.sort();
  const ranges: TimeRange[] = [];
  for (const s of starts) {
    const e = s === since ? UNBOUNDED.endDate : nextGrain(s, grain);
    const last = ranges[ranges.length - 1];
    if (last && last.endDate >= s) last.endDate = e > last.endDate ? e : last.endDate;
    else ranges.push({ startDate: s, endDate: e });
  }
  while (ranges.length > max) {
    let best = 0;
    let gap = Infinity;
    for (let i = 0; i + 1 < ranges.length; i++) {
      const g =
        parseDate((ranges[i + 1] as TimeRange).startDate) - parseDate((ranges[i] as TimeRange).endDate);
      if (g < gap) {
        gap = g;
        best = i;
      }
    }
    const a = ranges[best] as TimeRange;
    const b = ranges[best + 1] as TimeRange;
    ranges.splice(best, 2, { startDate: a.startDate, endDate: b.endDate });
  }
  return ranges;
}

export function isDate(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));
}

/** Normalises a date-ish value returned by an engine (`2024-01-01`, Date, {value}) to `YYYY-MM-DD`. */
export function dateOf(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  if (typeof v === 'object' && 'value' in (v as object)) return dateOf((v as { value: unknown }).value);
  const s = String(v);
  return isDate(s.slice(0, 10)) ? s.slice(0, 10) : undefined;
}

/** Normalises a timestamp value returned by an engine to an ISO string (UTC). */
export function timestampOf(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && 'value' in (v as object)) return timestampOf((v as { value: unknown }).value);
  let s = String(v).trim();
  // DuckDB: `2024-01-01 10:00:00+00`, BigQuery: `2024-01-01T10:00:00.000Z`.
  s = s.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00');
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}
