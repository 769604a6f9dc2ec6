/**
 * Validation and normalisation of one event against its contract. Reports every violation (path +
 * reason), not only the first, and produces the warehouse row: timestamps as UTC ISO 8601, values
 * coerced to the contract's types where that is unambiguous ("12" → 12 for int64, "true" → true),
 * NUMERIC as canonical decimal strings, int64 beyond 2^53 as strings, json as JSON text, missing
 * arrays as [] (BigQuery REPEATED columns cannot be NULL).
 *
 * Reads only declared keys with Object.hasOwn and builds fresh objects with declared names, so no
 * input key can reach a prototype.
 */
import { type ColumnType, isScalar, type ScalarType } from '../contracts/types';
import type { ContractLookup, EventContract, EventFieldSpec } from './contract';
import { FORBIDDEN_KEYS } from './contract';
import { forbiddenKeyPaths, jsonPath } from './parse';
import type { EventRow, Violation } from './ports';
import { fieldPathOf, HASHED_VALUE } from './privacy';

/** At most this many violations are listed per event; one final entry counts the rest. */
export const MAX_VIOLATIONS = 100;
/** BigQuery insert ids are limited to 128 characters. */
export const MAX_EVENT_ID_LENGTH = 128;

export interface ValidationResult {
  eventType: string | null;
  eventId: string | null;
  contract?: EventContract;
  /** Present only when there is no violation. */
  row?: EventRow;
  /** Undeclared fields by JSONPath, only under `additional_fields: keep`. */
  extra?: Record<string, unknown>;
  /** How many undeclared fields `additional_fields: ignore` left out (a count only: values are never kept). */
  ignored?: number;
  violations: Violation[];
}

class Collector {
  readonly list: Violation[] = [];
  private dropped = 0;
  add(path: string, code: Violation['code'], reason: string): void {
    if (this.list.length < MAX_VIOLATIONS) this.list.push({ path, code, reason });
    else this.dropped++;
  }
  done(): Violation[] {
    if (this.dropped)
      this.list.push({
        path: '$',
        code: 'too_many_violations',
        reason: `${this.dropped} more violations not listed`,
      });
    return this.list;
  }
}

const own = (o: object, k: string): unknown =>
  Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined;

const show = (v: unknown): string => {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 80 ? s.slice(0, 77) + '…' : s;
};

/** Reasons never quote a sensitive field's value: they reach the dead-letter table and the logs. */
const WITHHELD = '(personal data)';
const showIf = (v: unknown, sensitive: boolean): string => (sensitive ? WITHHELD : show(v));

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** The event's type: the payload's `event_type` or the attribute's; they must agree when both are set. */
function readEventType(
  obj: Record<string, unknown>,
  attributes: Record<string, string>,
  v: Collector,
): string | null {
  const payloadType = own(obj, 'event_type');
  const attrType = Object.hasOwn(attributes, 'event_type') ? attributes.event_type : undefined;
  if (payloadType !== undefined && payloadType !== null && typeof payloadType !== 'string') {
    v.add('$.event_type', 'wrong_type', `expected a string, got ${kindOf(payloadType)}`);
    return null;
  }
  if (typeof payloadType === 'string' && payloadType !== '') {
    if (attrType !== undefined && attrType !== '' && attrType !== payloadType)
      v.add(
        '$.event_type',
        'type_conflict',
        `payload says ${show(payloadType)} but the event_type attribute says ${show(attrType)}`,
      );
    return payloadType;
  }
  if (attrType) return attrType;
  v.add('$.event_type', 'missing_type', 'no event_type in the payload nor in the message attributes');
  return null;
}

function findContract(
  eventType: string | null,
  contracts: ContractLookup,
  v: Collector,
): EventContract | undefined {
  if (eventType === null) return undefined;
  const contract = contracts.get(eventType); // throws (transient) for a broken contract file
  if (!contract)
    v.add(
      '$.event_type',
      'unknown_type',
      `unknown event type ${show(eventType)} (known: ${contracts.types().join(', ') || 'none'})`,
    );
  return contract;
}

/** `event_id`: a string or a safe integer, bounded in length. */
function readEventId(obj: Record<string, unknown>, v: Collector): string | null {
  const rawId = own(obj, 'event_id');
  if (rawId === undefined || rawId === null || rawId === '') {
    v.add('$.event_id', 'required', 'event_id is required');
    return null;
  }
  if (typeof rawId !== 'string' && !(typeof rawId === 'number' && Number.isSafeInteger(rawId))) {
    v.add('$.event_id', 'wrong_type', `expected a string, got ${kindOf(rawId)}`);
    return null;
  }
  const eventId = String(rawId);
  if (eventId.length <= MAX_EVENT_ID_LENGTH) return eventId;
  v.add('$.event_id', 'too_long', `longer than ${MAX_EVENT_ID_LENGTH} characters`);
  return eventId.slice(0, MAX_EVENT_ID_LENGTH);
}

function readEventTime(obj: Record<string, unknown>, v: Collector): string | null {
  const rawTime = own(obj, 'event_time');
  if (rawTime === undefined || rawTime === null || rawTime === '') {
    v.add('$.event_time', 'required', 'event_time is required');
    return null;
  }
  return coerceScalar('timestamp', rawTime, '$.event_time', v) as string | null;
}

/**
 * Validates a parsed message object. The type comes from the payload's `event_type` or the
 * `event_type` attribute (they must agree when both are set).
 */
export function validateEvent(
  obj: Record<string, unknown>,
  attributes: Record<string, string>,
  contracts: ContractLookup,
  meta: {
    messageId: string;
    publishTime: string;
    processedAt: string;
    text?: string;
    /** Field paths of `hash` fields the payload already holds hashed (a replayed dead letter). */
    prehashed?: ReadonlySet<string>;
  },
): ValidationResult {
  const v = new Collector();
  for (const p of forbiddenKeyPaths(obj, meta.text))
    v.add(p, 'forbidden_key', 'this key is not allowed (prototype pollution)');
  const eventType = readEventType(obj, attributes, v);
  const contract = findContract(eventType, contracts, v);
  const eventId = readEventId(obj, v);
  const eventTime = readEventTime(obj, v);
  if (!contract) return { eventType, eventId, violations: v.done() };

  const row: EventRow = { event_id: eventId, event_type: eventType, event_time: eventTime };
  const declared = new Set(['event_id', 'event_type', 'event_time']);
  const ctx: Ctx = { v, c: contract, extra: {}, ignored: 0, prehashed: meta.prehashed ?? new Set() };
  for (const f of contract.fields) {
    declared.add(f.name);
    row[f.name] = checkField(f, own(obj, f.name), `$.${f.name}`, ctx);
  }
  collectUnknown(obj, declared, '$', ctx);
  row._message_id = meta.messageId;
  row._publish_time = meta.publishTime;
  row._processed_at = meta.processedAt;

  const violations = v.done();
  const out: ValidationResult = { eventType, eventId, contract, violations };
  if (violations.length === 0) {
    out.row = row;
    if (Object.keys(ctx.extra).length) out.extra = ctx.extra;
    if (ctx.ignored) out.ignored = ctx.ignored;
  }
  return out;
}

/** Undeclared fields: refused (`reject`), copied for the archive (`keep`), or only counted (`ignore`). */
function collectUnknown(obj: Record<string, unknown>, declared: Set<string>, at: string, ctx: Ctx): void {
  const mode = ctx.c.additional_fields;
  for (const k of Object.keys(obj)) {
    if (declared.has(k) || FORBIDDEN_KEYS.has(k)) continue;
    if (mode === 'reject') ctx.v.add(jsonPath(at, k), 'unknown_field', 'field not declared by the contract');
    else if (mode === 'keep') ctx.extra[jsonPath(at, k)] = obj[k];
    else ctx.ignored++;
  }
}

interface Ctx {
  v: Collector;
  c: EventContract;
  /** `keep` only. */
  extra: Record<string, unknown>;
  ignored: number;
  prehashed: ReadonlySet<string>;
}

function checkField(f: EventFieldSpec, value: unknown, at: string, ctx: Ctx): unknown {
  const t = f.type;
  const isArray = !isScalar(t) && 'array' in t;
  if (value === undefined || value === null) {
    if (f.required) ctx.v.add(at, 'required', 'required field is missing');
    return isArray ? [] : null;
  }
  if (f.sensitive?.policy === 'hash' && ctx.prehashed.size && ctx.prehashed.has(fieldPathOf(at))) {
    // Hashed by the router before (a replayed dead letter): the clear-value rules no longer apply.
    if (typeof value === 'string' && HASHED_VALUE.test(value)) return value;
    ctx.v.add(at, 'wrong_type', 'expected the hash this field was stored with (64 hex characters)');
    return null;
  }
  return checkValue(t, f, value, at, ctx);
}

function checkValue(t: ColumnType, f: EventFieldSpec, value: unknown, at: string, ctx: Ctx): unknown {
  const { v } = ctx;
  if (isScalar(t)) {
    const sensitive = f.sensitive !== undefined;
    const out = coerceScalar(t, value, at, v, sensitive);
    if (out !== null) checkRules(t, f, out, at, v, sensitive);
    return out;
  }
  if ('struct' in t) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      v.add(at, 'wrong_type', `expected an object, got ${kindOf(value)}`);
      return null;
    }
    const o = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    const declared = new Set<string>();
    for (const sf of t.struct as EventFieldSpec[]) {
      declared.add(sf.name);
      out[sf.name] = checkField(sf, own(o, sf.name), `${at}.${sf.name}`, ctx);
    }
    collectUnknown(o, declared, at, ctx);
    return out;
  }
  if (!Array.isArray(value)) {
    v.add(at, 'wrong_type', `expected an array, got ${kindOf(value)}`);
    return [];
  }
  if (f.minItems !== undefined && value.length < f.minItems)
    v.add(at, 'too_few_items', `${value.length} items, at least ${f.minItems} required`);
  if (f.maxItems !== undefined && value.length > f.maxItems) {
    v.add(at, 'too_many_items', `${value.length} items, at most ${f.maxItems} allowed`);
    return [];
  }
  const out: unknown[] = [];
  for (let i = 0; i < value.length; i++) {
    const el = value[i];
    const p = `${at}[${i}]`;
    // BigQuery arrays cannot hold NULL.
    if (el === null || el === undefined) v.add(p, 'null_element', 'arrays cannot contain null');
    else out.push(checkValue(t.array, f, el, p, ctx));
  }
  return out;
}

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Coerces one scalar; returns null (and records a violation) when the value does not fit. */
export function coerceScalar(
  t: ScalarType,
  value: unknown,
  at: string,
  v: { add: Collector['add'] },
  sensitive = false,
): unknown {
  const wrong = (expected: string): null => {
    v.add(at, 'wrong_type', `expected ${expected}, got ${kindOf(value)} ${showIf(value, sensitive)}`);
    return null;
  };
  switch (t) {
    case 'string':
      if (typeof value === 'string') return value;
      if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean')
        return String(value);
      return wrong('a string');
    case 'int64': {
      if (typeof value === 'number') {
        if (!Number.isInteger(value)) return wrong('an integer');
        if (!Number.isSafeInteger(value)) {
          v.add(at, 'wrong_type', 'integer beyond ±2^53 lost precision in JSON; send it as a string');
          return null;
        }
        return value;
      }
      if (typeof value === 'string' && INT.test(value)) {
        const b = BigInt(value);
        if (b < INT64_MIN || b > INT64_MAX) {
          v.add(at, 'above_max', `${showIf(value, sensitive)} does not fit a 64-bit integer`);
          return null;
        }
        const n = Number(b);
        return Number.isSafeInteger(n) ? n : b.toString();
      }
      return wrong('an integer');
    }
    case 'float64': {
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && FLOAT.test(value)) {
        const n = Number(value);
        if (Number.isFinite(n)) return n;
      }
      return wrong('a number');
    }
    case 'numeric':
      return coerceNumeric(value, at, v, wrong, sensitive);
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      return wrong('true or false');
    case 'date': {
      if (typeof value !== 'string') return wrong('a date (YYYY-MM-DD)');
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
      if (!m || !validDate(+m[1]!, +m[2]!, +m[3]!)) return wrong('a date (YYYY-MM-DD)');
      return value;
    }
    case 'timestamp': {
      if (typeof value !== 'string') return wrong('an ISO 8601 timestamp string');
      const iso = normaliseTimestamp(value);
      return iso ?? wrong('an ISO 8601 timestamp such as 2024-05-01T12:00:00Z');
    }
    case 'json':
      return JSON.stringify(value);
  }
}

/** NUMERIC (BigQuery: 38 digits, 9 after the point) as a canonical decimal string. */
function coerceNumeric(
  value: unknown,
  at: string,
  v: { add: Collector['add'] },
  wrong: (e: string) => null,
  sensitive: boolean,
): string | null {
  const show = (x: unknown): string => showIf(x, sensitive);
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return wrong('a decimal number');
    if (Math.abs(value) >= 1e29) {
      v.add(at, 'above_max', `${show(value)} exceeds NUMERIC's 29 integer digits`);
      return null;
    }
    // A binary float is already approximate: round it to NUMERIC's 9 decimals.
    text = Number.isInteger(value) ? BigInt(value).toString() : value.toFixed(9);
  } else if (typeof value === 'string') text = value;
  else return wrong('a decimal number');
  const m = DECIMAL.exec(text);
  if (!m) return wrong('a decimal number such as 12.50');
  const sign = m[1] === '-' ? '-' : '';
  const int = (m[2] as string).replace(/^0+(?=\d)/, '');
  const frac = (m[3] ?? '').replace(/0+$/, '');
  if (int.length > 29) {
    v.add(at, 'above_max', `${show(value)} exceeds NUMERIC's 29 integer digits`);
    return null;
  }
  if (frac.length > 9) {
    v.add(at, 'wrong_type', `${show(value)} has more than 9 decimals (NUMERIC would round it)`);
    return null;
  }
  const out = frac ? `${int}.${frac}` : int;
  return out === '0' ? '0' : sign + out;
}

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const days = [
    31,
    y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28,
    31,
    30,
    31,
    30,
    31,
    31,
    30,
    31,
    30,
    31,
  ];
  return d <= (days[m - 1] as number);
}

const TS =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s?(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * ISO 8601 → `YYYY-MM-DDTHH:MM:SS.sss[sss]Z` (UTC, microseconds kept). A timestamp without an
 * offset is taken as UTC, as BigQuery does. Returns undefined when the text is not a valid instant.
 */
export function normaliseTimestamp(text: string): string | undefined {
  const m = TS.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi] = [+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!];
  const s = m[6] === undefined ? 0 : +m[6];
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return undefined;
  const micros = Number(((m[7] ?? '') + '000000').slice(0, 6));
  let offsetMin = 0;
  const z = m[8];
  if (z && z !== 'Z' && z !== 'z' && z !== 'UTC') {
    const sign = z[0] === '-' ? -1 : 1;
    const digits = z.slice(1).replace(':', '');
    const oh = +digits.slice(0, 2);
    const om = digits.length > 2 ? +digits.slice(2, 4) : 0;
    if (oh > 23 || om > 59) return undefined;
    offsetMin = sign * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi - offsetMin, s, Math.floor(micros / 1000));
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) return undefined;
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const sub = micros % 1000;
  return sub ? `${iso.slice(0, -1)}${String(sub).padStart(3, '0')}Z` : iso;
}

function checkRules(
  t: ScalarType,
  f: EventFieldSpec,
  value: unknown,
  at: string,
  v: Collector,
  sensitive: boolean,
): void {
  const sv = (x: unknown): string => showIf(x, sensitive);
  if (f.accepted !== undefined) {
    const ok =
      t === 'int64'
        ? f.accepted.some((a) => String(a) === String(value))
        : f.accepted.includes(value as string);
    if (!ok)
      v.add(at, 'not_accepted', `${sv(value)} is not one of ${f.accepted.map((a) => show(a)).join(', ')}`);
  }
  if (f.min !== undefined || f.max !== undefined) {
    const n = Number(value);
    if (f.min !== undefined && n < f.min)
      v.add(at, 'below_min', `${sv(value)} is below the minimum ${f.min}`);
    if (f.max !== undefined && n > f.max)
      v.add(at, 'above_max', `${sv(value)} is above the maximum ${f.max}`);
  }
  if (typeof value === 'string') {
    if (f.maxLength !== undefined && value.length > f.maxLength)
      v.add(at, 'too_long', `${value.length} characters, at most ${f.maxLength} allowed`);
    if (f.pattern !== undefined && !compiled(f.pattern).test(value))
      v.add(at, 'pattern', `${sv(value)} does not match /${f.pattern}/`);
  }
}

const patterns = new Map<string, RegExp>();
function compiled(p: string): RegExp {
  let re = patterns.get(p);
  if (!re) {
    re = new RegExp(`^(?:${p})$`, 'u');
    patterns.set(p, re);
  }
  return re;
}
