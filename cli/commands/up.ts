import path from 'node:path';
import { runningStack } from '../../shared/local/stack';
import type { Command } from '../command';
import { cliEnv } from '../env';
import { bringInSamples } from '../local/samples';
import { startLocalStack } from '../local/stack';

export const upCommand: Command = {
  name: 'up',
  summary: 'Run every function locally with its triggers (buckets, Pub/Sub, schedule) — `npm start`',
  usage: 'up [--no-sample]',
  async run({ flags, out }) {
    const { cfg, log } = cliEnv();
    const other = runningStack(cfg.home);
    if (other) throw new Error(`a stack is already running for ${cfg.home} (pid ${other.pid})`);
    const stack = await startLocalStack({
      cfg,
      log,
      pubsub: true,
      scheduler: true,
      register: true,
      dashboard: true,
    });
    const raw = stack.ctx.store.bucketDir(cfg.rawBucket);
    out('');
    out('Smelter is up (local backend).');
    for (const [fn, url] of Object.entries(stack.ctx.endpoints)) out(`  ${fn.padEnd(14)} ${url}`);
    out(`  admin          ${stack.adminUrl}`);
    if (stack.dashboardUrl) out(`  dashboard      ${stack.dashboardUrl}`);
    if (stack.ctx.pubsub)
      out(
        `  pubsub         ${stack.ctx.pubsub.mode}${stack.ctx.pubsub.emulatorHost ? ` (PUBSUB_EMULATOR_HOST=${stack.ctx.pubsub.emulatorHost})` : ''}`,
      );
    out('');
    out(`Drop files into ${raw}${path.sep}<dataset>${path.sep}  (datasets: contracts/datasets/*.json)`);
    out(`Bronze Parquet appears in ${stack.ctx.store.bucketDir(cfg.bronzeBucket)}`);
    out('Try: npx smelter drop my.csv --dataset rainfall --wait    npx smelter status    Ctrl-C to stop');
    out('');
    if (!flags['no-sample']) for (const s of await bringInSamples(stack.ctx)) out(`Sample: ${s}`);
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    out('\nstopping…');
    await stack.stop();
    return 0;
  },
};
