/**
 * Answers the dashboard's panels: validates the filters, runs the panel's fixed query with the values
 * bound, converts the rows to what the chart expects, flags problem rows, and caches each answer until
 * one of the Gold tables it reads changes (or for a few seconds, for panels over ops/events tables and
 * files). Read-only: it never writes to the warehouse.
 */
import type { Dialect } from '../warehouse/dialect';
import type { QueryParams } from '../warehouse/engine';
import { panel, PANELS, type Panel, type ProblemRule } from './charts';
import type { HealthSource, Row } from './health';
import { page, pagePanels, PAGES } from './pages';
import { bindParams, DashboardRequestError, paramsKey, type BoundParams } from './params';

/** What the dashboard needs from the warehouse (the WarehouseEngine port satisfies it). */
export interface DashboardWarehouse {
  readonly dialect: Dialect;
  query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]>;
}

export interface PanelAnswer {
  id: string;
  rows: Row[];
  /** Why there are no rows (a missing table, nothing loaded yet, a filter that matches nothing). */
  empty?: string;
  /** The panel could not be answered (e.g. the service account may not read that table). */
  error?: string;
  version: string;
  cached: boolean;
  ms: number;
}

export interface DashboardOptions {
  warehouse: DashboardWarehouse;
  health?: HealthSource;
  /** Event tables (`events.<table>`) of the contracts, for the overview's events panel. */
  eventTables?: string[];
  now?: () => number;
  /** How long a set of table versions is reused before asking the warehouse again. */
  versionTtlMs?: number;
  /** How long answers of panels without versioned sources are reused. */
  ttlMs?: number;
}

const MISSING_TABLE =
  /(warehouse file does not exist yet|Table with name \S+ does not exist|Catalog Error: Table|Not found: Table|Not found: Dataset|does not exist!?\s*$)/im;

/** `2024-05-26 21:32:00+00` (DuckDB/BigQuery text of a TIMESTAMP) → epoch ms. */
export function timestampMs(s: string): number {
  const iso = s
    .trim()
    .replace(' ', 'T')
    .replace(/([+-]\d\d)$/, '$1:00')
    .replace(/ UTC$/, 'Z');
  return Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);
}

export class DashboardService {
  private readonly cache = new Map<string, { version: string; at: number; rows: Row[]; empty?: string }>();
  private versions?: { at: number; map: Promise<Map<string, string> | undefined> };
  private readonly now: () => number;

  constructor(private readonly opts: DashboardOptions) {
    this.now = opts.now ?? Date.now;
  }

  get dialect(): Dialect {
    return this.opts.warehouse.dialect;
  }

  /** The catalogue the browser renders from: pages, filters, panels (no SQL). */
  catalogue(): unknown {
    return {
      pages: PAGES.map((p) => ({
        ...p,
        filters: p.filters.map((f) => ({ name: f.name, choice: Boolean(f.optionsSql) })),
      })),
      panels: PANELS.map((p) => ({
        id: p.id,
        page: p.page,
        title: p.title,
        description: p.description,
        fields: p.fields,
        spec: p.spec,
        params: p.params,
        empty: p.empty,
      })),
    };
  }

  /** Table versions (model → last change), shared by the requests of one page load. */
  private tableVersions(): Promise<Map<string, string> | undefined> {
    const ttl = this.opts.versionTtlMs ?? 250;
    if (this.versions && this.now() - this.versions.at < ttl) return this.versions.map;
    const d = this.dialect;
    const sql =
      d.name === 'bigquery'
        ? // Table metadata of the Gold dataset: readable with read access to Gold alone.
          `SELECT CONCAT('gold.', table_id) AS t, CAST(last_modified_time AS STRING) AS v FROM ${d.table({ layer: 'gold', name: '__TABLES__' })}`
        : `SELECT model AS t, CAST(MAX(finished_at) AS VARCHAR) || '/' || CAST(COUNT(*) AS VARCHAR) AS v FROM ${d.table({ layer: 'ops', name: 'model_runs' })} GROUP BY model`;
    const map = this.opts.warehouse
      .query<{ t: string; v: unknown }>(sql)
      .then((rows) => new Map(rows.map((r) => [r.t, String(r.v)])))
      .catch(() => undefined);
    this.versions = { at: this.now(), map };
    return map;
  }

  private async versionOf(sources: readonly string[]): Promise<string | undefined> {
    if (!sources.length) return undefined;
    const v = await this.tableVersions();
    if (!v) return undefined;
    return sources.map((s) => `${s}@${v.get(s) ?? '-'}`).join('|');
  }

  /** A version of everything a page shows: changes when new data lands in its tables. */
  async pageVersion(pageId: string, query: URLSearchParams = new URLSearchParams()): Promise<string> {
    const p = page(pageId);
    if (!p) throw new DashboardRequestError(`unknown page ${JSON.stringify(pageId.slice(0, 40))}`);
    bindParams(query, [], `/api/version/${p.id}`);
    const sources = [...new Set(pagePanels(p.id).flatMap((x) => x.sources))].sort();
    return (await this.versionOf(sources)) ?? `t${Math.floor(this.now() / (this.opts.ttlMs ?? 2000))}`;
  }

  /** Options of a page's choice filters. */
  async filterOptions(pageId: string, query: URLSearchParams): Promise<Record<string, string[]>> {
    const p = page(pageId);
    if (!p) throw new DashboardRequestError(`unknown page ${JSON.stringify(pageId.slice(0, 40))}`);
    bindParams(query, [], `/api/filters/${p.id}`);
    const out: Record<string, string[]> = {};
    for (const f of p.filters) {
      if (!f.optionsSql) continue;
      const answer = await this.cached(
        `filters:${p.id}:${f.name}`,
        f.optionsSource ? [f.optionsSource] : [],
        async () => {
          const rows = await this.opts.warehouse.query<{ v: unknown }>(
            this.dialect.render(f.optionsSql as string, { where: `filter ${f.name}` }),
          );
          return { rows: rows.map((r) => ({ v: r.v })) };
        },
      ).catch(() => ({ rows: [] as Row[] }));
      out[f.name] = answer.rows.map((r) => String(r.v)).filter((v) => v !== 'null');
    }
    return out;
  }

  /** The answer of one panel for the request's filters. Throws DashboardRequestError (400) on bad input. */
  async answer(id: string, query: URLSearchParams = new URLSearchParams()): Promise<PanelAnswer> {
    const started = this.now();
    const p = panel(id);
    if (!p) throw new DashboardRequestError(`unknown chart ${JSON.stringify(id.slice(0, 60))}`);
    const params = bindParams(query, p.params, `chart ${p.id}`);
    try {
      const a = await this.cached(`${p.id}?${paramsKey(params)}`, p.sources, () => this.compute(p, params));
      return {
        id: p.id,
        rows: a.rows,
        ...(a.empty ? { empty: a.empty } : !a.rows.length ? { empty: p.empty } : {}),
        version: a.version,
        cached: a.cached,
        ms: this.now() - started,
      };
    } catch (err) {
      const msg = (err as Error).message.split('\n')[0] ?? String(err);
      return {
        id: p.id,
        rows: [],
        // The deployed dashboard's service account reads the Gold dataset only.
        error: /access denied|permission|forbidden/i.test(msg)
          ? `not readable with the dashboard's access (it reads the Gold dataset only): ${msg}`
          : msg,
        version: '',
        cached: false,
        ms: this.now() - started,
      };
    }
  }

  private async cached(
    key: string,
    sources: readonly string[],
    compute: () => Promise<{ rows: Row[]; empty?: string }>,
  ): Promise<{ rows: Row[]; empty?: string; version: string; cached: boolean }> {
    const v = await this.versionOf(sources);
    const hit = this.cache.get(key);
    const ttl = this.opts.ttlMs ?? 2000;
    if (hit && (v !== undefined ? hit.version === v : this.now() - hit.at < ttl))
      return { ...hit, cached: true };
    const res = await compute();
    const version = v ?? `t${this.now()}`;
    const entry = { version, at: this.now(), rows: res.rows, ...(res.empty ? { empty: res.empty } : {}) };
    if (this.cache.size > 2000) this.cache.clear();
    this.cache.set(key, entry);
    return { ...entry, cached: false };
  }

  private async compute(p: Panel, params: BoundParams): Promise<{ rows: Row[]; empty?: string }> {
    let rows: Row[];
    if (p.kind === 'health') rows = await this.health(p.health);
    else {
      try {
        rows = await this.opts.warehouse.query<Row>(
          this.dialect.render(p.sql, { where: `chart ${p.id}` }),
          params,
        );
      } catch (err) {
        const msg = (err as Error).message;
        if (MISSING_TABLE.test(msg)) return { rows: [], empty: `${p.empty} (its table does not exist yet)` };
        throw err;
      }
    }
    return { rows: rows.map((r) => shape(p, r)) };
  }

  private async health(kind: 'ingest' | 'quarantine' | 'parked' | 'events' | 'pulls'): Promise<Row[]> {
    if (kind === 'events') return this.eventsHealth();
    const h = this.opts.health;
    if (!h) throw new Error('not available here (no access to the buckets)');
    return h[kind]();
  }

  private async eventsHealth(): Promise<Row[]> {
    const out: Row[] = [];
    for (const table of this.opts.eventTables ?? []) {
      const sql = this.dialect.render(
        `SELECT COUNT(*) AS events, @cast(MAX(event_time), string) AS newest FROM @ref(events.${table})`,
        { where: `events ${table}` },
      );
      const r = await this.opts.warehouse
        .query<{ events: unknown; newest: unknown }>(sql)
        .catch((err: Error) => {
          if (MISSING_TABLE.test(err.message)) return [{ events: 0, newest: null }];
          throw err;
        });
      const newest = r[0]?.newest == null ? null : String(r[0].newest);
      const ms = newest ? timestampMs(newest) : NaN;
      out.push({
        event_type: table,
        events: Number(r[0]?.events ?? 0),
        newest,
        lag: Number.isFinite(ms) ? humanDuration(Math.max(0, this.now() - ms)) : null,
      });
    }
    return out;
  }
}

/** Numbers as numbers, dates as `YYYY-MM-DD`, only the panel's fields, and the problem flag. */
export function shape(p: Panel, r: Row): Row {
  const out: Row = {};
  for (const f of p.fields) {
    const v = r[f.name];
    if (v === null || v === undefined) out[f.name] = null;
    else if (f.type === 'quantitative') out[f.name] = typeof v === 'number' ? v : Number(v);
    else if (f.type === 'temporal') out[f.name] = String(v).slice(0, 10);
    else out[f.name] = typeof v === 'object' ? JSON.stringify(v) : readableTime(String(v));
  }
  const problem = p.problem && isProblem(p.problem, out);
  if (problem) out._problem = p.problem?.text;
  return out;
}

/** `2024-05-26 21:32:00.123+00` / ISO → `2024-05-26 21:32:00 UTC`; anything else unchanged. */
function readableTime(s: string): string {
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(\+00(:00)?|Z| UTC)$/.exec(s);
  return m ? `${m[1] as string} ${m[2] as string} UTC` : s;
}

/** A duration for people: `42 s`, `7 min`, `5 h`, `3 d`. */
export function humanDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400).toLocaleString('en-US')} d`;
}

function isProblem(rule: ProblemRule, r: Row): boolean {
  const v = r[rule.field];
  if (rule.notEqual !== undefined) return v !== rule.notEqual;
  if (rule.equal !== undefined) return v === rule.equal;
  return typeof v === 'number' && v > 0;
}
