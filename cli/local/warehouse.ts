/**
 * Warehouse routes of the local stack's admin endpoint (`POST /_smelter/<route>` on 127.0.0.1).
 * DuckDB lets one process open the file read-write, so while a stack runs, the CLI's `query`,
 * `refresh`, `backfill` and `status` go through these routes; otherwise they open the warehouse
 * themselves (`withWarehouse`).
 *
 *   query             {sql}                → {columns, rows}
 *   refresh           {dataset?}           → {retried, summary, skipped}
 *   backfill          {dataset, from, to}  → RunSummary
 *   warehouse-status  {}                   → WarehouseStatus
 */
import { ROLES, type Role } from '../../shared/governance/masking';
import { closeRuntime, runtime } from '../../shared/composition/runtime';
import { permanent } from '../../shared/errors';
import { runningStack } from '../../shared/local/stack';
import type { Warehouse } from '../../shared/warehouse/service';
import { warehouseStatus, type WarehouseStatus } from '../../shared/warehouse/status';
import { callAdmin, type AdminRoute } from './admin';

export type WarehouseRouteName = 'query' | 'refresh' | 'backfill' | 'warehouse-status';

const badRequest = (message: string): Error => permanent('BAD_REQUEST', message);

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
      const role = str(body, 'role') ?? 'owner';
      if (!(ROLES as readonly string[]).includes(role))
        throw badRequest(`"role" must be one of ${ROLES.join(', ')}`);
      return (await getWarehouse()).query(sql, { role: role as Role });
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

/**
 * Runs a warehouse operation where it can run: through the running stack's admin route (local
 * backend, stack up), else on the warehouse of this process's runtime (closed afterwards so the
 * DuckDB file is released).
 */
export async function withWarehouse<T>(
  route: WarehouseRouteName,
  body: unknown,
  direct: (wh: Warehouse) => Promise<T>,
): Promise<T> {
  const rt = runtime();
  const local = rt.cfg.backend === 'local';
  if (local) {
    const stack = runningStack(rt.cfg.home);
    if (stack?.admin) return callAdmin<T>(stack.admin, route, body);
  }
  try {
    return await direct(await rt.get('warehouse'));
  } finally {
    if (local) await closeRuntime();
  }
}

/**
 * The warehouse section of `smelter status` (for the `statusProviders` of cli/commands/status.ts):
 * through the running stack's admin route, else opening the warehouse in this process.
 */
export async function warehouseStatusSection(ctx: { adminUrl?: string } = {}): Promise<WarehouseStatus> {
  if (ctx.adminUrl) return callAdmin<WarehouseStatus>(ctx.adminUrl, 'warehouse-status');
  return withWarehouse('warehouse-status', {}, (wh) => warehouseStatus(wh));
}
