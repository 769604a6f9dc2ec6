import type { RunSummary } from '../../shared/warehouse/runner';
import { flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { withWarehouse } from '../local/warehouse';
import { summaryLines } from './refresh';

export const backfillCommand: Command = {
  name: 'backfill',
  summary: "Re-run a dataset's Silver and Gold models for a date range (idempotent)",
  usage: 'backfill --dataset D --from YYYY-MM-DD --to YYYY-MM-DD [--json]',
  async run({ flags, out }) {
    const dataset = flagString(flags, 'dataset');
    const from = flagString(flags, 'from');
    const to = flagString(flags, 'to') ?? from;
    if (!dataset || !from || !to)
      throw new Error('usage: smelter backfill --dataset D --from YYYY-MM-DD --to YYYY-MM-DD');
    cliEnv();
    const res = await withWarehouse<RunSummary>('backfill', { dataset, from, to }, (wh) =>
      wh.backfill({ dataset, from, to }),
    );
    if (flags.json) {
      out(JSON.stringify(res));
      return 0;
    }
    out(`backfill ${dataset} ${from}..${to}:`);
    for (const l of summaryLines(res)) out(l);
    return 0;
  },
};
