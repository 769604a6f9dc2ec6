/**
 * A page's records as NDJSON cut straight from the response bytes, so a page that is written
 * unchanged (no omitted fields, no record skipped) is not serialised again: re-stringifying every
 * parsed record and encoding the text back to bytes cost more CPU than parsing it.
 *
 * The page was already parsed (JSON.parse validated it and gave the records); this only finds where
 * each record of the array at the records path begins and ends. It answers undefined — the caller
 * then serialises the parsed records — unless every element is an object, there are exactly as many
 * as the parse found (an independent count), and the array holds no line break (pretty-printed JSON
 * has them between tokens; a record must be one line). The bytes are the source's own: numbers keep
 * every digit (an id beyond 2^53 is not rounded), escapes stay as sent, and a repeated key stays
 * repeated (JSON leaves its meaning to the reader).
 */

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

/** Thrown inside the scan when the bytes are not what the parse promised; the caller falls back. */
class Unexpected extends Error {}

/** Where the records are: element i spans [starts[i], ends[i]); null when they cannot be cut. */
interface Found {
  cut: { starts: number[]; ends: number[] } | null;
}

function ws(b: Buffer, i: number): number {
  let c = b[i];
  while (c === SPACE || c === TAB || c === LF || c === CR) c = b[++i];
  return i;
}

/** Index just past the string whose opening quote is at `i`. */
function endOfString(b: Buffer, i: number): number {
  const n = b.length;
  for (let j = i + 1; j < n; j++) {
    const c = b[j];
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  throw new Unexpected();
}

/** Index just past the value starting at `i` (no leading whitespace). */
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
  return j;
}

/** The array at `i` cut into its elements (into `out`), if they are all objects and no line break is in it. */
function cutArray(b: Buffer, i: number, out: Found): number {
  if (b[i] !== OPEN_ARR) {
    out.cut = null;
    return skip(b, i);
  }
  const starts: number[] = [];
  const ends: number[] = [];
  let ok = true;
  let depth = 1;
  const n = b.length;
  for (let j = i + 1; j < n; j++) {
    const c = b[j];
    if (c === QUOTE) {
      if (depth === 1) ok = false;
      j = endOfString(b, j) - 1;
    } else if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (depth++ === 1) {
        if (c === OPEN_OBJ) starts.push(j);
        else ok = false;
      }
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (--depth === 1) ends.push(j + 1);
      else if (depth === 0) {
        out.cut = ok && starts.length === ends.length ? { starts, ends } : null;
        return j + 1;
      }
    } else if (c === LF || c === CR) ok = false;
    else if (depth === 1 && c !== COMMA && c !== SPACE && c !== TAB) ok = false;
  }
  throw new Unexpected();
}

/** Index just past the value at `i`, following `keys[k..]` into it and cutting the array they lead to. */
function walk(b: Buffer, i: number, keys: Buffer[], k: number, out: Found): number {
  const key = keys[k];
  if (key === undefined) return cutArray(b, i, out);
  if (b[i] !== OPEN_OBJ) return skip(b, i);
  // JSON.parse keeps the last of repeated keys: a later occurrence replaces what an earlier one found.
  out.cut = null;
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
 * The records at `path` ('' = the body itself, `a.b` = nested keys) of a page already parsed, as
 * NDJSON bytes (one record per line, each ending in `\n`), or undefined when they cannot be cut
 * unchanged (see above). `count` is the number of records the parse found.
 */
export function recordsNdjson(body: Buffer, path: string, count: number): Buffer | undefined {
  const keys = path === '' ? [] : path.split('.').map((k) => Buffer.from(k, 'utf8'));
  const out: Found = { cut: null };
  try {
    walk(body, ws(body, 0), keys, 0, out);
  } catch (e) {
    if (e instanceof Unexpected) return undefined;
    throw e;
  }
  const cut = out.cut;
  if (!cut || cut.starts.length !== count) return undefined;
  let size = 0;
  for (let k = 0; k < count; k++) size += (cut.ends[k] as number) - (cut.starts[k] as number) + 1;
  const text = Buffer.allocUnsafe(size);
  let at = 0;
  for (let k = 0; k < count; k++) {
    at += body.copy(text, at, cut.starts[k], cut.ends[k]);
    text[at++] = LF;
  }
  return text;
}
