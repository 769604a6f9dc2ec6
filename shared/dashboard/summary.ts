/**
 * `smelter status` as text, read like the dashboard's overview: the same panels (files per dataset,
 * warehouse loads, events, dead letters, quarantine, parked deliveries, audits, model runs) as short
 * aligned tables, problems marked with ⚠ and a last line saying whether anything needs attention.
 */
import { PANELS, type Panel } from './charts';
import type { Row } from './health';
import type { PanelAnswer } from './service';

type Cell = string | number | null | undefined;

function table(headers: string[], rows: Cell[][], right: boolean[]): string[] {
  const text = rows.map((r) =>
    r.map((v) =>
      v === null || v === undefined ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : v,
    ),
  );
  const width = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]): string =>
    '  ' +
    vals
      .map((v, i) => (right[i] ? v.padStart(width[i] as number) : v.padEnd(width[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)];
}

const cut = (s: unknown, n = 60): string => {
  const t = s === null || s === undefined ? '' : String(s);
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

/** Which columns of each panel the text summary shows (the dashboard and `--json` have all of them). */
const COLUMNS: Record<string, string[]> = {
  'overview.ingest': [
    'dataset',
    'files',
    'rows_in',
    'rows_written',
    'rows_rejected',
    'failed_files',
    'last_at',
  ],
  'overview.loads': ['dataset', 'files', 'loaded', 'problems', 'rows_loaded', 'last_load'],
  'overview.events': ['event_type', 'events', 'newest', 'lag'],
  'overview.dead_letters': ['event_type', 'reason', 'dead_letters'],
  'overview.quarantine': ['dataset', 'kind', 'reason', 'count'],
  'overview.pulls': ['source', 'status', 'finished_at', 'records', 'error'],
  'overview.parked': ['parked_at', 'subject', 'target', 'attempts', 'last_error'],
  'overview.audits': ['model', 'audit', 'status', 'failing_rows', 'checked_at'],
  'overview.refreshes': ['model', 'status', 'last_run', 'last_trigger', 'failures'],
};

/** Panels whose rows are all shown only when something is wrong (audits: dozens that pass). */
const PROBLEMS_ONLY = new Set(['overview.audits', 'overview.refreshes']);

/** The count line of a problems-only panel. */
function countLine(id: string, rows: Row[], flagged: number): string {
  if (id === 'overview.refreshes') {
    const last = rows
      .map((r) => String(r.last_run ?? ''))
      .sort()
      .pop();
    return `${rows.length - flagged} models ok, ${flagged} failing; last run ${last ?? '–'}`;
  }
  return `${rows.length - flagged} passing, ${flagged} failing`;
}

export function formatOverview(answers: readonly PanelAnswer[]): string[] {
  const out: string[] = [];
  const problems: string[] = [];
  for (const a of answers) {
    const p = PANELS.find((x) => x.id === a.id) as Panel | undefined;
    if (!p) continue;
    const flagged = a.rows.filter((r) => r._problem);
    const head = `${p.title}${flagged.length ? `  ⚠ ${String(flagged[0]?._problem)} (${flagged.length})` : ''}`;
    out.push('', head);
    if (a.error) {
      out.push(`  (not available: ${a.error})`);
      continue;
    }
    if (!a.rows.length) {
      out.push(`  ${a.empty ?? p.empty}`);
      continue;
    }
    if (flagged.length)
      problems.push(`${p.title.toLowerCase()}: ${String(flagged[0]?._problem)} (${flagged.length})`);
    let rows = a.rows;
    if (PROBLEMS_ONLY.has(p.id)) {
      out.push(`  ${countLine(p.id, rows, flagged.length)}`);
      if (!flagged.length) continue;
      rows = flagged;
    }
    const cols = (COLUMNS[p.id] ?? p.fields.map((f) => f.name))
      .map((c) => p.fields.find((f) => f.name === c))
      .filter((f) => f !== undefined);
    const anyFlag = rows.some((r) => r._problem);
    const headers = [...(anyFlag ? [''] : []), ...cols.map((f) => f.title)];
    const right = [...(anyFlag ? [false] : []), ...cols.map((f) => f.type === 'quantitative')];
    const body = rows.slice(0, 12).map((r) => [
      ...(anyFlag ? [r._problem ? '⚠' : ''] : []),
      ...cols.map((f) => {
        const v = r[f.name];
        return f.type === 'quantitative' && typeof v === 'number'
          ? f.format === '.0%'
            ? `${Math.round(v * 100)}%`
            : Math.round(v * 100) / 100
          : cut(v, f.name === 'reason' || f.name === 'last_error' ? 70 : 48);
      }),
    ]);
    out.push(...table(headers, body, right));
    if (rows.length > 12) out.push(`  … ${rows.length - 12} more (smelter dashboard, or --json)`);
  }
  out.push('', problems.length ? `Needs attention: ${problems.join('; ')}.` : 'No problems found.');
  return out;
}
