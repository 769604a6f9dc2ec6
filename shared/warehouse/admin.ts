/**
 * Warehouse admin routes for the local stack's admin endpoint (`POST /_smelter/<route>` on
 * 127.0.0.1). DuckDB lets one process open the file read-write, so while a stack runs, the CLI's
 * `query`, `refresh`, `backfill` and `status` go through these routes; otherwise they open the
 * warehouse themselves (`withWarehouse`).
 *
 *   query             {sql}                → {columns, rows}
 *   refresh           {dataset?}           → {retried, summary, skipped}
 *   backfill          {dataset, from, to}  → RunSummary
 *   warehouse-status  {}                   → WarehouseStatus
 */
import type { Config } from '../config';
import type { Logger } from '../log';
import { runningStack } from '../local/stack';
import { openWarehouse, resetWarehouses } from './open';
import type { Warehouse } from './service';
import { warehouseStatus, type WarehouseStatus } from './status';

export type AdminRoute = (body: unknown) => Promise<unknown>;
export type WarehouseRouteName = 'query' | 'refresh' | 'backfill' | 'warehouse-status';

function badRequest(message: string): Error {
  return Object.assign(new Error(message), { code: 'BAD_REQUEST', kind: 'permanent' });
}

const str = (body: unknown, key: string): string | undefined => {
  const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`"${key}" must be a string`);
  return v;
};

/** Route handlers over the process's warehouse. Mount each under its name. */
export function warehouseAdminRoutes(
  getWarehouse: () => Promise<Warehouse>,
): Record<WarehouseRouteName, AdminRoute> {
  return {
    async query(body) {
      const sql = str(body, 'sql');
      if (!sql?.trim()) throw badRequest('query needs {"sql": "SELECT …"}');
      return (await getWarehouse()).query(sql);
    },
    async refresh(body) {
      const dataset = str(body, 'dataset');
      const skip = body && typeof body === 'object' ? (body as { skip?: unknown }).skip : undefined;
      if (skip !== undefined && (!Array.isArray(skip) || !skip.every((x) => typeof x === 'string')))
        throw badRequest('"skip" must be a list of object names');
      return (await getWarehouse()).refresh({
        ...(dataset ? { dataset } : {}),
        ...(skip ? { skip: skip as string[] } : {}),
        trigger: dataset ? `refresh ${dataset} (cli)` : 'refresh (cli)',
      });
    },
    async backfill(body) {
      const dataset = str(body, 'dataset');
      const from = str(body, 'from');
      const to = str(body, 'to');
      if (!dataset || !from || !to) throw badRequest('backfill needs {"dataset", "from", "to"}');
      return (await getWarehouse()).backfill({ dataset, from, to });
    },
    async 'warehouse-status'() {
      return warehouseStatus(await getWarehouse());
    },
  };
}

/** Calls a running stack's admin route (same contract as the lead's `callAdmin`). */
export async function callWarehouseAdmin<T>(
  adminUrl: string,
  route: WarehouseRouteName,
  body: unknown = {},
): Promise<T> {
  const res = await fetch(`${adminUrl}/_smelter/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as T & { error?: { code?: string; message?: string } };
  if (!res.ok) {
    const e = new Error(json.error?.message ?? `admin route ${route} failed: HTTP ${res.status}`) as Error & {
      code?: string;
    };
    if (json.error?.code) e.code = json.error.code;
    throw e;
  }
  return json;
}

/**
 * Runs a warehouse operation where it can run: through the running stack's admin route (local
 * backend, stack up), else on a warehouse opened by this process (closed afterwards so the DuckDB
 * file is released).
 */
export async function withWarehouse<T>(
  cfg: Config,
  log: Logger,
  route: WarehouseRouteName,
  body: unknown,
  direct: (wh: Warehouse) => Promise<T>,
): Promise<T> {
  if (cfg.backend === 'local') {
    const stack = runningStack(cfg.home);
    if (stack?.admin) return callWarehouseAdmin<T>(stack.admin, route, body);
  }
  const wh = await openWarehouse(cfg, log);
  try {
    return await direct(wh);
  } finally {
    if (cfg.backend === 'local') {
      /* eslint-disable @typescript-eslint/no-require-imports -- loaded lazily: not needed on gcp */
      const { getLocalWarehouse } =
        require('../adapters/warehouse/duckdb-local') as typeof import('../adapters/warehouse/duckdb-local');
      /* eslint-enable @typescript-eslint/no-require-imports */
      await (await getLocalWarehouse(cfg.home)).close();
      resetWarehouses();
    }
  }
}

/**
 * The warehouse section of `smelter status` (for the `statusProviders` of cli/commands/status.ts):
 * through the running stack's admin route, else opening the warehouse in this process.
 */
export async function warehouseStatusSection(
  cfg: Config,
  log: Logger,
  ctx: { adminUrl?: string } = {},
): Promise<WarehouseStatus> {
  if (ctx.adminUrl) return callWarehouseAdmin<WarehouseStatus>(ctx.adminUrl, 'warehouse-status');
  return withWarehouse(cfg, log, 'warehouse-status', {}, (wh) => warehouseStatus(wh));
}
