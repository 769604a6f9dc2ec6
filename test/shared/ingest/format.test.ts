import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { isSmelterError } from '../../../shared/errors';
import {
  csvDelimiterFor,
  detectFormat,
  isGzip,
  parseCsvHeader,
  stripBom,
} from '../../../shared/ingest/format';

const b = (s: string): Buffer => Buffer.from(s);

describe('ingest/format', () => {
  describe('detectFormat', () => {
    it('lets the extension decide, and sniffs .json for array vs NDJSON', () => {
      assert.equal(detectFormat({ name: 'd/a.csv' }, b('{"a":1}\n')), 'csv');
      assert.equal(detectFormat({ name: 'd/a.TSV.gz' }, b('a\tb\n')), 'csv');
      assert.equal(detectFormat({ name: 'd/a.txt' }, b('a,b\n')), 'csv');
      assert.equal(detectFormat({ name: 'd/a.jsonl' }, b('[1]\n')), 'ndjson');
      assert.equal(detectFormat({ name: 'd/a.ndjson.gzip' }, b('{}\n')), 'ndjson');
      assert.equal(detectFormat({ name: 'd/a.json' }, b('  \n[{"a":1}]')), 'json-array');
      assert.equal(detectFormat({ name: 'd/a.json' }, b('{"a":1}\n{"a":2}\n')), 'ndjson');
    });

    it('without a known extension, the content type and then the first non-blank byte decide', () => {
      assert.equal(detectFormat({ name: 'd/a', contentType: 'text/csv' }, b('{"a":1}')), 'csv');
      assert.equal(detectFormat({ name: 'd/a', contentType: 'text/tab-separated-values' }, b('x')), 'csv');
      assert.equal(detectFormat({ name: 'd/a', contentType: 'application/x-ndjson' }, b('[1]')), 'ndjson');
      assert.equal(detectFormat({ name: 'd/a', contentType: 'application/jsonl' }, b('x')), 'ndjson');
      assert.equal(detectFormat({ name: 'd/a' }, b('\r\n\t [1]')), 'json-array');
      assert.equal(detectFormat({ name: 'd/a' }, b(' {"a":1}')), 'ndjson');
      assert.equal(detectFormat({ name: 'd/a' }, b('a,b\n1,2\n')), 'csv');
    });

    it('calls blank content empty, whatever the name', () => {
      assert.equal(detectFormat({ name: 'd/a.csv' }, b('')), 'empty');
      assert.equal(detectFormat({ name: 'd/a.json' }, b(' \r\n\t\n')), 'empty');
    });

    it('refuses formats it does not read and binary content, as permanent errors', () => {
      for (const name of [
        'd/a.parquet',
        'd/a.xlsx',
        'd/a.XLS',
        'd/a.zip',
        'd/a.png',
        'd/a.tar.gz',
        'd/a.zst',
      ])
        assert.throws(
          () => detectFormat({ name }, b('a,b\n')),
          (e: unknown) => isSmelterError(e, 'UNSUPPORTED_FORMAT') && e.kind === 'permanent',
          name,
        );
      assert.throws(
        () => detectFormat({ name: 'd/a.csv' }, Buffer.from([0x61, 0x2c, 0x00, 0x62])),
        (e: unknown) => isSmelterError(e, 'UNSUPPORTED_FORMAT'),
      );
      // A NUL past the first 4 KiB is not looked at (the sniff is bounded).
      const late = Buffer.concat([b('a,b\n'.repeat(1100)), Buffer.from([0])]);
      assert.equal(detectFormat({ name: 'd/a.csv' }, late), 'csv');
    });
  });

  it('isGzip reads the magic bytes; stripBom removes only a leading UTF-8 BOM', () => {
    assert.equal(isGzip(zlib.gzipSync('x')), true);
    assert.equal(isGzip(Buffer.from([0x1f])), false);
    assert.equal(isGzip(b('a,b')), false);
    assert.equal(stripBom(b('\ufeffa,b')).toString(), 'a,b');
    assert.equal(stripBom(b('a,\ufeffb')).toString(), 'a,\ufeffb');
    assert.equal(stripBom(b('')).length, 0);
  });

  it('csvDelimiterFor: a declared delimiter wins, .tsv means tab, else comma', () => {
    assert.equal(csvDelimiterFor('d/a.tsv'), '\t');
    assert.equal(csvDelimiterFor('d/a.TSV.gz'), '\t');
    assert.equal(csvDelimiterFor('d/a.csv'), ',');
    assert.equal(csvDelimiterFor('d/a.tsv', ';'), ';');
  });

  describe('parseCsvHeader', () => {
    it('parses RFC 4180 fields: quotes, doubled quotes, delimiters and newlines inside quotes', () => {
      const head = b('id,"a, b","say ""hi""","multi\nline",\nrest');
      const h = parseCsvHeader(head, ',');
      assert.deepEqual(h?.fields, ['id', 'a, b', 'say "hi"', 'multi\nline', '']);
      assert.equal(h?.bytes, head.indexOf('\nrest') + 1);
    });

    it('ends the record at CR or LF and counts bytes in UTF-8', () => {
      assert.deepEqual(parseCsvHeader(b('a;b\r\n1;2'), ';'), { fields: ['a', 'b'], bytes: 4 });
      const h = parseCsvHeader(b('ώρα\tτιμή\n'), '\t');
      assert.deepEqual(h?.fields, ['ώρα', 'τιμή']);
      assert.equal(h?.bytes, Buffer.byteLength('ώρα\tτιμή\n'));
    });

    it('a quote inside an unquoted field is data', () => {
      assert.deepEqual(parseCsvHeader(b('a"b,c\n'), ',')?.fields, ['a"b', 'c']);
    });

    it('is undefined until the record is complete, unless the head is all there is', () => {
      assert.equal(parseCsvHeader(b('a,b'), ','), undefined);
      assert.equal(parseCsvHeader(b('a,"b\n'), ','), undefined);
      assert.deepEqual(parseCsvHeader(b('a,b'), ',', '"', true), { fields: ['a', 'b'], bytes: 3 });
    });
  });
});
