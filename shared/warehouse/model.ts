/**
 * Models as files (in the spirit of dbt and SQLMesh): `models/<domain>/<silver|gold>/<name>.sql`,
 * one SELECT (a chain of CTEs) under a header of `-- key: value` comment lines, and custom audits in
 * `models/<domain>/audits/<name>.sql`. The header format is documented in models/README.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { permanent } from '../errors';
import { macroCalls } from './dialect/lexer';
import { type Grain } from './dialect/types';
import { parseTableRef, tableKey, type TableRef } from './tables';

export type ModelKind = 'merge' | 'incremental_by_time_range' | 'full' | 'view';

export type BuiltinAudit =
  | { type: 'not_null'; columns: string[] }
  | { type: 'unique'; columns: string[] }
  | { type: 'accepted_values'; column: string; values: string[] }
  | { type: 'row_count_balance'; source: string; timeColumn?: string }
  | { type: 'expression'; sql: string };

export interface Model {
  /** `silver.rainfall` */
  key: string;
  target: TableRef;
  kind: ModelKind;
  domain: string;
  uniqueKey: string[];
  timeColumn?: string;
  grain: Grain;
  partitionBy?: string;
  clusterBy: string[];
  version: string[];
  mergeUpdates: Record<string, string>;
  watermark?: string;
  /** Tables read with @ref/@batch (the DAG's edges), in order of first use. */
  inputs: string[];
  audits: BuiltinAudit[];
  description?: string;
  sql: string;
  file: string;
}

export interface CustomAudit {
  name: string;
  model: string;
  description?: string;
  sql: string;
  file: string;
}

export interface ModelSet {
  models: Model[];
  audits: CustomAudit[];
}

const KINDS: Record<string, ModelKind> = {
  merge: 'merge',
  incremental_by_unique_key: 'merge',
  incremental_by_time_range: 'incremental_by_time_range',
  incremental: 'incremental_by_time_range',
  full: 'full',
  view: 'view',
};

const MODEL_KEYS = new Set([
  'model',
  'kind',
  'unique_key',
  'time_column',
  'grain',
  'partition_by',
  'cluster_by',
  'version',
  'merge_update',
  'watermark',
  'inputs',
  'audit',
  'description',
]);
const AUDIT_KEYS = new Set(['audit', 'model', 'description']);
const IDENT = /^[a-z_][a-z0-9_]*$/;

interface Header {
  entries: [string, string][];
  body: string;
}

/** Splits the leading `-- key: value` comment block from the SQL body. */
export function splitHeader(text: string, where: string, known: ReadonlySet<string>): Header {
  const lines = text.replace(/^\ufeff/, '').split(/\r?\n/);
  const entries: [string, string][] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    if (!line.startsWith('--')) break;
    const m = /^--\s*([a-z_]+)\s*:\s*(.*)$/.exec(line);
    if (!m) continue; // free-text comment
    const key = m[1] as string;
    if (!known.has(key))
      throw permanent(
        'MODEL_FAILED',
        `${where}: unknown header key "${key}" (known: ${[...known].join(', ')})`,
      );
    // A value may continue on following `--   ` lines indented by at least two spaces.
    let value = (m[2] as string).trim();
    while (
      i + 1 < lines.length &&
      /^--\s{2,}\S/.test((lines[i + 1] as string).trim()) &&
      !/^--\s*[a-z_]+\s*:/.test((lines[i + 1] as string).trim())
    ) {
      value += ' ' + (lines[++i] as string).trim().replace(/^--\s*/, '');
    }
    entries.push([key, value]);
  }
  return { entries, body: lines.slice(i).join('\n').trim().replace(/;\s*$/, '') };
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function idents(v: string, where: string, key: string): string[] {
  const out = list(v);
  for (const c of out)
    if (!IDENT.test(c)) throw permanent('MODEL_FAILED', `${where}: ${key}: "${c}" is not a column name`);
  return out;
}

export function parseAudit(spec: string, where: string): BuiltinAudit {
  const m = /^([a-z_]+)\s*\(([\s\S]*)\)\s*$/.exec(spec.trim());
  if (!m) throw permanent('MODEL_FAILED', `${where}: audit "${spec}" must look like name(arguments)`);
  const type = m[1] as string;
  const args = m[2] as string;
  switch (type) {
    case 'not_null':
    case 'unique': {
      const columns = idents(args, where, `audit ${type}`);
      if (!columns.length) throw permanent('MODEL_FAILED', `${where}: audit ${type} needs columns`);
      return { type, columns };
    }
    case 'accepted_values': {
      const parts = list(args);
      const column = parts.shift();
      if (!column || !IDENT.test(column) || parts.length === 0)
        throw permanent(
          'MODEL_FAILED',
          `${where}: accepted_values(column, 'value', …) needs a column and values`,
        );
      const values = parts.map((p) => {
        const q = /^'((?:[^']|'')*)'$/.exec(p);
        if (!q) throw permanent('MODEL_FAILED', `${where}: accepted_values: ${p} must be a quoted string`);
        return (q[1] as string).replace(/''/g, "'");
      });
      return { type, column, values };
    }
    case 'row_count_balance': {
      // row_count_balance(<source>[, <source time column scoping a range run>])
      const [source, timeColumn, ...rest] = list(args);
      if (!source || rest.length)
        throw permanent('MODEL_FAILED', `${where}: row_count_balance(<source table>[, <time column>])`);
      parseTableRef(source, `${where}: row_count_balance`);
      if (timeColumn !== undefined && !IDENT.test(timeColumn))
        throw permanent('MODEL_FAILED', `${where}: row_count_balance: "${timeColumn}" is not a column name`);
      return { type, source, ...(timeColumn ? { timeColumn } : {}) };
    }
    case 'expression':
      if (!args.trim())
        throw permanent('MODEL_FAILED', `${where}: expression(…) needs a boolean SQL expression`);
      return { type, sql: args.trim() };
    default:
      throw permanent(
        'MODEL_FAILED',
        `${where}: unknown audit "${type}" (not_null, unique, accepted_values, row_count_balance, expression)`,
      );
  }
}

export function parseModel(
  text: string,
  file: string,
  domain = path.basename(path.dirname(path.dirname(file))),
): Model {
  const { entries, body } = splitHeader(text, file, MODEL_KEYS);
  const h = headerReader(entries, file);
  const target = parseTarget(h, file);
  const kind = parseKind(h, file);
  const columns = parseColumns(h, file);
  const mergeUpdates = parseMergeUpdates(h, file);
  checkBody(body, file);
  checkKindRules(kind, columns, mergeUpdates, file);
  const inputs = resolveInputs(body, h.one('inputs'), target, file);
  const description = h.one('description');
  return {
    key: tableKey(target),
    target,
    kind,
    domain,
    ...columns,
    mergeUpdates,
    inputs,
    audits: h.many('audit').map((a) => parseAudit(a, file)),
    ...(description ? { description } : {}),
    sql: body,
    file,
  };
}

type HeaderReader = { one(k: string): string | undefined; many(k: string): string[] };

function headerReader(entries: [string, string][], where: string): HeaderReader {
  return {
    one(k) {
      const v = entries.filter(([key]) => key === k);
      if (v.length > 1) throw permanent('MODEL_FAILED', `${where}: header key "${k}" appears more than once`);
      return v[0]?.[1];
    },
    many: (k) => entries.filter(([key]) => key === k).map(([, v]) => v),
  };
}

function parseTarget(h: HeaderReader, where: string): TableRef {
  const name = h.one('model');
  if (!name) throw permanent('MODEL_FAILED', `${where}: the header needs "-- model: <layer>.<table>"`);
  const target = parseTableRef(name, `${where}: model`);
  if (target.layer !== 'silver' && target.layer !== 'gold')
    throw permanent('MODEL_FAILED', `${where}: models write to silver or gold, not ${target.layer}`);
  const folder = path.basename(path.dirname(where));
  if ((folder === 'silver' || folder === 'gold') && folder !== target.layer)
    throw permanent('MODEL_FAILED', `${where}: a model in ${folder}/ must target ${folder}.<table>`);
  return target;
}

function parseKind(h: HeaderReader, where: string): ModelKind {
  const raw = h.one('kind') ?? '';
  const kind = KINDS[raw.trim().split(/\s+/)[0] ?? ''];
  if (!kind)
    throw permanent(
      'MODEL_FAILED',
      `${where}: kind must be merge, incremental_by_time_range, full or view (got "${raw}")`,
    );
  return kind;
}

type ModelColumns = Pick<
  Model,
  'uniqueKey' | 'timeColumn' | 'grain' | 'partitionBy' | 'clusterBy' | 'version' | 'watermark'
>;

function parseColumns(h: HeaderReader, where: string): ModelColumns {
  const timeColumn = h.one('time_column')?.trim() || undefined;
  if (timeColumn && !IDENT.test(timeColumn))
    throw permanent('MODEL_FAILED', `${where}: time_column: not a column name`);
  const grain = (h.one('grain') ?? 'day').trim();
  if (!['day', 'week', 'month'].includes(grain))
    throw permanent('MODEL_FAILED', `${where}: grain must be day, week or month`);
  const partitionBy = h.one('partition_by')?.trim() || timeColumn;
  const clusterBy = idents(h.one('cluster_by') ?? '', where, 'cluster_by');
  if (clusterBy.length > 4)
    throw permanent('MODEL_FAILED', `${where}: cluster_by: BigQuery allows at most 4 columns`);
  const watermark = h.one('watermark')?.trim() || undefined;
  return {
    uniqueKey: idents(h.one('unique_key') ?? '', where, 'unique_key'),
    ...(timeColumn ? { timeColumn } : {}),
    grain: grain as Grain,
    ...(partitionBy ? { partitionBy } : {}),
    clusterBy,
    version: idents(h.one('version') ?? '', where, 'version'),
    ...(watermark ? { watermark } : {}),
  };
}

function parseMergeUpdates(h: HeaderReader, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const u of h.many('merge_update')) {
    const m = /^([a-z_][a-z0-9_]*)\s*=\s*([\s\S]+)$/.exec(u);
    if (!m)
      throw permanent(
        'MODEL_FAILED',
        `${where}: merge_update must be "<column> = <expression over t. and s.>"`,
      );
    out[m[1] as string] = (m[2] as string).trim();
  }
  return out;
}

function checkBody(body: string, where: string): void {
  if (!body || !/^\s*(with|select)\b/i.test(body))
    throw permanent('MODEL_FAILED', `${where}: the body must be one SELECT (WITH … SELECT …)`);
  if (/;\s*\S/.test(stripLiterals(body)))
    throw permanent('MODEL_FAILED', `${where}: the body must be a single statement`);
}

function checkKindRules(
  kind: ModelKind,
  c: ModelColumns,
  mergeUpdates: Record<string, string>,
  where: string,
): void {
  if (kind === 'merge' && c.uniqueKey.length === 0)
    throw permanent('MODEL_FAILED', `${where}: a merge model needs unique_key`);
  if (kind === 'incremental_by_time_range' && !c.timeColumn)
    throw permanent(
      'MODEL_FAILED',
      `${where}: an incremental_by_time_range model needs time_column (a DATE column)`,
    );
  if (Object.keys(mergeUpdates).length && kind !== 'merge')
    throw permanent('MODEL_FAILED', `${where}: merge_update only applies to merge models`);
}

/**
 * A model's inputs are the tables its body reads with `@ref`/`@batch` (its own target excepted: a
 * model may read what it wrote). An `-- inputs:` header is optional; when present it must list
 * exactly those tables.
 */
export function resolveInputs(
  body: string,
  declared: string | undefined,
  target: TableRef,
  where: string,
): string[] {
  const self = tableKey(target);
  const refs: string[] = [];
  for (const c of macroCalls(body, where)) {
    if ((c.name !== 'ref' && c.name !== 'batch') || c.args?.length !== 1) continue;
    const key = tableKey(parseTableRef(c.args[0] as string, `${where}: @${c.name}`));
    if (key !== self && !refs.includes(key)) refs.push(key);
  }
  if (declared === undefined) {
    if (!refs.length)
      throw permanent(
        'MODEL_FAILED',
        `${where}: the model reads no table: use @ref(<layer>.<table>) (or @batch) for its inputs`,
      );
    return refs;
  }
  const inputs = list(declared).map((s) => tableKey(parseTableRef(s, `${where}: inputs`)));
  const undeclared = refs.filter((r) => !inputs.includes(r));
  const unused = inputs.filter((i) => !refs.includes(i));
  if (undeclared.length || unused.length)
    throw permanent(
      'MODEL_FAILED',
      `${where}: the "-- inputs:" header disagrees with the tables the SQL reads (${refs.join(', ') || 'none'}): ` +
        [
          ...undeclared.map((r) => `@ref(${r}) is not declared in inputs`),
          ...unused.map((i) => `input ${i} is declared but never referenced with @ref`),
        ].join('; ') +
        ' — fix the header or drop it (inputs are derived from @ref/@batch)',
      { details: { file: where, declared: inputs, referenced: refs } },
    );
  return inputs;
}

export function parseCustomAudit(text: string, file: string): CustomAudit {
  const { entries, body } = splitHeader(text, file, AUDIT_KEYS);
  const get = (k: string): string | undefined => entries.find(([key]) => key === k)?.[1];
  const name = get('audit');
  const model = get('model');
  if (!name || !IDENT.test(name))
    throw permanent('MODEL_FAILED', `${file}: the header needs "-- audit: <name>"`);
  if (!model) throw permanent('MODEL_FAILED', `${file}: the header needs "-- model: <layer>.<table>"`);
  const description = get('description');
  if (!/^\s*(with|select)\b/i.test(body))
    throw permanent('MODEL_FAILED', `${file}: an audit is a SELECT returning the offending rows`);
  return {
    name,
    model: tableKey(parseTableRef(model, `${file}: model`)),
    ...(description ? { description } : {}),
    sql: body,
    file,
  };
}

/** Reads every model and audit under `dir` (`<domain>/{silver,gold,audits}/*.sql`). */
export function loadModels(dir: string): ModelSet {
  const models: Model[] = [];
  const audits: CustomAudit[] = [];
  let domains: string[] = [];
  try {
    domains = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return { models, audits };
  }
  for (const domain of domains) {
    for (const sub of ['silver', 'gold', 'audits']) {
      const folder = path.join(dir, domain, sub);
      let files: string[] = [];
      try {
        files = fs
          .readdirSync(folder)
          .filter((f) => f.endsWith('.sql'))
          .sort();
      } catch {
        continue;
      }
      for (const f of files) {
        const file = path.join(folder, f);
        const text = fs.readFileSync(file, 'utf8');
        if (sub === 'audits') audits.push(parseCustomAudit(text, file));
        else models.push(parseModel(text, file, domain));
      }
    }
  }
  const seen = new Map<string, string>();
  for (const m of models) {
    const prev = seen.get(m.key);
    if (prev) throw permanent('MODEL_FAILED', `Two models write ${m.key}: ${prev} and ${m.file}`);
    seen.set(m.key, m.file);
  }
  for (const a of audits)
    if (!seen.has(a.model))
      throw permanent('MODEL_FAILED', `${a.file}: audit ${a.name} checks ${a.model}, which no model writes`);
  return { models, audits };
}

/** SQL text with comments removed (for scanning). */
export function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

function stripLiterals(sql: string): string {
  return stripComments(sql).replace(/'(?:[^']|'')*'/g, "''");
}
