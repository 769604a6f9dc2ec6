/**
 * Source contracts: one JSON file per API source in `<contractsDir>/sources/<source>.json`
 * (documented in contracts/README.md). Adding a source is adding a file; secrets are never in it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_NAME } from '../contracts/dataset';
import { permanent } from '../errors';
import { parseCron, type Cron } from './cron';

export const SOURCE_NAME = /^[a-z][a-z0-9_]{0,40}$/;

export type Pagination =
  | { type: 'none' }
  /** `?page=N&limit=L`: stops on a short page, or at `totalPagesPath`. */
  | {
      type: 'page';
      pageParam: string;
      limitParam?: string;
      limit: number;
      startPage: number;
      totalPagesPath?: string;
    }
  /** `?skip=N&limit=L` (offset): stops at `totalPath` or on a short page. */
  | { type: 'offset'; offsetParam: string; limitParam: string; limit: number; totalPath?: string }
  /** The next cursor is read from the body (`cursorPath`) and sent as `cursorParam`. */
  | { type: 'cursor'; cursorPath: string; cursorParam: string; limitParam?: string; limit?: number }
  /** The next page's URL is read from the body (absolute or relative). */
  | { type: 'next'; nextPath: string }
  /** RFC 8288 `Link: <…>; rel="next"`. */
  | { type: 'link' };

export interface WindowSpec {
  fromParam: string;
  toParam: string;
  /** Step of one window, in ms (from `"1d"`, `"6h"`, …). */
  stepMs: number;
  /** Parameter format: `date` (YYYY-MM-DD) or `timestamp` (ISO 8601 UTC). */
  format: 'date' | 'timestamp';
  /** The API's `to` is inclusive: send the last day (date) of the window instead of its end. */
  toInclusive: boolean;
  /** First window start when the source has no state yet (YYYY-MM-DD or ISO timestamp). */
  start: string;
}

export type Incremental =
  | { type: 'none' }
  /** The end of the last fully committed window (requires `window`). */
  | { type: 'window' }
  /** The largest value of a record field; records at or below it are skipped, `param` sends it to the API. */
  | { type: 'field'; field: string; param?: string };

export interface Endpoint {
  name: string;
  path: string;
  dataset: string;
  method: 'GET' | 'POST';
  query: Record<string, string>;
  /** Dotted path of the records array inside the body; empty: the body itself is the array. */
  records: string;
  pagination: Pagination;
  window?: WindowSpec;
  incremental: Incremental;
  /** Dotted record fields removed before anything is stored (passwords, card numbers, …). */
  omit: string[];
}

export type Auth =
  | { type: 'none' }
  | { type: 'bearer' }
  | { type: 'token' }
  | { type: 'header'; name: string }
  | { type: 'query'; name: string };

export interface Limits {
  pagesPerRun: number;
  bytesPerResponse: number;
  requestsPerSecond: number;
  /** Records per NDJSON part (a part is closed at the first page boundary past it). */
  recordsPerPart: number;
}

export interface HttpPolicy {
  connectTimeoutMs: number;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxRedirects: number;
}

export interface SourceContract {
  source: string;
  description?: string;
  baseUrl: string;
  auth: Auth;
  schedule?: string;
  cron?: Cron;
  limits: Limits;
  http: HttpPolicy;
  headers: Record<string, string>;
  endpoints: Endpoint[];
  file?: string;
}

export const DEFAULT_LIMITS: Limits = {
  pagesPerRun: 10_000,
  bytesPerResponse: 32 * 1024 ** 2,
  requestsPerSecond: 10,
  recordsPerPart: 100_000,
};

export const DEFAULT_HTTP: HttpPolicy = {
  connectTimeoutMs: 10_000,
  timeoutMs: 60_000,
  maxAttempts: 6,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  maxRedirects: 5,
};

/** Environment variable names of a source: `SMELTER_SOURCE_<NAME>_URL` / `_TOKEN`. */
export const sourceEnv = (source: string): { url: string; token: string } => {
  const up = source.toUpperCase();
  return { url: `SMELTER_SOURCE_${up}_URL`, token: `SMELTER_SOURCE_${up}_TOKEN` };
};

/** `"1d"`, `"12h"`, `"30m"` → ms. */
export function parseStep(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d{1,4})([dhm])$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
  return n > 0 ? n * unit : undefined;
}

function parseBytes(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase().replace('i', '');
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit] ?? 1;
  const n = Math.floor(Number(m[1]) * mult);
  return n > 0 ? n : undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const PARAM = /^[A-Za-z0-9_.\-[\]]{1,100}$/;
const DOTTED = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;
const HEADER = /^[A-Za-z0-9-]{1,100}$/;

/** Collects every problem (`field: what is wrong`) so one run of the validator lists them all. */
class Problems {
  readonly list: string[] = [];
  add(field: string, msg: string): void {
    this.list.push(`${field}: ${msg}`);
  }
  str(
    o: Record<string, unknown>,
    key: string,
    at: string,
    opts: { re?: RegExp; hint?: string } = {},
  ): string | undefined {
    const v = o[key];
    if (typeof v !== 'string' || v.length === 0 || (opts.re && !opts.re.test(v))) {
      this.add(`${at}${key}`, opts.hint ?? 'a non-empty string is required');
      return undefined;
    }
    return v;
  }
  optStr(
    o: Record<string, unknown>,
    key: string,
    at: string,
    opts: { re?: RegExp; hint?: string } = {},
  ): string | undefined {
    return o[key] === undefined ? undefined : this.str(o, key, at, opts);
  }
  int(o: Record<string, unknown>, key: string, at: string, def: number, min: number, max: number): number {
    const v = o[key];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(`${at}${key}`, `an integer in [${min}, ${max}] is required`);
      return def;
    }
    return v;
  }
  num(o: Record<string, unknown>, key: string, at: string, def: number, min: number, max: number): number {
    const v = o[key];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.add(`${at}${key}`, `a number in [${min}, ${max}] is required`);
      return def;
    }
    return v;
  }
  keys(o: Record<string, unknown>, allowed: string[], at: string): void {
    for (const k of Object.keys(o))
      if (!allowed.includes(k))
        this.add(`${at}${k}`, `unknown field (expected one of ${allowed.join(', ')})`);
  }
}

function validatePagination(p: Problems, raw: unknown, at: string): Pagination {
  if (raw === undefined) return { type: 'none' };
  if (!isObj(raw)) {
    p.add(at, 'an object with a "type" is required');
    return { type: 'none' };
  }
  const type = raw.type;
  const param = { re: PARAM, hint: 'a query parameter name is required' };
  switch (type) {
    case 'none':
      p.keys(raw, ['type'], `${at}.`);
      return { type };
    case 'page': {
      p.keys(raw, ['type', 'pageParam', 'limitParam', 'limit', 'startPage', 'totalPagesPath'], `${at}.`);
      const totalPagesPath = p.optStr(raw, 'totalPagesPath', `${at}.`, { re: DOTTED, hint: 'a dotted path' });
      const limitParam = p.optStr(raw, 'limitParam', `${at}.`, param);
      return {
        type,
        pageParam: p.optStr(raw, 'pageParam', `${at}.`, param) ?? 'page',
        ...(limitParam ? { limitParam } : {}),
        limit: p.int(raw, 'limit', `${at}.`, 100, 1, 100_000),
        startPage: p.int(raw, 'startPage', `${at}.`, 1, 0, 1),
        ...(totalPagesPath ? { totalPagesPath } : {}),
      };
    }
    case 'offset': {
      p.keys(raw, ['type', 'offsetParam', 'limitParam', 'limit', 'totalPath'], `${at}.`);
      const totalPath = p.optStr(raw, 'totalPath', `${at}.`, { re: DOTTED, hint: 'a dotted path' });
      return {
        type,
        offsetParam: p.optStr(raw, 'offsetParam', `${at}.`, param) ?? 'offset',
        limitParam: p.optStr(raw, 'limitParam', `${at}.`, param) ?? 'limit',
        limit: p.int(raw, 'limit', `${at}.`, 100, 1, 100_000),
        ...(totalPath ? { totalPath } : {}),
      };
    }
    case 'cursor': {
      p.keys(raw, ['type', 'cursorPath', 'cursorParam', 'limitParam', 'limit'], `${at}.`);
      const limitParam = p.optStr(raw, 'limitParam', `${at}.`, param);
      return {
        type,
        cursorPath:
          p.str(raw, 'cursorPath', `${at}.`, {
            re: DOTTED,
            hint: 'the dotted path of the next cursor in the body is required',
          }) ?? 'cursor',
        cursorParam: p.str(raw, 'cursorParam', `${at}.`, param) ?? 'cursor',
        ...(limitParam ? { limitParam, limit: p.int(raw, 'limit', `${at}.`, 100, 1, 100_000) } : {}),
      };
    }
    case 'next':
      p.keys(raw, ['type', 'nextPath'], `${at}.`);
      return {
        type,
        nextPath:
          p.str(raw, 'nextPath', `${at}.`, {
            re: DOTTED,
            hint: 'the dotted path of the next URL in the body is required',
          }) ?? 'next',
      };
    case 'link':
      p.keys(raw, ['type'], `${at}.`);
      return { type };
    default:
      p.add(`${at}.type`, 'one of none, page, offset, cursor, next, link');
      return { type: 'none' };
  }
}

function validateWindow(p: Problems, raw: unknown, at: string): WindowSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isObj(raw)) {
    p.add(at, 'an object is required');
    return undefined;
  }
  p.keys(raw, ['fromParam', 'toParam', 'step', 'format', 'toInclusive', 'start'], `${at}.`);
  const stepMs = parseStep(raw.step ?? '1d');
  if (stepMs === undefined) p.add(`${at}.step`, 'a period such as "1d", "6h" or "30m" is required');
  const format = raw.format ?? 'date';
  if (format !== 'date' && format !== 'timestamp') p.add(`${at}.format`, 'one of date, timestamp');
  if (format === 'date' && stepMs !== undefined && stepMs % 86_400_000 !== 0)
    p.add(`${at}.step`, 'a date window steps by whole days');
  if (raw.toInclusive !== undefined && typeof raw.toInclusive !== 'boolean')
    p.add(`${at}.toInclusive`, 'true or false');
  const start = p.str(raw, 'start', `${at}.`, { hint: 'the first window start (YYYY-MM-DD) is required' });
  if (start !== undefined && !Number.isFinite(Date.parse(start))) p.add(`${at}.start`, 'a date or timestamp');
  return {
    fromParam: p.optStr(raw, 'fromParam', `${at}.`, { re: PARAM }) ?? 'date_from',
    toParam: p.optStr(raw, 'toParam', `${at}.`, { re: PARAM }) ?? 'date_to',
    stepMs: stepMs ?? 86_400_000,
    format: format === 'timestamp' ? 'timestamp' : 'date',
    toInclusive: raw.toInclusive === true,
    start: start ?? '1970-01-01',
  };
}

function validateIncremental(p: Problems, raw: unknown, at: string, hasWindow: boolean): Incremental {
  if (raw === undefined) return hasWindow ? { type: 'window' } : { type: 'none' };
  if (!isObj(raw)) {
    p.add(at, 'an object with a "type" is required');
    return { type: 'none' };
  }
  switch (raw.type) {
    case 'none':
      return { type: 'none' };
    case 'window':
      if (!hasWindow) p.add(`${at}.type`, '"window" needs a window on the endpoint');
      return { type: 'window' };
    case 'field': {
      p.keys(raw, ['type', 'field', 'param'], `${at}.`);
      const param = p.optStr(raw, 'param', `${at}.`, { re: PARAM });
      return {
        type: 'field',
        field:
          p.str(raw, 'field', `${at}.`, { re: DOTTED, hint: 'the dotted record field is required' }) ?? 'id',
        ...(param ? { param } : {}),
      };
    }
    default:
      p.add(`${at}.type`, 'one of none, window, field');
      return { type: 'none' };
  }
}

const ENDPOINT_KEYS = [
  'name',
  'path',
  'dataset',
  'method',
  'query',
  'records',
  'pagination',
  'window',
  'incremental',
  'omit',
  'description',
];

function validateEndpoint(p: Problems, raw: unknown, i: number, names: Set<string>): Endpoint | undefined {
  const at = `endpoints[${i}]`;
  if (!isObj(raw)) {
    p.add(at, 'an object is required');
    return undefined;
  }
  p.keys(raw, ENDPOINT_KEYS, `${at}.`);
  const dataset = p.str(raw, 'dataset', `${at}.`, {
    re: DATASET_NAME,
    hint: 'a dataset name (contracts/datasets/<dataset>.json) is required',
  });
  const epPath = p.str(raw, 'path', `${at}.`, {
    re: /^\/[^\s?#]*$/,
    hint: 'a path starting with / (no query string: use "query")',
  });
  const name = endpointName(p, raw, at, dataset ?? `endpoint_${i}`, names);
  const method = raw.method ?? 'GET';
  if (method !== 'GET' && method !== 'POST') p.add(`${at}.method`, 'GET or POST');
  // Checked in the order of the fields, so problems are listed in that order.
  const query = validateQuery(p, raw.query, `${at}.query`);
  const records = validateRecordsPath(p, raw, at);
  const pagination = validatePagination(p, raw.pagination, `${at}.pagination`);
  const window = validateWindow(p, raw.window, `${at}.window`);
  const incremental = validateIncremental(p, raw.incremental, `${at}.incremental`, window !== undefined);
  return {
    name,
    path: epPath ?? '/',
    dataset: dataset ?? 'unknown',
    method: method === 'POST' ? 'POST' : 'GET',
    query,
    records,
    pagination,
    ...(window ? { window } : {}),
    incremental,
    omit: validateOmit(p, raw.omit, `${at}.omit`),
  };
}

/** The endpoint's name (its dataset's by default), unique within the contract. */
function endpointName(
  p: Problems,
  raw: Record<string, unknown>,
  at: string,
  fallback: string,
  names: Set<string>,
): string {
  const name =
    p.optStr(raw, 'name', `${at}.`, { re: SOURCE_NAME, hint: 'lower-case letters, digits and _' }) ??
    fallback;
  if (names.has(name)) p.add(`${at}.name`, `duplicate endpoint name ${name}`);
  names.add(name);
  return name;
}

function validateQuery(p: Problems, raw: unknown, at: string): Record<string, string> {
  const query: Record<string, string> = {};
  if (raw === undefined) return query;
  if (!isObj(raw)) {
    p.add(at, 'an object of parameter → value');
    return query;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (!PARAM.test(k)) p.add(`${at}.${k}`, 'not a valid parameter name');
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') query[k] = String(v);
    else p.add(`${at}.${k}`, 'a string, number or boolean');
  }
  return query;
}

function validateRecordsPath(p: Problems, raw: Record<string, unknown>, at: string): string {
  if (raw.records === undefined || raw.records === '') return '';
  return (
    p.str(raw, 'records', `${at}.`, {
      re: DOTTED,
      hint: 'a dotted path such as "users" or "data.items" ("" = the body)',
    }) ?? ''
  );
}

function validateOmit(p: Problems, raw: unknown, at: string): string[] {
  const omit: string[] = [];
  if (raw === undefined) return omit;
  if (!Array.isArray(raw)) {
    p.add(at, 'an array of dotted record fields');
    return omit;
  }
  for (const [j, f] of raw.entries()) {
    if (typeof f === 'string' && DOTTED.test(f)) omit.push(f);
    else p.add(`${at}[${j}]`, 'a dotted record field such as "bank.cardNumber"');
  }
  return omit;
}

function validateAuth(p: Problems, raw: unknown): Auth {
  if (raw === undefined) return { type: 'none' };
  if (!isObj(raw)) {
    p.add('auth', 'an object with a "type" is required');
    return { type: 'none' };
  }
  // The secret itself never belongs in a contract (it would be committed with it).
  for (const k of ['token', 'secret', 'value', 'key', 'password', 'apiKey'])
    if (k in raw)
      p.add(
        `auth.${k}`,
        'secrets never go in a contract: set SMELTER_SOURCE_<NAME>_TOKEN (Secret Manager on GCP)',
      );
  switch (raw.type) {
    case 'none':
    case 'bearer':
    case 'token':
      p.keys(raw, ['type'], 'auth.');
      return { type: raw.type };
    case 'header':
    case 'query': {
      p.keys(raw, ['type', 'name'], 'auth.');
      const name = p.str(raw, 'name', 'auth.', {
        re: raw.type === 'header' ? HEADER : PARAM,
        hint: `the ${raw.type === 'header' ? 'header' : 'query parameter'} name is required`,
      });
      return { type: raw.type, name: name ?? 'x' };
    }
    default:
      p.add('auth.type', 'one of none, bearer, token, header, query');
      return { type: 'none' };
  }
}

export function validateSourceContract(raw: unknown, where: string): SourceContract {
  if (!isObj(raw)) throw permanent('CONTRACT_INVALID', `${where}: a source contract must be a JSON object`);
  const p = new Problems();
  p.keys(
    raw,
    ['source', 'description', 'baseUrl', 'auth', 'schedule', 'limits', 'http', 'headers', 'endpoints'],
    '',
  );
  const source = p.str(raw, 'source', '', {
    re: SOURCE_NAME,
    hint: 'lower-case letters, digits and _ (the file name)',
  });
  const baseUrl = validateBaseUrl(p, raw);
  const auth = validateAuth(p, raw.auth);
  const schedule = p.optStr(raw, 'schedule', '');
  const cron = schedule === undefined ? undefined : validateSchedule(p, schedule);
  const limits = validateLimits(p, raw.limits);
  const http = validateHttp(p, raw.http);
  const headers = validateHeaders(p, raw.headers);
  const endpoints = validateEndpoints(p, raw.endpoints);
  if (p.list.length)
    throw permanent('CONTRACT_INVALID', `${where}: invalid source contract:\n  ${p.list.join('\n  ')}`, {
      details: { file: where, problems: p.list },
    });
  return {
    source: source as string,
    ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    baseUrl: (baseUrl as string).replace(/\/+$/, ''),
    auth,
    ...(schedule !== undefined && cron ? { schedule, cron } : {}),
    limits,
    http,
    headers,
    endpoints,
  };
}

function validateBaseUrl(p: Problems, raw: Record<string, unknown>): string | undefined {
  const baseUrl = p.str(raw, 'baseUrl', '', {
    hint: 'an http(s) URL is required (SMELTER_SOURCE_<NAME>_URL overrides it)',
  });
  if (baseUrl === undefined) return undefined;
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') p.add('baseUrl', 'http or https');
    if (u.username || u.password) p.add('baseUrl', 'credentials never go in a contract');
    if (u.search) p.add('baseUrl', 'no query string (use endpoints[].query)');
  } catch {
    p.add('baseUrl', 'not a URL');
  }
  return baseUrl;
}

function validateSchedule(p: Problems, schedule: string): Cron | undefined {
  try {
    return parseCron(schedule);
  } catch (e) {
    p.add('schedule', (e as Error).message);
    return undefined;
  }
}

function validateLimits(p: Problems, raw: unknown): Limits {
  const lim = isObj(raw) ? raw : {};
  if (raw !== undefined && !isObj(raw)) p.add('limits', 'an object');
  p.keys(lim, ['pagesPerRun', 'bytesPerResponse', 'requestsPerSecond', 'recordsPerPart'], 'limits.');
  let bytesPerResponse = DEFAULT_LIMITS.bytesPerResponse;
  if (lim.bytesPerResponse !== undefined) {
    const b = parseBytes(lim.bytesPerResponse);
    if (b === undefined || b > 1024 ** 3)
      p.add('limits.bytesPerResponse', 'a size such as 16MB (at most 1GB)');
    else bytesPerResponse = b;
  }
  return {
    pagesPerRun: p.int(lim, 'pagesPerRun', 'limits.', DEFAULT_LIMITS.pagesPerRun, 1, 10_000_000),
    bytesPerResponse,
    requestsPerSecond: p.num(
      lim,
      'requestsPerSecond',
      'limits.',
      DEFAULT_LIMITS.requestsPerSecond,
      0.001,
      100_000,
    ),
    recordsPerPart: p.int(lim, 'recordsPerPart', 'limits.', DEFAULT_LIMITS.recordsPerPart, 1, 10_000_000),
  };
}

function validateHttp(p: Problems, raw: unknown): HttpPolicy {
  const h = isObj(raw) ? raw : {};
  if (raw !== undefined && !isObj(raw)) p.add('http', 'an object');
  p.keys(h, Object.keys(DEFAULT_HTTP), 'http.');
  return {
    connectTimeoutMs: p.int(h, 'connectTimeoutMs', 'http.', DEFAULT_HTTP.connectTimeoutMs, 1, 600_000),
    timeoutMs: p.int(h, 'timeoutMs', 'http.', DEFAULT_HTTP.timeoutMs, 1, 3_600_000),
    maxAttempts: p.int(h, 'maxAttempts', 'http.', DEFAULT_HTTP.maxAttempts, 1, 50),
    retryBaseMs: p.int(h, 'retryBaseMs', 'http.', DEFAULT_HTTP.retryBaseMs, 1, 600_000),
    retryMaxMs: p.int(h, 'retryMaxMs', 'http.', DEFAULT_HTTP.retryMaxMs, 1, 3_600_000),
    maxRedirects: p.int(h, 'maxRedirects', 'http.', DEFAULT_HTTP.maxRedirects, 0, 20),
  };
}

function validateHeaders(p: Problems, raw: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (raw === undefined) return headers;
  if (!isObj(raw)) {
    p.add('headers', 'an object of header → value');
    return headers;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (!HEADER.test(k)) p.add(`headers.${k}`, 'not a valid header name');
    else if (/^(authorization|cookie|proxy-authorization)$/i.test(k))
      p.add(`headers.${k}`, 'credentials never go in a contract: use "auth"');
    else if (typeof v !== 'string') p.add(`headers.${k}`, 'a string');
    else headers[k] = v;
  }
  return headers;
}

function validateEndpoints(p: Problems, raw: unknown): Endpoint[] {
  const endpoints: Endpoint[] = [];
  if (!Array.isArray(raw) || raw.length === 0) {
    p.add('endpoints', 'at least one endpoint is required');
    return endpoints;
  }
  const names = new Set<string>();
  for (const [i, e] of raw.entries()) {
    const ep = validateEndpoint(p, e, i, names);
    if (ep) endpoints.push(ep);
  }
  return endpoints;
}

export function sourcesDir(contractsDir: string): string {
  return path.join(contractsDir, 'sources');
}

/** Reads and validates `<contractsDir>/sources/<source>.json`. */
export function loadSourceContract(contractsDir: string, source: string): SourceContract {
  if (!SOURCE_NAME.test(source))
    throw permanent('UNKNOWN_SOURCE', `Invalid source name ${JSON.stringify(source.slice(0, 100))}`);
  const file = path.join(sourcesDir(contractsDir), `${source}.json`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw permanent('UNKNOWN_SOURCE', `No source contract for "${source}" (expected ${file})`, {
      details: { source, file },
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw permanent('CONTRACT_INVALID', `${file}: not valid JSON: ${(e as Error).message}`, {
      details: { file },
    });
  }
  const c = validateSourceContract(raw, file);
  if (c.source !== source)
    throw permanent(
      'CONTRACT_INVALID',
      `${file}: source: "${c.source}" must equal the file name "${source}"`,
      {
        details: { file },
      },
    );
  return { ...c, file };
}

/** Every source contract's name (file names), sorted. */
export function listSources(contractsDir: string): string[] {
  try {
    return fs
      .readdirSync(sourcesDir(contractsDir))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((n) => SOURCE_NAME.test(n))
      .sort();
  } catch {
    return [];
  }
}

/** The contract with the environment's base URL override applied. */
export function withEnvOverrides(c: SourceContract, env: NodeJS.ProcessEnv = process.env): SourceContract {
  const url = env[sourceEnv(c.source).url];
  if (!url) return c;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw permanent('CONFIG_INVALID', `Invalid value for ${sourceEnv(c.source).url}: not an http(s) URL`);
  }
  return { ...c, baseUrl: url.replace(/\/+$/, '') };
}
