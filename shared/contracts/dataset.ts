/**
 * Dataset contracts: one JSON file per dataset in `<contractsDir>/datasets/<dataset>.json`
 * (documented in contracts/README.md). Adding a dataset needs no code change.
 */
import fs from 'node:fs';
import path from 'node:path';
import { permanent } from '../errors';
import { sensitivityProblems, type Sensitivity } from '../governance/sensitivity';
import { type ColumnType, type FieldSpec, isScalar, typeProblems } from './types';

export interface ColumnSpec extends FieldSpec {
  /**
   * Source header names / JSON keys mapping to this column (matched after header normalisation; over
   * JSON in the usual key spellings). A dotted alias is a path into nested objects: `address.city`.
   */
  aliases?: string[];
  /** Value used when the source value is missing or empty (the seed's `fillna(0)`). */
  default?: string | number | boolean;
  /** Trim surrounding whitespace (default true). */
  trim?: boolean;
  /** Normalise letter case of strings. */
  case?: 'lower' | 'upper';
  /** Extra values that mean "missing" for this column, e.g. "NA", "-". */
  nullValues?: string[];
  /** strptime format for date / timestamp columns whose values are not ISO 8601. */
  format?: string;
  /** If set, any other non-null value rejects the row. */
  accepted?: (string | number)[];
  min?: number;
  max?: number;
  /**
   * Date/timestamp columns: the value of a record that has none. `window_end`: the last instant of the
   * pull window the object holds (its `window_to` metadata, set by pullSource), else the ingestion
   * time; `ingested_at`: the ingestion time.
   */
  fallback?: 'window_end' | 'ingested_at';
  /** Personal data: its class and policy (drop / hash / mask); see shared/governance/sensitivity.ts. */
  sensitive?: Sensitivity;
}

export const FALLBACKS = ['window_end', 'ingested_at'] as const;

export interface DatasetContract {
  dataset: string;
  description?: string;
  columns: ColumnSpec[];
  primaryKey: string[];
  /** DATE or TIMESTAMP column partitioning Silver (and the loader's incremental scope). */
  partitionColumn?: string;
  clusterColumns?: string[];
  /** Column deciding which duplicate wins in Silver (latest); defaults to `_ingested_at`. */
  orderBy?: string;
  csv?: { delimiter?: string; quote?: string; escape?: string; header?: boolean };
  /** Values meaning "missing" in every column (default: empty string only). */
  nullValues?: string[];
  /** What to do with source columns the contract does not declare. */
  unknownColumns?: 'ignore' | 'reject';
  /**
   * JSON sources: the path of the records array in a wrapped document (`users` for
   * `{"users":[…],"total":…}`, `data.items`); documents without it are records themselves.
   */
  records?: string;
  /** Where this contract was read from. */
  file?: string;
}

export const DATASET_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Header names are normalised before matching: `" Rain (mm) "` → `rain_mm`. */
export function normaliseHeader(h: string): string {
  return h
    .replace(/^\ufeff/, '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

export function validateDatasetContract(raw: unknown, where: string): DatasetContract {
  const problems: string[] = [];
  const c = raw as Partial<DatasetContract> | null;
  if (!c || typeof c !== 'object')
    throw permanent('CONTRACT_INVALID', `${where}: a contract must be a JSON object`);
  if (typeof c.dataset !== 'string' || !DATASET_NAME.test(c.dataset))
    problems.push('dataset: must match ' + DATASET_NAME.source);
  if (!Array.isArray(c.columns) || c.columns.length === 0)
    problems.push('columns: at least one column is required');
  const names = new Set<string>();
  for (const [i, col] of (c.columns ?? []).entries()) {
    const at = `columns[${i}]`;
    if (!col || typeof col.name !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(col.name)) {
      problems.push(`${at}.name: lower-case letters, digits and _`);
      continue;
    }
    if (col.name.startsWith('_'))
      problems.push(`${at}.name: names starting with _ are reserved for lineage columns`);
    if (names.has(col.name)) problems.push(`${at}.name: duplicate column ${col.name}`);
    names.add(col.name);
    problems.push(...typeProblems(col.type, `${at}.type`));
    if (col.default !== undefined && !isScalar(col.type as ColumnType))
      problems.push(`${at}.default: only scalar columns take defaults`);
    if (col.format !== undefined && col.type !== 'date' && col.type !== 'timestamp')
      problems.push(`${at}.format: only date and timestamp columns take a format`);
    if (col.fallback !== undefined) {
      if (!(FALLBACKS as readonly string[]).includes(col.fallback))
        problems.push(`${at}.fallback: one of ${FALLBACKS.join(', ')}`);
      else if (col.type !== 'date' && col.type !== 'timestamp')
        problems.push(`${at}.fallback: only date and timestamp columns take a fallback`);
      if (col.default !== undefined)
        problems.push(`${at}.fallback: a column takes a default or a fallback, not both`);
    }
    problems.push(
      ...sensitivityProblems(col, `${at}.sensitive`, Array.isArray(c.primaryKey) ? c.primaryKey : []),
      ...aliasProblems(col.aliases, `${at}.aliases`),
      ...structAliasProblems(col.type, `${at}.type`),
    );
  }
  for (const k of c.primaryKey ?? []) if (!names.has(k)) problems.push(`primaryKey: unknown column ${k}`);
  if (!Array.isArray(c.primaryKey) || c.primaryKey.length === 0)
    problems.push('primaryKey: at least one column is required');
  if (c.partitionColumn !== undefined) {
    const p = c.columns?.find((x) => x.name === c.partitionColumn);
    if (!p) problems.push(`partitionColumn: unknown column ${c.partitionColumn}`);
    else if (p.type !== 'date' && p.type !== 'timestamp')
      problems.push('partitionColumn: must be a date or timestamp column');
  }
  for (const k of c.clusterColumns ?? [])
    if (!names.has(k)) problems.push(`clusterColumns: unknown column ${k}`);
  if ((c.clusterColumns?.length ?? 0) > 4) problems.push('clusterColumns: BigQuery allows at most 4');
  if (c.orderBy !== undefined && !names.has(c.orderBy)) problems.push(`orderBy: unknown column ${c.orderBy}`);
  if (c.unknownColumns !== undefined && c.unknownColumns !== 'ignore' && c.unknownColumns !== 'reject')
    problems.push('unknownColumns: "ignore" or "reject"');
  if (c.records !== undefined && (typeof c.records !== 'string' || !PATH.test(c.records)))
    problems.push('records: a key or a dotted path of keys, e.g. "users" or "data.items"');
  const d = c.csv?.delimiter;
  if (d !== undefined && (typeof d !== 'string' || d.length !== 1))
    problems.push('csv.delimiter: one character');
  if (problems.length)
    throw permanent('CONTRACT_INVALID', `Invalid contract ${where}:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  return c as DatasetContract;
}

/** A JSON key path: dot-separated non-empty keys. */
const PATH = /^[^.\s]+(\.[^.\s]+)*$/;

function aliasProblems(aliases: unknown, where: string): string[] {
  if (aliases === undefined) return [];
  if (!Array.isArray(aliases)) return [`${where}: a list of names`];
  return aliases.flatMap((a, i) =>
    typeof a === 'string' && a.trim() !== '' && (!a.includes('.') || PATH.test(a))
      ? []
      : [`${where}[${i}]: a non-empty name, or a dotted path such as "address.city"`],
  );
}

/** Struct fields take aliases too (dataset contracts only: JSON keys of the nested objects). */
function structAliasProblems(t: unknown, where: string): string[] {
  if (!t || typeof t !== 'object') return [];
  const o = t as { struct?: unknown; array?: unknown };
  if (Array.isArray(o.struct))
    return o.struct.flatMap((f: unknown) => {
      const ff = (f ?? {}) as { name?: unknown; aliases?: unknown; type?: unknown };
      const at = `${where}.${String(ff.name)}`;
      return [...aliasProblems(ff.aliases, `${at}.aliases`), ...structAliasProblems(ff.type, at)];
    });
  return o.array !== undefined ? structAliasProblems(o.array, `${where}[]`) : [];
}

interface CacheEntry {
  mtimeMs: number;
  contract: DatasetContract;
}
const cache = new Map<string, CacheEntry>();

/** Loads `<dir>/datasets/<dataset>.json`. Unknown dataset → permanent UNKNOWN_DATASET. Re-read when the file changes. */
export function loadDatasetContract(contractsDir: string, dataset: string): DatasetContract {
  if (!DATASET_NAME.test(dataset))
    throw permanent(
      'UNKNOWN_DATASET',
      `Unknown dataset ${JSON.stringify(dataset.slice(0, 80))}: not a valid dataset name`,
    );
  const file = path.join(contractsDir, 'datasets', `${dataset}.json`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw permanent('UNKNOWN_DATASET', `Unknown dataset "${dataset}": no contract at ${file}`, {
      details: { dataset },
    });
  }
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs) return hit.contract;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw permanent('CONTRACT_INVALID', `Contract ${file} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const contract = { ...validateDatasetContract(raw, file), file };
  if (contract.dataset !== dataset)
    throw permanent(
      'CONTRACT_INVALID',
      `Contract ${file} declares dataset "${contract.dataset}", expected "${dataset}"`,
    );
  cache.set(file, { mtimeMs: st.mtimeMs, contract });
  return contract;
}

export function listDatasets(contractsDir: string): string[] {
  try {
    return fs
      .readdirSync(path.join(contractsDir, 'datasets'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((n) => DATASET_NAME.test(n))
      .sort();
  } catch {
    return [];
  }
}
