/**
 * `smelter replay`: after a contract fix, send what was parked through the chain again.
 *   replay dead-letters [--reason R[,R2]] [--type T] [--since TIME] [--dry-run] [--wait] [--json]
 *   replay quarantine --dataset D [--dry-run] [--json]
 * Local and GCP backends alike (the dead letters come from the warehouse's dead-letter table; the
 * replayed messages go to the events topic; quarantined files are copied back into the raw bucket).
 * The ledger of what was replayed lives in the quarantine bucket (`_replayed/`): replaying twice adds
 * nothing, and `smelter status` counts it.
 */
import { loadDatasetContract } from '../../shared/contracts/dataset';
import type { Config } from '../../shared/config';
import type { LandedQuery } from '../../shared/local/pubsub/landed';
import {
  parseDeadLetterFilter,
  replayDeadLetters,
  type DeadLetterReplayResult,
  type StoredDeadLetter,
} from '../../shared/replay/dead-letters';
import { ReplayLedger } from '../../shared/replay/ledger';
import { replayQuarantine } from '../../shared/replay/quarantine';
import { bronzeNames } from '../../shared/ingest/bronze';
import { runningStack } from '../../shared/local/stack';
import { runtime } from '../../shared/composition/runtime';
import { flagString, type Command, type CommandContext } from '../command';
import { cliEnv } from '../env';
import { startLocalStack } from '../local/stack';
import { withWarehouse } from '../local/warehouse';
import { openTarget, printLanded, waitLanded } from './publish';

const USAGE =
  'replay dead-letters [--reason R[,R2]] [--type T] [--since TIME] [--dry-run] [--wait] [--json] | ' +
  'replay quarantine --dataset D [--dry-run] [--wait] [--json]';

const rowsToObjects = (res: { columns: string[]; rows: unknown[][] }): Record<string, unknown>[] =>
  res.rows.map((r) => Object.fromEntries(res.columns.map((c, i) => [c, r[i] ?? null])));

async function deadLetters({ flags, out, err }: CommandContext, cfg: Config): Promise<number> {
  const { log, store } = runtime();
  const filter = parseDeadLetterFilter({
    reason: flagString(flags, 'reason'),
    type: flagString(flags, 'type'),
    since: flagString(flags, 'since'),
  });
  const dryRun = Boolean(flags['dry-run']);
  const ledger = new ReplayLedger(store, cfg.quarantineBucket);
  await store.ensureBucket(cfg.quarantineBucket);
  const query = async (sql: string): Promise<StoredDeadLetter[]> =>
    rowsToObjects(
      await withWarehouse('query', { sql }, (wh) => wh.query(sql)),
    ) as unknown as StoredDeadLetter[];
  const target = dryRun ? undefined : await openTarget(cfg, log, cfg.eventsTopic, err);
  const t0 = new Date();
  let res: DeadLetterReplayResult;
  let code = 0;
  try {
    res = await replayDeadLetters(
      {
        query,
        ledger,
        publish: async (batch) => {
          if (!target) return [];
          return target.publish(
            cfg.eventsTopic,
            batch.map((m) => ({ data: m.data, attributes: m.attributes, eventId: m.eventId })),
          );
        },
      },
      filter,
      { dryRun },
    );
    if (target?.settle) await target.settle(res.messageIds.length, 60_000);
    let landed: unknown;
    if (flags.wait && target?.landed && res.messageIds.length) {
      const q: LandedQuery = { messageIds: res.messageIds, eventIds: res.eventIds, since: t0.toISOString() };
      const { report, waitedMs } = await waitLanded(target, q, 60_000);
      landed = { ...report, waitedMs };
      if (report.pending) code = 1;
      if (!flags.json) printLanded(out, report, waitedMs);
    }
    const { messageIds: _ids, eventIds: _e, ...summary } = res;
    if (flags.json) {
      out(JSON.stringify({ ...summary, ...(landed ? { landed } : {}) }));
      return code;
    }
    const by = (o: Record<string, number>): string =>
      Object.entries(o)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none';
    out(
      `${dryRun ? 'Would replay' : 'Replayed'} ${res.replayed} of ${res.matched} matching dead letter(s) to ${cfg.eventsTopic}${
        target ? ` via ${target.describe}` : ''
      }`,
    );
    out(`  by reason: ${by(res.byReason)}`);
    out(`  by type:   ${by(res.byType)}`);
    out(`  already replayed (skipped): ${res.alreadyReplayed}`);
    if (res.unreplayable.length)
      out(`  cannot be replayed: ${res.unreplayable.length} (${res.unreplayable[0]?.reason ?? ''})`);
    return code;
  } finally {
    await target?.close();
  }
}

/** Waits until each replayed raw object has a Bronze manifest or a quarantine record (local stack). */
async function waitConverted(cfg: Config, names: string[], timeoutMs: number): Promise<number> {
  const { store } = runtime();
  const started = Date.now();
  let pending = [...names];
  while (pending.length && Date.now() - started < timeoutMs) {
    const still: string[] = [];
    for (const name of pending) {
      const meta = await store.stat(cfg.rawBucket, name);
      const n = meta ? bronzeNames({ bucket: cfg.rawBucket, name, generation: meta.generation }) : undefined;
      const done =
        n &&
        ((await store.stat(cfg.bronzeBucket, n.manifest)) ||
          (await store.stat(cfg.quarantineBucket, `${n.failed}/error.json`)));
      if (!done) still.push(name);
    }
    pending = still;
    if (pending.length) await new Promise((r) => setTimeout(r, 200));
  }
  return pending.length;
}

async function quarantine({ flags, out }: CommandContext, cfg: Config): Promise<number> {
  const { store, log } = runtime();
  const dataset = flagString(flags, 'dataset');
  if (!dataset) throw new Error(`usage: ${USAGE}`);
  // Refuses an unknown dataset or a broken contract before anything is copied.
  const contract = loadDatasetContract(cfg.contractsDir, dataset);
  const ledger = new ReplayLedger(store, cfg.quarantineBucket);
  await store.ensureBucket(cfg.quarantineBucket);
  await store.ensureBucket(cfg.rawBucket);
  const wait = Boolean(flags.wait) && !flags['dry-run'];
  // Without a running stack, --wait runs the chain in this process, as `drop --wait` does.
  const local =
    wait && cfg.backend === 'local' && !runningStack(cfg.home)
      ? await startLocalStack({ cfg, log: log.child({}), ephemeral: true, pollMs: 200 })
      : undefined;
  let res;
  try {
    res = await replayQuarantine(
      {
        store,
        ledger,
        buckets: { quarantine: cfg.quarantineBucket, bronze: cfg.bronzeBucket, raw: cfg.rawBucket },
        primaryKey: () => Promise.resolve(contract.primaryKey ?? []),
      },
      dataset,
      { dryRun: Boolean(flags['dry-run']) },
    );
    if (wait) {
      const replayed = res.items.flatMap((i) =>
        i.replayedAs && !i.skipped ? [i.replayedAs.slice(`gs://${cfg.rawBucket}/`.length)] : [],
      );
      const left = await waitConverted(cfg, replayed, 120_000);
      if (local) await local.triggers.idle();
      if (left)
        throw new Error(`${left} replayed file(s) were not converted within 120 s; see \`smelter status\``);
    }
  } finally {
    if (local) await local.stop();
  }
  if (flags.json) {
    out(JSON.stringify(res));
    return 0;
  }
  out(
    `${res.dryRun ? 'Would replay' : 'Replayed'} ${res.replayed} quarantined source(s) of ${dataset} into ${cfg.rawBucket} ` +
      `(found ${res.found}, already replayed ${res.alreadyReplayed}, skipped ${res.skipped})`,
  );
  for (const i of res.items)
    out(
      `  ${i.kind === 'file' ? 'file' : 'rows'}  ${i.source}  ${i.reason}  → ${i.replayedAs ?? i.skipped ?? ''}`,
    );
  if (!res.dryRun && res.replayed)
    out('  Each copy runs the chain again (rawToBronze → loadWarehouse); see `smelter status`.');
  return 0;
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'After a contract fix: re-publish dead letters, or re-run quarantined files and rows',
  usage: USAGE,
  async run(ctx) {
    const { cfg } = cliEnv();
    const what = ctx.args[0];
    if (what === 'dead-letters') return deadLetters(ctx, cfg);
    if (what === 'quarantine') return quarantine(ctx, cfg);
    throw new Error(`usage: ${USAGE}`);
  },
};
