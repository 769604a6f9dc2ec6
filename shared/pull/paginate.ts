/**
 * Pagination: the pages of one endpoint (within one window), in order, the next one fetched while
 * the caller writes the current one (at most two pages in memory). Every style stops by itself; a cursor or next link that repeats, and a page count
 * over the run's limit, stop the run with a clear error instead of looping.
 */
import { createHash } from 'node:crypto';
import { permanent } from '../errors';
import type { Endpoint, Pagination } from './contract';
import type { JsonPage } from './fetch';

export interface Page {
  /** The parsed records; empty when they came as `ndjson`. */
  records: unknown[];
  count: number;
  /** The records as NDJSON bytes, cut from the response (see ndjson.ts), when the fetch gave them so. */
  ndjson?: Buffer;
  /** The page's URL as it may be shown (secret masked). */
  url: string;
  bytes: number;
}

export interface PaginateOptions {
  endpoint: Endpoint;
  source: string;
  baseUrl: string;
  /** Extra query parameters (window bounds, incremental lower bound). */
  params: Record<string, string>;
  fetch: (url: URL) => Promise<JsonPage>;
  /** Pages left in this run; throws SOURCE_LIMIT past it. */
  budget: { pages: number; limit: number };
}

/** `a.b.c` inside a parsed JSON value. */
export function getPath(v: unknown, dotted: string): unknown {
  if (dotted === '') return v;
  let cur = v;
  for (const k of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Removes a dotted field from a record (in place); arrays along the path are walked. */
export function omitPath(v: unknown, parts: string[]): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) omitPath(x, parts);
    return;
  }
  const [head, ...rest] = parts;
  if (head === undefined) return;
  const o = v as Record<string, unknown>;
  if (rest.length === 0) delete o[head];
  else omitPath(o[head], rest);
}

/** RFC 8288: the target of `rel="next"` in a Link header, if any. */
export function linkNext(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const m of header.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]+)*)/g)) {
    const params = m[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) return m[1];
  }
  return undefined;
}

export function endpointUrl(baseUrl: string, ep: Endpoint, params: Record<string, string>): URL {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : baseUrl + '/');
  const u = new URL(ep.path.replace(/^\//, ''), base);
  for (const [k, v] of Object.entries({ ...ep.query, ...params })) u.searchParams.set(k, v);
  return u;
}

/** One fetched page and what pagination took from its body (`next`), before the body was let go. */
interface Fetched {
  page: Page;
  next: unknown;
  /** Final URL with the secret, to resolve relative next links against. */
  rawUrl: string;
}

/** A pagination style: what to take from each body, and the URL of the page after one (undefined: the last). */
interface Style {
  first: URL;
  pick(body: unknown, res: JsonPage): unknown;
  after(got: Fetched): URL | undefined;
}

/** What every style shares: where errors point, the URL builder, the repeat guard and the page fetch. */
interface Ctx {
  o: PaginateOptions;
  ep: Endpoint;
  where: string;
  url(extra: Record<string, string>): URL;
  bad(message: string): Error;
  /** Throws when a key (cursor, next link) comes back: pages that never end. */
  guard(key: string, what: string): void;
}

function context(o: PaginateOptions): Ctx {
  const ep = o.endpoint;
  const where = `source "${o.source}" endpoint "${ep.name}"`;
  const seen = new Set<string>();
  const bad = (message: string): Error =>
    permanent('SOURCE_BAD_RESPONSE', `${where}: ${message}`, {
      details: { source: o.source, endpoint: ep.name },
    });
  return {
    o,
    ep,
    where,
    url: (extra) => endpointUrl(o.baseUrl, ep, { ...o.params, ...extra }),
    bad,
    guard(key, what) {
      const h = createHash('sha1').update(key).digest('base64');
      if (seen.has(h))
        throw bad(`the ${what} repeats after ${seen.size} pages; stopped (pages that never end)`);
      seen.add(h);
    },
  };
}

/**
 * One page: its records and what pagination needs from the body (`pick`), taken at once so that
 * nothing holds the parsed body while the caller writes the page — a body that outlives its page is
 * promoted to V8's old space, and the heap then grows with the run.
 */
async function fetchPage(x: Ctx, url: URL, pick: Style['pick']): Promise<Fetched> {
  const { o, ep } = x;
  if (o.budget.pages >= o.budget.limit)
    throw permanent(
      'SOURCE_LIMIT',
      `${x.where}: more than ${o.budget.limit} pages in one run (limits.pagesPerRun)`,
      {
        details: { source: o.source, endpoint: ep.name },
      },
    );
  o.budget.pages++;
  const res = await o.fetch(url);
  const recs = getPath(res.body, ep.records);
  if (!Array.isArray(recs))
    throw permanent(
      'SOURCE_BAD_RESPONSE',
      `${x.where}: ${res.url} has no records array at ${ep.records ? `"${ep.records}"` : 'the top level'} (got ${recs === null ? 'null' : typeof recs})`,
      { details: { source: o.source, endpoint: ep.name, records: ep.records } },
    );
  return {
    page: {
      records: recs,
      count: res.split ? res.split.count : recs.length,
      ...(res.split ? { ndjson: res.split.ndjson } : {}),
      url: res.url,
      bytes: res.bytes,
    },
    next: pick(res.body, res),
    rawUrl: res.rawUrl,
  };
}

const none = (x: Ctx): Style => ({ first: x.url({}), pick: () => undefined, after: () => undefined });

function pageNumbers(x: Ctx, p: Extract<Pagination, { type: 'page' }>): Style {
  let n = p.startPage;
  const url = (): URL =>
    x.url({ [p.pageParam]: String(n), ...(p.limitParam ? { [p.limitParam]: String(p.limit) } : {}) });
  return {
    first: url(),
    pick: (body) => (p.totalPagesPath ? Number(getPath(body, p.totalPagesPath)) : NaN),
    after(got) {
      const count = got.page.count;
      const totalPages = got.next as number;
      if (count === 0) return undefined;
      if (Number.isFinite(totalPages) ? n - p.startPage + 1 >= totalPages : p.limitParam && count < p.limit)
        return undefined;
      n++;
      return url();
    },
  };
}

function offsets(x: Ctx, p: Extract<Pagination, { type: 'offset' }>): Style {
  let offset = 0;
  const url = (): URL => x.url({ [p.offsetParam]: String(offset), [p.limitParam]: String(p.limit) });
  return {
    first: url(),
    pick: (body) => (p.totalPath ? Number(getPath(body, p.totalPath)) : NaN),
    after(got) {
      const count = got.page.count;
      const total = got.next as number;
      offset += count;
      if (count === 0 || (Number.isFinite(total) ? offset >= total : count < p.limit)) return undefined;
      return url();
    },
  };
}

function cursors(x: Ctx, p: Extract<Pagination, { type: 'cursor' }>): Style {
  const url = (cursor?: string): URL => {
    const extra: Record<string, string> = p.limitParam && p.limit ? { [p.limitParam]: String(p.limit) } : {};
    if (cursor !== undefined) extra[p.cursorParam] = cursor;
    return x.url(extra);
  };
  return {
    first: url(),
    pick: (body) => getPath(body, p.cursorPath),
    after(got) {
      const next = got.next;
      if (next === undefined || next === null || next === '' || next === false) return undefined;
      if (typeof next !== 'string' && typeof next !== 'number')
        throw x.bad(`the cursor at "${p.cursorPath}" is not a string or number`);
      const cursor = String(next);
      x.guard(cursor, 'cursor');
      return url(cursor);
    },
  };
}

function nextLinks(x: Ctx, p: Extract<Pagination, { type: 'next' | 'link' }>): Style {
  const first = x.url({});
  x.guard(first.href, 'next link');
  return {
    first,
    pick: (body, res) => (p.type === 'next' ? getPath(body, p.nextPath) : linkNext(res.headers.link)),
    after(got) {
      const next = got.next;
      if (next === undefined || next === null || next === '') return undefined;
      if (typeof next !== 'string') throw x.bad('the next link is not a string');
      let u: URL;
      try {
        u = new URL(next, got.rawUrl);
      } catch {
        throw x.bad('the next link is not a URL');
      }
      // Credentials go only to the source's own origin.
      if (u.origin !== new URL(x.o.baseUrl).origin)
        throw x.bad(`the next link points to another host (${u.origin}); not followed`);
      x.guard(u.href, 'next link');
      return u;
    },
  };
}

function styleOf(x: Ctx): Style {
  const p = x.ep.pagination;
  switch (p.type) {
    case 'none':
      return none(x);
    case 'page':
      return pageNumbers(x, p);
    case 'offset':
      return offsets(x, p);
    case 'cursor':
      return cursors(x, p);
    case 'next':
    case 'link':
      return nextLinks(x, p);
  }
}

/** A fetch started ahead of its await: its failure surfaces there, not as an unhandled rejection. */
function ahead<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * The pages of one endpoint (within one window). The next page is requested (and parsed) while the
 * caller writes this one — the source's latency and our CPU overlap — so at most two pages are in
 * memory. It is requested only once this page says there is one, so the requests, their order and
 * the page budget are those of a page-at-a-time loop; a failure surfaces after this page is handed over.
 */
export async function* paginate(o: PaginateOptions): AsyncGenerator<Page> {
  const x = context(o);
  const style = styleOf(x);
  let pending: Promise<Fetched> | undefined = ahead(fetchPage(x, style.first, style.pick));
  while (pending) {
    const got: Fetched = await pending;
    const url = style.after(got);
    pending = url ? ahead(fetchPage(x, url, style.pick)) : undefined;
    if (got.page.count) yield got.page;
  }
}
