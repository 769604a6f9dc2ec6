/**
 * Event contracts: one JSON file per event type in `<contractsDir>/events/<event_type>.json`
 * (documented in contracts/events/README.md). Adding an event type is adding a file: the registry
 * notices new and changed files without a restart or a code change.
 */
import fs from 'node:fs';
import path from 'node:path';
import { permanent, SmelterError, transient } from '../errors';
import { type ColumnType, type FieldSpec, isScalar, typeProblems } from '../contracts/types';
import { sensitivityProblems, type Sensitivity } from '../governance/sensitivity';

/** A field of an event: the shared column vocabulary plus value rules checked on every event. */
export interface EventFieldSpec extends FieldSpec {
  /** Allowed values (strings and int64 only); anything else is a violation. For scalar arrays: per element. */
  accepted?: (string | number)[];
  /** Inclusive bounds of int64 / float64 / numeric values. For scalar arrays: per element. */
  min?: number;
  max?: number;
  /** Strings only: the whole value must match this regular expression (implicitly anchored). */
  pattern?: string;
  /** Strings only: maximum length in characters. */
  maxLength?: number;
  /** Arrays only: bounds on the number of elements. */
  minItems?: number;
  maxItems?: number;
  /** Personal data: dropped or hashed by the router, or stored and masked for analysts (top level only). */
  sensitive?: Sensitivity;
}

export interface EventContract {
  event_type: string;
  version: number;
  description?: string;
  /** Warehouse table (DuckDB `events.<table>`, BigQuery `<prefix>_events.<table>`). */
  table: string;
  /** Timestamp or date column whose DATE partitions the table: `event_time` or a required top-level field. */
  partition: string;
  /** Up to 4 top-level scalar columns clustering the table. */
  cluster: string[];
  /**
   * Fields the contract does not declare: `ignore` (never stored: they may hold personal data nobody
   * classified), `keep` (archived as `_extra`, unclassified) or `reject` (a violation).
   */
  additional_fields: AdditionalFields;
  fields: EventFieldSpec[];
  /** Where this contract was read from; a hash of its content (detects changes). */
  file?: string;
  hash?: string;
}

export const ADDITIONAL_FIELDS = ['ignore', 'keep', 'reject'] as const;
export type AdditionalFields = (typeof ADDITIONAL_FIELDS)[number];

export const EVENT_TYPE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const FIELD_NAME = /^[a-z][a-z0-9_]{0,127}$/;
/** Envelope columns every event table starts with; contracts cannot redeclare them. */
export const ENVELOPE_COLUMNS = ['event_id', 'event_type', 'event_time'] as const;
/** Keys that must never be read from or written to objects built from untrusted input. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const RESERVED_TABLES = new Set(['dead_letter']);
const CLUSTERABLE = new Set(['string', 'int64', 'numeric', 'bool', 'date', 'timestamp']);

/** Checks a parsed contract file; throws one CONTRACT_INVALID error listing every problem. */
export function validateEventContract(raw: unknown, where: string): EventContract {
  const problems: string[] = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw permanent('CONTRACT_INVALID', `${where}: an event contract must be a JSON object`);
  const c = raw as Partial<EventContract> & Record<string, unknown>;
  const known = new Set([
    'event_type',
    'version',
    'description',
    'table',
    'partition',
    'cluster',
    'additional_fields',
    'fields',
  ]);
  for (const k of Object.keys(c)) if (!known.has(k)) problems.push(`${k}: unknown contract key`);
  if (typeof c.event_type !== 'string' || !EVENT_TYPE_NAME.test(c.event_type))
    problems.push('event_type: must match ' + EVENT_TYPE_NAME.source);
  if (c.version === undefined) c.version = 1;
  if (!Number.isSafeInteger(c.version) || (c.version as number) < 1)
    problems.push('version: a positive integer');
  if (typeof c.table !== 'string' || !EVENT_TYPE_NAME.test(c.table))
    problems.push('table: must match ' + EVENT_TYPE_NAME.source);
  else if (RESERVED_TABLES.has(c.table)) problems.push(`table: "${c.table}" is reserved`);
  if (c.additional_fields === undefined) c.additional_fields = 'ignore';
  if (!(ADDITIONAL_FIELDS as readonly unknown[]).includes(c.additional_fields))
    problems.push(
      `additional_fields: ${JSON.stringify(c.additional_fields)} is not one of ${ADDITIONAL_FIELDS.map((x) => `"${x}"`).join(', ')}`,
    );
  if (!Array.isArray(c.fields) || c.fields.length === 0)
    problems.push('fields: at least one field is required');
  else problems.push(...fieldListProblems(c.fields, 'fields', true));

  const top = new Map<string, EventFieldSpec>(
    (Array.isArray(c.fields) ? c.fields : []).map((f) => [f?.name, f]),
  );
  if (c.partition === undefined) c.partition = 'event_time';
  if (c.partition !== 'event_time') {
    const p = typeof c.partition === 'string' ? top.get(c.partition) : undefined;
    if (!p) problems.push(`partition: unknown field ${JSON.stringify(c.partition)}`);
    else if ((p.type !== 'timestamp' && p.type !== 'date') || !p.required)
      problems.push('partition: must be event_time or a required timestamp/date field');
    else if (p.sensitive && p.sensitive.policy !== 'mask')
      problems.push(
        `partition: ${p.name} is ${p.sensitive.policy === 'drop' ? 'dropped' : 'hashed'} (sensitive), so it cannot partition the table`,
      );
  }
  if (c.cluster === undefined) c.cluster = [];
  if (!Array.isArray(c.cluster)) problems.push('cluster: an array of field names');
  else {
    if (c.cluster.length > 4) problems.push('cluster: BigQuery allows at most 4 clustering columns');
    for (const k of c.cluster) {
      if (k === 'event_id' || k === 'event_type' || k === 'event_time') continue;
      const f = top.get(k);
      if (!f) problems.push(`cluster: unknown field ${JSON.stringify(k)}`);
      else if (f.sensitive?.policy === 'drop')
        problems.push(`cluster: ${k} is dropped (sensitive), so it cannot cluster the table`);
      else if (!isScalar(f.type) || !CLUSTERABLE.has(f.type))
        problems.push(`cluster: ${k} must be a top-level scalar (not json/float64)`);
    }
  }
  if (problems.length)
    throw permanent('CONTRACT_INVALID', `Invalid event contract ${where}:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  return c as EventContract;
}

function fieldListProblems(fields: unknown[], at: string, topLevel: boolean): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const [i, raw] of fields.entries()) {
    const f = raw as EventFieldSpec | null;
    const where = `${at}[${i}]`;
    if (
      !f ||
      typeof f !== 'object' ||
      typeof f.name !== 'string' ||
      !FIELD_NAME.test(f.name) ||
      FORBIDDEN_KEYS.has(f.name)
    ) {
      problems.push(`${where}.name: lower-case letters, digits and _ (starting with a letter)`);
      continue;
    }
    const here = `${at}.${f.name}`;
    if (topLevel && (ENVELOPE_COLUMNS as readonly string[]).includes(f.name)) {
      problems.push(`${here}: ${f.name} is an envelope column every event carries; do not declare it`);
      if (f.sensitive !== undefined)
        problems.push(
          `${here}.sensitive: ${f.name} identifies the event (table key, insert id, archive name) and cannot be dropped, hashed or masked`,
        );
    }
    if (names.has(f.name)) problems.push(`${here}: duplicate field`);
    names.add(f.name);
    const tp = typeProblems(f.type, `${here}.type`);
    problems.push(...tp);
    if (tp.length) continue;
    problems.push(...ruleProblems(f, here));
    problems.push(...eventSensitivityProblems(f, here, topLevel));
    if (!isScalar(f.type)) {
      if ('struct' in f.type) problems.push(...fieldListProblems(f.type.struct, `${here}`, false));
      else if (!isScalar(f.type.array) && 'struct' in f.type.array)
        problems.push(...fieldListProblems(f.type.array.struct, `${here}[]`, false));
    }
  }
  return problems;
}

/**
 * `sensitive` on an event field: the dataset rules (class, policy, scalar for hash/mask), plus what the
 * router and the masked views need: `mask` only on top-level fields (policy tags and the local masked
 * views work per column), and a `drop` field cannot be `required` (a dead letter's stored payload no
 * longer holds it, so a replay would fail for it).
 */
function eventSensitivityProblems(f: EventFieldSpec, here: string, topLevel: boolean): string[] {
  if (f.sensitive === undefined) return [];
  const p = sensitivityProblems(f, `${here}.sensitive`, []);
  if (p.length) return p;
  if (f.sensitive.policy === 'mask' && !topLevel)
    p.push(`${here}.sensitive.policy: only top-level fields can be masked; hash or drop a nested field`);
  if (f.sensitive.policy === 'drop' && f.required)
    p.push(`${here}.sensitive.policy: a dropped field cannot be required (declare it optional)`);
  return p;
}

/** Value rules must suit the field's type (for scalar arrays, the element type). */
function ruleProblems(f: EventFieldSpec, here: string): string[] {
  const p: string[] = [];
  const isArray = !isScalar(f.type) && 'array' in f.type;
  const scalar: ColumnType = isArray ? (f.type as { array: ColumnType }).array : f.type;
  const t = isScalar(scalar) ? scalar : undefined;
  const known = new Set([
    'name',
    'type',
    'required',
    'description',
    'accepted',
    'min',
    'max',
    'pattern',
    'maxLength',
    'minItems',
    'maxItems',
    'sensitive',
  ]);
  for (const k of Object.keys(f)) if (!known.has(k)) p.push(`${here}.${k}: unknown field key`);
  if (f.required !== undefined && typeof f.required !== 'boolean') p.push(`${here}.required: true or false`);
  if (f.accepted !== undefined) {
    if (t !== 'string' && t !== 'int64')
      p.push(`${here}.accepted: only string and int64 fields take accepted values`);
    else if (!Array.isArray(f.accepted) || f.accepted.length === 0)
      p.push(`${here}.accepted: a non-empty array`);
    else if (f.accepted.some((v) => (t === 'string' ? typeof v !== 'string' : !Number.isSafeInteger(v))))
      p.push(`${here}.accepted: every value must be a ${t === 'string' ? 'string' : 'safe integer'}`);
  }
  for (const k of ['min', 'max'] as const) {
    if (f[k] === undefined) continue;
    if (t !== 'int64' && t !== 'float64' && t !== 'numeric')
      p.push(`${here}.${k}: only numeric fields take ${k}`);
    else if (typeof f[k] !== 'number' || !Number.isFinite(f[k])) p.push(`${here}.${k}: a finite number`);
  }
  if (f.min !== undefined && f.max !== undefined && f.min > f.max) p.push(`${here}: min is greater than max`);
  if (f.pattern !== undefined) {
    if (t !== 'string') p.push(`${here}.pattern: only string fields take a pattern`);
    else
      try {
        new RegExp(f.pattern, 'u');
      } catch (err) {
        p.push(`${here}.pattern: invalid regular expression (${(err as Error).message})`);
      }
  }
  if (f.maxLength !== undefined && (t !== 'string' || !Number.isSafeInteger(f.maxLength) || f.maxLength < 1))
    p.push(`${here}.maxLength: a positive integer, on string fields`);
  for (const k of ['minItems', 'maxItems'] as const)
    if (f[k] !== undefined && (!isArray || !Number.isSafeInteger(f[k]) || (f[k] as number) < 0))
      p.push(`${here}.${k}: a non-negative integer, on array fields`);
  return p;
}

/** Parses and validates one contract file; the file name must be `<event_type>.json`. */
export function readEventContractFile(file: string): EventContract {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw transient('INTERNAL', `Cannot read event contract ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw permanent(
      'CONTRACT_INVALID',
      `Event contract ${file} is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const c = validateEventContract(raw, file);
  const expected = path.basename(file, '.json');
  if (c.event_type !== expected)
    throw permanent(
      'CONTRACT_INVALID',
      `Event contract ${file} declares event_type "${c.event_type}", expected "${expected}"`,
    );
  return { ...c, file, hash: simpleHash(text) };
}

function simpleHash(s: string): string {
  // FNV-1a: only used to notice that a contract changed, not for security.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export interface ContractLookup {
  /** undefined: no such event type. */
  get(eventType: string): EventContract | undefined;
  types(): string[];
  /** Every usable contract. */
  all(): EventContract[];
}

/**
 * Every `<dir>/events/*.json`, re-scanned at most once per `refreshMs` (file list and mtimes), so a new
 * or edited contract is picked up by a running function. A broken file does not take the other types
 * down: events of that type fail with a transient CONTRACT_INVALID (retried until the file is fixed).
 */
export class EventContractRegistry implements ContractLookup {
  private contracts = new Map<string, EventContract>();
  private broken = new Map<string, SmelterError>();
  private conflicts = new Map<string, SmelterError>();
  private stamps = new Map<string, number>();
  private checkedAt = -Infinity;

  constructor(
    readonly contractsDir: string,
    private readonly opts: {
      refreshMs?: number;
      now?: () => number;
      onProblem?: (err: SmelterError) => void;
    } = {},
  ) {
    this.refresh(true);
  }

  get dir(): string {
    return path.join(this.contractsDir, 'events');
  }

  get(eventType: string): EventContract | undefined {
    this.refresh();
    const bad = this.broken.get(eventType) ?? this.conflicts.get(eventType);
    if (bad) throw bad;
    return this.contracts.get(eventType);
  }

  types(): string[] {
    this.refresh();
    return [...new Set([...this.contracts.keys(), ...this.broken.keys()])].sort();
  }

  all(): EventContract[] {
    this.refresh();
    return [...this.contracts.values()]
      .filter((c) => !this.conflicts.has(c.event_type))
      .sort((a, b) => (a.event_type < b.event_type ? -1 : 1));
  }

  /** Problems of the broken contract files (empty when all are valid). */
  problems(): SmelterError[] {
    return [...this.broken.values(), ...this.conflicts.values()];
  }

  refresh(force = false): void {
    const now = (this.opts.now ?? Date.now)();
    if (!force && now - this.checkedAt < (this.opts.refreshMs ?? 1000)) return;
    this.checkedAt = now;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      names = [];
    }
    const seen = new Set<string>();
    for (const name of names) {
      const type = name.slice(0, -5);
      const file = path.join(this.dir, name);
      let mtime: number;
      try {
        mtime = fs.statSync(file).mtimeMs;
      } catch {
        continue;
      }
      seen.add(type);
      if (this.stamps.get(type) === mtime) continue;
      this.stamps.set(type, mtime);
      try {
        if (!EVENT_TYPE_NAME.test(type))
          throw permanent('CONTRACT_INVALID', `Event contract file name ${file} is not a valid event type`);
        this.contracts.set(type, readEventContractFile(file));
        this.broken.delete(type);
      } catch (err) {
        const e = err instanceof SmelterError ? err : transient('INTERNAL', String(err));
        // Transient on purpose: the event is fine, the deployment is not; retry until the file is fixed.
        const wrapped = new SmelterError('CONTRACT_INVALID', e.message, {
          kind: 'transient',
          cause: e,
          details: e.details,
        });
        this.contracts.delete(type);
        this.broken.set(type, wrapped);
        this.opts.onProblem?.(wrapped);
      }
    }
    for (const type of [...this.stamps.keys()])
      if (!seen.has(type)) {
        this.stamps.delete(type);
        this.contracts.delete(type);
        this.broken.delete(type);
      }
    // Two types writing one table would mix rows: both stay unavailable until one file changes.
    const before = this.conflicts;
    this.conflicts = new Map();
    const byTable = new Map<string, string[]>();
    for (const c of this.contracts.values())
      byTable.set(c.table, [...(byTable.get(c.table) ?? []), c.event_type]);
    for (const [table, types] of byTable)
      if (types.length > 1)
        for (const t of types) {
          const err = new SmelterError(
            'CONTRACT_INVALID',
            `Event types ${types.join(', ')} all use table "${table}"`,
            {
              kind: 'transient',
            },
          );
          this.conflicts.set(t, err);
          if (!before.has(t)) this.opts.onProblem?.(err);
        }
  }
}

/** A fixed set of contracts (tests, tools). */
export class StaticContracts implements ContractLookup {
  private readonly map: Map<string, EventContract>;
  constructor(contracts: EventContract[]) {
    this.map = new Map(contracts.map((c) => [c.event_type, c]));
  }
  get(eventType: string): EventContract | undefined {
    return this.map.get(eventType);
  }
  types(): string[] {
    return [...this.map.keys()].sort();
  }
  all(): EventContract[] {
    return [...this.map.values()];
  }
}
