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
  return {
    ingest: () => ingestRows(o),
    quarantine: () => quarantineRows(o),
    pulls: () => pullRows(o),
    parked: async () => parkedRows(o.parked?.() ?? []),
  };
}

type IngestRow = Row & { dataset: string; last_at: string };

const emptyIngestRow = (dataset: string): IngestRow => ({
  dataset,
  files: 0,
  last_file: '',
  last_at: '',
  rows_in: 0,
  rows_written: 0,
  rows_rejected: 0,
  failed_files: 0,
});

/** One Bronze manifest folded into its dataset's row (the latest file by ingestion time). */
function addManifest(row: IngestRow, man: BronzeManifest): IngestRow {
  row.files = (row.files as number) + 1;
  row.rows_in = (row.rows_in as number) + (man.rowsIn ?? man.rows + man.rejected);
  row.rows_written = (row.rows_written as number) + man.rows;
  row.rows_rejected = (row.rows_rejected as number) + man.rejected;
  if (man.ingestedAt > row.last_at) {
    row.last_at = man.ingestedAt;
    row.last_file = man.source.uri;
  }
  return row;
}

/** Per dataset: files ingested, rows in / written / rejected, the last file, files that failed. */
async function ingestRows(o: StoreHealthOptions): Promise<Row[]> {
  const failed = await failedFilesByDataset(o);
  const by = new Map<string, IngestRow>();
  for await (const m of o.store.list(o.bronzeBucket)) {
    if (!m.name.endsWith('.manifest.json')) continue;
    const man = await readObjectJson<BronzeManifest>(o.store, o.bronzeBucket, m.name);
    if (man) by.set(man.dataset, addManifest(by.get(man.dataset) ?? emptyIngestRow(man.dataset), man));
  }
  for (const [ds, n] of failed) {
    const d = by.get(ds) ?? emptyIngestRow(ds);
    d.failed_files = n;
    by.set(ds, d);
  }
  return [...by.values()].sort((a, b) => a.dataset.localeCompare(b.dataset));
}

async function failedFilesByDataset(o: StoreHealthOptions): Promise<Map<string, number>> {
  const failed = new Map<string, number>();
  for await (const m of o.store.list(o.quarantineBucket, '_failed/'))
    if (m.name.endsWith('/error.json')) {
      const ds = m.name.split('/')[1] ?? '';
      failed.set(ds, (failed.get(ds) ?? 0) + 1);
    }
  return failed;
}

/** Quarantined rows and failed files grouped by dataset, kind and reason, largest group first. */
class RejectGroups {
  private readonly groups = new Map<string, Row>();
  add(dataset: string, kind: string, reason: string, example: string): void {
    const key = `${dataset}\u0000${kind}\u0000${reasonKey(reason)}`;
    const g = this.groups.get(key) ?? { dataset, kind, reason: reasonKey(reason), count: 0, example };
    g.count = (g.count as number) + 1;
    this.groups.set(key, g);
  }
  /** One line of a `.rejects.ndjson` file; unparseable lines are skipped. */
  addRejectLine(dataset: string, file: string, line: string): void {
    let r: { reason?: string; error_type?: string; line?: number; record?: number };
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      return;
    }
    const where =
      r.line !== undefined ? `line ${r.line}` : r.record !== undefined ? `record ${r.record}` : '';
    this.add(
      dataset,
      `rows (${(r.error_type ?? 'rejected').toLowerCase()})`,
      r.reason ?? '',
      `${file} ${where}`.trim(),
    );
  }
  rows(): Row[] {
    return [...this.groups.values()].sort(
      (a, b) =>
        (b.count as number) - (a.count as number) || String(a.dataset).localeCompare(String(b.dataset)),
    );
  }
}

async function quarantineRows(o: StoreHealthOptions): Promise<Row[]> {
  const maxLines = o.maxRejectLines ?? 20_000;
  const groups = new RejectGroups();
  let lines = 0;
  for await (const m of o.store.list(o.quarantineBucket)) {
    if (m.name.startsWith('_failed/') && m.name.endsWith('/error.json')) {
      await addFailedFile(o, groups, m.name);
      continue;
    }
    if (!m.name.endsWith('.rejects.ndjson') || lines >= maxLines) continue;
    lines = await addRejectsFile(o, groups, m.name, lines, maxLines);
  }
  return groups.rows();
}

async function addFailedFile(o: StoreHealthOptions, groups: RejectGroups, name: string): Promise<void> {
  const e = await readObjectJson<{
    source?: { uri?: string };
    error?: { code?: string; message?: string };
  }>(o.store, o.quarantineBucket, name);
  const msg = `${e?.error?.code ?? 'ERROR'}: ${e?.error?.message ?? ''}`;
  groups.add(name.split('/')[1] ?? '', 'file', msg, e?.source?.uri ?? name);
}

/** Streams one rejects file into the groups, up to `maxLines` across files; returns the lines read so far. */
async function addRejectsFile(
  o: StoreHealthOptions,
  groups: RejectGroups,
  name: string,
  lines: number,
  maxLines: number,
): Promise<number> {
  const dataset = name.split('/')[0] ?? '';
  const rl = createInterface({ input: await o.store.read(o.quarantineBucket, name), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    if (++lines > maxLines) break;
    groups.addRejectLine(dataset, name, line);
  }
  rl.close();
  return lines;
}

/** Per API source (declared or pulled): its last run and when its state was saved. */
async function pullRows(o: StoreHealthOptions): Promise<Row[]> {
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
}

function parkedRows(parked: ParkedDelivery[]): Row[] {
  return parked.map((p) => ({
    parked_at: p.parkedAt,
    subject: p.subject ?? p.id,
    target: p.target,
    attempts: p.attempts,
    last_error: p.lastError,
  }));
}
