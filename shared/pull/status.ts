/** The `pulls` section of `smelter status`: per source, its schedule and the outcome of its last run. */
import { listSources, loadSourceContract } from './contract';
import { readRunRecord, type RunRecord } from './state';
import type { ObjectStore } from '../storage/object-store';

export interface SourceStatus {
  schedule?: string;
  endpoints?: string[];
  lastRun?: RunRecord;
  contractError?: string;
}

export async function pullStatus(
  store: ObjectStore,
  opts: { contractsDir: string; stateBucket: string },
): Promise<Record<string, SourceStatus>> {
  const out: Record<string, SourceStatus> = {};
  for (const name of listSources(opts.contractsDir)) {
    const s: SourceStatus = {};
    try {
      const c = loadSourceContract(opts.contractsDir, name);
      if (c.schedule) s.schedule = `${c.schedule} (UTC)`;
      s.endpoints = c.endpoints.map((e) => `${e.name} → ${e.dataset}`);
    } catch (err) {
      s.contractError = (err as Error).message;
    }
    const last = await readRunRecord(store, opts.stateBucket, name).catch(() => undefined);
    if (last) s.lastRun = last;
    out[name] = s;
  }
  return out;
}

/** Readable lines for `smelter status`: one per source, its last run and, if it failed, why. */
export function formatPullStatus(s: Record<string, SourceStatus>): string[] {
  const names = Object.keys(s);
  if (!names.length) return [];
  const out = ['API sources:'];
  for (const name of names) {
    const x = s[name] as SourceStatus;
    const r = x.lastRun;
    const when = r ? (r.finishedAt ?? r.startedAt) : undefined;
    const last = !r
      ? 'never pulled'
      : r.status === 'ok'
        ? `ok ${when}: ${r.pages} pages, ${r.records} records, ${r.objects} new parts`
        : `${r.status.toUpperCase()} ${when}: ${r.error?.code ?? ''} ${r.error?.message ?? ''}`.trim();
    out.push(
      `  ${name.padEnd(14)} ${x.contractError ? `contract invalid: ${x.contractError}` : last}${x.schedule ? `  [${x.schedule}]` : ''}`,
    );
  }
  return out;
}
