import fs from 'node:fs';
import path from 'node:path';
import { startDemoApi, type DemoApi } from '../../shared/local/demo-api';
import { runningStack } from '../../shared/local/stack';
import { loadSourceContract, sourceEnv } from '../../shared/pull/contract';
import type { Config } from '../../shared/config';
import type { Command } from '../command';
import { cliEnv } from '../env';
import { bringInSamples } from '../local/samples';
import { startLocalStack } from '../local/stack';
import { demoApiFile } from './pull';

export const upCommand: Command = {
  name: 'up',
  summary: 'Run every function locally with its triggers (buckets, Pub/Sub, schedule) — `npm start`',
  usage: 'up [--no-sample] [--no-demo-api]',
  async run({ flags, out }) {
    const { cfg, log } = cliEnv();
    const other = runningStack(cfg.home);
    if (other) throw new Error(`a stack is already running for ${cfg.home} (pid ${other.pid})`);
    // The demo API stands in for the bundled sources' real APIs (offline, deterministic) unless their
    // URLs are set; the functions read SMELTER_SOURCE_<NAME>_URL/_TOKEN at each pull.
    let demo: DemoApi | undefined;
    // Only what this command set (the demo's URL and public demo token), never a user's own secret.
    const demoEnv: Record<string, string> = {};
    if (!flags['no-demo-api']) {
      const networkDataset = demoNetworkDataset(cfg);
      const opts = networkDataset ? { networkDataset } : {};
      demo = await startDemoApi({ ...opts, port: cfg.port + 11 }).catch(() => startDemoApi(opts));
      const set = (k: string, v: string): void => {
        if (process.env[k]) return;
        process.env[k] = v;
        demoEnv[k] = v;
      };
      set(sourceEnv('store').url, demo.url);
      set(sourceEnv('network').url, demo.url);
      set(sourceEnv('network').token, demo.token);
    }
    const demoFile = demoApiFile(cfg.home);
    const stack = await startLocalStack({
      cfg,
      log,
      pubsub: true,
      scheduler: true,
      pullAtStart: !flags['no-sample'],
      register: true,
      dashboard: true,
    }).catch(async (e: unknown) => {
      await demo?.close();
      throw e;
    });
    const raw = stack.ctx.store.bucketDir(cfg.rawBucket);
    out('');
    out('Smelter is up (local backend).');
    for (const [fn, url] of Object.entries(stack.ctx.endpoints)) out(`  ${fn.padEnd(14)} ${url}`);
    out(`  admin          ${stack.adminUrl}`);
    if (stack.dashboardUrl) out(`  dashboard      ${stack.dashboardUrl}`);
    if (demo) {
      out(`  demo API       ${demo.url}  (sources store, network: contracts/sources/*.json)`);
      // `smelter pull` in another terminal pulls from the same demo API while this stack runs.
      fs.writeFileSync(demoFile, JSON.stringify({ pid: process.pid, env: demoEnv }, null, 2), {
        mode: 0o600,
      });
    }
    if (stack.ctx.pubsub)
      out(
        `  pubsub         ${stack.ctx.pubsub.mode}${stack.ctx.pubsub.emulatorHost ? ` (PUBSUB_EMULATOR_HOST=${stack.ctx.pubsub.emulatorHost})` : ''}`,
      );
    out('');
    out(`Drop files into ${raw}${path.sep}<dataset>${path.sep}  (datasets: contracts/datasets/*.json)`);
    out(`Bronze Parquet appears in ${stack.ctx.store.bucketDir(cfg.bronzeBucket)}`);
    out('Try: npx smelter drop my.csv --dataset rainfall --wait    npx smelter status    Ctrl-C to stop');
    out(
      '     npx smelter pull store --wait    npx smelter pull network --from 2026-11-01 --to 2026-11-07 --wait',
    );
    out('');
    if (!flags['no-sample']) for (const s of await bringInSamples(stack.ctx)) out(`Sample: ${s}`);
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    out('\nstopping…');
    await stack.stop();
    fs.rmSync(demoFile, { force: true });
    await demo?.close();
    return 0;
  },
};

/**
 * The data.gov.gr dataset the network source's contract queries, so the demo API answers the path the
 * contract (perhaps edited by the user) asks for; undefined leaves the demo's default.
 */
function demoNetworkDataset(cfg: Config): string | undefined {
  try {
    const paths = loadSourceContract(cfg.contractsDir, 'network').endpoints.map((e) => e.path);
    for (const p of paths) {
      const m = /^\/api\/v1\/query\/([^/?]+)\/?$/.exec(p);
      if (m?.[1]) return m[1];
    }
  } catch {
    /* no or broken network contract: `smelter pull network` reports it */
  }
  return undefined;
}
