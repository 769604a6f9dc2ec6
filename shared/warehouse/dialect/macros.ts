/**
 * The macro table: one entry per macro with its arity and its expansion. Macros whose SQL is the same
 * on every engine expand here from the dialect's names and literals; the others validate their
 * arguments here and take the SQL from the dialect's `macros` (shared/warehouse/dialect/<engine>/macros.ts),
 * so adding a dialect means writing one object, and the core never knows which one runs.
 */
import { permanent } from '../../errors';
import { SCALAR_TYPES, type ScalarType } from '../../contracts/types';
import { isDate } from '../ranges';
import { parseTableRef, type TableRef } from '../tables';
import { renderMacros } from './lexer';
import { GRAINS, UNBOUNDED, type Grain, type RenderContext, type TimeRange } from './types';

export const DATE_ADD_UNITS = ['day', 'month', 'year'] as const satisfies readonly Grain[];
export const DATE_DIFF_UNITS = ['day', 'week', 'month', 'year'] as const satisfies readonly Grain[];
export type DateAddUnit = (typeof DATE_ADD_UNITS)[number];
export type DateDiffUnit = (typeof DATE_DIFF_UNITS)[number];

/** The SQL one dialect writes for the macros whose text differs between engines. */
export interface DialectMacros {
  /** A DATE truncated to the unit (`week` = ISO week, starting Monday). */
  date_trunc(date: string, unit: Grain): string;
  date_add(date: string, n: string, unit: DateAddUnit): string;
  /** Unit boundaries between b and a (`week`: ISO weeks). */
  date_diff(a: string, b: string, unit: DateDiffUnit): string;
  cast(x: string, type: ScalarType): string;
  safe_cast(x: string, type: ScalarType): string;
  safe_divide(a: string, b: string): string;
  /** After `CROSS JOIN`: the array's elements as rows, named `alias`. */
  unnest(array: string, alias: string): string;
  star_except(columns: string[]): string;
  /**
   * A 64-bit hash of the values: equal values hash equal, different ones collide rarely. Only to skip
   * work when no two hashes are equal (a cheap COUNT(DISTINCT) of one number, where grouping the
   * values themselves spills); never to decide that two values are equal.
   */
  key_hash(values: string[]): string;
}

/** What an expansion may use of the dialect it renders for. */
export interface MacroTarget {
  readonly macros: DialectMacros;
  table(ref: TableRef): string;
  dateLiteral(d: string): string;
  timestampLiteral(isoOrDate: string): string;
}

interface MacroUse {
  /** Arguments, their own macros already expanded. */
  args: string[];
  ctx: RenderContext;
  range: TimeRange;
  dialect: MacroTarget;
  /** Throws a permanent MODEL_FAILED naming the file and the macro. */
  fail(msg: string): never;
}

interface MacroDef {
  /** Number of arguments, or [min, max]. */
  arity: number | readonly [number, number];
  expand(use: MacroUse): string;
}

export const MACROS = {
  ref: {
    arity: 1,
    expand: (u) => {
      const ref = declaredRef(u, 'ref');
      return u.ctx.batchFrom?.[`${ref.layer}.${ref.name}`] ?? u.dialect.table(ref);
    },
  },
  this: {
    arity: 0,
    expand: ({ ctx, fail }) => ctx.self ?? fail('@this is only defined for models and audits'),
  },
  start: { arity: 0, expand: (u) => u.dialect.timestampLiteral(day(u.range.startDate, u.fail)) },
  end: { arity: 0, expand: (u) => u.dialect.timestampLiteral(day(u.range.endDate, u.fail)) },
  start_date: { arity: 0, expand: (u) => u.dialect.dateLiteral(day(u.range.startDate, u.fail)) },
  end_date: { arity: 0, expand: (u) => u.dialect.dateLiteral(day(u.range.endDate, u.fail)) },
  batch: {
    arity: 1,
    expand: (u) => {
      const ref = declaredRef(u, 'batch');
      return `(${u.ctx.batch?.[`${ref.layer}.${ref.name}`] ?? 'TRUE'})`;
    },
  },
  to_date: { arity: 1, expand: ({ args: [x] }) => `CAST(${x} AS DATE)` },
  date_trunc: {
    arity: 2,
    expand: ({ args: [d, u], dialect, fail }) => dialect.macros.date_trunc(`${d}`, unit(u, GRAINS, fail)),
  },
  date_add: {
    arity: 3,
    expand: ({ args: [d, n, u], dialect, fail }) =>
      dialect.macros.date_add(`${d}`, `${n}`, unit(u, DATE_ADD_UNITS, fail)),
  },
  date_diff: {
    arity: 3,
    expand: ({ args: [a, b, u], dialect, fail }) =>
      dialect.macros.date_diff(`${a}`, `${b}`, unit(u, DATE_DIFF_UNITS, fail)),
  },
  cast: {
    arity: 2,
    expand: ({ args: [x, t], dialect, fail }) => dialect.macros.cast(`${x}`, scalar(t, fail)),
  },
  safe_cast: {
    arity: 2,
    expand: ({ args: [x, t], dialect, fail }) => dialect.macros.safe_cast(`${x}`, scalar(t, fail)),
  },
  safe_divide: {
    arity: 2,
    expand: ({ args: [a, b], dialect }) => dialect.macros.safe_divide(`${a}`, `${b}`),
  },
  unnest: { arity: 2, expand: ({ args: [arr, x], dialect }) => dialect.macros.unnest(`${arr}`, `${x}`) },
  star_except: { arity: [1, 64], expand: ({ args, dialect }) => dialect.macros.star_except(args) },
  key_hash: { arity: [1, 64], expand: ({ args, dialect }) => dialect.macros.key_hash(args) },
} as const satisfies Record<string, MacroDef>;

export type MacroName = keyof typeof MACROS;
export const MACRO_NAMES = Object.keys(MACROS) as MacroName[];

/** Renders every `@macro` of a model, audit or query for one dialect. */
export function renderSql(dialect: MacroTarget, sql: string, ctx: RenderContext = {}): string {
  return renderMacros(sql, (name, args) => expandMacro(dialect, name, args, ctx), ctx.where ?? 'SQL');
}

function expandMacro(
  dialect: MacroTarget,
  name: string,
  raw: string[] | undefined,
  ctx: RenderContext,
): string {
  const fail = (msg: string): never => {
    throw permanent('MODEL_FAILED', `${ctx.where ?? 'SQL'}: @${name}: ${msg}`, {
      details: { file: ctx.where, macro: name },
    });
  };
  const def: MacroDef | undefined = Object.hasOwn(MACROS, name) ? MACROS[name as MacroName] : undefined;
  if (!def) return fail(`unknown macro (known: ${MACRO_NAMES.join(', ')})`);
  const args = (raw ?? []).map((a) => renderSql(dialect, a, ctx).trim());
  const [lo, hi] = typeof def.arity === 'number' ? [def.arity, def.arity] : def.arity;
  if (raw === undefined && lo > 0) fail(`needs arguments: @${name}(…)`);
  if (args.length < lo || args.length > hi)
    fail(`takes ${lo === hi ? lo : `${lo}–${hi}`} argument(s), got ${args.length}`);
  return def.expand({ args, ctx, range: ctx.range ?? UNBOUNDED, dialect, fail });
}

/** The table of `@ref(x)` / `@batch(x)`, which must be one of the model's inputs (or its target). */
function declaredRef({ args: [key], ctx, fail }: MacroUse, macro: string): TableRef {
  const ref = parseTableRef(`${key}`, `${ctx.where ?? 'SQL'}: @${macro}`);
  if (ctx.allowedRefs && !ctx.allowedRefs.has(`${ref.layer}.${ref.name}`))
    fail(`${key} is not an input of the model (not declared: the model never reads it with @ref)`);
  return ref;
}

function day(d: string, fail: MacroUse['fail']): string {
  return isDate(d) ? d : fail(`not a date: ${d}`);
}

function unit<U extends Grain>(raw: string | undefined, allowed: readonly U[], fail: MacroUse['fail']): U {
  const u = (raw ?? '').toLowerCase();
  return (allowed as readonly string[]).includes(u)
    ? (u as U)
    : fail(`unit must be one of ${allowed.join(', ')}, got ${raw}`);
}

function scalar(raw: string | undefined, fail: MacroUse['fail']): ScalarType {
  const t = (raw ?? '').toLowerCase();
  return (SCALAR_TYPES as readonly string[]).includes(t)
    ? (t as ScalarType)
    : fail(`type must be one of ${SCALAR_TYPES.join(', ')}, got ${raw}`);
}
