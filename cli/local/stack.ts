/**
 * Composition of the local stack: the functions of the manifest served by functions-framework, the
 * storage-trigger (Eventarc) stand-in, local Pub/Sub, the refresh scheduler and the admin endpoint.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FsObjectStore } from '../../shared/adapters/storage/fs';
import { runtime } from '../../shared/composition/runtime';
import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { bucketName, FUNCTIONS, type BucketRef } from '../../shared/manifest';
import {
  Stack,
  stackInfoFile,
  type StackContext,
  type StackInfo,
  type StackPart,
} from '../../shared/local/stack';
import { StorageTriggers } from '../../shared/local/storage-triggers';
import { selfRef } from '../../shared/local/process';
import { TempSweeper } from '../../shared/local/temp-sweep';
import { AdminServer } from './admin';
import { pubsubPart } from '../../shared/local/pubsub/part';
import { pubsubAdminRoutes } from '../../shared/local/pubsub/admin';
import { pullSchedulerPart } from '../../shared/local/pull-scheduler';
import { schedulerPart } from '../../shared/local/scheduler';
import { warehouseAdminRoutes } from './warehouse';
import { DuckDbDialect } from '../../shared/warehouse/dialect';
import { createDashboard } from '../../shared/composition/dashboard';
import { dashboardHandler } from '../../shared/dashboard/http';
import { dashboardPort, serveDashboard, type ServedDashboard } from './dashboard';

class FunctionsPart implements StackPart {
  readonly name = 'functions';
  private servers: http.Server[] = [];
  constructor(private readonly ephemeral: boolean) {}

  async start(ctx: StackContext): Promise<void> {
    // Registers every entry point with functions-framework (side effect of the module).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../../functions/index');
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    for (const [i, fn] of FUNCTIONS.entries()) {
      // The stack serves the dashboard itself (SMELTER_PORT + 10), over the warehouse this process owns.
      if (fn.entryPoint === 'dashboard') continue;
      const server = getTestServer(fn.entryPoint);
      server.keepAliveTimeout = 65_000;
      const port = this.ephemeral ? 0 : ctx.cfg.port + i;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) =>
          reject(
            e.code === 'EADDRINUSE'
              ? new Error(`port ${port} is in use (set SMELTER_PORT to another first port)`)
              : e,
          ),
        );
        server.listen(port, '127.0.0.1', () => resolve());
      });
      ctx.endpoints[fn.entryPoint] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      this.servers.push(server);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((r) => {
            s.closeAllConnections();
            s.close(() => r());
          }),
      ),
    );
    this.servers = [];
  }
}

export interface LocalStackOptions {
  cfg: Config;
  log: Logger;
  /** Ephemeral ports (tests, `drop --wait` without a running stack) instead of SMELTER_PORT onwards. */
  ephemeral?: boolean;
  pubsub?: boolean;
  scheduler?: boolean;
  /** With the scheduler: also pull every API source once at start (`smelter up`). */
  pullAtStart?: boolean;
  /** Serve the dashboard (on SMELTER_PORT + 10, or an ephemeral port). */
  dashboard?: boolean;
  /** Record the stack in <home>/state/stack.json so other CLI processes find it. */
  register?: boolean;
  pollMs?: number;
  /**
   * Awaited before the storage triggers start: `drop --wait` writes its object meanwhile, so the
   * triggers' first scan finds it complete (with its sidecar) and delivers it at once.
   */
  beforeTriggers?: () => Promise<unknown>;
}

export interface LocalStack {
  ctx: StackContext;
  triggers: StorageTriggers;
  admin: AdminServer;
  adminUrl: string;
  dashboardUrl?: string;
  stop(): Promise<void>;
}

/** Extension points filled in by other subsystems (Pub/Sub, scheduler, warehouse admin routes). */
export const stackExtensions: {
  parts: ((opts: LocalStackOptions) => StackPart | undefined)[];
  adminRoutes: ((admin: AdminServer, ctx: StackContext) => void)[];
} = { parts: [], adminRoutes: [] };

/** The stack's parts in start order (they stop in reverse). */
function stackParts(opts: LocalStackOptions, triggers: StorageTriggers): StackPart[] {
  const { cfg } = opts;
  const parts: StackPart[] = [new TempSweeper(), new FunctionsPart(opts.ephemeral ?? false)];
  // Pub/Sub subscribes the served functions, so it starts after them; the scheduler publishes on it.
  if (opts.pubsub) parts.push(pubsubPart({ delivery: cfg.pubsubDelivery }));
  if (opts.pubsub && opts.scheduler) parts.push(schedulerPart());
  for (const make of stackExtensions.parts) {
    const p = make(opts);
    if (p) parts.push(p);
  }
  const before = opts.beforeTriggers;
  if (before)
    parts.push({ name: 'before-triggers', start: async () => void (await before()), stop: async () => {} });
  parts.push(triggers);
  // Each API source on its cron schedule; last, so a pull at start finds every trigger in place.
  if (opts.pubsub && opts.scheduler) parts.push(pullSchedulerPart({ immediate: opts.pullAtStart ?? false }));
  return parts;
}

/** The admin endpoint's routes: status, idle, Pub/Sub, warehouse and any extension's. */
function addAdminRoutes(admin: AdminServer, ctx: StackContext, triggers: StorageTriggers): void {
  admin.route('status', async () => {
    const sections: Record<string, unknown> = {};
    for (const [name, get] of ctx.statusSections)
      sections[name] = await get().catch((e: Error) => ({ error: e.message }));
    return { endpoints: ctx.endpoints, deliveries: triggers.stats(), ...sections };
  });
  admin.route('idle', async () => {
    await triggers.idle();
    return { idle: true };
  });
  for (const [name, handler] of Object.entries(pubsubAdminRoutes(ctx))) admin.route(name, handler);
  for (const [name, route] of Object.entries(warehouseAdminRoutes(() => runtime().get('warehouse'))))
    admin.route(name, route);
  for (const add of stackExtensions.adminRoutes) add(admin, ctx);
}

/** The stack's own warehouse: this process holds the DuckDB file, so the dashboard reads through it. */
async function startDashboard(cfg: Config, ephemeral: boolean): Promise<ServedDashboard> {
  const { service } = await createDashboard(cfg, {
    warehouse: {
      dialect: new DuckDbDialect(),
      query: async (sql, params) => (await runtime().get('warehouse')).engine.query(sql, params),
    },
  });
  return serveDashboard(dashboardHandler(service), ephemeral ? 0 : dashboardPort(cfg.port));
}

/** Records the stack in <home>/state/stack.json so other CLI processes find it. */
function registerStack(
  infoFile: string,
  ctx: StackContext,
  urls: { admin: string; dashboard: string | undefined },
  now: Date,
): void {
  const { start } = selfRef();
  const info: StackInfo = {
    pid: process.pid,
    ...(start ? { pidStart: start } : {}),
    startedAt: now.toISOString(),
    endpoints: ctx.endpoints,
    admin: urls.admin,
    ...(urls.dashboard ? { dashboard: urls.dashboard } : {}),
    ...(ctx.pubsub
      ? {
          pubsub: {
            mode: ctx.pubsub.mode,
            ...(ctx.pubsub.emulatorHost ? { emulatorHost: ctx.pubsub.emulatorHost } : {}),
          },
        }
      : {}),
  };
  fs.mkdirSync(path.dirname(infoFile), { recursive: true });
  fs.writeFileSync(infoFile, JSON.stringify(info, null, 2));
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const { cfg, log } = opts;
  // The functions served in this process use the process runtime: the stack watches the same buckets.
  const store = runtime().store;
  if (!(store instanceof FsObjectStore)) throw new Error('the local stack needs SMELTER_BACKEND=local');
  for (const ref of ['raw', 'bronze', 'quarantine', 'archive'] as BucketRef[])
    await store.ensureBucket(bucketName(cfg, ref));
  const ctx: StackContext = { cfg, log, store, endpoints: {}, statusSections: new Map() };
  const triggers = new StorageTriggers({ ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) });
  const stack = new Stack(ctx, stackParts(opts, triggers));
  const admin = new AdminServer();
  let adminUrl = '';
  let dashboard: ServedDashboard | undefined;
  try {
    await stack.start();
    addAdminRoutes(admin, ctx, triggers);
    adminUrl = await admin.listen(opts.ephemeral ? 0 : cfg.port + 9);
    if (opts.dashboard) dashboard = await startDashboard(cfg, opts.ephemeral ?? false);
  } catch (err) {
    await dashboard?.close();
    await stack.stop();
    await admin.close();
    throw err;
  }
  const infoFile = stackInfoFile(cfg.home);
  if (opts.register) registerStack(infoFile, ctx, { admin: adminUrl, dashboard: dashboard?.url }, new Date());
  return {
    ctx,
    triggers,
    admin,
    adminUrl,
    ...(dashboard ? { dashboardUrl: dashboard.url } : {}),
    async stop() {
      if (opts.register) fs.rmSync(infoFile, { force: true });
      await dashboard?.close();
      await admin.close();
      await stack.stop();
    },
  };
}
