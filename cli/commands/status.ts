import { FsObjectStore } from '../../shared/adapters/storage/fs';
import type { BronzeManifest } from '../../shared/ingest/bronze';
import { listParked } from '../../shared/local/delivery';
import { runningStack } from '../../shared/local/stack';
import path from 'node:path';
import { readObjectJson } from '../../shared/storage/object-store';
import type { Command } from '../command';
import { cliEnv } from '../env';
import { callAdmin } from '../local/admin';
import { warehouseStatusSection } from '../../shared/warehouse/admin';

/** Extra sections (warehouse, Pub/Sub) registered by other subsystems: name → provider. */
export const statusProviders: { name: string; get: (ctx: { adminUrl?: string }) => Promise<unknown> }[] = [
  {
    name: 'warehouse',
    get: ({ adminUrl }) => {
      const { cfg, log } = cliEnv();
      return warehouseStatusSection(cfg, log, adminUrl ? { adminUrl } : {});
    },
  },
];

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show the stack, bucket contents, recent conversions, quarantine, parked events and the warehouse',
  usage: 'status [--json]',
  async run({ flags, out }) {
    const { cfg } = cliEnv();
    const store = new FsObjectStore(cfg.home);
    const stack = runningStack(cfg.home);
    const buckets: Record<string, { objects: number; bytes: number }> = {};
    for (const b of [cfg.rawBucket, cfg.bronzeBucket, cfg.quarantineBucket, cfg.archiveBucket]) {
      const s = { objects: 0, bytes: 0 };
      for await (const m of store.list(b)) {
        s.objects++;
        s.bytes += m.size;
      }
      buckets[b] = s;
    }
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
    const failed: { object: string; code: string; message: string }[] = [];
    let rejectFiles = 0;
    for await (const m of store.list(cfg.quarantineBucket)) {
      if (m.name.endsWith('.rejects.ndjson')) rejectFiles++;
      if (m.name.startsWith('_failed/') && m.name.endsWith('/error.json')) {
        const e = await readObjectJson<{ source: { uri: string }; error: { code: string; message: string } }>(
          store,
          cfg.quarantineBucket,
          m.name,
        );
        if (e) failed.push({ object: e.source.uri, code: e.error.code, message: e.error.message });
      }
    }
    const parked = listParked(path.join(cfg.home, 'state', 'eventarc'));
    const extra: Record<string, unknown> = {};
    for (const p of statusProviders) {
      try {
        extra[p.name] = await p.get({ ...(stack?.admin ? { adminUrl: stack.admin } : {}) });
      } catch (e) {
        extra[p.name] = { error: (e as Error).message };
      }
    }
    let live: unknown;
    if (stack?.admin) live = await callAdmin(stack.admin, 'status').catch(() => undefined);
    const report = {
      home: cfg.home,
      stack: stack
        ? {
            pid: stack.pid,
            startedAt: stack.startedAt,
            endpoints: stack.endpoints,
            admin: stack.admin,
            pubsub: stack.pubsub,
            live,
          }
        : null,
      buckets,
      bronze: {
        datasets,
        recent: manifests.slice(0, 10).map((m) => ({
          source: m.source.uri,
          output: m.output.uri,
          rows: m.rows,
          rejected: m.rejected,
          ingestedAt: m.ingestedAt,
          durationMs: m.durationMs,
        })),
      },
      quarantine: { rejectFiles, failedFiles: failed },
      parked: parked.map((p) => ({
        id: p.event.id,
        subject: p.event.subject,
        target: p.target,
        attempts: p.attempts,
        lastError: p.lastError,
        parkedAt: p.parkedAt,
      })),
      ...extra,
    };
    if (flags.json) {
      out(JSON.stringify(report, null, 2));
      return 0;
    }
    out(`SMELTER_HOME ${cfg.home}`);
    out(
      stack
        ? `stack: running (pid ${stack.pid}, since ${stack.startedAt})`
        : 'stack: not running (npm start)',
    );
    if (stack) for (const [fn, url] of Object.entries(stack.endpoints)) out(`  ${fn.padEnd(14)} ${url}`);
    out('\nbuckets:');
    for (const [b, s] of Object.entries(buckets))
      out(`  ${b.padEnd(12)} ${String(s.objects).padStart(6)} objects ${String(s.bytes).padStart(12)} bytes`);
    out('\nbronze by dataset:');
    if (!Object.keys(datasets).length) out('  (nothing converted yet)');
    for (const [d, s] of Object.entries(datasets))
      out(`  ${d.padEnd(16)} ${s.files} files, ${s.rows} rows, ${s.rejected} rejected, last ${s.last}`);
    if (manifests.length) {
      out('\nrecent conversions:');
      for (const m of manifests.slice(0, 5))
        out(
          `  ${m.ingestedAt}  ${m.source.uri} → ${m.rows} rows, ${m.rejected} rejected (${m.durationMs} ms)`,
        );
    }
    out(`\nquarantine: ${rejectFiles} reject files, ${failed.length} failed files`);
    for (const f of failed.slice(0, 10)) out(`  ${f.object}: ${f.code}: ${f.message}`);
    out(`\nparked events: ${parked.length}`);
    for (const p of parked.slice(0, 10))
      out(
        `  ${p.parkedAt} ${p.event.subject ?? p.event.id} → ${p.target} after ${p.attempts} attempts: ${p.lastError}`,
      );
    for (const [k, v] of Object.entries(extra)) {
      out(`\n${k}:`);
      out(
        JSON.stringify(v, null, 2)
          .split('\n')
          .map((l) => '  ' + l)
          .join('\n'),
      );
    }
    return 0;
  },
};
