/**
 * The dashboard's filters: the only values a browser can send. Each is validated here and then bound
 * to the chart's fixed query as a `$name` parameter — never spliced into SQL. A filter that is off is
 * bound as its neutral default ('' or the widest date), so every chart query has the same shape.
 */

import type { HttpErrorCode } from '../errors';

export class DashboardRequestError extends Error {
  readonly status = 400;
  readonly code: HttpErrorCode = 'BAD_REQUEST';
}

export type FilterName = 'from' | 'to' | 'region' | 'station' | 'isp';

export interface FilterDef {
  name: FilterName;
  label: string;
  kind: 'date' | 'choice';
  /** Bound when the filter is absent. */
  default: string;
  validate(value: string): string;
}

const MIN_DATE = '0001-01-01';
const MAX_DATE = '9999-12-31';

function date(name: string, value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !d || d.toISOString().slice(0, 10) !== value)
    throw new DashboardRequestError(`${name} must be a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  return value;
}

/** Names of regions, ISPs and stations: letters, digits, spaces and a little punctuation, ≤ 64 chars. */
const NAME = /^[\p{L}\p{N}][\p{L}\p{N} .,&'()/_-]{0,63}$/u;

function name(filter: string, value: string): string {
  if (!NAME.test(value))
    throw new DashboardRequestError(
      `${filter} must be a name of at most 64 letters, digits, spaces or .,&'()/_- — got ${JSON.stringify(value.slice(0, 80))}`,
    );
  return value;
}

export const FILTERS: Record<FilterName, FilterDef> = {
  from: { name: 'from', label: 'From', kind: 'date', default: MIN_DATE, validate: (v) => date('from', v) },
  to: { name: 'to', label: 'To', kind: 'date', default: MAX_DATE, validate: (v) => date('to', v) },
  region: {
    name: 'region',
    label: 'Region',
    kind: 'choice',
    default: '',
    validate: (v) => name('region', v),
  },
  station: {
    name: 'station',
    label: 'Station',
    kind: 'choice',
    default: '',
    validate: (v) => name('station', v),
  },
  isp: { name: 'isp', label: 'ISP', kind: 'choice', default: '', validate: (v) => name('isp', v) },
};

export type BoundParams = Record<string, string>;

/**
 * Validates a request's query parameters against the filters a chart accepts: an unknown or repeated
 * parameter is refused, an empty value means "off", every accepted filter is bound (default when off).
 */
export function bindParams(
  query: URLSearchParams,
  accepted: readonly FilterName[],
  where: string,
): BoundParams {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!(accepted as readonly string[]).includes(key))
      throw new DashboardRequestError(
        `${where} does not take the parameter ${JSON.stringify(key.slice(0, 40))}` +
          (accepted.length ? ` (it takes: ${accepted.join(', ')})` : ' (it takes none)'),
      );
    if (seen.has(key)) throw new DashboardRequestError(`${where}: ${key} is given twice`);
    seen.add(key);
  }
  const out: BoundParams = {};
  for (const f of accepted) {
    const raw = query.get(f);
    out[f] = raw === null || raw === '' ? FILTERS[f].default : FILTERS[f].validate(raw);
  }
  if (out.from !== undefined && out.to !== undefined && out.from > out.to)
    throw new DashboardRequestError(`from (${out.from}) is after to (${out.to})`);
  return out;
}

/** Stable text of bound parameters (cache keys). */
export const paramsKey = (p: BoundParams): string =>
  Object.keys(p)
    .sort()
    .map((k) => `${k}=${encodeURIComponent(p[k] as string)}`)
    .join('&');
