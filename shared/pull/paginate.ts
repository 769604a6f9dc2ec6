/**
 * Pagination: the pages of one endpoint (within one window), one at a time — the caller holds one
 * page in memory. Every style stops by itself; a cursor or next link that repeats, and a page count
 * over the run's limit, stop the run with a clear error instead of looping.
 */
import { createHash } from 'node:crypto';
import { permanent } from '../errors';
import type { Endpoint } from './contract';
import type { JsonPage } from './fetch';

export interface Page {
  records: unknown[];
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

export async function* paginate(o: PaginateOptions): AsyncGenerator<Page> {
  const ep = o.endpoint;
  const p = ep.pagination;
  const where = `source "${o.source}" endpoint "${ep.name}"`;
  const seen = new Set<string>();
  const guard = (key: string, what: string): void => {
    const h = createHash('sha1').update(key).digest('base64');
    if (seen.has(h))
      throw permanent(
        'SOURCE_BAD_RESPONSE',
        `${where}: the ${what} repeats after ${seen.size} pages; stopped (pages that never end)`,
        {
          details: { source: o.source, endpoint: ep.name },
        },
      );
    seen.add(h);
  };
  /**
   * One page: its records and what pagination needs from the body (`pick`), taken at once so that
   * nothing holds the parsed body while the caller writes the page — a body that outlives its page is
   * promoted to V8's old space, and the heap then grows with the run.
   */
  const get = async <T>(
    url: URL,
    pick: (body: unknown, page: JsonPage) => T,
  ): Promise<{ page: Page; next: T; rawUrl: string }> => {
    if (o.budget.pages >= o.budget.limit)
      throw permanent(
        'SOURCE_LIMIT',
        `${where}: more than ${o.budget.limit} pages in one run (limits.pagesPerRun)`,
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
        `${where}: ${res.url} has no records array at ${ep.records ? `"${ep.records}"` : 'the top level'} (got ${recs === null ? 'null' : typeof recs})`,
        {
          details: { source: o.source, endpoint: ep.name, records: ep.records },
        },
      );
    return {
      page: { records: recs, url: res.url, bytes: res.bytes },
      next: pick(res.body, res),
      rawUrl: res.rawUrl,
    };
  };
  const url0 = (extra: Record<string, string>): URL => endpointUrl(o.baseUrl, ep, { ...o.params, ...extra });
  const none = (): undefined => undefined;

  switch (p.type) {
    case 'none': {
      yield (await get(url0({}), none)).page;
      return;
    }
    case 'page': {
      for (let n = p.startPage; ; n++) {
        const got = await get(
          url0({ [p.pageParam]: String(n), ...(p.limitParam ? { [p.limitParam]: String(p.limit) } : {}) }),
          (body) => (p.totalPagesPath ? Number(getPath(body, p.totalPagesPath)) : NaN),
        );
        const count = got.page.records.length;
        const totalPages = got.next;
        if (count) yield got.page;
        if (Number.isFinite(totalPages)) {
          if (n - p.startPage + 1 >= totalPages) return;
          if (count === 0) return;
        } else if (count === 0 || (p.limitParam && count < p.limit)) return;
      }
    }
    case 'offset': {
      for (let offset = 0; ;) {
        const got = await get(
          url0({ [p.offsetParam]: String(offset), [p.limitParam]: String(p.limit) }),
          (body) => (p.totalPath ? Number(getPath(body, p.totalPath)) : NaN),
        );
        const count = got.page.records.length;
        const total = got.next;
        if (count) yield got.page;
        offset += count;
        if (count === 0) return;
        if (Number.isFinite(total) ? offset >= total : count < p.limit) return;
      }
    }
    case 'cursor': {
      let cursor: string | undefined;
      for (;;) {
        const extra: Record<string, string> =
          p.limitParam && p.limit ? { [p.limitParam]: String(p.limit) } : {};
        if (cursor !== undefined) extra[p.cursorParam] = cursor;
        const got = await get(url0(extra), (body) => getPath(body, p.cursorPath));
        const next = got.next;
        if (got.page.records.length) yield got.page;
        if (next === undefined || next === null || next === '' || next === false) return;
        if (typeof next !== 'string' && typeof next !== 'number')
          throw permanent(
            'SOURCE_BAD_RESPONSE',
            `${where}: the cursor at "${p.cursorPath}" is not a string or number`,
            {
              details: { source: o.source, endpoint: ep.name },
            },
          );
        cursor = String(next);
        guard(cursor, 'cursor');
      }
    }
    case 'next':
    case 'link': {
      let url = url0({});
      guard(url.href, 'next link');
      for (;;) {
        const got = await get(url, (body, res) =>
          p.type === 'next' ? getPath(body, p.nextPath) : linkNext(res.headers.link),
        );
        const next = got.next;
        const base = got.rawUrl;
        if (got.page.records.length) yield got.page;
        if (next === undefined || next === null || next === '') return;
        if (typeof next !== 'string')
          throw permanent('SOURCE_BAD_RESPONSE', `${where}: the next link is not a string`, {
            details: { source: o.source, endpoint: ep.name },
          });
        let u: URL;
        try {
          u = new URL(next, base);
        } catch {
          throw permanent('SOURCE_BAD_RESPONSE', `${where}: the next link is not a URL`, {
            details: { source: o.source, endpoint: ep.name },
          });
        }
        // Credentials go only to the source's own origin.
        if (u.origin !== new URL(o.baseUrl).origin)
          throw permanent(
            'SOURCE_BAD_RESPONSE',
            `${where}: the next link points to another host (${u.origin}); not followed`,
            {
              details: { source: o.source, endpoint: ep.name },
            },
          );
        guard(u.href, 'next link');
        url = u;
      }
    }
  }
}
