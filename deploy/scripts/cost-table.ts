/**
 * The cost table in deploy/README.md, computed from list prices and stated assumptions so it can be
 * re-run when prices change:  npx tsx deploy/scripts/cost-table.ts
 * (a test checks that the README carries exactly this output).
 */

/** USD list prices assumed (Tier 1 region such as europe-west1; no free tiers, no discounts). CHECK THEM. */
export const PRICES = {
  vcpuSecond: 0.000024, // Cloud Run functions (request-based billing), per vCPU-second
  gibSecond: 0.0000025, // per GiB-second of memory
  perMillionInvocations: 0.4,
  pubsubPerTiB: 40, // message delivery throughput: publish and each subscription's delivery
  gcsStandardGbMonth: 0.02, // regional Standard storage
  gcsClassAPer1000: 0.005, // object writes
  bqStorageGibMonth: 0.02, // active logical storage
  bqQueryPerTiB: 6.25, // on-demand analysis
  bqStreamingPer200MiB: 0.01, // legacy streaming inserts (insertId dedup), 1 KB minimum per row
  loggingPerGiB: 0.5, // Cloud Logging ingestion
  schedulerJobMonth: 0.1, // Cloud Scheduler, per job
  secretVersionMonth: 0.06, // Secret Manager, per active secret version
  secretAccessPer10k: 0.03, // Secret Manager access operations
} as const;

/** Workload assumptions behind the figures. */
export const ASSUMPTIONS = {
  days: 30,
  fileMB: 100, // average input file
  bronzeRatio: 0.25, // ZSTD Parquet size / CSV size
  bqLogicalRatio: 1, // BigQuery logical bytes / CSV bytes, per table (Bronze and Silver)
  convertMBps: 20, // rawToBronze throughput per instance (1 vCPU, 1 GiB); measured 45 MB/s locally
  loaderSecondsPerFile: 30, // loadWarehouse wall time per file (waits on load + MERGE jobs)
  queryScanRatio: 3, // bytes billed by MERGE/Gold queries per byte of input
  writesPerFile: 5, // GCS object writes per file (Parquet, manifest, rejects, …)
  eventKB: 1, // event size (also the Pub/Sub and streaming-insert minimum)
  eventsPerInstance: 1000, // routeEvent events/s per instance (1 vCPU, 512 MiB, micro-batching)
  archiveObjectsPerInstanceSecond: 1,
  requestLogKB: 1, // platform request log entry per invocation
  pullMBps: 10, // pullSource JSON pulled per second per instance (1 vCPU, 512 MiB); bench:pull measured ~50 locally
  pulledGzipRatio: 0.1, // gzipped NDJSON parts / JSON pulled
  pullSources: 2, // sources, each with a scheduler job and (with auth) a secret
  pullRunsPerDay: 24, // scheduled runs per source
  // The dashboard (private, scales to zero): per viewer and working day, while a page is open.
  dashboardViewsPerViewerDay: 40, // page views
  dashboardWorkdays: 22,
  dashboardMinutesPerView: 3, // the open page polls for new data every 5 s
  dashboardPanelsPerView: 7, // chart requests per page view
  dashboardCacheHit: 0.8, // panel answers served from the instance's cache (Gold unchanged)
  dashboardBilledMBPerQuery: 10, // on-demand minimum per query (Gold answers are small)
  dashboardCpuSecondsPerView: 0.5, // instance busy time per page view, requests in flight
};

const GB_PER_TB = 1000;
const GIB_PER_TIB = 1024;
/** GB and GiB are treated alike (a 7 % difference, below the precision of these estimates). */
const MONTH_S = ASSUMPTIONS.days * 86_400;

export interface Line {
  item: string;
  formula: string;
  cost: number;
}

export function fileCosts(gbPerDay: number): Line[] {
  const A = ASSUMPTIONS;
  const P = PRICES;
  const monthGB = gbPerDay * A.days;
  const files = (gbPerDay * 1000 * A.days) / A.fileMB;
  const instS = P.vcpuSecond + 1 * P.gibSecond;
  return [
    {
      item: 'rawToBronze compute',
      formula: `${monthGB} GB × 1000 / ${A.convertMBps} MB/s × (${P.vcpuSecond} + ${P.gibSecond})`,
      cost: ((monthGB * 1000) / A.convertMBps) * instS,
    },
    {
      item: 'loadWarehouse compute',
      formula: `${files} files × ${A.loaderSecondsPerFile} s × (${P.vcpuSecond} + ${P.gibSecond})`,
      cost: files * A.loaderSecondsPerFile * instS,
    },
    {
      item: 'BigQuery MERGE/Gold queries',
      formula: `${monthGB} GB × ${A.queryScanRatio} / ${GIB_PER_TIB} × $${P.bqQueryPerTiB}`,
      cost: ((monthGB * A.queryScanRatio) / GIB_PER_TIB) * P.bqQueryPerTiB,
    },
    {
      item: 'GCS storage (a month of raw + Bronze)',
      formula: `${monthGB} GB × (1 + ${A.bronzeRatio}) × $${P.gcsStandardGbMonth}`,
      cost: monthGB * (1 + A.bronzeRatio) * P.gcsStandardGbMonth,
    },
    {
      item: 'GCS writes',
      formula: `${files} files × ${A.writesPerFile} / 1000 × $${P.gcsClassAPer1000}`,
      cost: ((files * A.writesPerFile) / 1000) * P.gcsClassAPer1000,
    },
    {
      item: 'BigQuery storage (a month of Bronze + Silver)',
      formula: `${monthGB} GB × 2 × ${A.bqLogicalRatio} × $${P.bqStorageGibMonth}`,
      cost: monthGB * 2 * A.bqLogicalRatio * P.bqStorageGibMonth,
    },
  ];
}

export function eventCosts(perSecond: number): Line[] {
  const A = ASSUMPTIONS;
  const P = PRICES;
  const events = perSecond * MONTH_S;
  const monthGB = (events * A.eventKB) / 1e6;
  const tib = monthGB / GIB_PER_TIB;
  // Request-based billing counts an instance while any request is in flight: at these rates each
  // instance is always busy, so billable instances = ceil(rate / per-instance capacity), at least 1.
  const instances = Math.max(1, Math.ceil(perSecond / A.eventsPerInstance));
  return [
    {
      item: 'Pub/Sub publish + push',
      formula: `2 × ${round(tib, 3)} TiB × $${P.pubsubPerTiB}`,
      cost: 2 * tib * P.pubsubPerTiB,
    },
    {
      item: 'routeEvent invocations',
      formula: `${round(events / 1e6, 1)} M × $${P.perMillionInvocations}`,
      cost: (events / 1e6) * P.perMillionInvocations,
    },
    {
      item: 'routeEvent compute',
      formula: `${instances} instance(s) × ${MONTH_S} s × (${P.vcpuSecond} + 0.5 × ${P.gibSecond})`,
      cost: instances * MONTH_S * (P.vcpuSecond + 0.5 * P.gibSecond),
    },
    {
      item: 'BigQuery streaming inserts',
      formula: `${round(monthGB, 1)} GB / 0.2 × $${P.bqStreamingPer200MiB}`,
      cost: (monthGB / 0.2) * P.bqStreamingPer200MiB,
    },
    {
      item: 'BigQuery storage (a month of events)',
      formula: `${round(monthGB, 1)} GB × $${P.bqStorageGibMonth}`,
      cost: monthGB * P.bqStorageGibMonth,
    },
    {
      item: 'GCS archive (storage + writes)',
      formula: `${round(monthGB, 1)} GB × $${P.gcsStandardGbMonth} + ${instances} × ${MONTH_S} objects / 1000 × $${P.gcsClassAPer1000}`,
      cost:
        monthGB * P.gcsStandardGbMonth +
        ((instances * MONTH_S * A.archiveObjectsPerInstanceSecond) / 1000) * P.gcsClassAPer1000,
    },
  ];
}

export function dashboardCosts(viewers: number): Line[] {
  const A = ASSUMPTIONS;
  const P = PRICES;
  const views = viewers * A.dashboardViewsPerViewerDay * A.dashboardWorkdays;
  const polls = views * ((A.dashboardMinutesPerView * 60) / 5);
  const requests = views * (1 + A.dashboardPanelsPerView) + polls;
  const queries = views * A.dashboardPanelsPerView * (1 - A.dashboardCacheHit);
  // Version checks (Gold __TABLES__) at most every 30 s per instance while viewers are active.
  const versionQueries = (A.dashboardWorkdays * 8 * 3600) / 30;
  const tib = ((queries + versionQueries) * A.dashboardBilledMBPerQuery) / 1e6; // MB → TB ≈ TiB
  return [
    {
      item: 'dashboard invocations (pages, charts, polls)',
      formula: `${round(requests / 1e6, 2)} M × $${P.perMillionInvocations}`,
      cost: (requests / 1e6) * P.perMillionInvocations,
    },
    {
      item: 'dashboard compute',
      formula: `${views} views × ${A.dashboardCpuSecondsPerView} s × (${P.vcpuSecond} + 0.5 × ${P.gibSecond})`,
      cost: views * A.dashboardCpuSecondsPerView * (P.vcpuSecond + 0.5 * P.gibSecond),
    },
    {
      item: 'BigQuery dashboard queries',
      formula: `(${Math.round(queries)} uncached + ${Math.round(versionQueries)} version checks) × ${A.dashboardBilledMBPerQuery} MB = ${round(tib, 3)} TiB × $${P.bqQueryPerTiB}`,
      cost: tib * P.bqQueryPerTiB,
    },
  ];
}

export function pullCosts(gbPerDay: number): Line[] {
  const A = ASSUMPTIONS;
  const P = PRICES;
  const monthGB = gbPerDay * A.days;
  const runs = A.pullSources * A.pullRunsPerDay * A.days;
  return [
    {
      item: 'pullSource compute',
      formula: `${monthGB} GB × 1000 / ${A.pullMBps} MB/s × (${P.vcpuSecond} + 0.5 × ${P.gibSecond})`,
      cost: ((monthGB * 1000) / A.pullMBps) * (P.vcpuSecond + 0.5 * P.gibSecond),
    },
    {
      item: 'GCS storage (a month of gzipped parts)',
      formula: `${monthGB} GB × ${A.pulledGzipRatio} × $${P.gcsStandardGbMonth}`,
      cost: monthGB * A.pulledGzipRatio * P.gcsStandardGbMonth,
    },
    {
      item: 'Scheduler jobs, secrets, secret reads',
      formula: `${A.pullSources} × ($${P.schedulerJobMonth} + $${P.secretVersionMonth}) + ${runs} runs / 10000 × $${P.secretAccessPer10k}`,
      cost:
        A.pullSources * (P.schedulerJobMonth + P.secretVersionMonth) + (runs / 10_000) * P.secretAccessPer10k,
    },
  ];
}

/** What request logs would add if `exclude_success_request_logs` were turned off. */
export function requestLogCost(perSecond: number): number {
  return ((perSecond * MONTH_S * ASSUMPTIONS.requestLogKB) / 1e6) * PRICES.loggingPerGiB;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const usd = (n: number): string =>
  '$' + (n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 1 ? n.toFixed(2) : n.toFixed(3));

export function costTable(): string {
  const scenarios: [string, Line[]][] = [
    ['1 GB/day of files', fileCosts(1)],
    ['1 TB/day of files', fileCosts(GB_PER_TB)],
    ['100 events/s', eventCosts(100)],
    ['10,000 events/s', eventCosts(10_000)],
    ['1 GB/day pulled from APIs', pullCosts(1)],
    ['Dashboard, 20 viewers', dashboardCosts(20)],
  ];
  const out = [
    '| Scenario | Cost driver | Formula (per 30-day month) | USD / month |',
    '| --- | --- | --- | ---: |',
  ];
  for (const [name, lines] of scenarios) {
    for (const l of lines) out.push(`| ${name} | ${l.item} | \`${l.formula}\` | ${usd(l.cost)} |`);
    out.push(`| **${name}** | **total** | | **${usd(lines.reduce((s, l) => s + l.cost, 0))}** |`);
  }
  return out.join('\n');
}

if (require.main === module) console.log(costTable());
