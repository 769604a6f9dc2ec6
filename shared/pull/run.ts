/**
 * One pull of a source: every endpoint, window by window (or once per run), page by page, into gzipped
 * NDJSON parts in the raw bucket; the state advances after each unit is committed. The existing chain
 * takes it from there (finalize → rawToBronze → loadWarehouse).
 *
 * Idempotent under redelivery: a unit's part names depend only on the window (or the run id, which a
 * redelivered message keeps) and the page sequence, parts are create-only, and the state moves with a
 * generation precondition — a retried run rewrites nothing and a killed run loses nothing.
 */
import { permanent } from '../errors';
import type { Logger } from '../log';
import type { ObjectStore } from '../storage/object-store';
import type { Endpoint, SourceContract, WindowSpec } from './contract';
import { SourceHttp } from './fetch';
import { getPath, omitPath, paginate, type Page } from './paginate';
import { PartWriter, unitPrefix, type PartsResult } from './parts';
import type { Clock, HttpClient } from './ports';
import { advanceState, readState, type EndpointState, type StateHandle } from './state';

export interface PullRequest {
  /** Run id: names the folder of window-less endpoints; a redelivered message must keep it. */
  run: string;
  /** Explicit window (a backfill): `from` inclusive, `to` exclusive, ISO dates or timestamps. */
  from?: string;
  to?: string;
}

export interface PullDeps {
  store: ObjectStore;
  http: HttpClient;
  rawBucket: string;
  /** Bucket of the state and run records (the bronze bucket). */
  stateBucket: string;
  log: Logger;
  clock: Clock;
  secret?: string;
  random?: () => number;
  gzipLevel?: number;
  onProgress?: (p: { endpoint: string; unit: string; pages: number; records: number }) => void;
}

export interface DatasetSummary {
  records: number;
  /** Every part of this run (written now or by an earlier attempt), in order. */
  objects: string[];
  written: number;
}

export interface PullSummary {
  source: string;
  run: string;
  pages: number;
  records: number;
  /** Parts written by this attempt. */
  objects: number;
  /** Parts an earlier attempt of the same run or window had committed. */
  existingObjects: number;
  /** Records at or below the incremental field's state, not written again. */
  skippedRecords: number;
  datasets: Record<string, DatasetSummary>;
  windows: string[];
  requests: number;
  retries: number;
  bytes: number;
  /** Set when limits.pagesPerRun stopped the run at a window boundary; the next run continues. */
  stoppedAt?: string;
  durationMs: number;
}

const DAY = 86_400_000;

/** Half-open windows [start, end) of `stepMs` from `from` up to `to`; the last one may be shorter only if `partial`. */
export function windowsBetween(
  stepMs: number,
  from: number,
  to: number,
  partial: boolean,
): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let s = from; s < to; s += stepMs) {
    const e = s + stepMs;
    if (e > to && !partial) break;
    out.push({ start: s, end: Math.min(e, to) });
  }
  return out;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const day = (ms: number): string => iso(ms).slice(0, 10);
const compact = (ms: number): string =>
  iso(ms)
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export function windowUnit(w: WindowSpec, start: number, end: number): string {
  return w.format === 'date' ? `${day(start)}_${day(end)}` : `${compact(start)}_${compact(end)}`;
}

export function windowParams(w: WindowSpec, start: number, end: number): Record<string, string> {
  if (w.format === 'date')
    return { [w.fromParam]: day(start), [w.toParam]: day(w.toInclusive ? end - DAY : end) };
  return { [w.fromParam]: iso(start), [w.toParam]: iso(w.toInclusive ? end - 1 : end) };
}

/** Run ids become folder names: keep them to a safe alphabet. */
export function safeRunId(run: string): string {
  const s = run
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+/, '')
    .slice(0, 80);
  if (!s) throw permanent('BAD_EVENT', 'empty run id');
  return s;
}

function parseTime(v: string, what: string): number {
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(t)) throw permanent('BAD_EVENT', `${what}: ${JSON.stringify(v)} is not a date`);
  return t;
}

function greater(a: unknown, b: string | number | undefined): boolean {
  if (b === undefined) return true;
  if (typeof a === 'number' && typeof b === 'number') return a > b;
  if (typeof a === 'number' || typeof a === 'string') {
    const na = Number(a);
    const nb = Number(b);
    if (
      typeof b === 'number' ||
      (Number.isFinite(na) && Number.isFinite(nb) && String(a).trim() !== '' && String(b).trim() !== '')
    )
      return na > nb;
    return String(a) > String(b);
  }
  return true;
}

/** One run in progress: what every phase reads, and the summary and state it moves forward. */
interface Run {
  c: SourceContract;
  d: PullDeps;
  run: string;
  http: SourceHttp;
  sum: PullSummary;
  /** Pages fetched so far against limits.pagesPerRun (shared by every endpoint). */
  budget: { pages: number; limit: number };
  handle: StateHandle;
  /** An explicit window (a backfill) was asked for. */
  explicit: boolean;
}

/** A unit of an endpoint's pull: a window, or the whole run; its parts share one folder. */
interface Unit {
  unit: string;
  params: Record<string, string>;
  window?: { start: number; end: number };
}

/** The incremental field's bounds within one endpoint: records at or below `lower` are skipped. */
interface FieldBound {
  lower: string | number | undefined;
  max: string | number | undefined;
}

export async function runPull(c: SourceContract, req: PullRequest, d: PullDeps): Promise<PullSummary> {
  const started = d.clock.now();
  const r = await startRun(c, req, d);
  try {
    for (const ep of c.endpoints) if (!(await pullEndpoint(r, ep, req))) break;
  } finally {
    r.sum.requests = r.http.requests;
    r.sum.retries = r.http.retries;
    r.sum.bytes = r.http.bytes;
    r.sum.durationMs = d.clock.now() - started;
  }
  return r.sum;
}

async function startRun(c: SourceContract, req: PullRequest, d: PullDeps): Promise<Run> {
  const run = safeRunId(req.run);
  const explicit = req.from !== undefined || req.to !== undefined;
  if (explicit && !c.endpoints.some((e) => e.window))
    throw permanent('BAD_EVENT', `source "${c.source}" has no windowed endpoint: --from/--to do not apply`);
  const http = new SourceHttp({
    contract: c,
    http: d.http,
    ...(d.secret ? { secret: d.secret } : {}),
    clock: d.clock,
    log: d.log,
    ...(d.random ? { random: d.random } : {}),
  });
  const sum: PullSummary = {
    source: c.source,
    run,
    pages: 0,
    records: 0,
    objects: 0,
    existingObjects: 0,
    skippedRecords: 0,
    datasets: {},
    windows: [],
    requests: 0,
    retries: 0,
    bytes: 0,
    durationMs: 0,
  };
  const handle = await readState(d.store, d.stateBucket, c.source);
  return { c, d, run, http, sum, budget: { pages: 0, limit: c.limits.pagesPerRun }, handle, explicit };
}

async function commitState(r: Run, ep: Endpoint, next: EndpointState): Promise<void> {
  r.handle = await advanceState(r.d.store, r.d.stateBucket, r.handle, {
    source: r.c.source,
    endpoints: { ...r.handle.state.endpoints, [ep.name]: next },
    updatedAt: iso(r.d.clock.now()),
    run: r.run,
  });
}

/** Every unit of one endpoint, in order. False when limits.pagesPerRun stopped the run before a window. */
async function pullEndpoint(r: Run, ep: Endpoint, req: PullRequest): Promise<boolean> {
  const st: EndpointState = { ...(r.handle.state.endpoints[ep.name] ?? {}) };
  const ds = (r.sum.datasets[ep.dataset] ??= { records: 0, objects: [], written: 0 });
  const bound: FieldBound = { lower: undefined, max: undefined };
  if (ep.incremental.type === 'field') bound.lower = bound.max = st.max;
  for (const u of unitsOf(r, ep, req, st)) {
    if (u.window && r.budget.pages >= r.budget.limit) {
      r.sum.stoppedAt = `${ep.name} ${u.unit}`;
      r.d.log.warn('pull stopped at limits.pagesPerRun; the next run continues', {
        source: r.c.source,
        endpoint: ep.name,
        next: u.unit,
      });
      return false;
    }
    const got = await pullUnit(r, ep, u, bound);
    r.sum.pages += got.pages;
    r.sum.records += got.records;
    r.sum.objects += got.parts.written.length;
    r.sum.existingObjects += got.parts.existing.length;
    ds.records += got.records;
    ds.written += got.parts.written.length;
    ds.objects.push(...got.parts.written, ...got.parts.existing);
    if (u.window) {
      r.sum.windows.push(u.unit);
      await advanceWindow(r, ep, st, u.window);
    }
  }
  if (ep.incremental.type === 'field' && bound.max !== undefined && bound.max !== bound.lower) {
    st.max = bound.max;
    await commitState(r, ep, st);
  }
  return true;
}

/** The windows to pull (explicit, or from the state's window end up to now), or one unit for the run. */
function unitsOf(r: Run, ep: Endpoint, req: PullRequest, st: EndpointState): Unit[] {
  const w = ep.window;
  if (!w) return [{ unit: `run-${r.run}`, params: {} }];
  const now = r.d.clock.now();
  let list: { start: number; end: number }[];
  if (r.explicit) {
    const from = parseTime(req.from ?? w.start, 'from');
    // --to is inclusive for date windows (like data.gov.gr's date_to): the day itself is pulled.
    const to = req.to ? parseTime(req.to, 'to') + (/^\d{4}-\d{2}-\d{2}$/.test(req.to) ? DAY : 0) : now;
    if (to <= from) throw permanent('BAD_EVENT', `empty window: ${req.from} → ${req.to}`);
    list = windowsBetween(w.stepMs, from, to, true);
  } else {
    const from = parseTime(st.windowEnd ?? w.start, 'state windowEnd');
    list = windowsBetween(w.stepMs, from, now, false);
  }
  return list.map((x) => ({
    unit: windowUnit(w, x.start, x.end),
    params: windowParams(w, x.start, x.end),
    window: x,
  }));
}

/** After a window's parts are committed: coverage only grows contiguously (a backfill past a gap does not skip it). */
async function advanceWindow(
  r: Run,
  ep: Endpoint,
  st: EndpointState,
  w: { start: number; end: number },
): Promise<void> {
  const cur = st.windowEnd ? Date.parse(st.windowEnd) : parseTime(ep.window?.start ?? iso(0), 'start');
  if (ep.incremental.type === 'window' && w.start <= cur && w.end > cur) {
    st.windowEnd = iso(w.end);
    await commitState(r, ep, st);
  }
}

/** Every page of one unit into its parts; nothing is committed under the open part's name on failure. */
async function pullUnit(
  r: Run,
  ep: Endpoint,
  u: Unit,
  bound: FieldBound,
): Promise<{ pages: number; records: number; parts: PartsResult }> {
  const { c, d } = r;
  const inc = ep.incremental;
  const params = { ...u.params };
  if (inc.type === 'field' && inc.param && bound.lower !== undefined) params[inc.param] = String(bound.lower);
  const writer = new PartWriter(
    d.store,
    d.rawBucket,
    unitPrefix(ep.dataset, c.source, u.unit),
    c.limits.recordsPerPart,
    {
      source: c.source,
      endpoint: ep.name,
      run: r.run,
      ...(u.window ? { window_from: iso(u.window.start), window_to: iso(u.window.end) } : {}),
    },
    d.gzipLevel,
  );
  let pages = 0;
  let records = 0;
  const omit = ep.omit.map((f) => f.split('.'));
  const unchanged = omit.length === 0 && inc.type !== 'field';
  try {
    for await (const page of paginate({
      endpoint: ep,
      source: c.source,
      baseUrl: c.baseUrl,
      params,
      budget: r.budget,
      // A page written unchanged is taken as NDJSON cut from the response, not parsed record by record.
      fetch: (url) => r.http.getJson(url, ep.name, ep.method, unchanged ? ep.records : undefined),
    })) {
      pages++;
      records += await writePage(r, ep, writer, page, omit, bound);
      d.onProgress?.({
        endpoint: ep.name,
        unit: u.unit,
        pages: r.sum.pages + pages,
        records: r.sum.records + records,
      });
    }
  } catch (err) {
    await writer.abort(err as Error);
    throw err;
  }
  return { pages, records, parts: await writer.finish() };
}

/** One page into the open part: records at or below the incremental bound skipped, omitted fields removed. */
async function writePage(
  r: Run,
  ep: Endpoint,
  writer: PartWriter,
  page: Page,
  omit: string[][],
  bound: FieldBound,
): Promise<number> {
  if (page.ndjson) {
    await writer.addText(page.ndjson, page.count);
    return page.count;
  }
  const inc = ep.incremental;
  const recs = inc.type === 'field' ? keepNewer(r, page.records, inc.field, bound) : page.records;
  for (const rec of recs) for (const f of omit) omitPath(rec, f);
  await writer.add(recs);
  return recs.length;
}

/** The records above the bound (the same array when none is skipped); the bound's max follows them. */
function keepNewer(r: Run, recs: unknown[], field: string, bound: FieldBound): unknown[] {
  let kept: unknown[] | undefined;
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i];
    const v = getPath(rec, field);
    if (v !== undefined && v !== null && !greater(v, bound.lower)) {
      r.sum.skippedRecords++;
      kept ??= recs.slice(0, i);
      continue;
    }
    if ((typeof v === 'number' || typeof v === 'string') && greater(v, bound.max)) bound.max = v;
    kept?.push(rec);
  }
  return kept ?? recs;
}
