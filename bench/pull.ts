/**
 * `npm run bench:pull` — API pull throughput and memory, side by side in one run, against one local
 * dummyjson-shaped server (its own process) serving the same pages to both:
 *
 *   smelter    runPull: the robust HTTP client, offset pagination, JSON parse, gzipped NDJSON parts into
 *              the filesystem raw bucket (ifGenerationMatch=0), state advanced at the end
 *   ceiling    a plain `fetch` of the same pages, each body appended to one file on disk
 *
 * Each variant runs in its own child process, which reports its CPU time and peak RSS; smelter also
 * runs at a tenth of the records to show memory stays flat, and once with V8's default young
 * generation for reference. Every child first makes the same untimed warm-up pass of its own kind
 * (a tenth of the records, into a folder apart): the JIT, the heap and the buffers then start from the
 * same state at both sizes, so the two peaks differ only by what the extra records cost.
 * Children run with V8's young generation pinned at 2 × 4 MB (`--min-semi-space-size=4
 * --max-semi-space-size=4`): `pullSource` is deployed with the maximum (NODE_OPTIONS takes no minimum),
 * and V8 grows a young generation up to it only after a few hundred pages — a constant, but one that
 * would make the short run look smaller than the long one. Pinned, the long run's peak is the same
 * (±1 MB); the short run starts where the long one settles. Options:
 *   --records 1000000   records (default 1,000,000)     --page 1000   records per page (default 1,000)
 *   --runs 3            runs of each variant, alternating; the median run is reported
 *   --semi-space 4      V8 semi-space size (MB, pinned) for the children (0: V8's default)
 *   --quick             100,000 records, 1 run
 * Prints a table and ends with one JSON line of the figures.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NodeHttpClient } from '../shared/adapters/http/node-http';
import { FsObjectStore } from '../shared/adapters/storage/fs';
import { createLogger } from '../shared/log';
import { validateSourceContract, type SourceContract } from '../shared/pull/contract';
import { systemClock } from '../shared/pull/ports';
import { runPull } from '../shared/pull/run';
import { median, reportResult, runChild, type RunFigures } from './child';

const here = __filename;
const tsArgs = here.endsWith('.ts') ? ['--import', 'tsx', here] : [here];

interface ChildResult extends RunFigures {
  records: number;
  pages: number;
  bytes: number;
  /** CPU time of the child (user + system): what it costs on a shared machine, whatever the load. */
  cpuSeconds: number;
  outBytes: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A dummyjson-like record of about 250 bytes, deterministic in its index. */
function record(i: number): string {
  const first = ['Emily', 'Michael', 'Sophia', 'James', 'Olivia', 'Liam'][i % 6];
  const last = ['Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller'][(i * 7) % 6];
  return `{"id":${i + 1},"firstName":"${first}","lastName":"${last}","age":${18 + (i % 60)},"email":"${String(first).toLowerCase()}.${i}@x.example","address":{"city":"City ${i % 97}","postalCode":"${10000 + (i % 89999)}","coordinates":{"lat":${((i % 180) - 90).toFixed(4)},"lng":${((i % 360) - 180).toFixed(4)}}},"company":{"department":"Dept ${i % 13}","title":"Title ${i % 31}"},"updatedAt":"2026-11-${String(1 + (i % 28)).padStart(2, '0')}T10:00:00Z"}`;
}

/** The server process: `/users?skip=&limit=` over `total` records, wrapped as dummyjson does. */
function serve(total: number): void {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    // `n` lets one server stand in for APIs of several sizes.
    const n = Math.min(total, Number(u.searchParams.get('n') ?? total));
    const skip = Number(u.searchParams.get('skip') ?? 0);
    const limit = Number(u.searchParams.get('limit') ?? 30);
    const end = Math.min(n, skip + limit);
    const parts: string[] = [];
    for (let i = skip; i < end; i++) parts.push(record(i));
    const body = `{"users":[${parts.join(',')}],"total":${n},"skip":${skip},"limit":${end - skip}}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
  });
}

interface Pulled {
  records: number;
  pages: number;
  bytes: number;
  outBytes: number;
}

/** The ceiling: each page fetched whole and appended to one file, nothing else. */
async function plainFetch(
  work: string,
  url: string,
  total: number,
  page: number,
  run: string,
): Promise<Pulled> {
  const file = path.join(work, `${run}.json`);
  const fd = fs.openSync(file, 'w');
  let pages = 0;
  let bytes = 0;
  for (let skip = 0; skip < total; skip += page) {
    const res = await fetch(`${url}/users?n=${total}&skip=${skip}&limit=${page}`);
    const buf = Buffer.from(await res.arrayBuffer());
    fs.writeSync(fd, buf);
    pages++;
    bytes += buf.length;
  }
  fs.closeSync(fd);
  return { records: total, pages, bytes, outBytes: fs.statSync(file).size };
}

/** The bench's source: the server's users, offset-paginated, one part per 100,000 records. */
function benchContract(url: string, total: number, page: number): SourceContract {
  return validateSourceContract(
    {
      source: 'bench',
      baseUrl: url,
      limits: { requestsPerSecond: 100_000, pagesPerRun: 1_000_000, recordsPerPart: 100_000 },
      endpoints: [
        {
          name: 'users',
          path: '/users',
          query: { n: String(total) },
          dataset: 'store_users',
          records: 'users',
          pagination: {
            type: 'offset',
            offsetParam: 'skip',
            limitParam: 'limit',
            limit: page,
            totalPath: 'total',
          },
        },
      ],
    },
    'bench',
  );
}

/** Smelter: runPull into a filesystem raw bucket. */
async function smelterPull(
  work: string,
  url: string,
  total: number,
  page: number,
  run: string,
): Promise<Pulled> {
  const store = new FsObjectStore(work);
  await store.ensureBucket('raw');
  await store.ensureBucket('bronze');
  const http = new NodeHttpClient();
  const s = await runPull(
    benchContract(url, total, page),
    { run },
    {
      store,
      http,
      rawBucket: 'raw',
      stateBucket: 'bronze',
      log: createLogger({ format: 'silent' }),
      clock: systemClock,
    },
  );
  await http.close();
  let outBytes = 0;
  for await (const m of store.list('raw', `store_users/pulled/bench/run-${run}/`)) outBytes += m.size;
  return { records: s.records, pages: s.pages, bytes: s.bytes, outBytes };
}

async function child(
  variant: string,
  url: string,
  total: number,
  page: number,
  warmup: number,
): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `smelter-bench-pull-${variant}-`));
  try {
    const pull = variant === 'ceiling' ? plainFetch : smelterPull;
    if (warmup > 0) await pull(work, url, warmup, page, 'warmup');
    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const got = await pull(work, url, total, page, 'bench');
    const cpu = process.cpuUsage(cpu0);
    const r: ChildResult = {
      variant,
      ...got,
      seconds: Number(process.hrtime.bigint() - start) / 1e9,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
    };
    reportResult(r);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

interface ChildOptions {
  url: string;
  total: number;
  page: number;
  /** V8 semi-space size (MB), pinned; 0 for V8's default. */
  semiSpace: number;
  warmup: number;
}

function runVariant(variant: string, o: ChildOptions): ChildResult {
  const v8 =
    o.semiSpace > 0 ? [`--min-semi-space-size=${o.semiSpace}`, `--max-semi-space-size=${o.semiSpace}`] : [];
  const args = [...v8, ...tsArgs, '--child', variant, '--url', o.url];
  for (const [k, v] of [
    ['records', o.total],
    ['page', o.page],
    ['warmup', o.warmup],
  ] as const)
    args.push(`--${k}`, String(v));
  return runChild<ChildResult>(variant, args);
}

async function startServer(total: number): Promise<{ url: string; stop(): void }> {
  const p = spawn(process.execPath, [...tsArgs, '--serve', String(total)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /LISTENING (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    p.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => void p.kill() };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const total = Number(arg('records') ?? (quick ? 100_000 : 1_000_000));
  const page = Number(arg('page') ?? 1000);
  const runs = Number(arg('runs') ?? (quick ? 1 : 3));
  const semi = Number(arg('semi-space') ?? 4);
  const server = await startServer(total);
  try {
    const o: ChildOptions = { url: server.url, total, page, semiSpace: semi, warmup: Math.round(total / 10) };
    const smelter: ChildResult[] = [];
    const ceiling: ChildResult[] = [];
    const tenths: ChildResult[] = [];
    for (let i = 0; i < runs; i++) {
      ceiling.push(runVariant('ceiling', o));
      smelter.push(runVariant('smelter', o));
      tenths.push(runVariant('smelter', { ...o, total: o.warmup }));
    }
    const defaults = semi > 0 ? runVariant('smelter', { ...o, semiSpace: 0 }) : undefined;
    const s = median(smelter);
    const c = median(ceiling);
    const tenth = median(tenths);
    const rate = (r: ChildResult): number => r.records / r.seconds;
    const MB = 1024 * 1024;
    const rows = [
      ['variant', 'records', 'pages', 'MB fetched', 'seconds', 'CPU s', 'records/s', 'peak RSS', 'written'],
      ...[
        ['smelter runPull', s],
        ['plain fetch → disk (ceiling)', c],
        [`smelter runPull (${(total / 10).toLocaleString('en-US')} records)`, tenth],
        ...(defaults ? [['smelter runPull, V8 default young generation', defaults]] : []),
      ].map(([name, r]) => {
        const x = r as ChildResult;
        return [
          name as string,
          x.records.toLocaleString('en-US'),
          String(x.pages),
          (x.bytes / MB).toFixed(1),
          x.seconds.toFixed(2),
          x.cpuSeconds.toFixed(2),
          Math.round(rate(x)).toLocaleString('en-US'),
          `${Math.round(x.maxRssMB)} MB`,
          `${(x.outBytes / MB).toFixed(1)} MB`,
        ];
      }),
    ];
    for (const r of rows) console.log('| ' + r.join(' | ') + ' |');
    const ratio = rate(s) / rate(c);
    const flat = s.maxRssMB / tenth.maxRssMB;
    console.log(
      `\nsmelter / ceiling records/s: ${ratio.toFixed(2)}× (target ≥ 0.5×); peak RSS ${Math.round(s.maxRssMB)} MB (target ≤ 200 MB); 10× records → ${flat.toFixed(2)}× RSS (target ≤ 1.2×)`,
    );
    console.log(
      JSON.stringify({
        records: total,
        pages: s.pages,
        runs,
        smelterRecordsPerSec: Math.round(rate(s)),
        ceilingRecordsPerSec: Math.round(rate(c)),
        ratio: Number(ratio.toFixed(3)),
        peakRssMB: Math.round(s.maxRssMB),
        tenthRssMB: Math.round(tenth.maxRssMB),
        rssRatio: Number(flat.toFixed(3)),
        semiSpaceMB: semi,
        warmupRecords: o.warmup,
        ...(defaults ? { defaultFlagsRssMB: Math.round(defaults.maxRssMB) } : {}),
        allRuns: { smelter: smelter.map((r) => r.seconds), ceiling: ceiling.map((r) => r.seconds) },
      }),
    );
  } finally {
    server.stop();
  }
}

if (require.main === module) {
  const serveArg = arg('serve');
  const variant = arg('child');
  const run = serveArg
    ? Promise.resolve(serve(Number(serveArg)))
    : variant
      ? child(
          variant,
          arg('url') as string,
          Number(arg('records')),
          Number(arg('page')),
          Number(arg('warmup') ?? 0),
        )
      : main();
  run.catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
