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
import { getPath, omitPath, paginate } from './paginate';
import { PartWriter, unitPrefix } from './parts';
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

export async function runPull(c: SourceContract, req: PullRequest, d: PullDeps): Promise<PullSummary> {
  const started = d.clock.now();
  const run = safeRunId(req.run);
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
  const explicit = req.from !== undefined || req.to !== undefined;
  if (explicit && !c.endpoints.some((e) => e.window))
    throw permanent('BAD_EVENT', `source "${c.source}" has no windowed endpoint: --from/--to do not apply`);
  const budget = { pages: 0, limit: c.limits.pagesPerRun };
  let handle: StateHandle = await readState(d.store, d.stateBucket, c.source);

  const commitState = async (ep: Endpoint, next: EndpointState): Promise<void> => {
    handle = await advanceState(d.store, d.stateBucket, handle, {
      source: c.source,
      endpoints: { ...handle.state.endpoints, [ep.name]: next },
      updatedAt: iso(d.clock.now()),
      run,
    });
  };

  try {
    endpoints: for (const ep of c.endpoints) {
      const st: EndpointState = { ...(handle.state.endpoints[ep.name] ?? {}) };
      const ds = (sum.datasets[ep.dataset] ??= { records: 0, objects: [], written: 0 });
      const units: {
        unit: string;
        params: Record<string, string>;
        window?: { start: number; end: number };
      }[] = [];
      if (ep.window) {
        const w = ep.window;
        let list: { start: number; end: number }[];
        if (explicit) {
          const from = parseTime(req.from ?? w.start, 'from');
          // --to is inclusive for date windows (like data.gov.gr's date_to): the day itself is pulled.
          const to = req.to
            ? parseTime(req.to, 'to') + (/^\d{4}-\d{2}-\d{2}$/.test(req.to) ? DAY : 0)
            : d.clock.now();
          if (to <= from) throw permanent('BAD_EVENT', `empty window: ${req.from} → ${req.to}`);
          list = windowsBetween(w.stepMs, from, to, true);
        } else {
          const from = parseTime(st.windowEnd ?? w.start, 'state windowEnd');
          list = windowsBetween(w.stepMs, from, d.clock.now(), false);
        }
        for (const x of list)
          units.push({
            unit: windowUnit(w, x.start, x.end),
            params: windowParams(w, x.start, x.end),
            window: x,
          });
      } else units.push({ unit: `run-${run}`, params: {} });

      const inc = ep.incremental;
      const lower = inc.type === 'field' ? st.max : undefined;
      let max = lower;
      for (const u of units) {
        if (u.window && budget.pages >= budget.limit) {
          sum.stoppedAt = `${ep.name} ${u.unit}`;
          d.log.warn('pull stopped at limits.pagesPerRun; the next run continues', {
            source: c.source,
            endpoint: ep.name,
            next: u.unit,
          });
          break endpoints;
        }
        const params = { ...u.params };
        if (inc.type === 'field' && inc.param && lower !== undefined) params[inc.param] = String(lower);
        const prefix = unitPrefix(ep.dataset, c.source, u.unit);
        const writer = new PartWriter(
          d.store,
          d.rawBucket,
          prefix,
          c.limits.recordsPerPart,
          {
            source: c.source,
            endpoint: ep.name,
            run,
            ...(u.window ? { window_from: iso(u.window.start), window_to: iso(u.window.end) } : {}),
          },
          d.gzipLevel,
        );
        let pages = 0;
        let unitRecords = 0;
        const omit = ep.omit.map((f) => f.split('.'));
        try {
          for await (const page of paginate({
            endpoint: ep,
            source: c.source,
            baseUrl: c.baseUrl,
            params,
            budget,
            fetch: (url) => http.getJson(url, ep.name, ep.method),
          })) {
            pages++;
            let recs = page.records;
            if (inc.type === 'field') {
              const kept: unknown[] = [];
              for (const r of recs) {
                const v = getPath(r, inc.field);
                if (v !== undefined && v !== null && !greater(v, lower)) {
                  sum.skippedRecords++;
                  continue;
                }
                if ((typeof v === 'number' || typeof v === 'string') && greater(v, max)) max = v;
                kept.push(r);
              }
              recs = kept;
            }
            if (omit.length) for (const r of recs) for (const f of omit) omitPath(r, f);
            unitRecords += recs.length;
            // Nothing here uses the page after this await, so only its NDJSON text is alive meanwhile.
            await writer.add(recs);
            d.onProgress?.({
              endpoint: ep.name,
              unit: u.unit,
              pages: sum.pages + pages,
              records: sum.records + unitRecords,
            });
          }
        } catch (err) {
          await writer.abort(err as Error);
          throw err;
        }
        const parts = await writer.finish();
        sum.pages += pages;
        sum.records += unitRecords;
        sum.objects += parts.written.length;
        sum.existingObjects += parts.existing.length;
        ds.records += unitRecords;
        ds.written += parts.written.length;
        ds.objects.push(...parts.written, ...parts.existing);
        if (u.window) {
          sum.windows.push(u.unit);
          // Coverage only grows contiguously: a backfill window past a gap does not skip the gap.
          const cur = st.windowEnd
            ? Date.parse(st.windowEnd)
            : parseTime(ep.window?.start ?? iso(0), 'start');
          if (inc.type === 'window' && u.window.start <= cur && u.window.end > cur) {
            st.windowEnd = iso(u.window.end);
            await commitState(ep, st);
          }
        }
      }
      if (inc.type === 'field' && max !== undefined && max !== lower) {
        st.max = max;
        await commitState(ep, st);
      }
    }
  } finally {
    sum.requests = http.requests;
    sum.retries = http.retries;
    sum.bytes = http.bytes;
    sum.durationMs = d.clock.now() - started;
  }
  return sum;
}
