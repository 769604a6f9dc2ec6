/**
 * A page's records as NDJSON cut straight from the response bytes. Parsing every record into objects
 * and serialising them back was most of a pull's CPU; a page written unchanged (no omitted fields, no
 * incremental field to compare) needs neither. The records array is validated here byte by byte with
 * JSON's grammar (as strict as JSON.parse: strings, escapes, numbers, literals, nesting) and every
 * element must be an object; the count is the number of elements so validated. The rest of the body
 * (`total`, a cursor, a next link) is parsed by JSON.parse with the array replaced by `[]` — a valid
 * value substituted for a valid value, so the page as a whole is valid JSON exactly when both are.
 *
 * Anything else answers undefined and the caller parses the page whole, as before: an element that is
 * not an object, a line break in the array (pretty-printed JSON; a record must be one line), bytes
 * that are not UTF-8, or any grammar error (JSON.parse then names it). The bytes written are the
 * source's own: numbers keep every digit (an id beyond 2^53 is not rounded), escapes stay as sent,
 * and a repeated key stays repeated (JSON leaves its meaning to the reader).
 */
import { isUtf8 } from 'node:buffer';
import { getPath } from './paginate';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Bytes allowed after a backslash (`u` is checked apart). */
const ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/** A page split into its records (as NDJSON) and the rest of its body. */
export interface SplitPage {
  /** The body parsed with the records array replaced by an empty one. */
  envelope: unknown;
  /** One record per line, each ending in `\n`. */
  ndjson: Buffer;
  count: number;
}

/** The records array: [start, end) in the body, element k at [starts[k], ends[k]). */
interface Cut {
  start: number;
  end: number;
  starts: number[];
  ends: number[];
}

/** Thrown by the locating walk on bytes that are not JSON; the caller parses the page whole. */
class Unexpected extends Error {}

const digit = (c: number | undefined): boolean => c !== undefined && c >= ZERO && c <= NINE;

/** JSON whitespace, for the walk to the records. */
function ws(b: Buffer, i: number): number {
  let c = b[i];
  while (c === SPACE || c === TAB || c === LF || c === CR) c = b[++i];
  return i;
}

/** Spaces and tabs only, inside the records: a line break there means they cannot be one line each. */
function sp(b: Buffer, i: number): number {
  let c = b[i];
  while (c === SPACE || c === TAB) c = b[++i];
  return i;
}

/** Index just past a valid JSON string at `i` (its opening quote), or -1. Bytes ≥ 0x80 pass (UTF-8 is checked apart). */
function str(b: Buffer, i: number): number {
  const n = b.length;
  for (let j = i + 1; j < n;) {
    const c = b[j] as number;
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) {
      const e = b[j + 1] ?? 0;
      if (ESCAPE[e] === 1) j += 2;
      else if (
        e === 0x75 &&
        HEX[b[j + 2] ?? 0] === 1 &&
        HEX[b[j + 3] ?? 0] === 1 &&
        HEX[b[j + 4] ?? 0] === 1 &&
        HEX[b[j + 5] ?? 0] === 1
      )
        j += 6;
      else return -1;
    } else if (c < 0x20) return -1;
    else j++;
  }
  return -1;
}

/** Index just past a valid JSON number at `i`, or -1. */
function num(b: Buffer, i: number): number {
  let j = i;
  if (b[j] === MINUS) j++;
  if (b[j] === ZERO) j++;
  else if (digit(b[j])) while (digit(b[++j]));
  else return -1;
  if (b[j] === DOT) {
    if (!digit(b[++j])) return -1;
    while (digit(b[++j]));
  }
  const e = b[j];
  if (e === 0x65 || e === 0x45) {
    const s = b[++j];
    if (s === PLUS || s === MINUS) j++;
    if (!digit(b[j])) return -1;
    while (digit(b[++j]));
  }
  return j;
}

function lit(b: Buffer, i: number, word: Buffer): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

const IN_OBJ = 1;
const IN_ARR = 2;
const VALUE = 0;
const KEY = 1;
const AFTER = 2;

/**
 * Validates the array at `i` as JSON.parse would (UTF-8 aside) and cuts it into its elements;
 * undefined unless it is valid, every element is an object and no line break is in it.
 */
export function cutRecords(b: Buffer, i: number): Cut | undefined {
  if (b[i] !== OPEN_ARR) return undefined;
  const start = i;
  const starts: number[] = [];
  const ends: number[] = [];
  const stack: number[] = [IN_ARR];
  let j = sp(b, i + 1);
  if (b[j] === CLOSE_ARR) return { start, end: j + 1, starts, ends };
  let mode = VALUE;
  for (;;) {
    const c = b[j];
    if (mode === VALUE) {
      const depth = stack.length;
      if (c === OPEN_OBJ) {
        if (depth === 1) starts.push(j);
        j = sp(b, j + 1);
        if (b[j] !== CLOSE_OBJ) {
          stack.push(IN_OBJ);
          mode = KEY;
          continue;
        }
        j++;
        if (depth === 1) ends.push(j);
      } else if (depth === 1) return undefined;
      else if (c === QUOTE) j = str(b, j);
      else if (c === OPEN_ARR) {
        j = sp(b, j + 1);
        if (b[j] !== CLOSE_ARR) {
          stack.push(IN_ARR);
          continue;
        }
        j++;
      } else if (c === MINUS || digit(c)) j = num(b, j);
      else if (c === 0x74) j = lit(b, j, TRUE);
      else if (c === 0x66) j = lit(b, j, FALSE);
      else if (c === 0x6e) j = lit(b, j, NULL);
      else return undefined;
      if (j < 0) return undefined;
      j = sp(b, j);
      mode = AFTER;
    } else if (mode === KEY) {
      if (c !== QUOTE) return undefined;
      j = str(b, j);
      if (j < 0) return undefined;
      j = sp(b, j);
      if (b[j] !== COLON) return undefined;
      j = sp(b, j + 1);
      mode = VALUE;
    } else {
      const top = stack[stack.length - 1];
      if (c === COMMA) {
        j = sp(b, j + 1);
        mode = top === IN_OBJ ? KEY : VALUE;
      } else if (c === (top === IN_OBJ ? CLOSE_OBJ : CLOSE_ARR)) {
        stack.pop();
        j++;
        if (stack.length === 0) return { start, end: j, starts, ends };
        if (stack.length === 1) ends.push(j);
        j = sp(b, j);
      } else return undefined;
    }
  }
}

/** Index just past the string at `i` (not validated: JSON.parse checks everything outside the records). */
function endOfString(b: Buffer, i: number): number {
  const n = b.length;
  for (let j = i + 1; j < n; j++) {
    const c = b[j];
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  throw new Unexpected();
}

/** Index just past the value starting at `i` (not validated either). */
function skip(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return endOfString(b, i);
  const n = b.length;
  if (c === OPEN_OBJ || c === OPEN_ARR) {
    let depth = 0;
    for (let j = i; j < n; j++) {
      const d = b[j];
      if (d === QUOTE) j = endOfString(b, j) - 1;
      else if (d === OPEN_OBJ || d === OPEN_ARR) depth++;
      else if ((d === CLOSE_OBJ || d === CLOSE_ARR) && --depth === 0) return j + 1;
    }
    throw new Unexpected();
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  for (; j < n; j++) {
    const d = b[j];
    if (d === COMMA || d === CLOSE_OBJ || d === CLOSE_ARR || d === SPACE || d === TAB || d === LF || d === CR)
      break;
  }
  if (j === i) throw new Unexpected();
  return j;
}

/** Index just past the value at `i`, following `keys[k..]` into it and cutting the array they lead to. */
function walk(b: Buffer, i: number, keys: Buffer[], k: number, out: { cut: Cut | undefined }): number {
  const key = keys[k];
  if (key === undefined) {
    out.cut = cutRecords(b, i);
    return out.cut ? out.cut.end : skip(b, i);
  }
  if (b[i] !== OPEN_OBJ) return skip(b, i);
  // JSON.parse keeps the last of repeated keys: a later occurrence replaces what an earlier one found.
  out.cut = undefined;
  i = ws(b, i + 1);
  if (b[i] === CLOSE_OBJ) return i + 1;
  for (;;) {
    if (b[i] !== QUOTE) throw new Unexpected();
    const end = endOfString(b, i);
    const raw = b.subarray(i + 1, end - 1);
    const same = raw.includes(BACKSLASH)
      ? Buffer.from(JSON.parse(b.toString('utf8', i, end)) as string).equals(key)
      : raw.equals(key);
    i = ws(b, end);
    if (b[i] !== COLON) throw new Unexpected();
    i = ws(b, i + 1);
    i = ws(b, same ? walk(b, i, keys, k + 1, out) : skip(b, i));
    if (b[i] === CLOSE_OBJ) return i + 1;
    if (b[i] !== COMMA) throw new Unexpected();
    i = ws(b, i + 1);
  }
}

/**
 * The page `body` split at its records path ('' = the body itself, `a.b` = nested keys), or undefined
 * when it cannot be (see above) — the caller then parses it whole. Once split, the body is rewritten
 * in place (its records region becomes the NDJSON): the caller must not read it again.
 */
export function splitPage(body: Buffer, path: string): SplitPage | undefined {
  const keys = path === '' ? [] : path.split('.').map((k) => Buffer.from(k, 'utf8'));
  const out: { cut: Cut | undefined } = { cut: undefined };
  let cut: Cut | undefined;
  let envelope: unknown;
  try {
    walk(body, ws(body, 0), keys, 0, out);
    cut = out.cut;
    if (!cut || !isUtf8(body.subarray(cut.start, cut.end))) return undefined;
    envelope = JSON.parse(body.toString('utf8', 0, cut.start) + '[]' + body.toString('utf8', cut.end));
  } catch (e) {
    if (e instanceof Unexpected || e instanceof SyntaxError) return undefined;
    throw e;
  }
  // The walk and JSON.parse agree on where the records are.
  const at = getPath(envelope, path);
  if (!Array.isArray(at) || at.length !== 0) return undefined;
  // The records move down over their separators, each followed by a newline: the NDJSON is a view of
  // the body itself, no second copy of the page (separators are at least one byte, so it never overtakes).
  const count = cut.starts.length;
  let w = cut.starts[0] ?? cut.start;
  const from = w;
  for (let k = 0; k < count; k++) {
    w += body.copy(body, w, cut.starts[k], cut.ends[k]);
    body[w++] = LF;
  }
  return { envelope, ndjson: body.subarray(from, w), count };
}
