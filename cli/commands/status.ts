import path from 'node:path';
import { runtime } from '../../shared/composition/runtime';
import type { Config } from '../../shared/config';
import { createDashboard } from '../../shared/composition/dashboard';
import { listDatasets, loadDatasetContract } from '../../shared/contracts/dataset';
import { sensitiveColumnsOf } from '../../shared/governance/sensitivity';
import { PANELS } from '../../shared/dashboard/charts';
import type { PanelAnswer } from '../../shared/dashboard/service';
import { formatOverview } from '../../shared/dashboard/summary';
import type { BronzeManifest } from '../../shared/ingest/bronze';
import { listParked } from '../../shared/local/delivery';
import { runningStack, type StackInfo } from '../../shared/local/stack';
import { readObjectJson, type ObjectStore } from '../../shared/storage/object-store';
import type { Command } from '../command';
import { cliEnv } from '../env';
import { EventContractRegistry } from '../../shared/events/contract';
import { sensitiveFields } from '../../shared/events/privacy';
import { callAdmin } from '../local/admin';
import { formatPullStatus, pullStatus } from '../../shared/pull/status';
import { ReplayLedger } from '../../shared/replay/ledger';
import { warehouseStatusSection } from '../local/warehouse';

/**
 * Declared personal-data columns per dataset, then fields per event type (`event:<type>`, nested
 * fields by path); contracts that fail to load are skipped here.
 */
function personalData(cfg: Config): ReturnType<typeof sensitiveColumnsOf> {
  const out = sensitiveColumnsOf(
    listDatasets(cfg.contractsDir).flatMap((d) => {
      try {
        return [loadDatasetContract(cfg.contractsDir, d)];
      } catch {
        return [];
      }
    }),
  );
  for (const c of new EventContractRegistry(cfg.contractsDir).all()) {
    const fields = sensitiveFields(c).map((f) => ({ column: f.path, class: f.class, policy: f.policy }));
    if (fields.length) out[`event:${c.event_type}`] = fields;
  }
  return out;
}

/** Sections of `smelter status` beyond the core ones (each fails alone): name → provider. */
export const statusProviders: { name: string; get: (ctx: { adminUrl?: string }) => Promise<unknown> }[] = [
  { name: 'personalData', get: () => Promise.resolve(personalData(cliEnv().cfg)) },
  {
    name: 'warehouse',
    get: ({ adminUrl }) => warehouseStatusSection(adminUrl ? { adminUrl } : {}),
  },
  {
    // API sources: schedule and last run (a 401 shows here with the source, endpoint and status).
    name: 'pulls',
    get: () => {
      const { cfg, store } = runtime();
      return pullStatus(store, {
        contractsDir: cfg.contractsDir,
        stateBucket: cfg.bronzeBucket,
      });
    },
  },
  {
    // What the replay ledger says was replayed (dead letters; quarantined sources per dataset).
    name: 'replayed',
    get: async () => {
      const { cfg } = cliEnv();
      const ledger = new ReplayLedger(runtime().store, cfg.quarantineBucket);
      const quarantine: Record<string, number> = {};
      for (const d of listDatasets(cfg.contractsDir)) {
        const n = await ledger.count('quarantine', d);
        if (n) quarantine[d] = n;
      }
      return { deadLetters: await ledger.count('dead-letters'), quarantine };
    },
  },
];

const OVERVIEW = PANELS.filter((p) => p.page === 'overview');

/**
 * The overview's panels, answered where the warehouse is: by the running stack's dashboard (it owns
 * the DuckDB file), else by a dashboard service in this process (DuckDB read-only, or BigQuery).
 */
async function overview(cfg: Config, stack: StackInfo | undefined): Promise<PanelAnswer[]> {
  if (stack?.dashboard) {
    const base = stack.dashboard;
    return Promise.all(
      OVERVIEW.map(async (p) => {
        const res = await fetch(`${base}/api/charts/${p.id}`);
        return (await res.json()) as PanelAnswer;
      }),
    );
  }
  const { service, close } = await createDashboard(cfg);
  try {
    const out: PanelAnswer[] = [];
    for (const p of OVERVIEW) out.push(await service.answer(p.id));
    return out;
  } finally {
    await close();
  }
}

// ------------------------------------------------------------------ full detail (--json)

async function bucketStats(
  cfg: Config,
  store: ObjectStore,
): Promise<Record<string, { objects: number; bytes: number }>> {
  const buckets: Record<string, { objects: number; bytes: number }> = {};
  for (const b of [cfg.rawBucket, cfg.bronzeBucket, cfg.quarantineBucket, cfg.archiveBucket]) {
    const s = { objects: 0, bytes: 0 };
    for await (const m of store.list(b)) {
      s.objects++;
      s.bytes += m.size;
    }
    buckets[b] = s;
  }
  return buckets;
}

async function bronzeDetail(cfg: Config, store: ObjectStore): Promise<unknown> {
  const manifests: BronzeManifest[] = [];
  for await (const m of store.list(cfg.bronzeBucket)) {
    if (!m.name.endsWith('.manifest.json')) continue;
    const man = await readObjectJson<BronzeManifest>(store, cfg.bronzeBucket, m.name);
    if (man) manifests.push(man);
  }
  manifests.sort((a, b) => b.ingestedAt.localeCompare(a.ingestedAt));
  const datasets: Record<string, { files: number; rows: number; rejected: number; last?: string }> = {};
  for (const m of manifests) {
    const d = (datasets[m.dataset] ??= { files: 0, rows: 0, rejected: 0 });
    d.files++;
    d.rows += m.rows;
    d.rejected += m.rejected;
    d.last ??= m.ingestedAt;
  }
  return {
    datasets,
    recent: manifests.slice(0, 10).map((m) => ({
      source: m.source.uri,
      output: m.output.uri,
      rows: m.rows,
      rejected: m.rejected,
      ingestedAt: m.ingestedAt,
      durationMs: m.durationMs,
    })),
  };
}

async function quarantineDetail(cfg: Config, store: ObjectStore): Promise<unknown> {
  const failedFiles: { object: string; code: string; message: string }[] = [];
  let rejectFiles = 0;
  for await (const m of store.list(cfg.quarantineBucket)) {
    if (m.name.endsWith('.rejects.ndjson')) rejectFiles++;
    if (m.name.startsWith('_failed/') && m.name.endsWith('/error.json')) {
      const e = await readObjectJson<{ source: { uri: string }; error: { code: string; message: string } }>(
        store,
        cfg.quarantineBucket,
        m.name,
      );
      if (e) failedFiles.push({ object: e.source.uri, code: e.error.code, message: e.error.message });
    }
  }
  return { rejectFiles, failedFiles };
}

async function extraSections(
  stack: StackInfo | undefined,
  only?: (name: string) => boolean,
): Promise<Record<string, unknown>> {
  const extra: Record<string, unknown> = {};
  for (const p of statusProviders.filter((x) => !only || only(x.name))) {
    try {
      extra[p.name] = await p.get({ ...(stack?.admin ? { adminUrl: stack.admin } : {}) });
    } catch (e) {
      extra[p.name] = { error: (e as Error).message };
    }
  }
  return extra;
}

async function stackDetail(stack: StackInfo | undefined): Promise<unknown> {
  if (!stack) return null;
  const live = stack.admin ? await callAdmin(stack.admin, 'status').catch(() => undefined) : undefined;
  return {
    pid: stack.pid,
    startedAt: stack.startedAt,
    endpoints: stack.endpoints,
    admin: stack.admin,
    dashboard: stack.dashboard,
    pubsub: stack.pubsub,
    live,
  };
}

async function detail(cfg: Config, stack: StackInfo | undefined, answers: PanelAnswer[]): Promise<unknown> {
  const { store } = runtime();
  return {
    home: cfg.home,
    stack: await stackDetail(stack),
    buckets: await bucketStats(cfg, store),
    bronze: await bronzeDetail(cfg, store),
    quarantine: await quarantineDetail(cfg, store),
    parked: listParked(path.join(cfg.home, 'state', 'eventarc')).map((p) => ({
      id: p.event.id,
      subject: p.event.subject,
      target: p.target,
      attempts: p.attempts,
      lastError: p.lastError,
      parkedAt: p.parkedAt,
    })),
    overview: Object.fromEntries(answers.map((a) => [a.id, a.error ? { error: a.error } : a.rows])),
    ...(await extraSections(stack)),
  };
}

// ------------------------------------------------------------------ the readable summary

function header(cfg: Config, stack: StackInfo | undefined): string[] {
  const out = [`Smelter — ${cfg.backend === 'gcp' ? `project ${cfg.project}` : cfg.home}`];
  if (!stack) {
    out.push(cfg.backend === 'local' ? 'Stack: not running (npm start)' : 'Backend: gcp');
    return out;
  }
  out.push(`Stack: running (pid ${stack.pid}, since ${stack.startedAt})`);
  for (const [fn, url] of Object.entries(stack.endpoints)) out.push(`  ${fn.padEnd(14)} ${url}`);
  if (stack.dashboard) out.push(`  ${'dashboard'.padEnd(14)} ${stack.dashboard}`);
  return out;
}

export const statusCommand: Command = {
  name: 'status',
  summary:
    'Pipeline health like the dashboard overview: files, loads, events, dead letters, quarantine, audits',
  usage: 'status [--json]   (--json: the full detail — buckets, recent conversions, warehouse tables, …)',
  async run({ flags, out }) {
    const { cfg } = cliEnv();
    const stack = cfg.backend === 'local' ? runningStack(cfg.home) : undefined;
    const answers = await overview(cfg, stack);
    if (flags.json) {
      out(JSON.stringify(await detail(cfg, stack, answers), null, 2));
      return 0;
    }
    for (const l of header(cfg, stack)) out(l);
    // (pulled sources have their own lines below, from the pull subsystem)
    for (const l of formatOverview(answers.filter((a) => a.id !== 'overview.pulls'))) out(l);
    const pulls = await pullStatus(runtime().store, {
      contractsDir: cfg.contractsDir,
      stateBucket: cfg.bronzeBucket,
    }).catch(() => ({}));
    for (const l of formatPullStatus(pulls)) out(l);
    // Other subsystems' sections, one line each (the warehouse's tables are in --json and the panels above).
    for (const [name, v] of Object.entries(
      await extraSections(stack, (n) => n !== 'warehouse' && n !== 'pulls' && n !== 'personalData'),
    ))
      out(`${name[0]?.toUpperCase()}${name.slice(1)}: ${JSON.stringify(v)}`);
    const pii = personalData(cfg);
    if (Object.keys(pii).length) {
      out(
        'Personal data (contract-declared; drop = never stored, hash = keyed HMAC, mask = masked for analysts):',
      );
      for (const [ds, cols] of Object.entries(pii))
        out(`  ${ds}: ${cols.map((c) => `${c.column} (${c.class}, ${c.policy})`).join(', ')}`);
    }
    out('Full detail: smelter status --json    Charts: smelter dashboard');
    return 0;
  },
};
