import { ROLES, type Role } from '../../shared/governance/masking';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { withWarehouse } from '../local/warehouse';

/** Renders a cell for the text table: NULL, numbers as is, objects as JSON. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const numeric = (v: unknown): boolean =>
  typeof v === 'number' ||
  typeof v === 'bigint' ||
  (typeof v === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v));

/** Aligned text table: numbers right-aligned, long cells cut at `maxWidth`. */
export function formatTable(columns: string[], rows: unknown[][], maxWidth = 60): string[] {
  const cut = (s: string): string => (s.length > maxWidth ? s.slice(0, maxWidth - 1) + '…' : s);
  const text = rows.map((r) => r.map((v) => cut(cell(v))));
  const right = columns.map(
    (_, i) => rows.length > 0 && rows.every((r) => r[i] === null || r[i] === undefined || numeric(r[i])),
  );
  const width = columns.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]): string =>
    vals
      .map((v, i) => (right[i] ? v.padStart(width[i] as number) : v.padEnd(width[i] as number)))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    width.map((w) => '-'.repeat(w)).join('  '),
    ...text.map(line),
    `(${rows.length} row${rows.length === 1 ? '' : 's'})`,
  ];
}

export const queryCommand: Command = {
  name: 'query',
  summary:
    'Run SQL on the warehouse (DuckDB locally, BigQuery with SMELTER_BACKEND=gcp); @ref(layer.table) works on both',
  usage: 'query "SELECT …" [--role owner|pii_reader|analyst] [--json]',
  async run({ args, flags, out }) {
    const sql = args.join(' ').trim();
    if (!sql)
      throw new Error(
        'usage: smelter query "SELECT * FROM gold.rainfall_monthly LIMIT 10" [--role owner|pii_reader|analyst] [--json]',
      );
    const role = flagString(flags, 'role') ?? 'owner';
    if (!(ROLES as readonly string[]).includes(role))
      throw new Error(`--role must be one of ${ROLES.join(', ')} (analyst sees personal data masked)`);
    cliEnv();
    const res = await withWarehouse('query', { sql, role }, (wh) => wh.query(sql, { role: role as Role }));
    if (flags.json) {
      out(
        JSON.stringify(res.rows.map((r) => Object.fromEntries(res.columns.map((c, i) => [c, r[i] ?? null])))),
      );
      return 0;
    }
    for (const l of formatTable(res.columns, res.rows)) out(l);
    return 0;
  },
};
