/**
 * Logical table names of the warehouse: `<layer>.<table>`. The dialect maps them to engine names
 * (DuckDB schema `silver`, BigQuery dataset `<prefix>_silver`).
 */
import { permanent } from '../errors';

export const LAYERS = ['bronze', 'silver', 'gold', 'events', 'ops'] as const;
export type Layer = (typeof LAYERS)[number];

export interface TableRef {
  layer: Layer;
  name: string;
  /**
   * A run's scratch table (a model's stage): the engine may keep it outside the database file (DuckDB:
   * an in-memory database that spills to its temp directory), since it never outlives the run.
   */
  scratch?: true;
}

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,127}$/;

export function parseTableRef(s: string, where = 'table'): TableRef {
  const m = /^\s*([a-z]+)\.([A-Za-z0-9_]+)\s*$/.exec(s);
  if (!m || !(LAYERS as readonly string[]).includes(m[1] as string) || !TABLE_NAME.test(m[2] as string))
    throw permanent(
      'MODEL_FAILED',
      `${where}: "${s}" is not a table reference <layer>.<table> (layers: ${LAYERS.join(', ')})`,
    );
  return { layer: m[1] as Layer, name: m[2] as string };
}

export const tableKey = (t: TableRef): string => `${t.layer}.${t.name}`;

/** Operational tables kept by the loader (`ops.<name>`). */
export const OPS = {
  ledger: { layer: 'ops', name: 'load_ledger' },
  watermarks: { layer: 'ops', name: 'watermarks' },
  audits: { layer: 'ops', name: 'audit_results' },
  runs: { layer: 'ops', name: 'model_runs' },
  datasets: { layer: 'ops', name: 'dataset_state' },
} as const satisfies Record<string, TableRef>;

/** How long the output of a run that failed its audits is kept for inspection (ops._stage_…_k<epoch s>). */
export const KEEP_STAGE_MS = 24 * 3600 * 1000;

/** The name a failed stage is kept under: its own, plus when it may be dropped. */
export function keptStageName(stage: string, now: number): string {
  return `${stage}_k${Math.ceil((now + KEEP_STAGE_MS) / 1000)}`;
}

/**
 * Whether a stage table found in `ops` at start may be dropped: a kept one once it has expired; any
 * other (a run that crashed while its stage was in the database file) at once.
 */
export function stageExpired(name: string, now: number): boolean {
  const m = /_k(\d{10,})$/.exec(name);
  return !m || Number(m[1]) * 1000 <= now;
}
