/**
 * Events benchmark (`npm run bench:events`, or `npx tsx bench/events.ts`): publishes through the local
 * Pub/Sub emulator into routeEvent served by functions-framework and measures, per function instance,
 * events/s and publish→row-visible latency, with batching on (SMELTER_BATCH_MAX_ROWS default) and off
 * (=1). Prints a table, then ONE final JSON line with the figures.
 *
 * Set-up, and why:
 * - One function instance = one child process (this file with `--instance`) serving routeEvent via
 *   functions-framework's getTestServer, as Cloud Run runs one instance per container. It owns its
 *   DuckDB file. SMELTER_BATCH_MAX_ROWS differs per child (read at cold start).
 * - Delivery: the emulator's own push loop is serial (one request at a time on a new connection, see
 *   shared/local/pubsub/relay.ts), so it cannot drive an instance at its concurrency. The bench pulls
 *   from an emulator subscription and pushes the Pub/Sub push JSON with up to 80 requests in flight
 *   (routeEvent's concurrency in the manifest) — what Pub/Sub push does on GCP. The emulator's native
 *   push is measured too, as a reference row.
 * - Throughput: N events are published first (the backlog), then delivery starts; events/s = N / time
 *   to acknowledge all of them. A no-op function measures the harness ceiling on this machine (and,
 *   paced, the harness's own latency).
 * - Latency: events are published at a fixed 1,000/s; latency = publish call → 2xx from routeEvent.
 *   routeEvent answers only after the row is committed, so that is when the row is visible; the instance
 *   checks it for a sample by querying DuckDB right after the handler returns (visibility misses are
 *   reported).
 * - Batching: the router group-commits (a flush starts as soon as none is running; what arrives
 *   meanwhile goes out together when it completes, ≤ SMELTER_BATCH_MAX_ROWS). "Off" is maxRows 1.
 * - In-process: the same router in a child process fed directly with messagePublished CloudEvents, 80
 *   in flight (no HTTP, no Pub/Sub): what one instance's own work — validation, DuckDB, archive, each
 *   event durably written before its call returns — sustains when delivery is not the bottleneck.
 *
 * Options: --events N (throughput backlog, default 20000), --seconds S (paced run, default 10),
 * --rate R (paced rate, default 1000), --quick (small run for a smoke test), --only noop,on,off,native,in-process
 * (a subset); BENCH_CPU_PROF=<dir> writes
 * V8 CPU profiles of the instances.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PubsubClient } from '../shared/adapters/pubsub/client';
import { loadConfig } from '../shared/config';
import { EventGenerator } from '../shared/events/generator';
import type { EventRouter } from '../shared/events/router';
import { discoverEmulator } from '../shared/local/pubsub/discovery';
import { EmbeddedPubsub } from '../shared/local/pubsub/embedded';
import { startEmulator, type EmulatorHandle } from '../shared/local/pubsub/emulator';
import { postPush, pushEndpoint, type PushResult } from '../shared/local/pubsub/push';
import { PushRelay } from '../shared/local/pubsub/relay';
import { functionSpec } from '../shared/manifest';

const PROJECT = 'smelter-bench';
const TOPIC = 'events';
const CONCURRENCY = functionSpec('routeEvent').concurrency;

// ---- the function instance (child process) ----------------------------------------------------------

interface InstanceStats {
  requests: number;
  ok: number;
  failed: number;
  cpuMicros: number;
  rssMb: number;
  router?: {
    stored: number;
    deadLettered: number;
    failed: number;
    batcher: { flushes: number; items: number; largestBatch: number };
  };
  visibilityChecked: number;
  visibilityMisses: number;
  /** Time inside the function (routeEvent's own latency) since the previous stats call. */
  handler: { count: number; p50Ms: number; p99Ms: number };
}

/** Each event type's table, from the event contracts. */
function eventTables(contractsDir: string): Record<string, string> {
  const tables: Record<string, string> = {};
  for (const f of fs.readdirSync(path.join(contractsDir, 'events')).filter((x) => x.endsWith('.json'))) {
    const c = JSON.parse(fs.readFileSync(path.join(contractsDir, 'events', f), 'utf8')) as {
      event_type: string;
      table: string;
    };
    tables[c.event_type] = c.table;
  }
  return tables;
}

/** Checks that a handled event's row is visible in the instance's DuckDB file; counts the misses. */
class VisibilityCheck {
  checked = 0;
  misses = 0;
  constructor(
    private readonly tables: Record<string, string>,
    private readonly duckdb: () => Promise<{ query<T>(sql: string): Promise<T[]> }>,
  ) {}

  async check(data: string | undefined): Promise<void> {
    const e = JSON.parse(Buffer.from(data ?? '', 'base64').toString()) as {
      event_id: string;
      event_type: string;
      event_time: string;
    };
    const wh = await this.duckdb();
    const q = (x: string): string => `'${x.replace(/'/g, "''")}'`;
    // The tables have no index: the event_time bound lets zone maps skip row groups, so the check
    // (one in 50 events) stays cheap and does not load the instance it measures.
    const rows = await wh.query<{ n: string }>(
      `SELECT count(*) AS n FROM events."${this.tables[e.event_type]}"
        WHERE event_time = ${q(e.event_time)}::TIMESTAMPTZ AND event_id = ${q(e.event_id)}`,
    );
    this.checked++;
    if (Number(rows[0]?.n) !== 1) this.misses++;
  }
}

/** The instance's stats endpoint: requests, CPU, RSS, the router's counters and handler times since the last call. */
async function serveInstanceStats(o: {
  fnStats: () => { requests: number; ok: number; failed: number };
  router: (() => InstanceStats['router']) | undefined;
  visibility: VisibilityCheck;
  takeHandlerMs: () => number[];
}): Promise<http.Server> {
  const statsServer = http.createServer((req, res) => {
    const router = o.router?.();
    const u = process.cpuUsage();
    const hs = o.takeHandlerMs().sort((a, b) => a - b);
    const s: InstanceStats = {
      handler: { count: hs.length, p50Ms: round(percentile(hs, 50)), p99Ms: round(percentile(hs, 99)) },
      ...o.fnStats(),
      cpuMicros: u.user + u.system,
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      ...(router ? { router } : {}),
      visibilityChecked: o.visibility.checked,
      visibilityMisses: o.visibility.misses,
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s));
  });
  await new Promise<void>((r) => statsServer.listen(0, '127.0.0.1', () => r()));
  return statsServer;
}

async function instanceMain(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const ff =
    require('@google-cloud/functions-framework') as typeof import('@google-cloud/functions-framework');
  const { routeEvent } = require('../functions/route-event') as typeof import('../functions/route-event');
  const { runtime, closeRuntime } =
    require('../shared/composition/runtime') as typeof import('../shared/composition/runtime');
  const { serveRegistered } =
    require('../shared/local/pubsub/serve') as typeof import('../shared/local/pubsub/serve');
  const { config } = require('../shared/config') as typeof import('../shared/config');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const noop = process.env.BENCH_TARGET === 'noop';
  const visibility = new VisibilityCheck(eventTables(config().contractsDir), () =>
    runtime().get('localDuckDb')(),
  );
  let n = 0;
  let handlerMs: number[] = [];
  ff.cloudEvent(
    'benchTarget',
    async (ce: import('cloudevents').CloudEventV1<import('../shared/cloudevents').MessagePublishedData>) => {
      if (noop) return;
      const t0 = performance.now();
      await routeEvent(ce);
      handlerMs.push(performance.now() - t0);
      // Right after the handler returned (= before the acknowledgement), the row must be visible.
      if (n++ % 50 === 0) void visibility.check(ce.data?.message.data).catch(() => visibility.misses++);
    },
  );
  const fn = await serveRegistered('benchTarget');
  const statsServer = await serveInstanceStats({
    fnStats: () => fn.stats,
    router: noop ? undefined : () => runtime().get('eventRouter').stats(),
    visibility,
    takeHandlerMs: () => {
      const hs = handlerMs;
      handlerMs = [];
      return hs;
    },
  });
  process.on('SIGTERM', () => {
    void (async () => {
      statsServer.close();
      await fn.close();
      if (!noop) await closeRuntime();
      process.exit(0);
    })();
  });
  process.stdout.write(
    JSON.stringify({
      url: fn.url,
      stats: `http://127.0.0.1:${(statsServer.address() as AddressInfo).port}`,
    }) + '\n',
  );
}

interface InProcessResult {
  throughputEps: number;
  cpuPct: number;
  eventsPerCpuSecond: number;
  avgBatch: number;
  paced: {
    rate: number;
    events: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    cpuPct: number;
    avgBatch: number;
  };
  stored: number;
  deadLettered: number;
  failed: number;
}

type BenchMessage = { data: Buffer; attributes: Record<string, string> };

/** messagePublished CloudEvents as a push subscription would deliver them, numbered in order. */
function inProcessCloudEvents(): (m: BenchMessage) => Parameters<EventRouter['routeCloudEvent']>[0] {
  let seq = 0;
  return (m) => {
    const id = `inproc-${++seq}`;
    const publishTime = new Date().toISOString();
    return {
      id,
      specversion: '1.0',
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      source: `//pubsub.googleapis.com/projects/${PROJECT}/topics/${TOPIC}`,
      time: publishTime,
      data: {
        message: { data: m.data.toString('base64'), attributes: m.attributes, messageId: id, publishTime },
        subscription: `projects/${PROJECT}/subscriptions/in-process`,
      },
    };
  };
}

/** The router fed directly: `cloudEvent` builds each call's event. */
interface InProcessTarget {
  router: EventRouter;
  cloudEvent: (m: BenchMessage) => Parameters<EventRouter['routeCloudEvent']>[0];
}

/** Average rows per flush between two batcher snapshots. */
const avgBatch = (a: { items: number; flushes: number }, b: { items: number; flushes: number }): number =>
  round((b.items - a.items) / Math.max(1, b.flushes - a.flushes));

/** Routes a batch with `CONCURRENCY` calls in flight; the seconds it took. */
async function drive(t: InProcessTarget, batch: BenchMessage[]): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < batch.length) await t.router.routeCloudEvent(t.cloudEvent(batch[next++] as BenchMessage));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return (performance.now() - t0) / 1000;
}

/** Throughput: a warm-up, then `n` events driven at full concurrency. */
async function inProcessThroughput(
  t: InProcessTarget,
  n: number,
): Promise<Pick<InProcessResult, 'throughputEps' | 'cpuPct' | 'eventsPerCpuSecond' | 'avgBatch'>> {
  await drive(t, events(Math.min(2000, n), 'inproc-warm', 0));
  const s0 = t.router.stats().batcher;
  const c0 = process.cpuUsage();
  const secs = await drive(t, events(n, 'inproc-tput', 0));
  const cpu = process.cpuUsage(c0);
  const s1 = t.router.stats().batcher;
  const cpuPct = ((cpu.user + cpu.system) / 1e6 / secs) * 100;
  return {
    throughputEps: Math.round(n / secs),
    cpuPct: round(cpuPct),
    eventsPerCpuSecond: Math.round(n / secs / (cpuPct / 100)),
    avgBatch: avgBatch(s0, s1),
  };
}

/** Latency (call → durable) with events sent at a fixed `rate` for `seconds`. */
async function inProcessPaced(
  t: InProcessTarget,
  rate: number,
  seconds: number,
): Promise<InProcessResult['paced']> {
  const paced = events(Math.round(rate * seconds), 'inproc-paced', 0);
  const lat: number[] = [];
  const pending: Promise<unknown>[] = [];
  const sp0 = t.router.stats().batcher;
  const cp0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  while (sent < paced.length) {
    const due = Math.min(paced.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const at = performance.now();
      const m = paced[sent] as BenchMessage;
      pending.push(t.router.routeCloudEvent(t.cloudEvent(m)).then(() => lat.push(performance.now() - at)));
    }
    await sleep(1);
  }
  await Promise.all(pending);
  const pacedCpu = process.cpuUsage(cp0);
  const pacedSecs = (performance.now() - t0) / 1000;
  const sp1 = t.router.stats().batcher;
  lat.sort((a, b) => a - b);
  return {
    rate,
    events: paced.length,
    p50Ms: round(percentile(lat, 50)),
    p99Ms: round(percentile(lat, 99)),
    maxMs: round(lat.at(-1) ?? NaN),
    cpuPct: round(((pacedCpu.user + pacedCpu.system) / 1e6 / pacedSecs) * 100),
    avgBatch: avgBatch(sp0, sp1),
  };
}

/**
 * `--in-process`: routeEvent's router without HTTP or Pub/Sub, in its own process (one instance).
 * Throughput with `concurrency` calls in flight, then latency (call → durable) at a fixed rate.
 */
async function inProcessMain(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { runtime, closeRuntime } =
    require('../shared/composition/runtime') as typeof import('../shared/composition/runtime');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const n = Number(process.env.BENCH_EVENTS);
  const rate = Number(process.env.BENCH_RATE);
  const seconds = Number(process.env.BENCH_SECONDS);
  const router = runtime().get('eventRouter');
  await router.ready();
  const target: InProcessTarget = { router, cloudEvent: inProcessCloudEvents() };
  const throughput = await inProcessThroughput(target, n);
  const paced = await inProcessPaced(target, rate, seconds);
  const st = router.stats();
  const out: InProcessResult = {
    ...throughput,
    paced,
    stored: st.stored,
    deadLettered: st.deadLettered,
    failed: st.failed,
  };
  await closeRuntime();
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** This file again as a child (`--instance` or `--in-process`); BENCH_CPU_PROF=<dir> writes its V8 CPU profile. */
function spawnBenchChild(mode: '--instance' | '--in-process', env: Record<string, string>): ChildProcess {
  const prof = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  return spawn(process.execPath, [...process.execArgv, ...prof, __filename, mode], {
    env: {
      ...process.env,
      SMELTER_LOG_LEVEL: 'ERROR',
      SMELTER_LOG_FORMAT: 'json',
      METADATA_SERVER_DETECTION: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function runInProcess(env: Record<string, string>): Promise<InProcessResult> {
  const child = spawnBenchChild('--in-process', env);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`in-process run failed (exit ${code}): ${out}`);
  return JSON.parse(line) as InProcessResult;
}

interface Instance {
  url: string;
  stats(): Promise<InstanceStats>;
  stop(): Promise<void>;
}

async function spawnInstance(env: Record<string, string>): Promise<Instance> {
  const child = spawnBenchChild('--instance', env);
  const first = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)));
  });
  const { url, stats } = JSON.parse(first) as { url: string; stats: string };
  return {
    url,
    stats: async () => (await (await fetch(stats)).json()) as InstanceStats,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

// ---- delivery: emulator (pull + concurrent push) or the embedded bus when no emulator ----------------

interface Bus {
  mode: 'emulator' | 'embedded';
  /** Starts delivering `sub` to `endpoint`; `onAck(seq)` per acknowledged message. */
  open(
    sub: string,
    endpoint: string,
    onAck: (seq: number) => void,
  ): Promise<{ start(): void; close(): Promise<void> }>;
  publish(data: Buffer, attributes: Record<string, string>, maxMs: number): Promise<unknown>;
  nativePush?(sub: string, endpoint: string): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const SEQ = /"bench_seq":"(\d+)"/;

function acking(
  onAck: (seq: number) => void,
): (endpoint: string, body: string, timeoutMs: number) => Promise<PushResult> {
  return async (endpoint, body, timeoutMs) => {
    const r = await postPush(endpoint, body, timeoutMs);
    if (r.ok) onAck(Number(SEQ.exec(body)?.[1] ?? -1));
    return r;
  };
}

async function emulatorBus(emu: EmulatorHandle): Promise<Bus> {
  const client = new PubsubClient({ projectId: PROJECT, emulatorHost: emu.host });
  await client.ensureTopic(TOPIC);
  return {
    mode: 'emulator',
    async open(sub, endpoint, onAck) {
      await client.ensureSubscription({ name: sub, topic: TOPIC, ackDeadlineSeconds: 60 });
      const relay = new PushRelay({
        client,
        subscription: sub,
        endpoint,
        concurrency: CONCURRENCY,
        ackDeadlineSeconds: 60,
        post: acking(onAck),
      });
      return {
        start: () => relay.start(),
        close: async () => {
          await relay.stop();
          await client.deleteSubscription(sub);
        },
      };
    },
    publish: (data, attributes, maxMs) => client.publish(TOPIC, data, attributes, { maxMilliseconds: maxMs }),
    async nativePush(sub, endpoint) {
      await client.ensureSubscription({
        name: sub,
        topic: TOPIC,
        pushEndpoint: endpoint,
        ackDeadlineSeconds: 60,
      });
      return () => client.deleteSubscription(sub);
    },
    close: () => client.close(),
  };
}

function embeddedBus(home: string): Bus {
  let phase: { bus: EmbeddedPubsub; started: boolean; held: [Buffer, Record<string, string>][] } | undefined;
  return {
    mode: 'embedded',
    async open(sub, endpoint, onAck) {
      const bus = new EmbeddedPubsub({
        project: PROJECT,
        home,
        concurrency: CONCURRENCY,
        post: acking(onAck),
      });
      bus.createTopic(TOPIC);
      const p = { bus, started: false, held: [] as [Buffer, Record<string, string>][] };
      phase = p;
      return {
        // Embedded topics deliver as they publish: the backlog is held until delivery starts.
        start: () => {
          bus.createSubscription({ name: sub, topic: TOPIC, pushEndpoint: endpoint, ackDeadlineSeconds: 60 });
          p.started = true;
          for (const [d, a] of p.held.splice(0)) bus.publishSync(TOPIC, d, a);
        },
        close: () => bus.close(),
      };
    },
    async publish(data, attributes) {
      if (!phase) throw new Error('no open phase');
      if (phase.started) return phase.bus.publishSync(TOPIC, data, attributes);
      phase.held.push([data, attributes]);
      return undefined;
    },
    close: async () => {
      await phase?.bus.close();
    },
  };
}

// ---- runs -----------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

let phaseSeq = 0;

function events(
  n: number,
  seed: string,
  offset: number,
): { data: Buffer; attributes: Record<string, string> }[] {
  return new EventGenerator({ seed })
    .take(n)
    .map((m, i) => ({ data: m.data, attributes: { ...m.attributes, bench_seq: String(offset + i) } }));
}

/**
 * Publishes a backlog of n events, then delivers it: events/s and the instance's CPU share. Time-boxed:
 * a slow configuration is measured on what it acknowledged within `maxSeconds`.
 */
async function throughputRun(
  bus: Bus,
  inst: Instance,
  n: number,
  maxSeconds = 30,
): Promise<{ eps: number; seconds: number; cpuPct: number; acked: number }> {
  const sub = `bench-${++phaseSeq}`;
  let acked = 0;
  const seen = new Set<number>();
  const d = await bus.open(sub, pushEndpoint(inst.url, PROJECT, TOPIC), (seq) => {
    if (!seen.has(seq)) {
      seen.add(seq);
      acked++;
    }
  });
  const batch = events(n, `tput-${phaseSeq}`, 0);
  await Promise.all(batch.map((m) => bus.publish(m.data, m.attributes, 10)));
  const s0 = await inst.stats();
  const t0 = performance.now();
  d.start();
  while (acked < n && performance.now() - t0 < maxSeconds * 1000) await sleep(5);
  const seconds = (performance.now() - t0) / 1000;
  const s1 = await inst.stats();
  await d.close();
  return {
    eps: acked / seconds,
    seconds,
    cpuPct: ((s1.cpuMicros - s0.cpuMicros) / 1e6 / seconds) * 100,
    acked,
  };
}

/** Publishes at a fixed rate for `seconds`: latency from the publish call to the acknowledgement. */
async function pacedRun(bus: Bus, inst: Instance, rate: number, seconds: number) {
  const sub = `bench-${++phaseSeq}`;
  const n = Math.round(rate * seconds);
  const sentAt = new Float64Array(n);
  const lat: number[] = [];
  const d = await bus.open(sub, pushEndpoint(inst.url, PROJECT, TOPIC), (seq) => {
    if (seq >= 0 && seq < n && sentAt[seq]) {
      lat.push(performance.now() - (sentAt[seq] as number));
      sentAt[seq] = 0;
    }
  });
  await inst.stats(); // drains the instance's handler timings
  d.start();
  const batch = events(n, `paced-${phaseSeq}`, 0);
  const t0 = performance.now();
  let sent = 0;
  const publishes: Promise<unknown>[] = [];
  while (sent < n) {
    const due = Math.min(n, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      sentAt[sent] = performance.now();
      const m = batch[sent] as { data: Buffer; attributes: Record<string, string> };
      publishes.push(bus.publish(m.data, m.attributes, 1));
    }
    await sleep(1);
  }
  const achieved = n / ((performance.now() - t0) / 1000);
  await Promise.all(publishes);
  // A configuration that cannot sustain the rate is reported as such (acked < events), not waited for.
  const deadline = performance.now() + Math.min(60_000, 2000 + seconds * 2000);
  while (lat.length < n && performance.now() < deadline) await sleep(10);
  await d.close();
  const { handler } = await inst.stats();
  lat.sort((a, b) => a - b);
  return {
    handlerP50Ms: handler.p50Ms,
    handlerP99Ms: handler.p99Ms,
    rate,
    achievedRate: Math.round(achieved),
    events: n,
    acked: lat.length,
    p50Ms: round(percentile(lat, 50)),
    p99Ms: round(percentile(lat, 99)),
    maxMs: round(lat.at(-1) ?? NaN),
  };
}

/** The emulator's own push loop against the instance (reference): events/s. */
async function nativePushRun(
  bus: Bus,
  inst: Instance,
  n: number,
  timeoutMs: number,
): Promise<{ eps: number; delivered: number }> {
  if (!bus.nativePush) return { eps: NaN, delivered: 0 };
  const drop = await bus.nativePush(`bench-native-${++phaseSeq}`, pushEndpoint(inst.url, PROJECT, TOPIC));
  const s0 = await inst.stats();
  const t0 = performance.now();
  await Promise.all(events(n, `native-${phaseSeq}`, 0).map((m) => bus.publish(m.data, m.attributes, 10)));
  let done = 0;
  while (done < n && performance.now() - t0 < timeoutMs) {
    await sleep(50);
    done = (await inst.stats()).ok - s0.ok;
  }
  const eps = done / ((performance.now() - t0) / 1000);
  await drop();
  return { eps, delivered: done };
}

const round = (x: number, d = 1): number => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : NaN);

interface BenchOptions {
  quick: boolean;
  /** Throughput backlog. */
  n: number;
  seconds: number;
  rate: number;
  /** --only noop,on,off,native,in-process: run a subset (for profiling one configuration). */
  runs(key: string): boolean;
}

function parseOptions(argv: readonly string[]): BenchOptions {
  const opt = (name: string, def: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const quick = argv.includes('--quick');
  const onlyArg = argv[argv.indexOf('--only') + 1];
  const only = argv.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : undefined;
  return {
    quick,
    n: opt('events', quick ? 3000 : 20_000),
    seconds: opt('seconds', quick ? 3 : 10),
    rate: opt('rate', 1000),
    runs: (k) => !only || only.has(k),
  };
}

/** What every phase of one bench run shares. */
interface BenchRun {
  o: BenchOptions;
  cfg: ReturnType<typeof loadConfig>;
  root: string;
  bus: Bus;
  emu: EmulatorHandle | undefined;
  log(s: string): void;
  /** A routeEvent (or no-op) instance with its own SMELTER_HOME under the run's folder. */
  instance(name: string, env: Record<string, string>): Promise<Instance>;
  /** Rows of the printed table. */
  table: string[][];
}

/** The emulator when it is installed (pull + concurrent push), else the embedded delivery. */
async function openBus(
  root: string,
  log: (s: string) => void,
): Promise<{ bus: Bus; emu: EmulatorHandle | undefined }> {
  const found = discoverEmulator();
  if (!found.found) {
    log(
      `NOTE: Pub/Sub emulator not available (${found.reason}): measuring with the embedded delivery instead`,
    );
    return { bus: embeddedBus(root), emu: undefined };
  }
  const emu = await startEmulator({ launcher: found.launcher, home: root });
  try {
    const bus = await emulatorBus(emu);
    log(`emulator ${emu.host} (${found.launcher})`);
    return { bus, emu };
  } catch (err) {
    await emu.stop();
    throw err;
  }
}

/** The harness ceiling: a no-op function, by throughput and paced (a floor under routeEvent's latency). */
async function measureCeiling(r: BenchRun) {
  const { o } = r;
  r.log(`harness ceiling: no-op function, ${o.n} events…`);
  const noop = await r.instance('noop', { BENCH_TARGET: 'noop' });
  await throughputRun(r.bus, noop, Math.min(o.n, 2000), 10);
  const ceiling = await throughputRun(r.bus, noop, o.n);
  const paced = await pacedRun(r.bus, noop, o.rate, o.seconds);
  await noop.stop();
  r.table.push([
    'harness ceiling (no-op function)',
    fmt(ceiling.eps),
    `${fmt(ceiling.cpuPct)}%`,
    '',
    `${paced.p50Ms}`,
    `${paced.p99Ms}`,
    '',
  ]);
  return { ceiling, paced };
}

interface BatchingConfig {
  key: 'batching_on' | 'batching_off';
  label: string;
  rows: number;
}

/** One routeEvent instance at one batch size: throughput, paced latency, and its own counters. */
async function measureBatching(r: BenchRun, c: BatchingConfig): Promise<Record<string, unknown>> {
  const { o, bus } = r;
  r.log(`${c.label}: warm-up, ${o.n} events throughput, ${o.seconds} s at ${o.rate}/s…`);
  const inst = await r.instance(c.key, { SMELTER_BATCH_MAX_ROWS: String(c.rows) });
  await throughputRun(bus, inst, Math.min(2000, o.n), 10); // warm-up: JIT, tables created
  const tput = await throughputRun(bus, inst, o.n);
  const paced = await pacedRun(bus, inst, o.rate, o.seconds);
  // Saturated at the fixed rate: also show the latency at half the measured capacity.
  const lighter =
    tput.eps < o.rate * 1.2
      ? await pacedRun(bus, inst, Math.max(10, Math.floor(tput.eps / 2)), o.seconds)
      : undefined;
  const st = await inst.stats();
  await inst.stop();
  const avgBatch = st.router ? st.router.batcher.items / Math.max(1, st.router.batcher.flushes) : NaN;
  const sat = paced.acked < paced.events ? ` (${paced.acked}/${paced.events} acked)` : '';
  r.table.push([
    c.label,
    fmt(tput.eps),
    `${fmt(tput.cpuPct)}%`,
    fmt(avgBatch),
    `${paced.p50Ms} (${paced.handlerP50Ms} in fn)`,
    `${paced.p99Ms} (${paced.handlerP99Ms} in fn)${sat}`,
    `${st.visibilityMisses}/${st.visibilityChecked}`,
  ]);
  if (lighter)
    r.table.push([
      `  same, paced at ${lighter.rate}/s (half capacity)`,
      '',
      '',
      '',
      `${lighter.p50Ms}`,
      `${lighter.p99Ms}`,
      '',
    ]);
  return {
    batchMaxRows: c.rows,
    batchMaxMs: r.cfg.batchMaxMs,
    throughputEps: Math.round(tput.eps),
    throughputCpuPct: round(tput.cpuPct),
    // Independent of how much CPU the harness and the emulator left to the instance.
    eventsPerCpuSecond: Math.round(tput.eps / (tput.cpuPct / 100)),
    avgBatch: round(avgBatch),
    paced,
    ...(lighter ? { pacedAtHalfCapacity: lighter } : {}),
    stored: st.router?.stored,
    failedInvocations: st.failed,
    visibility: { checked: st.visibilityChecked, misses: st.visibilityMisses },
    rssMb: st.rssMb,
  };
}

/** Reference: the emulator's own (serial) push loop, batching on. */
async function measureNativePush(r: BenchRun): Promise<{ eps: number; delivered: number }> {
  r.log('reference: the emulator’s own (serial) push loop, batching on…');
  const inst = await r.instance('native', {});
  await throughputRun(r.bus, inst, 500, 10);
  const native = await nativePushRun(r.bus, inst, r.o.quick ? 300 : 1000, 20_000);
  await inst.stop();
  r.table.push(['emulator native push (serial), batching on', fmt(native.eps), '', '', '', '', '']);
  return native;
}

/** routeEvent fed in-process (no HTTP, no Pub/Sub): one instance's own work. */
async function measureInProcess(r: BenchRun): Promise<InProcessResult> {
  const { o } = r;
  r.log(
    `routeEvent in-process (no HTTP, no Pub/Sub): ${o.n} events with ${CONCURRENCY} in flight, ${o.seconds} s at ${o.rate}/s…`,
  );
  const home = path.join(r.root, 'in-process');
  fs.mkdirSync(home, { recursive: true });
  const res = await runInProcess({
    SMELTER_HOME: home,
    SMELTER_BACKEND: 'local',
    BENCH_EVENTS: String(o.n),
    BENCH_RATE: String(o.rate),
    BENCH_SECONDS: String(o.seconds),
  });
  r.table.push([
    'routeEvent in-process (no HTTP, no Pub/Sub), batching on',
    fmt(res.throughputEps),
    `${fmt(res.cpuPct)}%`,
    fmt(res.avgBatch),
    `${res.paced.p50Ms}`,
    `${res.paced.p99Ms}`,
    '',
  ]);
  return res;
}

interface Measured {
  ceiling?: Awaited<ReturnType<typeof measureCeiling>>;
  results: Record<string, unknown>;
  native?: { eps: number; delivered: number };
  inProcess?: InProcessResult;
}

/** The final JSON line: every figure, and whether the targets are met. */
function figuresOf(r: BenchRun, m: Measured): Record<string, unknown> {
  const { o } = r;
  const { ceiling, results, native, inProcess } = m;
  const on = results.batching_on as { throughputEps: number; paced: { p99Ms: number } } | undefined;
  return {
    bench: 'events',
    pubsub: r.bus.mode,
    concurrency: CONCURRENCY,
    machine: { cpus: os.availableParallelism(), node: process.version },
    throughputEvents: o.n,
    pacedRate: o.rate,
    pacedSeconds: o.seconds,
    ...(ceiling ? { harnessCeilingEps: Math.round(ceiling.ceiling.eps), harnessPaced: ceiling.paced } : {}),
    ...results,
    ...(native ? { emulatorNativePushEps: Math.round(native.eps) } : {}),
    ...(inProcess ? { inProcess } : {}),
    // Through the local Pub/Sub and HTTP, batching on (what the targets are about).
    targets: {
      throughputEps: 5000,
      p99Ms: 100,
      ...(on ? { throughputMet: on.throughputEps >= 5000, p99Met: on.paced.p99Ms <= 100 } : {}),
      ...(inProcess
        ? {
            inProcessThroughputMet: inProcess.throughputEps >= 5000,
            inProcessP99Met: inProcess.paced.p99Ms <= 100,
          }
        : {}),
    },
  };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const cfg = loadConfig({});
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-bench-events-'));
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const { bus, emu } = await openBus(root, log);
  const instances: Instance[] = [];
  const r: BenchRun = {
    o,
    cfg,
    root,
    bus,
    emu,
    log,
    table: [],
    async instance(name, env) {
      const home = path.join(root, name);
      fs.mkdirSync(home, { recursive: true });
      const inst = await spawnInstance({
        SMELTER_HOME: home,
        SMELTER_BACKEND: 'local',
        ...(emu ? { PUBSUB_EMULATOR_HOST: emu.host } : {}),
        ...env,
      });
      instances.push(inst);
      return inst;
    },
  };

  try {
    const m: Measured = { results: {} };
    if (o.runs('noop')) m.ceiling = await measureCeiling(r);
    const configs: BatchingConfig[] = [
      {
        key: 'batching_on',
        label: `batching on (group commit, ≤ ${cfg.batchMaxRows} rows)`,
        rows: cfg.batchMaxRows,
      },
      { key: 'batching_off', label: 'batching off (1 row)', rows: 1 },
    ];
    for (const c of configs)
      if (o.runs(c.key === 'batching_on' ? 'on' : 'off')) m.results[c.key] = await measureBatching(r, c);
    if (bus.nativePush && o.runs('native')) m.native = await measureNativePush(r);
    if (o.runs('in-process')) m.inProcess = await measureInProcess(r);

    printTable(
      [
        'delivery into one routeEvent instance',
        'events/s',
        'inst. CPU',
        'avg batch',
        `p50 ms @${o.rate}/s`,
        `p99 ms @${o.rate}/s`,
        'visibility misses',
      ],
      r.table,
    );
    process.stdout.write(JSON.stringify(figuresOf(r, m)) + '\n');
  } finally {
    for (const i of instances) await i.stop().catch(() => undefined);
    await bus.close();
    await emu?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? (x >= 100 ? String(Math.round(x)) : String(round(x))) : 'n/a';
}

function printTable(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(w[i] as number) : c.padStart(w[i] as number))).join('  ');
  process.stdout.write(
    [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n') + '\n',
  );
}

if (process.argv.includes('--in-process')) {
  inProcessMain().catch((e: unknown) => {
    process.stderr.write(`in-process run failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
} else if (process.argv.includes('--instance')) {
  instanceMain().catch((e: unknown) => {
    process.stderr.write(`instance failed: ${String(e)}\n`);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
