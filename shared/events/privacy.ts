/**
 * Personal data in events (contract fields declared `"sensitive": {"class", "policy"}`), applied by the
 * router before anything leaves it:
 * - the row (event table and archive line): `drop` fields removed, `hash` fields replaced by the keyed
 *   HMAC-SHA256 (hex) of the value as sent — the same function as rawToBronze's, so a hashed event
 *   field joins a hashed dataset column holding the same text;
 * - a dead letter's stored payload: the same treatment applied to the message's JSON (whatever else is
 *   wrong with it), or the payload withheld when it cannot be parsed and its type declares such fields.
 *
 * A dead letter may be replayed (its stored payload published again), so the payload carries which
 * fields are already hashed in the `smelter_pii_hashed` attribute, with a signature (`smelter_pii_sig`,
 * HMAC over the list and the payload bytes with the same key) so a producer cannot use the attribute
 * to have clear values stored unhashed. The router neither hashes those fields again nor checks the
 * clear-value rules (pattern, maxLength…) on them, and checks instead that they hold a hash.
 */
import { createHash } from 'node:crypto';
import { isScalar } from '../contracts/types';
import { hmacHex } from '../governance/hmac';
import type { Policy, SensitiveClass, Sensitivity } from '../governance/sensitivity';
import type { EventContract, EventFieldSpec } from './contract';

export const PII_HASHED_ATTR = 'smelter_pii_hashed';
export const PII_SIG_ATTR = 'smelter_pii_sig';
export const PII_WITHHELD_ATTR = 'smelter_pii_withheld';

/** What a hashed value looks like (hmacHex). */
export const HASHED_VALUE = /^[0-9a-f]{64}$/;

export interface SensitiveField {
  /** Field path: `email`, `shipping_address.street`, `items[].product_id`. */
  path: string;
  class: SensitiveClass;
  policy: Policy;
}

interface Step {
  name: string;
  /** The field's value is an array whose (object) elements hold the rest of the path. */
  each: boolean;
}

/** Field path of an instance path: `$.items[3].street` → `items[].street`. */
export const fieldPathOf = (instancePath: string): string =>
  instancePath.replace(/^\$\.?/, '').replace(/\[\d+\]/g, '[]');

/** Every declared sensitive field of a contract, at any depth. */
export function sensitiveFields(c: Pick<EventContract, 'fields'>): SensitiveField[] {
  const out: SensitiveField[] = [];
  const walk = (fields: readonly EventFieldSpec[], prefix: string): void => {
    for (const f of fields) {
      const path = `${prefix}${f.name}`;
      if (f.sensitive) {
        out.push({ path, class: f.sensitive.class, policy: f.sensitive.policy });
        if (f.sensitive.policy === 'drop') continue;
      }
      const t = f.type;
      if (isScalar(t)) continue;
      if ('struct' in t) walk(t.struct as EventFieldSpec[], `${path}.`);
      else if (!isScalar(t.array) && 'struct' in t.array)
        walk(t.array.struct as EventFieldSpec[], `${path}[].`);
    }
  };
  walk(c.fields, '');
  return out;
}

/** Hash and drop fields (what the router must apply): the contract declares some. */
export const hasProtectedFields = (c: Pick<EventContract, 'fields'>): boolean =>
  sensitiveFields(c).some((s) => s.policy !== 'mask');

function steps(path: string): Step[] {
  return path
    .split('.')
    .map((p) => (p.endsWith('[]') ? { name: p.slice(0, -2), each: true } : { name: p, each: false }));
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Calls `fn(parent, key)` for every place `path` reaches in `value` (own keys only). */
function visit(
  value: unknown,
  path: Step[],
  fn: (parent: Record<string, unknown>, key: string) => void,
): void {
  if (!isObject(value)) return;
  const [head, ...rest] = path as [Step, ...Step[]];
  if (!Object.hasOwn(value, head.name)) return;
  if (!rest.length) return fn(value, head.name);
  const next = value[head.name];
  if (head.each && Array.isArray(next)) for (const el of next) visit(el, rest, fn);
  else if (!head.each) visit(next, rest, fn);
}

/** The hash of one value as sent: text as is, other scalars as their JSON text, objects as JSON. */
export function hashValue(key: string, v: unknown): string {
  return hmacHex(key, typeof v === 'string' ? v : JSON.stringify(v));
}

/**
 * Applies `drop` and `hash` in place to an object shaped like the contract (a validated row, or a parsed
 * payload as sent). Fields in `prehashed` already hold hashes. Nulls stay null. Returns the hashed paths.
 */
export function protect(
  obj: Record<string, unknown>,
  fields: readonly SensitiveField[],
  key: () => string,
  prehashed: ReadonlySet<string> = new Set(),
): string[] {
  const hashed: string[] = [];
  for (const f of fields) {
    if (f.policy === 'mask') continue;
    if (f.policy === 'drop') {
      visit(obj, steps(f.path), (parent, k) => delete parent[k]);
      continue;
    }
    hashed.push(f.path);
    if (prehashed.has(f.path)) continue;
    visit(obj, steps(f.path), (parent, k) => {
      const v = parent[k];
      if (v !== null && v !== undefined) parent[k] = hashValue(key(), v);
    });
  }
  return hashed;
}

/** The signature binding a list of hashed paths to the exact payload bytes. */
export function hashedSignature(key: string, paths: readonly string[], bytes: Buffer): string {
  const digest = createHash('sha256').update(bytes).digest('hex');
  return hmacHex(key, `smelter-pii-v1\n${[...paths].sort().join(',')}\n${digest}`);
}

/** Attributes marking a protected payload (empty when nothing was hashed). */
export function hashedAttributes(
  key: string,
  paths: readonly string[],
  bytes: Buffer,
): Record<string, string> {
  if (!paths.length) return {};
  return {
    [PII_HASHED_ATTR]: [...paths].sort().join(','),
    [PII_SIG_ATTR]: hashedSignature(key, paths, bytes),
  };
}

/**
 * The fields a message's payload already holds hashed: from its attributes, only when the signature
 * matches this payload and key (anything else is treated as clear, so hashed again: safe either way).
 */
export function verifiedPrehashed(
  attributes: Record<string, string>,
  bytes: Buffer | undefined,
  key: () => string,
): Set<string> {
  const list = attributes[PII_HASHED_ATTR];
  const sig = attributes[PII_SIG_ATTR];
  if (!list || !sig || !bytes) return new Set();
  const paths = list.split(',').filter(Boolean);
  return hashedSignature(key(), paths, bytes) === sig ? new Set(paths) : new Set();
}

/** Attributes as stored/forwarded: the router's own markers are recomputed, never copied. */
export function withoutMarkers(attributes: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes))
    if (k !== PII_HASHED_ATTR && k !== PII_SIG_ATTR && k !== PII_WITHHELD_ATTR) out[k] = v;
  return out;
}

/** Stored layout of contract fields: `drop` fields gone, `hash` fields strings (at any depth). */
export function storedEventFields<T extends EventFieldSpec>(fields: readonly T[]): T[] {
  return fields.flatMap((f) => {
    if (f.sensitive?.policy === 'drop') return [];
    if (f.sensitive?.policy === 'hash') return [{ ...f, type: 'string' as const }];
    const t = f.type;
    if (isScalar(t)) return [f];
    if ('struct' in t) return [{ ...f, type: { struct: storedEventFields(t.struct as EventFieldSpec[]) } }];
    if (!isScalar(t.array) && 'struct' in t.array)
      return [{ ...f, type: { array: { struct: storedEventFields(t.array.struct as EventFieldSpec[]) } } }];
    return [f];
  });
}

export type { Sensitivity };
