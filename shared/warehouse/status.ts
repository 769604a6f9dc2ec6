/**
 * The warehouse section of `smelter status`: rows per layer and table, loads (last one, counts by
 * status, stopped datasets), watermarks, the latest result of every audit and recent model failures.
 */
import type { WarehouseEngine } from './engine';
import { timestampOf } from './ranges';
import type { Warehouse } from './service';
import { OPS } from './tables';

export interface WarehouseStatus {
  engine: 'duckdb' | 'bigquery';
  layers: Record<string, { table: string; rows: number; kind: 'table' | 'view'; missingObjects?: number }[]>;
  loads: {
    byStatus: Record<string, number>;
    last?: { object: string; dataset: string; rows: number; status: string; at: string | undefined };
    problems: { object: string; status: string; error: string }[];
  };
  stoppedDatasets: { dataset: string; reason: string; object: string; since: string | undefined }[];
  watermarks: { model: string; watermark: string | undefined; updatedAt: string | undefined }[];
  audits: {
    passing: number;
    failing: number;
    latest: {
      model: string;
      audit: string;
      status: string;
      failingRows: number;
      checkedAt: string | undefined;
    }[];
  };
  failedRuns: { model: string; trigger: string; error: string; at: string | undefined }[];
}

export async function warehouseStatus(wh: Warehouse): Promise<WarehouseStatus> {
  const e = wh.engine;
  const t = (r: OpsTable): string => e.dialect.table(r);
  return {
    engine: e.dialect.name,
    layers: await layersStatus(e),
    loads: await loadsStatus(e, t),
    stoppedDatasets: await stoppedDatasets(e, t),
    watermarks: await watermarks(e, t),
    audits: await auditsStatus(e, t),
    failedRuns: await failedRuns(e, t),
  };
}

type OpsTable = (typeof OPS)[keyof typeof OPS];
type Name = (r: OpsTable) => string;

async function layersStatus(e: WarehouseEngine): Promise<WarehouseStatus['layers']> {
  const layers: WarehouseStatus['layers'] = { bronze: [], silver: [], gold: [], events: [] };
  for (const s of await e.tableStats(['bronze', 'silver', 'gold', 'events']))
    (layers[s.layer] ??= []).push({
      table: s.table,
      rows: s.rows,
      kind: s.kind,
      ...(s.missingObjects ? { missingObjects: s.missingObjects } : {}),
    });
  return layers;
}

async function loadsStatus(e: WarehouseEngine, t: Name): Promise<WarehouseStatus['loads']> {
  const counts = await e.query<{ status: string; n: unknown }>(
    `SELECT status, COUNT(*) AS n FROM ${t(OPS.ledger)} GROUP BY status`,
  );
  const last = (
    await e.query<{
      bucket: string;
      name: string;
      dataset: string;
      rows: unknown;
      status: string;
      updated_at: unknown;
    }>(
      `SELECT bucket, name, dataset, rows, status, updated_at FROM ${t(OPS.ledger)} ORDER BY updated_at DESC LIMIT 1`,
    )
  )[0];
  const problems = await e.query<{ bucket: string; name: string; status: string; error: string }>(
    `SELECT bucket, name, status, error FROM ${t(OPS.ledger)} WHERE status IN ('blocked', 'pending', 'failed') ORDER BY updated_at DESC LIMIT 20`,
  );
  return {
    byStatus: Object.fromEntries(counts.map((c) => [c.status, Number(c.n)])),
    ...(last
      ? {
          last: {
            object: `gs://${last.bucket}/${last.name}`,
            dataset: last.dataset,
            rows: Number(last.rows ?? 0),
            status: last.status,
            at: timestampOf(last.updated_at),
          },
        }
      : {}),
    problems: problems.map((p) => ({
      object: `gs://${p.bucket}/${p.name}`,
      status: p.status,
      error: p.error ?? '',
    })),
  };
}

async function stoppedDatasets(e: WarehouseEngine, t: Name): Promise<WarehouseStatus['stoppedDatasets']> {
  const stopped = await e.query<{ dataset: string; reason: string; object: string; since: unknown }>(
    `SELECT dataset, reason, object, since FROM ${t(OPS.datasets)} WHERE status = 'blocked' ORDER BY dataset`,
  );
  return stopped.map((s) => ({
    dataset: s.dataset,
    reason: s.reason,
    object: s.object,
    since: timestampOf(s.since),
  }));
}

async function watermarks(e: WarehouseEngine, t: Name): Promise<WarehouseStatus['watermarks']> {
  const wms = await e.query<{ model: string; watermark: unknown; updated_at: unknown }>(
    `SELECT model, watermark, updated_at FROM ${t(OPS.watermarks)} ORDER BY model`,
  );
  return wms.map((w) => ({
    model: w.model,
    watermark: timestampOf(w.watermark),
    updatedAt: timestampOf(w.updated_at),
  }));
}

/** The latest result of every audit. */
async function auditsStatus(e: WarehouseEngine, t: Name): Promise<WarehouseStatus['audits']> {
  const audits = await e.query<{
    model: string;
    audit: string;
    status: string;
    failing_rows: unknown;
    checked_at: unknown;
  }>(
    `SELECT model, audit, status, failing_rows, checked_at FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY model, audit ORDER BY checked_at DESC) AS rn FROM ${t(OPS.audits)}) AS a WHERE rn = 1 ORDER BY model, audit`,
  );
  return {
    passing: audits.filter((a) => a.status === 'pass').length,
    failing: audits.filter((a) => a.status !== 'pass').length,
    latest: audits.map((a) => ({
      model: a.model,
      audit: a.audit,
      status: a.status,
      failingRows: Number(a.failing_rows ?? 0),
      checkedAt: timestampOf(a.checked_at),
    })),
  };
}

async function failedRuns(e: WarehouseEngine, t: Name): Promise<WarehouseStatus['failedRuns']> {
  const runs = await e.query<{ model: string; trigger: string; error: string; finished_at: unknown }>(
    `SELECT model, trigger, error, finished_at FROM ${t(OPS.runs)} WHERE status = 'failed' ORDER BY finished_at DESC LIMIT 10`,
  );
  return runs.map((r) => ({
    model: r.model,
    trigger: r.trigger,
    error: (r.error ?? '').split('\n')[0] ?? '',
    at: timestampOf(r.finished_at),
  }));
}

/** Human-readable lines for `smelter status`. */
export function formatWarehouseStatus(s: WarehouseStatus): string[] {
  const out: string[] = [`warehouse (${s.engine}):`];
  for (const [layer, tables] of Object.entries(s.layers)) {
    if (!tables.length) continue;
    out.push(`  ${layer}:`);
    for (const t of tables)
      out.push(
        `    ${t.table.padEnd(34)} ${String(t.rows).padStart(10)} rows${t.kind === 'view' ? ' (view)' : ''}` +
          (t.missingObjects
            ? ` — ${t.missingObjects} loaded object(s) gone from the bucket, their rows not counted`
            : ''),
      );
  }
  const by = Object.entries(s.loads.byStatus)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  out.push(`  loads: ${by || 'none yet'}`);
  if (s.loads.last)
    out.push(
      `  last load: ${s.loads.last.at ?? '?'} ${s.loads.last.object} (${s.loads.last.rows} rows, ${s.loads.last.status})`,
    );
  for (const p of s.loads.problems.slice(0, 5))
    out.push(`    ${p.status}: ${p.object}: ${p.error.split('\n')[0]}`);
  for (const d of s.stoppedDatasets)
    out.push(`  STOPPED ${d.dataset} since ${d.since ?? '?'}: ${d.reason.split('\n')[0]}`);
  if (s.watermarks.length) {
    out.push('  watermarks:');
    for (const w of s.watermarks) out.push(`    ${w.model.padEnd(34)} ${w.watermark ?? '-'}`);
  }
  out.push(`  audits: ${s.audits.passing} passing, ${s.audits.failing} failing`);
  for (const a of s.audits.latest.filter((x) => x.status !== 'pass'))
    out.push(`    FAIL ${a.model} ${a.audit}: ${a.failingRows} rows (${a.checkedAt ?? '?'})`);
  for (const r of s.failedRuns.slice(0, 5))
    out.push(`  failed run ${r.at ?? '?'} ${r.model} (${r.trigger}): ${r.error}`);
  return out;
}
