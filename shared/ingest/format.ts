/**
 * Input format detection (name → content type → magic bytes) and the small amount of parsing done in
 * Node: the CSV header line, so the DuckDB query can be composed before the bytes stream in.
 */
import { permanent } from '../errors';

export type InputFormat = 'csv' | 'ndjson' | 'json-array';

export interface FormatHints {
  name: string;
  contentType?: string;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

export function stripBom(buf: Buffer): Buffer {
  return buf.subarray(0, 3).equals(BOM) ? buf.subarray(3) : buf;
}

function firstNonSpace(head: Buffer): number | undefined {
  for (const b of head) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  return undefined;
}

/** Extensions that we know we do not read; better a clear error than a garbage parse. */
const UNSUPPORTED = /\.(parquet|avro|orc|xlsx?|zip|7z|rar|bz2|xz|zst|tar|pdf|png|jpe?g|gif)$/i;

/**
 * Decides the format of (decompressed) content. The extension is the user's explicit statement and
 * wins; `.json` is sniffed for array vs NDJSON; without a known extension the content type and the
 * first non-blank byte decide.
 */
export function detectFormat(hints: FormatHints, head: Buffer): InputFormat | 'empty' {
  const name = hints.name.toLowerCase().replace(/\.(gz|gzip)$/, '');
  if (UNSUPPORTED.test(name)) throw permanent('UNSUPPORTED_FORMAT', `Unsupported file type: ${hints.name}`);
  const first = firstNonSpace(head);
  if (head.length > 0 && looksBinary(head))
    throw permanent('UNSUPPORTED_FORMAT', `Content of ${hints.name} looks binary, not CSV or JSON`);
  if (first === undefined) return 'empty';
  if (/\.(csv|tsv|txt)$/.test(name)) return 'csv';
  if (/\.(ndjson|jsonl)$/.test(name)) return 'ndjson';
  if (name.endsWith('.json')) return first === 0x5b ? 'json-array' : 'ndjson';
  const ct = (hints.contentType ?? '').toLowerCase();
  if (ct.includes('csv') || ct.startsWith('text/tab-separated')) return 'csv';
  if (ct.includes('ndjson') || ct.includes('jsonl') || ct.includes('json-seq')) return 'ndjson';
  if (first === 0x5b) return 'json-array';
  if (first === 0x7b) return 'ndjson';
  return 'csv';
}

function looksBinary(head: Buffer): boolean {
  const n = Math.min(head.length, 4096);
  for (let i = 0; i < n; i++) if (head[i] === 0) return true;
  return false;
}

export function csvDelimiterFor(name: string, declared?: string): string {
  if (declared) return declared;
  return /\.tsv(\.gz)?$/i.test(name) ? '\t' : ',';
}

/**
 * Parses the first CSV record (RFC 4180: quoted fields, doubled quotes, CRLF) from `head`.
 * Returns undefined when the head does not yet contain a complete record; with `final` (the head is
 * all there is to look at) the record ends with the head, and `unterminatedQuote` says it ended inside
 * a quoted field — a header no reader can split into records.
 */
export function parseCsvHeader(
  head: Buffer,
  delimiter: string,
  quote = '"',
  final = false,
): { fields: string[]; bytes: number; unterminatedQuote?: true } | undefined {
  const s = head.toString('utf8');
  const fields: string[] = [];
  let cur = '';
  let inQuotes = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (inQuotes) {
      if (ch === quote) {
        if (s[i + 1] === quote) {
          cur += quote;
          i++;
        } else inQuotes = false;
      } else cur += ch;
    } else if (ch === quote && cur.length === 0) inQuotes = true;
    else if (ch === delimiter) {
      fields.push(cur);
      cur = '';
    } else if (ch === '\n' || ch === '\r') {
      fields.push(cur);
      return { fields, bytes: Buffer.byteLength(s.slice(0, i + 1)) };
    } else cur += ch;
  }
  if (!final) return undefined;
  fields.push(cur);
  return { fields, bytes: head.length, ...(inQuotes ? { unterminatedQuote: true as const } : {}) };
}
