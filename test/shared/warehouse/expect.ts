/**
 * Comparing warehouse tables with independently computed rows: values normalised (DuckDB returns
 * BIGINT/DECIMAL as strings, timestamps as `YYYY-MM-DD HH:MM:SS+00`), rows matched by key, numbers
 * compared with a tolerance (sums in another order differ in the last bits).
 */
import assert from 'node:assert/strict';
import { timestampOf } from '../../../shared/warehouse/ranges';

export type Row = Record<string, unknown>;

function norm(expected: unknown, actual: unknown): unknown {
  if (actual === null || actual === undefined) return null;
  if (typeof expected === 'number') return Number(actual);
  if (typeof expected === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(expected)) return timestampOf(actual);
  return actual;
}

const keyOf = (r: Row, key: string[]): string => key.map((k) => String(r[k] ?? 'NULL')).join('|');

/** Asserts that `actual` holds exactly the `expected` rows (only the expected rows' columns are compared). */
export function assertRows(table: string, actual: Row[], expected: Row[], key: string[], tol = 1e-6): void {
  const a = new Map(actual.map((r) => [keyOf(r, key), r]));
  assert.equal(a.size, actual.length, `${table}: duplicate keys (${key.join(', ')})`);
  const missing: string[] = [];
  const diffs: string[] = [];
  for (const e of expected) {
    const k = keyOf(e, key);
    const r = a.get(k);
    if (!r) {
      missing.push(k);
      continue;
    }
    a.delete(k);
    for (const [col, ev] of Object.entries(e)) {
      const av = norm(ev, r[col]);
      const ee = typeof ev === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(ev) ? timestampOf(ev) : ev;
      const same =
        typeof ee === 'number' && typeof av === 'number'
          ? Math.abs(ee - av) <= tol * Math.max(1, Math.abs(ee))
          : av === (ee ?? null);
      if (!same) diffs.push(`${k}.${col}: expected ${JSON.stringify(ee)}, got ${JSON.stringify(r[col])}`);
    }
  }
  const extra = [...a.keys()];
  assert.deepEqual(
    { missing: missing.slice(0, 5), extra: extra.slice(0, 5), diffs: diffs.slice(0, 8) },
    { missing: [], extra: [], diffs: [] },
    `${table}: ${missing.length} missing, ${extra.length} unexpected, ${diffs.length} different rows`,
  );
  assert.ok(
    expected.length > 0,
    `${table}: the independent computation produced no rows — the sample does not exercise it`,
  );
}

/** Groups rows by a key function. */
export function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const g = m.get(k);
    if (g) g.push(r);
    else m.set(k, [r]);
  }
  return m;
}

export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
export const utcDate = (iso: string): string => new Date(iso).toISOString().slice(0, 10);
/** Monday of the ISO week of a `YYYY-MM-DD` date. */
export function isoWeek(d: string): string {
  const t = new Date(`${d}T00:00:00Z`);
  const dow = (t.getUTCDay() + 6) % 7;
  return new Date(t.getTime() - dow * 86_400_000).toISOString().slice(0, 10);
}
export const monthOf = (d: string): string => `${d.slice(0, 7)}-01`;
export const distinct = (xs: unknown[]): number => new Set(xs.map((x) => JSON.stringify(x))).size;
