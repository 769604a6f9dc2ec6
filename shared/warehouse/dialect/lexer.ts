/**
 * The macro lexer: finds `@name` and `@name(args)` in SQL outside string literals, quoted identifiers
 * and comments. It knows no macro and no dialect; the macro table gives calls their meaning.
 */
import { permanent } from '../../errors';

export interface MacroCall {
  name: string;
  /** Raw argument texts (split on top-level commas); undefined when the call has no parentheses. */
  args: string[] | undefined;
}

/** Replaces every top-level macro call with `expand(name, args)`; arguments are left unexpanded. */
export function renderMacros(
  sql: string,
  expand: (name: string, args: string[] | undefined) => string,
  where = 'SQL',
): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const skip = skipInert(sql, i);
    if (skip > i) {
      out += sql.slice(i, skip);
      i = skip;
      continue;
    }
    const call = sql[i] === '@' ? readCall(sql, i, where) : undefined;
    if (call) {
      out += expand(call.name, call.args);
      i = call.end;
      continue;
    }
    out += sql[i];
    i++;
  }
  return out;
}

/** Every macro call in `sql`, nested ones included (an outer call before the calls in its arguments). */
export function macroCalls(sql: string, where = 'SQL'): MacroCall[] {
  const out: MacroCall[] = [];
  renderMacros(
    sql,
    (name, args) => {
      out.push({ name, args });
      for (const a of args ?? []) out.push(...macroCalls(a, where));
      return '';
    },
    where,
  );
  return out;
}

export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let j = 0; j < s.length; j++) {
    const c = s[j] as string;
    if (isQuote(c)) {
      const end = skipQuoted(s, j, c);
      cur += s.slice(j, end);
      j = end - 1;
      continue;
    }
    if (c === '(' || c === '[') depth++;
    if (c === ')' || c === ']') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim() || out.length) out.push(cur.trim());
  return out;
}

const isQuote = (c: string | undefined): c is string => c === "'" || c === '"' || c === '`';

/** End of the literal or comment starting at `i`, or `i` when none starts there. */
function skipInert(sql: string, i: number): number {
  const ch = sql[i];
  if (isQuote(ch)) return skipQuoted(sql, i, ch);
  if (ch === '-' && sql[i + 1] === '-') {
    const end = sql.indexOf('\n', i);
    return end < 0 ? sql.length : end;
  }
  if (ch === '/' && sql[i + 1] === '*') {
    const end = sql.indexOf('*/', i + 2);
    return end < 0 ? sql.length : end + 2;
  }
  return i;
}

function readCall(sql: string, at: number, where: string): (MacroCall & { end: number }) | undefined {
  const m = /^@([a-z_][a-z0-9_]*)/.exec(sql.slice(at, at + 64));
  if (!m) return undefined;
  const end = at + m[0].length;
  if (sql[end] !== '(') return { name: m[1] as string, args: undefined, end };
  const close = matchParen(sql, end, where);
  return { name: m[1] as string, args: splitArgs(sql.slice(end + 1, close)), end: close + 1 };
}

function skipQuoted(sql: string, i: number, q: string): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql[j];
    if (c === '\\' && q !== '"') {
      j += 2;
      continue;
    }
    if (c === q) {
      if (sql[j + 1] === q) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return sql.length;
}

function matchParen(sql: string, open: number, where: string): number {
  let depth = 0;
  let j = open;
  while (j < sql.length) {
    const c = sql[j] as string;
    if (isQuote(c)) {
      j = skipQuoted(sql, j, c);
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return j;
    }
    j++;
  }
  throw permanent('MODEL_FAILED', `${where}: unbalanced parentheses after a macro at offset ${open}`);
}
