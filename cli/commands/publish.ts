/**
 * `smelter publish`: publishes events to the events topic — one JSON object, an NDJSON file, or
 * generated events — and with `--wait` reports what landed in the local warehouse.
 *
 * Where the messages go:
 * - a stack is running for SMELTER_HOME (`smelter up`): its emulator, through @google-cloud/pubsub; or,
 *   if it runs the embedded delivery, its admin route `publish`. `--wait` asks its admin route `landed`
 *   (the stack process owns the DuckDB file);
 * - SMELTER_BACKEND=gcp: the project's real topic (`--wait` is local only);
 * - PUBSUB_EMULATOR_HOST set, no stack: that emulator (whoever subscribes there consumes);
 * - otherwise: an in-process stand-in for the stack — routeEvent served by functions-framework on an
 *   ephemeral port, the emulator (or the embedded delivery) subscribed to it — which runs until every
 *   message is handled, then stops. Emulator-held messages would be lost if it stopped earlier.
 */
import fs from 'node:fs';
import type { PubsubClient } from '../../shared/adapters/pubsub/client';
import { closeRuntime, runtime } from '../../shared/composition/runtime';
import { EventGenerator, summarise, type GeneratedMessage } from '../../shared/events/generator';
import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { landedReport, type LandedQuery, type LandedReport } from '../../shared/local/pubsub/landed';
import type { SmelterPubsub } from '../../shared/local/pubsub/local-pubsub';
import { functionSpec } from '../../shared/manifest';
import { runningStack } from '../../shared/local/stack';
import { flagNumber, flagString, type Command } from '../command';
import { cliEnv } from '../env';
import { callAdmin } from '../local/admin';

/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * Loaded on demand, so other commands do not pay for them: functions-framework, routeEvent and the
 * local Pub/Sub (the runtime loads the Pub/Sub client and DuckDB's native module on first use).
 */
const lazy = {
  pubsub: (o: { emulatorHost?: string } = {}): PubsubClient => runtime().get('pubsub')(o),
  localPubsub: (): typeof import('../../shared/local/pubsub/local-pubsub') =>
    require('../../shared/local/pubsub/local-pubsub'),
  routeEvent: (): typeof import('../../functions/route-event') => require('../../functions/route-event'),
  serve: (): typeof import('../../shared/local/pubsub/serve') => require('../../shared/local/pubsub/serve'),
  ff: () => ({
    framework:
      require('@google-cloud/functions-framework') as typeof import('@google-cloud/functions-framework'),
    testing:
      require('@google-cloud/functions-framework/testing') as typeof import('@google-cloud/functions-framework/testing'),
  }),
};
/* eslint-enable @typescript-eslint/no-require-imports */

export interface OutMessage {
  data: Buffer;
  attributes: Record<string, string>;
  eventId: string | null;
  gen?: GeneratedMessage;
}

export interface Target {
  describe: string;
  publish(topic: string, batch: OutMessage[]): Promise<string[]>;
  landed?(q: LandedQuery): Promise<LandedReport>;
  /** In-process only: resolves once deliveries have settled (or the timeout passes). */
  settle?(published: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

const USAGE =
  "publish ['{json}' | --file events.ndjson | --generate N [--rate R] [--invalid P] [--duplicates P] [--seed S]] " +
  '[--topic T] [--attr k=v,k2=v2] [--wait] [--timeout SECONDS] [--json]';

type Out = (line: string) => void;
type GenSummary = ReturnType<typeof summarise>;

/** The human summary of a publish: how many, where, and (for generated events) what kinds. */
function printPublished(
  out: Out,
  o: { published: number; topic: string; target: string; publishMs: number; gen?: GenSummary; seed?: string },
): void {
  out(
    `Published ${o.published} message(s) to ${o.topic} via ${o.target} in ${(o.publishMs / 1000).toFixed(2)} s`,
  );
  const { gen, seed } = o;
  if (!gen) return;
  out(
    `  valid: ${
      Object.entries(gen.byType)
        .map(([t, n]) => `${t} ${n}`)
        .join(', ') || 'none'
    }`,
  );
  out(
    `  invalid: ${gen.invalid}${
      gen.invalid
        ? ` (${Object.entries(gen.invalidByKind)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    }`,
  );
  out(
    `  duplicates (same event_id re-published): ${gen.duplicates}${seed !== undefined ? `   seed: ${seed}` : ''}`,
  );
}

/** --wait: what landed of the published messages (since `since`); exit code 1 when some are still pending. */
async function reportLanded(
  target: Target,
  q: LandedQuery,
  o: { timeoutMs: number; json: boolean; out: Out; err: Out; result: Record<string, unknown> },
): Promise<number> {
  if (!target.landed) {
    o.err(`--wait: cannot see the warehouse of ${target.describe} from here`);
    return 1;
  }
  const { report, waitedMs } = await waitLanded(target, q, o.timeoutMs);
  o.result.landed = { ...report, waitedMs };
  if (!o.json) printLanded(o.out, report, waitedMs);
  return report.pending ? 1 : 0;
}

/** Publishes the messages, prints what was sent, waits for deliveries to settle and (--wait) to land. */
async function publishAndReport(
  target: Target,
  o: {
    topic: string;
    messages: OutMessage[];
    seed: string | undefined;
    rate: number | undefined;
    timeoutMs: number;
    json: boolean;
    wait: boolean;
    now: () => number;
  },
  { out, err }: { out: Out; err: Out },
): Promise<number> {
  const { topic, messages, seed } = o;
  const t0 = o.now();
  const ids = await publishAll(target, topic, messages, o.rate);
  const publishMs = o.now() - t0;
  const gen = messages.every((m) => m.gen)
    ? summarise(messages.map((m) => m.gen as GeneratedMessage))
    : undefined;
  const result: Record<string, unknown> = {
    topic,
    target: target.describe,
    published: ids.length,
    publishMs,
    ...(seed !== undefined ? { seed } : {}),
    ...(gen
      ? {
          byType: gen.byType,
          invalid: gen.invalid,
          invalidByKind: gen.invalidByKind,
          duplicates: gen.duplicates,
        }
      : {}),
  };
  if (!o.json)
    printPublished(out, {
      published: ids.length,
      topic,
      target: target.describe,
      publishMs,
      ...(gen ? { gen } : {}),
      ...(seed !== undefined ? { seed } : {}),
    });
  let code = 0;
  if (target.settle) await target.settle(ids.length, o.timeoutMs);
  if (o.wait) {
    const q: LandedQuery = {
      messageIds: ids,
      eventIds: messages.map((m) => m.eventId),
      since: new Date(t0).toISOString(),
    };
    code = await reportLanded(target, q, { timeoutMs: o.timeoutMs, json: o.json, out, err, result });
  }
  if (o.json) out(JSON.stringify(result));
  return code;
}

export const publishCommand: Command = {
  name: 'publish',
  summary:
    'Publish events (a JSON object, an NDJSON file or generated ones) and optionally wait for them to land',
  usage: USAGE,
  async run({ args, flags, out, err }) {
    const { cfg, log } = cliEnv();
    const topic = flagString(flags, 'topic') ?? cfg.eventsTopic;
    const attrs = parseAttrs(flagString(flags, 'attr'));
    const rate = flagNumber(flags, 'rate');
    if (rate !== undefined && rate <= 0) throw new Error('--rate must be positive (events per second)');
    const timeoutMs = (flagNumber(flags, 'timeout') ?? 60) * 1000;
    const { messages, seed } = readInput(args, flags, attrs);
    if (!messages.length) throw new Error('nothing to publish');

    const target = await openTarget(cfg, log, topic, err);
    try {
      const json = Boolean(flags.json);
      const wait = Boolean(flags.wait);
      const o = { topic, messages, seed, rate, timeoutMs, json, wait, now: Date.now };
      return await publishAndReport(target, o, { out, err });
    } finally {
      await target.close();
    }
  },
};

function parseAttrs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const kv of s.split(',')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--attr expects k=v[,k=v], got ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function eventIdOf(text: string): string | null {
  try {
    const v = JSON.parse(text) as { event_id?: unknown };
    return typeof v?.event_id === 'string' || typeof v?.event_id === 'number' ? String(v.event_id) : null;
  } catch {
    return null;
  }
}

function readInput(
  args: string[],
  flags: Record<string, string | boolean>,
  attributes: Record<string, string>,
): { messages: OutMessage[]; seed?: string } {
  const generate = flagNumber(flags, 'generate');
  const file = flagString(flags, 'file');
  const sources = [args.length > 0, file !== undefined, generate !== undefined].filter(Boolean).length;
  if (sources !== 1)
    throw new Error(`give exactly one of a JSON argument, --file or --generate\nUsage: smelter ${USAGE}`);
  if (generate !== undefined) {
    if (!Number.isInteger(generate) || generate < 1) throw new Error('--generate expects a positive integer');
    const seed = flagString(flags, 'seed') ?? String(Math.floor(Math.random() * 2 ** 31));
    const rate = (name: string): number => {
      const v = flagNumber(flags, name) ?? 0;
      if (v < 0 || v > 1) throw new Error(`--${name} expects a share between 0 and 1`);
      return v;
    };
    const g = new EventGenerator({ seed, invalidRate: rate('invalid'), duplicateRate: rate('duplicates') });
    return {
      seed,
      messages: g.take(generate).map((m) => ({
        data: m.data,
        attributes: { ...m.attributes, ...attributes },
        eventId: m.eventId,
        gen: m,
      })),
    };
  }
  if (file !== undefined) {
    const text = fs.readFileSync(file === '-' ? 0 : file);
    // Lines are published as they are, valid JSON or not: that is how dead letters are tried out.
    const lines = text.toString('latin1').split('\n');
    const messages: OutMessage[] = [];
    let start = 0;
    for (const line of lines) {
      const bytes = text.subarray(start, start + line.length);
      start += line.length + 1;
      const clean = bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes;
      if (clean.toString('utf8').trim() === '') continue;
      messages.push({
        data: Buffer.from(clean),
        attributes: { ...attributes },
        eventId: eventIdOf(clean.toString('utf8')),
      });
    }
    return { messages };
  }
  const text = args.join(' ');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('the argument is not JSON (publish invalid payloads with --file)');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the argument must be a JSON object');
  return { messages: [{ data: Buffer.from(text), attributes: { ...attributes }, eventId: eventIdOf(text) }] };
}

async function publishAll(
  target: Target,
  topic: string,
  messages: OutMessage[],
  rate: number | undefined,
): Promise<string[]> {
  const ids: string[] = [];
  const BATCH = 1000;
  if (!rate) {
    for (let i = 0; i < messages.length; i += BATCH)
      ids.push(...(await target.publish(topic, messages.slice(i, i + BATCH))));
    return ids;
  }
  // Paced: every 10 ms, publish what the rate allows so far (without waiting for acks, up to a bound).
  const start = Date.now();
  let sent = 0;
  const pending: Promise<string[]>[] = [];
  while (sent < messages.length) {
    const due = Math.min(messages.length, Math.floor(((Date.now() - start) / 1000) * rate) + 1);
    if (due > sent) {
      pending.push(target.publish(topic, messages.slice(sent, due)));
      sent = due;
    }
    const first = pending.length >= 64 ? pending.shift() : undefined;
    if (first) ids.push(...(await first));
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const p of pending) ids.push(...(await p));
  return ids;
}

export async function waitLanded(
  target: Target,
  q: LandedQuery,
  timeoutMs: number,
): Promise<{ report: LandedReport; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const report = await (target.landed as NonNullable<Target['landed']>)(q);
    if (report.pending === 0 || Date.now() - t0 > timeoutMs) return { report, waitedMs: Date.now() - t0 };
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function printLanded(out: (s: string) => void, r: LandedReport, waitedMs: number): void {
  const rows = Object.entries(r.rows);
  out(`Landed after ${(waitedMs / 1000).toFixed(2)} s:`);
  out(`  rows: ${rows.length ? rows.map(([t, n]) => `events.${t} ${n}`).join(', ') : 'none'}`);
  const reasons = Object.entries(r.reasons)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  out(`  dead letters: ${r.deadLetters}${reasons ? ` (${reasons})` : ''}`);
  out(`  duplicates dropped (event_id already stored): ${r.duplicates}`);
  if (r.pending)
    out(
      `  NOT landed yet: ${r.pending} (e.g. message ${r.pendingIds.slice(0, 5).join(', ')}) — see \`smelter status\` and the dead-letter record`,
    );
}

// ---- targets --------------------------------------------------------------------------------------

export async function openTarget(
  cfg: Config,
  log: Logger,
  topic: string,
  err: (s: string) => void,
): Promise<Target> {
  const toPubsub = (client: PubsubClient) => async (t: string, batch: OutMessage[]) =>
    // Client-side batching of 10 ms: throughput for bulk publishing.
    Promise.all(batch.map((m) => client.publish(t, m.data, m.attributes, { maxMilliseconds: 10 })));

  if (cfg.backend === 'gcp') {
    const client = lazy.pubsub();
    return {
      describe: `Pub/Sub (project ${cfg.project})`,
      publish: toPubsub(client),
      close: () => client.close(),
    };
  }
  const stack = runningStack(cfg.home);
  if (stack) {
    if (!stack.pubsub) throw new Error(`the stack running for ${cfg.home} (pid ${stack.pid}) has no Pub/Sub`);
    const admin = stack.admin;
    const landed = admin ? (q: LandedQuery) => callAdmin<LandedReport>(admin, 'landed', q) : undefined;
    if (stack.pubsub.mode === 'emulator' && stack.pubsub.emulatorHost) {
      const client = lazy.pubsub({ emulatorHost: stack.pubsub.emulatorHost });
      return {
        describe: `the stack's emulator ${stack.pubsub.emulatorHost}`,
        publish: toPubsub(client),
        ...(landed ? { landed } : {}),
        close: () => client.close(),
      };
    }
    if (!admin) throw new Error(`the stack running for ${cfg.home} has no admin endpoint`);
    return {
      describe: `the stack's embedded Pub/Sub (${admin})`,
      publish: async (t, batch) =>
        (
          await callAdmin<{ messageIds: string[] }>(admin, 'publish', {
            topic: t,
            messages: batch.map((m) => ({ data: m.data.toString('base64'), attributes: m.attributes })),
          })
        ).messageIds,
      ...(landed ? { landed } : {}),
      close: async () => undefined,
    };
  }
  const localLanded = async (q: LandedQuery): Promise<LandedReport> => {
    return landedReport(await runtime().get('localDuckDb')(), q);
  };
  const preset = process.env.PUBSUB_EMULATOR_HOST;
  if (preset) {
    const client = lazy.pubsub({ emulatorHost: preset });
    err(
      `no stack running: publishing to the emulator at PUBSUB_EMULATOR_HOST=${preset} (its subscribers consume)`,
    );
    return {
      describe: `the emulator ${preset}`,
      publish: toPubsub(client),
      landed: localLanded,
      close: () => client.close(),
    };
  }
  return inProcessTarget(cfg, log, topic, err, localLanded);
}

async function inProcessTarget(
  cfg: Config,
  log: Logger,
  topic: string,
  err: (s: string) => void,
  landed: (q: LandedQuery) => Promise<LandedReport>,
): Promise<Target> {
  if (topic !== cfg.eventsTopic)
    throw new Error(`no stack running: only the events topic (${cfg.eventsTopic}) can be served in-process`);
  err(
    'no stack running: serving routeEvent in this process until the messages are handled (start `smelter up` to keep it running)',
  );
  const ff = lazy.ff();
  if (!ff.testing.getFunction('routeEvent'))
    ff.framework.cloudEvent('routeEvent', lazy.routeEvent().routeEvent);
  const { serveRegistered } = lazy.serve();
  await runtime().store.ensureBucket(cfg.archiveBucket);
  const served = await serveRegistered('routeEvent');
  let ps: SmelterPubsub;
  try {
    ps = await lazy.localPubsub().startLocalPubsub({
      cfg,
      log: log.child({ part: 'pubsub' }),
      endpoints: { routeEvent: served.url },
      functions: [functionSpec('routeEvent')],
      // The emulator's own push loop is serial (see relay.ts): relay for throughput.
      delivery: 'relay',
    });
  } catch (e) {
    await served.close();
    throw e;
  }
  // The emulator's count comes from the dead-letter record, which outlives this run.
  const dl0 = ((await ps.status()).deadLettered as number | null) ?? 0;
  return {
    describe:
      ps.mode === 'emulator'
        ? `an in-process emulator ${ps.emulatorHost}`
        : 'the embedded in-process Pub/Sub',
    publish: (t, batch) => Promise.all(batch.map((m) => ps.publish(t, m.data, m.attributes))),
    landed,
    async settle(published, timeoutMs) {
      // Handled = answered 2xx, or dead-lettered after its attempts. Stop when nothing moves for 2 s.
      const until = Date.now() + timeoutMs;
      let last = -1;
      let stillSince = Date.now();
      while (Date.now() < until) {
        const dl = (((await ps.status()).deadLettered as number | null) ?? 0) - dl0;
        if (served.stats.ok + dl >= published && (await ps.idle(0))) return;
        const progress = served.stats.requests;
        if (progress !== last) {
          last = progress;
          stillSince = Date.now();
        } else if (Date.now() - stillSince > 2000 && (await ps.idle(0))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      err(`gave up waiting for deliveries after ${timeoutMs / 1000} s`);
    },
    async close() {
      await ps.close();
      await served.close();
      // This process owned the function and the DuckDB file: flush the router and release them.
      await closeRuntime();
    },
  };
}
