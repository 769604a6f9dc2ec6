/**
 * Turning untrusted Pub/Sub message bytes into a JSON object, defensively: strict base64, a size cap
 * checked before decoding, strict UTF-8, a nesting cap checked before JSON.parse, and no key that could
 * reach an object prototype (`__proto__`, `constructor`, `prototype`).
 */
import { FORBIDDEN_KEYS } from './contract';
import type { Violation } from './ports';

/** Deeper JSON than this is refused before parsing (contracts need 3–4 levels; json fields a few more). */
export const MAX_JSON_DEPTH = 64;

export interface DecodeLimits {
  maxEventBytes: number;
  maxDepth?: number;
}

export type Decoded =
  | { ok: true; value: Record<string, unknown>; bytes: Buffer; text: string }
  | { ok: false; violation: Violation; bytes: Buffer; size: number };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decoded size of a base64 string without decoding it. */
export function base64DecodedSize(s: string): number {
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  return Math.floor((s.length * 3) / 4) - pad;
}

/** Decodes at most `max` bytes (for keeping the head of an oversize message). */
export function decodeBase64Head(s: string, max: number): Buffer {
  const chars = Math.ceil(max / 3) * 4;
  const head = s.length > chars ? s.slice(0, chars) : s;
  const buf = Buffer.from(head, 'base64');
  return buf.length > max ? buf.subarray(0, max) : buf;
}

export function decodeMessageData(data: string | undefined, limits: DecodeLimits): Decoded {
  const fail = (code: Violation['code'], reason: string, bytes: Buffer, size = bytes.length): Decoded => ({
    ok: false,
    violation: { path: '$', code, reason },
    bytes,
    size,
  });
  if (data === undefined || data === '') return fail('no_data', 'the message has no data', Buffer.alloc(0));
  const size = base64DecodedSize(data);
  if (size > limits.maxEventBytes)
    return fail(
      'too_large',
      `the message is ${size} bytes, more than the ${limits.maxEventBytes} allowed (SMELTER_MAX_EVENT_BYTES)`,
      // Only the head is kept: the dead-letter table and topic cannot hold arbitrarily large rows.
      decodeBase64Head(data, Math.min(limits.maxEventBytes, DEAD_LETTER_MAX_DATA_BYTES)),
      size,
    );
  // Unpadded base64 is unambiguous, so it is accepted; anything with a stray character is not.
  const padded = data.length % 4 === 0 || (!data.endsWith('=') && data.length % 4 !== 1);
  if (!padded || !BASE64.test(data))
    return fail(
      'not_base64',
      'message data is not valid base64',
      Buffer.from(data, 'utf8').subarray(0, DEAD_LETTER_MAX_DATA_BYTES),
    );
  const bytes = Buffer.from(data, 'base64');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return fail('not_utf8', 'message data is not valid UTF-8', bytes);
  }
  const parsed = parseJsonSafely(text, limits.maxDepth ?? MAX_JSON_DEPTH);
  if (!parsed.ok) return fail(parsed.violation.code, parsed.violation.reason, bytes);
  // Valid JSON, but neither DuckDB nor BigQuery stores a string holding half a UTF-16 pair: refused here,
  // with its path, rather than failing the warehouse write of every event batched with it.
  const lone = loneSurrogatePath(parsed.value, text);
  if (lone)
    return {
      ok: false,
      violation: {
        path: lone,
        code: 'lone_surrogate',
        reason: 'a string holds an unpaired UTF-16 surrogate (a \\uD800–\\uDFFF escape without its pair)',
      },
      bytes,
      size: bytes.length,
    };
  return { ok: true, value: parsed.value, bytes, text };
}

/** Largest piece of original data kept in a dead letter (a BigQuery row and a Pub/Sub message must hold it). */
export const DEAD_LETTER_MAX_DATA_BYTES = 1024 * 1024;

export type ParsedJson = { ok: true; value: Record<string, unknown> } | { ok: false; violation: Violation };

/** JSON.parse for untrusted text: a nesting cap first, then an object at the top. Forbidden keys are reported by validation. */
export function parseJsonSafely(text: string, maxDepth = MAX_JSON_DEPTH): ParsedJson {
  const depth = jsonDepthExceeds(text, maxDepth);
  if (depth)
    return {
      ok: false,
      violation: { path: '$', code: 'too_deep', reason: `JSON nesting deeper than ${maxDepth} levels` },
    };
  let value: unknown;
  try {
    // JSON.parse defines keys as own data properties, so "__proto__" cannot reach a prototype here.
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      violation: { path: '$', code: 'not_json', reason: `not JSON: ${(err as Error).message.slice(0, 200)}` },
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return {
      ok: false,
      violation: {
        path: '$',
        code: 'not_object',
        reason: `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
      },
    };
  return { ok: true, value: value as Record<string, unknown> };
}

/** True when brackets outside strings nest deeper than `max`: one linear scan, stops early. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/**
 * Paths of every forbidden key anywhere in a parsed value. Iterative (depth is already capped) and
 * skipped entirely when the text cannot contain one (no such substring and no `\u` escape).
 */
export function forbiddenKeyPaths(value: unknown, text?: string): string[] {
  if (text !== undefined && !/__proto__|constructor|prototype|\\u/.test(text)) return [];
  const out: string[] = [];
  const stack: [unknown, string][] = [[value, '$']];
  while (stack.length) {
    const [v, at] = stack.pop() as [unknown, string];
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${at}[${i}]`]);
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      const p = jsonPath(at, k);
      if (FORBIDDEN_KEYS.has(k)) out.push(p);
      else stack.push([(v as Record<string, unknown>)[k], p]);
    }
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` holds a UTF-16 surrogate without its pair (it has no UTF-8 encoding). */
export const hasLoneSurrogate = (s: string): boolean => LONE_SURROGATE.test(s);

/** Replaces unpaired surrogates by U+FFFD (text we write ourselves, e.g. into a dead letter). */
export const wellFormed = (s: string): string =>
  hasLoneSurrogate(s) ? s.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD') : s;

/**
 * The path of the first key or string value holding an unpaired surrogate. UTF-8 text cannot carry one,
 * only a `\u` escape can: without one in the text there is nothing to walk.
 */
export function loneSurrogatePath(value: unknown, text?: string): string | undefined {
  if (text !== undefined && !text.includes('\\u')) return undefined;
  const stack: [unknown, string][] = [[value, '$']];
  while (stack.length) {
    const [v, at] = stack.pop() as [unknown, string];
    if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) return at;
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${at}[${i}]`]);
      continue;
    }
    for (const [k, child] of Object.entries(v)) {
      const p = jsonPath(at, wellFormed(k));
      if (hasLoneSurrogate(k)) return p;
      stack.push([child, p]);
    }
  }
  return undefined;
}

/** `$.a.b`, or `$["odd key"]` for keys that are not identifiers. */
export function jsonPath(parent: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? `${parent}.${key}`
    : `${parent}[${JSON.stringify(key.slice(0, 100))}]`;
}
