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
const isOpen = (b: number): boolean => b === LBRACE || b === LBRACKET;
const isClose = (b: number): boolean => b === RBRACE || b === RBRACKET;

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

/** The NDJSON written so far: records, each ended by a newline, handed out in blocks. */
class Lines {
  private buf = Buffer.allocUnsafe(64 * 1024);
  len = 0;
  push(rec: RecordBytes): void {
    const need = rec.len + 1;
    if (this.len + need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + need));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    rec.buf.copy(this.buf, this.len, 0, rec.len);
    this.len += rec.len;
    this.buf[this.len++] = NL;
  }
  take(): Buffer {
    const b = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return b;
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
  const u = new Unwrapper(path, opts.maxRecordBytes, opts.stats ?? { records: 0, wrappers: 0 });
  let first = true;
  for await (const c of input) {
    let chunk = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
    if (first && chunk.length) {
      first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    u.feed(chunk);
    if (u.out.len >= 32 * 1024) yield u.out.take();
  }
  u.end();
  if (u.out.len) yield u.out.take();
}

/**
 * The scanner's state across chunks. `feed` walks a chunk byte by byte: inside a string one handler,
 * otherwise the handler of the current mode; each returns the index to continue at (the same index
 * when the byte belongs to the next mode).
 */
class Unwrapper {
  readonly out = new Lines();
  private readonly segs: Buffer[];
  private readonly last: number;
  private readonly rec: RecordBytes;
  /** The key being read, when it may name the next path segment. */
  private readonly key = new RecordBytes(1024);
  private mode = Mode.Between;
  private readonly stack: number[] = [];
  private inStr = false;
  private esc = false;
  private expectKey = false;
  /** Stack depth of the flattened outermost array, or -1. */
  private flat = -1;
  /** Stack depth at which the current top-level value started. */
  private valDepth = 0;
  /** Path segments matched by the objects the candidate is inside (the wrapper's own keys: 0). */
  private matched = 0;
  private capturing = false;
  /** The key just read names the next path segment: its value decides. */
  private pending = false;
  private scalar = false;
  /** Records mode: stack depth of the records array; whether an element is being read. */
  private recDepth = 0;
  private inElement = false;
  private recording = false;
  /** The chunk being scanned; where the current record's and key's unsaved bytes start in it. */
  private chunk: Buffer = Buffer.alloc(0);
  private from = 0;
  private keyFrom = 0;

  constructor(
    path: string[],
    maxRecordBytes: number,
    private readonly stats: UnwrapStats,
  ) {
    this.segs = path.map((s) => Buffer.from(s, 'utf8'));
    this.last = this.segs.length - 1;
    this.rec = new RecordBytes(maxRecordBytes + 1);
  }

  feed(chunk: Buffer): void {
    this.chunk = chunk;
    this.from = 0;
    this.keyFrom = 0;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.inStr) {
        i = this.inString(i);
        continue;
      }
      const b = chunk[i] as number;
      if (this.recording && !this.scalar && (b === NL || b === CR)) {
        // Whitespace between tokens: dropped, the record stays one line.
        this.rec.append(chunk, this.from, i);
        this.from = ++i;
        continue;
      }
      switch (this.mode) {
        case Mode.Between:
          i = this.between(b, i);
          break;
        case Mode.Candidate:
          i = this.candidate(b, i);
          break;
        case Mode.Records:
          i = this.records(b, i);
          break;
        case Mode.Skip:
          i = this.skip(b, i);
          break;
      }
    }
    if (this.recording) this.rec.append(chunk, this.from, n);
    if (this.capturing) this.key.append(chunk, this.keyFrom, n);
  }

  /** End of input: what was read of a truncated last value is a record of its own (rejected downstream). */
  end(): void {
    if (this.recording) this.emit();
  }

  private emit(): void {
    this.out.push(this.rec);
    this.stats.records++;
    this.rec.reset();
  }

  private endRecord(to: number): void {
    this.rec.append(this.chunk, this.from, to);
    this.emit();
    this.recording = false;
  }

  private openString(): void {
    this.inStr = true;
    this.esc = false;
  }

  /** Skips a run of plain value characters after `i`; returns the index of its last byte. */
  private plainRun(i: number): number {
    const c = this.chunk;
    const n = c.length;
    while (i + 1 < n && SPECIAL[c[i + 1] as number] === 0) i++;
    return i;
  }

  private inString(i: number): number {
    if (this.esc) {
      this.esc = false;
      return i + 1;
    }
    const c = this.chunk;
    const n = c.length;
    let b = c[i] as number;
    while (b !== QUOTE && b !== BACKSLASH && b !== NL && b !== CR) {
      if (++i >= n) return n;
      b = c[i] as number;
    }
    if (b === BACKSLASH) this.esc = true;
    else if (b === QUOTE) this.closeString(i);
    else if (this.recording) {
      // A raw line break inside a string (invalid JSON): escaped, so the record stays one line.
      this.rec.append(c, this.from, i);
      const e = b === NL ? ESCAPED_NL : ESCAPED_CR;
      this.rec.append(e, 0, e.length);
      this.from = i + 1;
    }
    return i + 1;
  }

  /** The closing quote at `i`: ends a key being matched, or a scalar record. */
  private closeString(i: number): void {
    this.inStr = false;
    if (this.capturing) {
      const key = this.key;
      key.append(this.chunk, this.keyFrom, i);
      this.capturing = false;
      const seg = this.segs[this.matched];
      this.pending =
        seg !== undefined && key.total === seg.length && key.buf.subarray(0, key.len).equals(seg);
    }
    if (!this.scalar) return;
    if (this.mode === Mode.Candidate && this.stack.length === this.valDepth) {
      this.endRecord(i + 1);
      this.mode = Mode.Between;
    } else if (this.mode === Mode.Records && this.inElement && this.stack.length === this.recDepth) {
      this.endRecord(i + 1);
      this.inElement = false;
    }
  }

  /** The first byte of a record: it is buffered from here. */
  private startRecord(b: number, i: number): void {
    this.recording = true;
    this.from = i;
    this.rec.reset();
    this.scalar = !isOpen(b);
    if (b === QUOTE) this.openString();
  }

  /** Between top-level values: separators, the outermost array's brackets, or a value's first byte. */
  private between(b: number, i: number): number {
    const stack = this.stack;
    if (isSpace(b) || b === COMMA) return i + 1;
    if (b === LBRACKET && this.flat < 0 && stack.length === 0) {
      stack.push(b);
      this.flat = stack.length;
      return i + 1;
    }
    if (b === RBRACKET && this.flat >= 0 && stack.length === this.flat) {
      stack.pop();
      this.flat = -1;
      return i + 1;
    }
    this.valDepth = stack.length;
    this.matched = 0;
    this.pending = false;
    this.mode = Mode.Candidate;
    this.startRecord(b, i);
    if (!this.scalar) {
      stack.push(b);
      this.expectKey = b === LBRACE;
    } else if (isClose(b)) {
      // A stray closing bracket: a record of its own, rejected downstream.
      this.endRecord(i + 1);
      this.mode = Mode.Between;
    }
    return i + 1;
  }

  /** Inside a top-level value: follows the records path until it is a wrapper or ends as a record. */
  private candidate(b: number, i: number): number {
    if (this.scalar) {
      if (this.stack.length === this.valDepth && isEnd(b)) {
        // The delimiter belongs to the enclosing level.
        this.endRecord(i);
        this.mode = Mode.Between;
        return i;
      }
      return i + 1;
    }
    if (b === QUOTE) this.candidateQuote(i);
    else if (isOpen(b)) this.candidateOpen(b);
    else if (isClose(b)) this.candidateClose(i);
    else if (b === COMMA) {
      this.pending = false;
      if (this.stack[this.stack.length - 1] === LBRACE) this.expectKey = true;
    } else if (b !== COLON && !isSpace(b)) {
      this.pending = false;
      return this.plainRun(i) + 1;
    }
    return i + 1;
  }

  /** A string in a candidate: a key at the path's next depth is captured to be matched. */
  private candidateQuote(i: number): void {
    this.openString();
    const stack = this.stack;
    if (this.expectKey && stack[stack.length - 1] === LBRACE) {
      this.expectKey = false;
      if (stack.length === this.valDepth + this.matched + 1) {
        this.capturing = true;
        this.key.reset();
        this.keyFrom = i + 1;
      }
    } else this.pending = false;
  }

  private candidateOpen(b: number): void {
    if (this.pending) {
      this.pending = false;
      if (b === LBRACKET && this.matched === this.last) return this.enterRecords(b);
      if (b === LBRACE && this.matched < this.last) this.matched++;
    }
    this.stack.push(b);
    this.expectKey = b === LBRACE;
  }

  /** A wrapper: what was buffered is its envelope, not a record. */
  private enterRecords(b: number): void {
    this.stats.wrappers++;
    this.rec.reset();
    this.recording = false;
    this.stack.push(b);
    this.recDepth = this.stack.length;
    this.inElement = false;
    this.mode = Mode.Records;
  }

  private candidateClose(i: number): void {
    const stack = this.stack;
    this.pending = false;
    stack.pop();
    // Leaving an object of the path (they sit at depths valDepth+2…).
    if (stack.length < this.valDepth + 1 + this.matched)
      this.matched = Math.max(0, stack.length - this.valDepth - 1);
    if (stack.length <= this.valDepth) {
      this.endRecord(i + 1);
      this.mode = Mode.Between;
    }
  }

  /** Inside a wrapper's records array: each element is a record. */
  private records(b: number, i: number): number {
    const stack = this.stack;
    if (!this.inElement) {
      if (isSpace(b) || b === COMMA) return i + 1;
      if (isClose(b)) {
        stack.pop();
        this.mode = stack.length <= this.valDepth ? Mode.Between : Mode.Skip;
        return i + 1;
      }
      this.inElement = true;
      this.startRecord(b, i);
      if (!this.scalar) stack.push(b);
      return i + 1;
    }
    if (stack.length === this.recDepth && isEnd(b)) {
      // The end of a scalar element; the delimiter belongs to the array.
      this.endRecord(i);
      this.inElement = false;
      return i;
    }
    if (b === QUOTE) this.openString();
    else if (isOpen(b)) stack.push(b);
    else if (isClose(b)) {
      stack.pop();
      if (stack.length === this.recDepth) {
        this.endRecord(i + 1);
        this.inElement = false;
      }
    } else return this.plainRun(i) + 1;
    return i + 1;
  }

  /** The rest of a wrapper after its records array: dropped up to its end. */
  private skip(b: number, i: number): number {
    if (b === QUOTE) this.openString();
    else if (isOpen(b)) this.stack.push(b);
    else if (isClose(b)) {
      this.stack.pop();
      if (this.stack.length <= this.valDepth) this.mode = Mode.Between;
    }
    return i + 1;
  }
}
