import type { RunSummary } from '../../shared/warehouse/runner';
import type { RefreshOutcome } from '../../shared/warehouse/service';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { withWarehouse } from '../local/warehouse';

/** One line per model run: rows, ranges, duration. */
export function summaryLines(s: RunSummary | undefined): string[] {
  if (!s || !s.models.length) return ['  nothing to do (no new data in scope)'];
  return [
    ...s.models.map((m) => {
      if (m.waitingFor?.length) return `  ${m.model.padEnd(36)} waiting for ${m.waitingFor.join(', ')}`;
      const ranges = m.ranges.length
        ? m.ranges
            .map((r) =>
              r.startDate === '0001-01-01' && r.endDate === '9999-12-31'
                ? 'all'
                : `${r.startDate}..${r.endDate}`,
            )
            .join(',')
        : '-';
      return `  ${m.model.padEnd(36)} ${m.kind.padEnd(25)} ${String(m.rows).padStart(8)} rows  ${ranges}  ${m.durationMs} ms`;
    }),
    `  total ${s.durationMs} ms`,
  ];
}

export const refreshCommand: Command = {
  name: 'refresh',
  summary: 'Bring event tables into Silver/Gold from the watermarks (and retry files of a stopped dataset)',
  usage: 'refresh [--dataset D [--skip OBJECT,…]] [--json]',
  async run({ flags, out }) {
    cliEnv();
    const dataset = flagString(flags, 'dataset');
    const skip = flagString(flags, 'skip')
      ?.split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    if (skip?.length && !dataset) throw new Error('--skip needs --dataset');
    const body = { ...(dataset ? { dataset } : {}), ...(skip?.length ? { skip } : {}) };
    const res = await withWarehouse<RefreshOutcome>('refresh', body, (wh) =>
      wh.refresh({ ...body, trigger: dataset ? `refresh ${dataset} (cli)` : 'refresh (cli)' }),
    );
    if (flags.json) {
      out(JSON.stringify(res));
      return 0;
    }
    for (const r of res.retried)
      out(`retried ${r.name}: ${r.status}${r.error ? ` — ${r.error.split('\n')[0]}` : ''}`);
    for (const s of res.skipped) out(`skipped ${s}`);
    out(`refresh${dataset ? ` ${dataset}` : ''}:`);
    for (const l of summaryLines(res.summary)) out(l);
    return res.retried.some((r) => r.status === 'failed') ? 1 : 0;
  },
};
