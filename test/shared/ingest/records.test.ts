import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  countByte,
  countFileRecords,
  countWords,
  recordGuard,
  RecordScanner,
  type RecordGuardOptions,
} from '../../../shared/ingest/records';

/** Splits text into records byte by byte, the slow obvious way: [record bytes, terminator][]. */
function referenceRecords(input: Buffer, csv: boolean): { records: [Buffer, Buffer][]; openQuote: boolean } {
  const Q = 0x22;
  const records: [Buffer, Buffer][] = [];
  let rec: number[] = [];
  let inQ = false;
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (inQ) {
      if (b === Q && input[i + 1] === Q) {
        rec.push(b, Q);
        i++;
      } else {
        if (b === Q) inQ = false;
        rec.push(b);
      }
    } else if (b === 0x0a || b === 0x0d) {
      const crlf = b === 0x0d && input[i + 1] === 0x0a;
      records.push([Buffer.from(rec), Buffer.from(crlf ? [0x0d, 0x0a] : [b])]);
      if (crlf) i++;
      rec = [];
    } else {
      // A quote opens a field at its start, or after one space there (DuckDB's reader does so).
      const startsField = (k: number): boolean => rec.length === k || rec[rec.length - k - 1] === 0x2c;
      if (csv && b === Q && (startsField(0) || (rec[rec.length - 1] === 0x20 && startsField(1)))) inQ = true;
      rec.push(b);
    }
  }
  if (rec.length) records.push([Buffer.from(rec), Buffer.alloc(0)]);
  return { records, openQuote: inQ };
}

const counted = (r: Buffer, csv: boolean, emptyIsRow: boolean): boolean =>
  csv ? r.length > 0 || emptyIsRow : /[^ \t]/.test(r.toString('latin1'));

function run(input: Buffer, opts: RecordGuardOptions, chunkSizes: () => number) {
  const s = new RecordScanner(opts);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length;) {
    const k = Math.max(1, chunkSizes());
    out.push(...s.push(input.subarray(i, i + k)));
    i += k;
  }
  out.push(...s.end());
  return { out: Buffer.concat(out), tally: s.tally };
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('ingest/records: the Node-side record guard', () => {
  it('counts and cuts exactly as a byte-by-byte reader would, however the input is chunked', () => {
    const rand = rng(42);
    const alphabet = ['a', 'b', ',', '"', '""', '\n', '\r', '\r\n', ' ', '\t', 'é'];
    for (let round = 0; round < 3000; round++) {
      const csv = round % 2 === 0;
      const emptyRecordIsRow = round % 4 === 0;
      // Some inputs without quotes and CRs, under a limit nothing reaches: the bulk path.
      const plain = round % 3 === 1;
      const max = plain && rand() < 0.7 ? 100 : 1 + Math.floor(rand() * 12);
      const letters = plain ? alphabet.filter((a) => !/["\r]/.test(a)) : alphabet;
      const parts: string[] = [];
      const len = Math.floor(rand() * 40);
      for (let i = 0; i < len; i++) parts.push(letters[Math.floor(rand() * letters.length)] as string);
      const input = Buffer.from(parts.join(''));
      const opts: RecordGuardOptions = {
        format: csv ? 'csv' : 'ndjson',
        maxRecordBytes: max,
        emptyRecordIsRow,
      };
      const whole = run(input, opts, () => input.length);
      const ctx = JSON.stringify({ input: input.toString(), csv, max, emptyRecordIsRow });

      // Chunking never changes anything.
      for (const size of [1, 2, 3, 7]) {
        const c = run(input, opts, () => (size === 7 ? 1 + Math.floor(rand() * 7) : size));
        assert.deepEqual(c.tally, whole.tally, ctx);
        assert.ok(c.out.equals(whole.out), `${ctx} chunked by ${size}`);
      }

      const ref = referenceRecords(input, csv);
      const expected = ref.records.filter(([r]) => r.length > max || counted(r, csv, emptyRecordIsRow));
      assert.equal(whole.tally.records, expected.length, ctx);
      assert.equal(whole.tally.unterminatedQuote, csv && ref.openQuote, ctx);
      // Records are split outside quotes: a line break inside one was inside a quoted field.
      assert.equal(
        whole.tally.quotedLineBreak,
        ref.records.some(([r]) => r.includes(0x0a) || r.includes(0x0d)),
        ctx,
      );

      // Output: same records in the same order; short ones untouched, long ones cut to a prefix that is
      // still over the limit and ends outside quotes.
      const got = referenceRecords(whole.out, csv);
      assert.equal(
        got.records.length,
        ref.records.length,
        `${ctx} → ${JSON.stringify(whole.out.toString())}`,
      );
      const cut: number[] = [];
      let k = 0;
      ref.records.forEach(([r, term], i) => {
        const [o, oTerm] = got.records[i] as [Buffer, Buffer];
        assert.ok(oTerm.equals(term), ctx);
        if (r.length > max || counted(r, csv, emptyRecordIsRow)) k++;
        if (r.length <= max + 1) return assert.ok(o.equals(r), ctx);
        cut.push(k);
        assert.ok(o.length > max && o.length <= max + 3, `${ctx}: cut to ${o.length}`);
        const body = o.subarray(0, Math.min(o.length, max + 2));
        assert.ok(
          r.subarray(0, body.length).equals(body) || r.subarray(0, o.length - 1).equals(o.subarray(0, -1)),
          ctx,
        );
        if (csv)
          assert.equal(referenceRecords(Buffer.concat([o, Buffer.from('\n')]), true).openQuote, false, ctx);
      });
      assert.deepEqual(whole.tally.cut, cut, ctx);
    }
  });

  it('a local file counted through one reused 1 MiB buffer tallies as the streamed guard does', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-records-'));
    try {
      const rand = rng(7);
      const MiB = 1024 * 1024;
      for (const [i, letters] of [
        ['a', 'b', ',', '\n', '\r\n', ' '], // plain records
        ['a', ',', '"', '""', '\n', '\r', '\r\n', 'é'], // quotes, CRs, multi-byte: cuts and carries
      ].entries()) {
        const parts: string[] = [];
        let len = 0;
        while (len < 2.3 * MiB) {
          const p = letters[Math.floor(rand() * letters.length)] as string;
          parts.push(p);
          len += Buffer.byteLength(p);
        }
        const content = Buffer.from(parts.join(''));
        for (const bom of [false, true]) {
          // Held bytes across the reused buffer's edges: a CRLF and a doubled quote split by each read.
          const edge = (bom ? MiB - 3 : MiB) - 1;
          const input = Buffer.from(content);
          input.write('\r\n', edge);
          input.write('""', edge + MiB);
          const file = path.join(dir, `in-${i}-${bom}.csv`);
          fs.writeFileSync(file, bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), input]) : input);
          for (const opts of [
            { format: 'csv', maxRecordBytes: 64 * 1024 },
            { format: 'csv', maxRecordBytes: 50, emptyRecordIsRow: true },
            { format: 'ndjson', maxRecordBytes: 40 },
          ] as RecordGuardOptions[]) {
            const guard = recordGuard(opts);
            for await (const _ of Readable.from([input]).pipe(guard)) void _;
            const scanner = new RecordScanner(opts);
            let seen = 0;
            await countFileRecords(file, scanner, { onBytes: (n) => (seen = n) });
            const ctx = JSON.stringify({ i, bom, opts });
            assert.deepEqual(scanner.tally, guard.tally, ctx);
            assert.equal(seen, input.length + (bom ? 3 : 0), ctx);
            assert.ok(guard.tally.records > 1000, ctx);
          }
        }
      }
      // `stop` ends the read after the chunk that made it true.
      const scanner = new RecordScanner({ format: 'csv', maxRecordBytes: 10 });
      let reads = 0;
      await countFileRecords(path.join(dir, 'in-1-false.csv'), scanner, {
        onBytes: () => reads++,
        stop: () => scanner.tally.cut.length > 0,
      });
      assert.equal(reads, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('countByte counts a byte however dense, sparse or mixed', () => {
    const rand = rng(7);
    for (let round = 0; round < 200; round++) {
      // Runs of lines of one length: dense ones switch to the word loop midway, sparse ones never.
      let text = '';
      while (text.length < 20_000)
        text += ('x'.repeat(Math.floor(rand() * (rand() < 0.5 ? 8 : 200))) + '\n').repeat(
          1 + Math.floor(rand() * 100),
        );
      const buf = Buffer.from(text);
      const from = Math.floor(rand() * 50);
      const to = buf.length - Math.floor(rand() * 50);
      const expected = [...buf.subarray(from, to)].filter((b) => b === 0x0a).length;
      assert.equal(countByte(buf, from, to, 0x0a), expected);
      assert.equal(countWords(buf, from, to, 0x0a), expected);
    }
  });

  it('countByte counts a byte at any alignment', () => {
    const buf = Buffer.from('\nab\n\n\ncdefg\nhij\n\n'.repeat(7));
    for (let from = 0; from < 9; from++)
      for (let to = buf.length - 9; to <= buf.length; to++) {
        const sub = buf.subarray(from, to);
        const expected = [...sub].filter((b) => b === 0x0a).length;
        assert.equal(countByte(buf, from, to, 0x0a), expected, `${from}..${to}`);
        assert.equal(countByte(sub, 0, sub.length, 0x0a), expected);
      }
  });

  it('a stream: counts records of a large input and cuts the one over the limit', async () => {
    const long = 'x'.repeat(3 * 1024 * 1024);
    const body = `a,b\n1,"${long}"\n2,y\n3,z`;
    const guard = recordGuard({ format: 'csv', maxRecordBytes: 1024 * 1024 });
    const chunks: Buffer[] = [];
    for await (const c of Readable.from([Buffer.from(body)]).pipe(guard)) chunks.push(c as Buffer);
    const out = Buffer.concat(chunks).toString();
    assert.deepEqual(guard.tally, { records: 4, cut: [2], unterminatedQuote: false, quotedLineBreak: false });
    assert.equal(out, `a,b\n1,"${'x'.repeat(1024 * 1024 - 2)}"\n2,y\n3,z`);
  });
});
