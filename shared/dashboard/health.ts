/**
 * Pipeline state that lives outside the warehouse, for the overview and `smelter status`: the Bronze
 * manifests (last file per dataset, rows in / written / rejected), the quarantine bucket (rejected rows
 * grouped by reason, files that could not be converted) and the local stack's parked deliveries.
 */
import { createInterface } from 'node:readline';
import type { BronzeManifest } from '../ingest/bronze';
import {
  lastRunObjectName,
  PULL_PREFIX,
  stateObjectName,
  type RunRecord,
  type SourceState,
} from '../pull/state';
import { readObjectJson, type ObjectStore } from '../storage/object-store';

export type Row = Record<string, unknown>;

export interface HealthSource {
  ingest(): Promise<Row[]>;
  quarantine(): Promise<Row[]>;
  parked(): Promise<Row[]>;
  pulls(): Promise<Row[]>;
}

export interface ParkedDelivery {
  parkedAt: string;
  subject?: string;
  id: string;
  target: string;
  attempts: number;
  lastError: string;
}

export interface StoreHealthOptions {
  store: ObjectStore;
  bronzeBucket: string;
  quarantineBucket: string;
  /** The local stack's parked deliveries (absent on GCP: Pub/Sub keeps its own dead letters). */
  parked?: () => ParkedDelivery[];
  /** API sources declared (contracts/sources), listed even before their first pull. */
  sources?: () => string[];
  /** Rejected rows read per overview, across files (the quarantine can be large). */
  maxRejectLines?: number;
}

/** Values inside quotes vary per row; the reason without them groups rows failing the same check. */
const reasonKey = (s: string): string => s.replace(/'[^']*'|"[^"]*"/g, '…').slice(0, 200);

export function storeHealth(o: StoreHealthOptions): HealthSource {
  const maxLines = o.maxRejectLines ?? 20_000;
  return {
    async ingest() {
      const by = new Map<string, Row & { last_at: string }>();
      const failed = new Map<string, number>();
      for await (const m of o.store.list(o.quarantineBucket, '_failed/'))
        if (m.name.endsWith('/error.json')) {
          const ds = m.name.split('/')[1] ?? '';
          failed.set(ds, (failed.get(ds) ?? 0) + 1);
        }
      for await (const m of o.store.list(o.bronzeBucket)) {
        if (!m.name.endsWith('.manifest.json')) continue;
        const man = await readObjectJson<BronzeManifest>(o.store, o.bronzeBucket, m.name);
        if (!man) continue;
        const d = by.get(man.dataset) ?? {
          dataset: man.dataset,
          files: 0,
          last_file: '',
          last_at: '',
          rows_in: 0,
          rows_written: 0,
          rows_rejected: 0,
          failed_files: 0,
        };
        d.files = (d.files as number) + 1;
        d.rows_in = (d.rows_in as number) + (man.rowsIn ?? man.rows + man.rejected);
        d.rows_written = (d.rows_written as number) + man.rows;
        d.rows_rejected = (d.rows_rejected as number) + man.rejected;
        if (man.ingestedAt > d.last_at) {
          d.last_at = man.ingestedAt;
          d.last_file = man.source.uri;
        }
        by.set(man.dataset, d);
      }
      for (const [ds, n] of failed) {
        const d = by.get(ds);
        if (d) d.failed_files = n;
        else
          by.set(ds, {
            dataset: ds,
            files: 0,
            last_file: '',
            last_at: '',
            rows_in: 0,
            rows_written: 0,
            rows_rejected: 0,
            failed_files: n,
          });
      }
      return [...by.values()].sort((a, b) => String(a.dataset).localeCompare(String(b.dataset)));
    },

    async quarantine() {
      const groups = new Map<string, Row>();
      const add = (dataset: string, kind: string, reason: string, example: string): void => {
        const key = `${dataset}\u0000${kind}\u0000${reasonKey(reason)}`;
        const g = groups.get(key) ?? { dataset, kind, reason: reasonKey(reason), count: 0, example };
        g.count = (g.count as number) + 1;
        groups.set(key, g);
      };
      let lines = 0;
      for await (const m of o.store.list(o.quarantineBucket)) {
        if (m.name.startsWith('_failed/') && m.name.endsWith('/error.json')) {
          const e = await readObjectJson<{
            source?: { uri?: string };
            error?: { code?: string; message?: string };
          }>(o.store, o.quarantineBucket, m.name);
          const msg = `${e?.error?.code ?? 'ERROR'}: ${e?.error?.message ?? ''}`;
          add(m.name.split('/')[1] ?? '', 'file', msg, e?.source?.uri ?? m.name);
          continue;
        }
        if (!m.name.endsWith('.rejects.ndjson') || lines >= maxLines) continue;
        const dataset = m.name.split('/')[0] ?? '';
        const rl = createInterface({
          input: await o.store.read(o.quarantineBucket, m.name),
          crlfDelay: Infinity,
        });
        for await (const line of rl) {
          if (!line.trim()) continue;
          if (++lines > maxLines) break;
          let r: { reason?: string; error_type?: string; line?: number; record?: number };
          try {
            r = JSON.parse(line) as typeof r;
          } catch {
            continue;
          }
          const where =
            r.line !== undefined ? `line ${r.line}` : r.record !== undefined ? `record ${r.record}` : '';
          add(
            dataset,
            `rows (${(r.error_type ?? 'rejected').toLowerCase()})`,
            r.reason ?? '',
            `${m.name} ${where}`.trim(),
          );
        }
        rl.close();
      }
      return [...groups.values()].sort(
        (a, b) =>
          (b.count as number) - (a.count as number) || String(a.dataset).localeCompare(String(b.dataset)),
      );
    },

    async pulls() {
      const names = new Set(o.sources?.() ?? []);
      for await (const m of o.store.list(o.bronzeBucket, PULL_PREFIX)) {
        const source = m.name.slice(PULL_PREFIX.length).split('/')[0];
        if (source) names.add(source);
      }
      const rows: Row[] = [];
      for (const source of [...names].sort()) {
        const run = await readObjectJson<RunRecord>(o.store, o.bronzeBucket, lastRunObjectName(source));
        const state = await readObjectJson<SourceState>(o.store, o.bronzeBucket, stateObjectName(source));
        rows.push({
          source,
          status: run?.status ?? 'never pulled',
          finished_at: run?.finishedAt ?? run?.startedAt ?? null,
          records: run?.records ?? null,
          pages: run?.pages ?? null,
          state_saved_at: state?.updatedAt ?? null,
          error: run?.error ? `${run.error.code}: ${run.error.message}` : null,
        });
      }
      return rows;
    },

    async parked() {
      return (o.parked?.() ?? []).map((p) => ({
        parked_at: p.parkedAt,
        subject: p.subject ?? p.id,
        target: p.target,
        attempts: p.attempts,
        last_error: p.lastError,
      }));
    },
  };
}
