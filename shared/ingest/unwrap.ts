/**
 * Streams the records out of wrapped JSON documents as NDJSON, one record per line, without holding a
 * document: `{"users":[{…},{…}],"total":208}` with records path `users` gives one line per user.
 *
 * The input is any sequence of JSON values (one document, NDJSON, concatenated pages); an outermost
 * array is read as the sequence of its elements. An object carrying the records path (an array at
 * `a.b.c`) is a wrapper: its array's elements are the records and its other fields are dropped. Any
 * other value is a record itself, so NDJSON or an array of records passes through unchanged. Only
 * strings and brackets are tracked: a malformed record stays one line and is rejected downstream.
 * The records path must come within `maxRecordBytes` of its wrapper's start (that much is buffered
 * until the wrapper is recognised); a longer record is cut to `maxRecordBytes + 1` bytes, which the
 * NDJSON reader rejects as too long.
 */

const enum Mode {
  Between,
  /** A top-level value that may be a wrapper (or is a scalar): buffered until known. */
  Candidate,
  /** Inside the records array of a wrapper. */
  Records,
  /** After the records array: the rest of the wrapper, dropped. */
  Skip,
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const NL = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

/** Bytes that end a run of plain value characters. */
const SPECIAL = new Uint8Array(256);
for (const b of [QUOTE, BACKSLASH, LBRACE, RBRACE, LBRACKET, RBRACKET, COMMA, NL, CR, SPACE, TAB, COLON])
  SPECIAL[b] = 1;
const isSpace = (b: number): boolean => b === SPACE || b === NL || b === CR || b === TAB;
const isEnd = (b: number): boolean => isSpace(b) || b === COMMA || b === RBRACKET || b === RBRACE;

/** Bytes of one record, kept up to `cap`; beyond it only counted. */
class RecordBytes {
  buf = Buffer.allocUnsafe(4096);
  len = 0;
  total = 0;
  constructor(private readonly cap: number) {}
  append(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    this.total += n;
    const take = Math.min(n, this.cap - this.len);
    if (take <= 0) return;
    if (this.len + take > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.min(Math.max(this.buf.length * 2, this.len + take), this.cap));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    src.copy(this.buf, this.len, from, from + take);
    this.len += take;
  }
  reset(): void {
    this.len = 0;
    this.total = 0;
    if (this.buf.length > 1 << 20) this.buf = Buffer.allocUnsafe(4096);
  }
}

export interface UnwrapStats {
  /** Records written (lines). */
  records: number;
  /** Wrapper documents unwrapped. */
  wrappers: number;
}

const ESCAPED_NL = Buffer.from('\\n');
const ESCAPED_CR = Buffer.from('\\r');

export async function* unwrapRecords(
  input: AsyncIterable<Buffer | string>,
  path: string[],
  opts: { maxRecordBytes: number; stats?: UnwrapStats },
): AsyncGenerator<Buffer> {
  const segs = path.map((s) => Buffer.from(s, 'utf8'));
  const last = segs.length - 1;
  const stats = opts.stats ?? { records: 0, wrappers: 0 };
  const rec = new RecordBytes(opts.maxRecordBytes + 1);
  const key = new RecordBytes(1024);
  let out = Buffer.allocUnsafe(64 * 1024);
  let outLen = 0;
  const emit = (): void => {
    const need = rec.len + 1;
    if (outLen + need > out.length) {
      const next = Buffer.allocUnsafe(Math.max(out.length * 2, outLen + need));
      out.copy(next, 0, 0, outLen);
      out = next;
    }
    rec.buf.copy(out, outLen, 0, rec.len);
    outLen += rec.len;
    out[outLen++] = NL;
    stats.records++;
    rec.reset();
  };

  let mode = Mode.Between;
  const stack: number[] = [];
  let inStr = false;
  let esc = false;
  let expectKey = false;
  /** Stack depth of the flattened outermost array, or -1. */
  let flat = -1;
  /** Stack depth at which the current top-level value started. */
  let valDepth = 0;
  /** Path segments matched by the objects the candidate is inside (the wrapper's own keys: 0). */
  let matched = 0;
  let capturing = false;
  /** The key just read names the next path segment: its value decides. */
  let pending = false;
  let scalar = false;
  /** Records mode: stack depth of the records array; whether an element is being read. */
  let recDepth = 0;
  let inElement = false;
  let recording = false;
  let first = true;

  for await (const chunk0 of input) {
    let chunk = typeof chunk0 === 'string' ? Buffer.from(chunk0, 'utf8') : chunk0;
    if (first && chunk.length) {
      first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    const n = chunk.length;
    let from = 0;
    let keyFrom = 0;
    let i = 0;
    const endRecord = (to: number): void => {
      rec.append(chunk, from, to);
      emit();
      recording = false;
    };
    while (i < n) {
      let b = chunk[i] as number;
      if (inStr) {
        if (esc) {
          esc = false;
          i++;
          continue;
        }
        while (b !== QUOTE && b !== BACKSLASH && b !== NL && b !== CR) {
          if (++i >= n) break;
          b = chunk[i] as number;
        }
        if (i >= n) break;
        if (b === BACKSLASH) {
          esc = true;
          i++;
          continue;
        }
        if (b !== QUOTE) {
          // A raw line break inside a string (invalid JSON): escaped, so the record stays one line.
          if (recording) {
            rec.append(chunk, from, i);
            const e = b === NL ? ESCAPED_NL : ESCAPED_CR;
            rec.append(e, 0, e.length);
            from = i + 1;
          }
          i++;
          continue;
        }
        inStr = false;
        if (capturing) {
          key.append(chunk, keyFrom, i);
          capturing = false;
          const seg = segs[matched];
          pending = seg !== undefined && key.total === seg.length && key.buf.subarray(0, key.len).equals(seg);
        }
        if (scalar && mode === Mode.Candidate && stack.length === valDepth) {
          endRecord(i + 1);
          mode = Mode.Between;
        } else if (scalar && mode === Mode.Records && inElement && stack.length === recDepth) {
          endRecord(i + 1);
          inElement = false;
        }
        i++;
        continue;
      }
      if (recording && (b === NL || b === CR) && !(scalar && isEnd(b))) {
        // Whitespace between tokens: dropped, the record stays one line.
        rec.append(chunk, from, i);
        from = i + 1;
        i++;
        continue;
      }
      switch (mode) {
        case Mode.Between: {
          if (isSpace(b) || b === COMMA) break;
          if (b === LBRACKET && flat < 0 && stack.length === 0) {
            stack.push(b);
            flat = stack.length;
            break;
          }
          if (b === RBRACKET && flat >= 0 && stack.length === flat) {
            stack.pop();
            flat = -1;
            break;
          }
          valDepth = stack.length;
          matched = 0;
          pending = false;
          mode = Mode.Candidate;
          recording = true;
          from = i;
          rec.reset();
          scalar = b !== LBRACE && b !== LBRACKET;
          if (!scalar) {
            stack.push(b);
            expectKey = b === LBRACE;
          } else if (b === QUOTE) {
            inStr = true;
            esc = false;
          } else if (b === RBRACE || b === RBRACKET) {
            // A stray closing bracket: a record of its own, rejected downstream.
            endRecord(i + 1);
            mode = Mode.Between;
          }
          break;
        }
        case Mode.Candidate: {
          if (scalar) {
            if (stack.length === valDepth && isEnd(b)) {
              // The delimiter belongs to the enclosing level.
              endRecord(i);
              mode = Mode.Between;
              continue;
            }
            break;
          }
          if (b === QUOTE) {
            inStr = true;
            esc = false;
            if (expectKey && stack[stack.length - 1] === LBRACE) {
              expectKey = false;
              if (stack.length === valDepth + matched + 1) {
                capturing = true;
                key.reset();
                keyFrom = i + 1;
              }
            } else pending = false;
          } else if (b === LBRACE || b === LBRACKET) {
            if (pending) {
              pending = false;
              if (b === LBRACKET && matched === last) {
                // A wrapper: what was buffered is its envelope, not a record.
                stats.wrappers++;
                rec.reset();
                recording = false;
                stack.push(b);
                recDepth = stack.length;
                inElement = false;
                mode = Mode.Records;
                break;
              }
              if (b === LBRACE && matched < last) matched++;
            }
            stack.push(b);
            expectKey = b === LBRACE;
          } else if (b === RBRACE || b === RBRACKET) {
            pending = false;
            stack.pop();
            // Leaving an object of the path (they sit at depths valDepth+2…).
            if (stack.length < valDepth + 1 + matched) matched = Math.max(0, stack.length - valDepth - 1);
            if (stack.length <= valDepth) {
              endRecord(i + 1);
              mode = Mode.Between;
            }
          } else if (b === COMMA) {
            pending = false;
            if (stack[stack.length - 1] === LBRACE) expectKey = true;
          } else if (b !== COLON && !isSpace(b)) {
            pending = false;
            while (i + 1 < n && SPECIAL[chunk[i + 1] as number] === 0) i++;
          }
          break;
        }
        case Mode.Records: {
          if (!inElement) {
            if (isSpace(b) || b === COMMA) break;
            if (b === RBRACKET || b === RBRACE) {
              stack.pop();
              mode = stack.length <= valDepth ? Mode.Between : Mode.Skip;
              break;
            }
            inElement = true;
            recording = true;
            from = i;
            rec.reset();
            scalar = b !== LBRACE && b !== LBRACKET;
            if (b === QUOTE) {
              inStr = true;
              esc = false;
            } else if (!scalar) stack.push(b);
            break;
          }
          if (stack.length === recDepth && isEnd(b)) {
            // The end of a scalar element; the delimiter belongs to the array.
            endRecord(i);
            inElement = false;
            continue;
          }
          if (b === QUOTE) {
            inStr = true;
            esc = false;
          } else if (b === LBRACE || b === LBRACKET) stack.push(b);
          else if (b === RBRACE || b === RBRACKET) {
            stack.pop();
            if (stack.length === recDepth) {
              endRecord(i + 1);
              inElement = false;
            }
          } else while (i + 1 < n && SPECIAL[chunk[i + 1] as number] === 0) i++;
          break;
        }
        case Mode.Skip: {
          if (b === QUOTE) {
            inStr = true;
            esc = false;
          } else if (b === LBRACE || b === LBRACKET) stack.push(b);
          else if (b === RBRACE || b === RBRACKET) {
            stack.pop();
            if (stack.length <= valDepth) mode = Mode.Between;
          }
          break;
        }
      }
      i++;
    }
    if (recording) rec.append(chunk, from, n);
    if (capturing) key.append(chunk, keyFrom, n);
    if (outLen >= 32 * 1024) {
      yield Buffer.from(out.subarray(0, outLen));
      outLen = 0;
    }
  }
  // A truncated document: what was read of the last value is a record of its own (rejected downstream).
  if (recording) emit();
  if (outLen) yield Buffer.from(out.subarray(0, outLen));
}
