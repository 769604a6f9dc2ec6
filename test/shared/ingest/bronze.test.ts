import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { duckdbConversionEngines as engines } from '../../../shared/adapters/ingest/duckdb-engine';
import { createLogger } from '../../../shared/log';
import {
  bronzeNames,
  rawToBronzeFlow,
  type BronzeManifest,
  type BronzeOutcome,
  type QuarantineRow,
  type SourceRef,
} from '../../../shared/ingest/bronze';
import { isSmelterError, transient } from '../../../shared/errors';
import { LOCAL_FILE, localFileOf, type ObjectStore } from '../../../shared/storage/object-store';
import { readAll, testHome, type TestHome } from '../../support/home';
import { parquetSchema, queryParquet } from '../../support/parquet';

const log = createLogger({ format: 'silent' });

const ORDERS = {
  dataset: 'orders',
  columns: [
    { name: 'order_id', type: 'int64', required: true, aliases: ['Order ID'] },
    { name: 'customer', type: 'string', required: true },
    { name: 'note', type: 'string' },
    { name: 'amount', type: 'float64', default: 0 },
    { name: 'paid', type: 'bool' },
    { name: 'order_date', type: 'date', required: true },
    { name: 'created_at', type: 'timestamp' },
    { name: 'status', type: 'string', accepted: ['new', 'shipped'] },
    {
      name: 'items',
      type: {
        array: {
          struct: [
            { name: 'sku', type: 'string' },
            { name: 'qty', type: 'int64' },
          ],
        },
      },
    },
    {
      name: 'address',
      type: {
        struct: [
          { name: 'city', type: 'string' },
          { name: 'zip', type: 'string' },
        ],
      },
    },
  ],
  primaryKey: ['order_id'],
  partitionColumn: 'order_date',
};

describe('rawToBronze flow (local backend, real DuckDB)', function () {
  let h: TestHome;
  beforeEach(async () => {
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contracts-'));
    fs.mkdirSync(path.join(contracts, 'datasets'));
    fs.writeFileSync(path.join(contracts, 'datasets', 'orders.json'), JSON.stringify(ORDERS));
    fs.copyFileSync(
      path.join(__dirname, '../../../contracts/datasets/rainfall.json'),
      path.join(contracts, 'datasets', 'rainfall.json'),
    );
    h = await testHome({ SMELTER_CONTRACTS_DIR: contracts, SMELTER_DUCKDB_THREADS: '1' });
  });
  afterEach(() => h.cleanup());

  async function drop(
    name: string,
    body: string | Buffer,
    store: ObjectStore = h.store,
  ): Promise<BronzeOutcome & { gen: string }> {
    const m = await h.store.write(h.cfg.rawBucket, name, body);
    const out = await rawToBronzeFlow(
      { bucket: h.cfg.rawBucket, name, generation: m.generation },
      { cfg: h.cfg, store, log, engines },
    );
    return { ...out, gen: m.generation };
  }
  const bronzeFile = (m: BronzeManifest): string =>
    path.join(h.store.bucketDir(m.output.bucket), m.output.name);
  async function rejects(m: BronzeManifest): Promise<QuarantineRow[]> {
    if (!m.quarantine) return [];
    const text = (await readAll(await h.store.read(m.quarantine.bucket, m.quarantine.name))).toString();
    return text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as QuarantineRow);
  }
  function converted(o: BronzeOutcome): BronzeManifest {
    assert.equal(o.status, 'converted', JSON.stringify(o));
    return (o as { manifest: BronzeManifest }).manifest;
  }

  it('reads RFC 4180 CSV: quoted commas and newlines, escaped quotes, CRLF, BOM, empty fields, aliases', async () => {
    const csv =
      '\ufeffOrder ID,customer,note,amount,paid,order_date,created_at,status\r\n' +
      '1,"Smith, Jane","said ""hi""\r\nthen left",12.5,yes,2024-03-01,2024-03-01T10:00:00+02:00,new\r\n' +
      '2,Bob,,,false,2024-03-02,2024-03-02 08:30:00,\r\n';
    const m = converted(await drop('orders/a.csv', csv));
    assert.equal(m.rows, 2);
    assert.equal(m.rejected, 0);
    const rows = await queryParquet(
      bronzeFile(m),
      'SELECT order_id, customer, note, amount, paid, order_date::VARCHAR d, created_at::VARCHAR ts, status FROM p ORDER BY order_id',
    );
    assert.deepEqual(rows[0], {
      order_id: '1',
      customer: 'Smith, Jane',
      note: 'said "hi"\r\nthen left',
      amount: 12.5,
      paid: true,
      d: '2024-03-01',
      ts: '2024-03-01 08:00:00+00',
      status: 'new',
    });
    assert.deepEqual(rows[1], {
      order_id: '2',
      customer: 'Bob',
      note: null,
      amount: 0,
      paid: false,
      d: '2024-03-02',
      ts: '2024-03-02 08:30:00+00',
      status: null,
    });
  });

  it('writes real Parquet logical types: DATE, TIMESTAMP(UTC, micros), INT64, nested, lineage columns', async () => {
    const nd =
      '{"order_id":7,"customer":"c","order_date":"2024-01-05","created_at":"2024-01-05T12:00:00Z","items":[{"sku":"A","qty":2}],"address":{"city":"Oslo","zip":"0150"}}\n';
    const m = converted(await drop('orders/n.ndjson', nd));
    const s = await parquetSchema(bronzeFile(m));
    assert.equal(s.order_date?.converted, 'DATE');
    assert.match(String(s.created_at?.logical), /TimestampType\(isAdjustedToUTC=1.*MICROS/);
    assert.match(String(s._ingested_at?.logical), /isAdjustedToUTC=1/);
    assert.equal(s.order_id?.type, 'INT64');
    assert.equal(s._source_generation?.type, 'INT64');
    assert.ok(s.items && s.address, 'nested columns present');
    const [row] = await queryParquet(
      bronzeFile(m),
      'SELECT items[1].sku AS sku, items[1].qty AS qty, address.city AS city, _source_uri, _source_generation FROM p',
    );
    assert.deepEqual(row, {
      sku: 'A',
      qty: '2',
      city: 'Oslo',
      _source_uri: 'gs://raw/orders/n.ndjson',
      _source_generation: m.source.generation,
    });
    const meta = (await queryParquet(
      bronzeFile(m),
      `SELECT DISTINCT compression FROM parquet_metadata('${bronzeFile(m)}')`,
    )) as { compression: string }[];
    assert.deepEqual(
      meta.map((x) => x.compression),
      ['ZSTD'],
    );
  });

  it('quarantines bad rows with line, column and reason; counts balance', async () => {
    const csv = [
      'order_id,customer,amount,order_date,status',
      '1,a,1,2024-01-01,new', // ok (line 2)
      '2,,1,2024-01-01,new', // missing required customer (line 3)
      'x,b,1,2024-01-01,new', // order_id not an int (line 4)
      '4,c,1,2024-01-01', // too few columns (line 5)
      '5,d,1,2024-13-45,lost', // bad date + not accepted (line 6)
      '6,e,1.5,2024-01-02,shipped', // ok (line 7)
      '7,f,1,2024-01-02,new,extra', // too many columns (line 8)
      '8.5,g,1,2024-01-02,new', // 8.5 is not an int64 (line 9)
    ].join('\n');
    const m = converted(await drop('orders/bad.csv', csv + '\n'));
    assert.equal(m.rows, 2);
    assert.equal(m.rejected, 6);
    assert.equal(m.rowsIn, 8, 'every data line is accounted for');
    const r = await rejects(m);
    assert.deepEqual(
      r.map((x) => x.line),
      [3, 4, 5, 6, 8, 9],
    );
    assert.match(r[0]?.reason ?? '', /customer: missing required value/);
    assert.match(r[1]?.reason ?? '', /order_id: cannot convert "x" to int64/);
    assert.equal(r[2]?.error_type, 'MISSING COLUMNS');
    // DuckDB types order_date itself and rejects the row at the first cast error (line and column exact).
    assert.equal(r[3]?.reason, 'order_date: cannot convert "2024-13-45" to date');
    assert.equal(r[3]?.column, 'order_date');
    assert.equal(r[3]?.error_type, 'CAST');
    assert.equal(r[4]?.error_type, 'TOO MANY COLUMNS');
    assert.match(r[5]?.reason ?? '', /cannot convert "8.5" to int64/);
    assert.ok(r.every((x) => x.source === 'gs://raw/orders/bad.csv'));
  });

  it('on several threads (rows not kept in order) still reports exact lines and balances counts', async () => {
    await h.cleanup();
    h = await testHome({ SMELTER_CONTRACTS_DIR: h.cfg.contractsDir, SMELTER_DUCKDB_THREADS: '2' });
    const lines = ['order_id,customer,amount,order_date,status'];
    const bad = new Map<number, RegExp>();
    for (let i = 1; i <= 30_000; i++) {
      const line = lines.length + 1;
      if (i % 997 === 0) {
        lines.push(`${i},,1,2024-01-01,new`);
        bad.set(line, /customer: missing required value/);
      } else if (i % 1499 === 0) {
        lines.push(`${i},c,1,2024-01-01`);
        bad.set(line, /./);
      } else if (i % 2003 === 0) {
        lines.push(`${i}.5,c,1,2024-01-01,new`);
        bad.set(line, /cannot convert ".*" to int64/);
      } else lines.push(`${i},c${i % 7},${i % 100},2024-01-${String(1 + (i % 28)).padStart(2, '0')},new`);
    }
    const m = converted(await drop('orders/big.csv', lines.join('\n') + '\n'));
    assert.equal(m.rowsIn, 30_000);
    assert.equal(m.rejected, bad.size);
    assert.equal(m.rows, 30_000 - bad.size);
    const r = await rejects(m);
    assert.deepEqual(
      r.map((x) => x.line),
      [...bad.keys()].sort((a, b) => a - b),
    );
    for (const x of r) assert.match(x.reason, bad.get(x.line as number) as RegExp, JSON.stringify(x));
    const [agg] = await queryParquet(
      bronzeFile(m),
      'SELECT count(*)::INT n, count(DISTINCT order_id)::INT d, sum(order_id)::BIGINT s FROM p',
    );
    const expected = lines
      .slice(1)
      .filter((_, k) => !bad.has(k + 2))
      .reduce((a, l) => a + Number(l.split(',')[0]), 0);
    assert.deepEqual(agg, { n: m.rows, d: m.rows, s: String(expected) });
  });

  it('reads a clean file once; a structurally bad row costs a second read, never a partial output', async () => {
    const reads: string[] = [];
    const counting = Object.create(h.store) as ObjectStore;
    counting.read = (bucket, name, o) => {
      reads.push(name);
      return h.store.read(bucket, name, o);
    };
    const head = 'order_id,customer,amount,order_date,status';
    const rows = Array.from({ length: 5000 }, (_, i) => `${i + 1},c,1,2024-01-01,new`);
    const clean = converted(await drop('orders/clean.csv', [head, ...rows].join('\n') + '\n', counting));
    assert.deepEqual(reads, ['orders/clean.csv']);
    assert.equal(clean.rows, 5000);

    reads.length = 0;
    // The bad row comes last: the optimistic read has streamed nearly everything when it fails.
    const dirty = converted(
      await drop('orders/dirty.csv', [head, ...rows, '5001,c,1,not-a-date,new'].join('\n') + '\n', counting),
    );
    assert.deepEqual(reads, ['orders/dirty.csv', 'orders/dirty.csv']);
    assert.deepEqual([dirty.rows, dirty.rejected, dirty.rowsIn], [5000, 1, 5001]);
    const [n] = await queryParquet(bronzeFile(dirty), 'SELECT count(*)::INT n FROM p');
    assert.deepEqual(n, { n: 5000 });
    const bronze = fs.readdirSync(path.dirname(bronzeFile(dirty))).filter((f) => f.startsWith('dirty'));
    assert.equal(bronze.filter((f) => f.endsWith('.parquet')).length, 1);
    assert.deepEqual(
      (await rejects(dirty)).map((r) => [r.line, r.column]),
      [[5002, 'order_date']],
    );
  });

  it('trims spaces (and Unicode space separators) only at the edges of values', async () => {
    const nbsp = '\u00a0';
    const csv = [
      'order_id,customer,note,order_date,status',
      `1,  Zoë  ,São Paulo,2024-01-01, new`,
      `2,${nbsp}Ann${nbsp},inner  space,2024-01-01,shipped `,
      `3,"   ",x,2024-01-01,new`,
      `4,\tTab,  ,2024-01-01,new`,
    ].join('\n');
    const m = converted(await drop('orders/t.csv', csv + '\n'));
    const rows = await queryParquet(
      bronzeFile(m),
      'SELECT order_id, customer, note, status FROM p ORDER BY order_id',
    );
    assert.deepEqual(rows, [
      { order_id: '1', customer: 'Zoë', note: 'São Paulo', status: 'new' },
      { order_id: '2', customer: 'Ann', note: 'inner  space', status: 'shipped' },
      // DuckDB's trim() strips spaces, not tabs: a tab is data.
      { order_id: '4', customer: '\tTab', note: null, status: 'new' },
    ]);
    const r = await rejects(m);
    assert.deepEqual(
      r.map((x) => [x.line, x.reason]),
      [[4, 'customer: missing required value']],
    );
  });

  it('handles header-only and empty files (valid, empty Parquet with the schema)', async () => {
    for (const [name, body] of [
      ['orders/h.csv', 'order_id,customer,order_date\n'],
      ['orders/e.csv', ''],
    ] as const) {
      const m = converted(await drop(name, body));
      assert.equal(m.rows, 0);
      assert.equal(m.rejected, 0);
      const s = await parquetSchema(bronzeFile(m));
      assert.equal(s.order_date?.converted, 'DATE');
      assert.deepEqual(await queryParquet(bronzeFile(m), 'SELECT count(*)::INT n FROM p'), [{ n: 0 }]);
    }
  });

  it('reads NDJSON: bad JSON, non-objects and blank lines, with line numbers', async () => {
    const nd = [
      '{"order_id":1,"customer":"a","order_date":"2024-01-01"}',
      '',
      ' \t ', // blank: not a record
      '{"order_id":2,"customer":"b"', // truncated JSON (line 4)
      '[1,2]', // not an object (line 5)
      '{"order_id":"3","customer":"c","order_date":"2024-01-03","amount":"2.5"}', // coerced strings
      '{"order_id":4,"customer":"d","order_date":"2024-01-04","__proto__":{"polluted":true}}',
      '\t {"order_id":5,"customer":"e","order_date":"2024-01-05"}', // leading blanks: a record
    ].join('\n');
    const m = converted(await drop('orders/x.ndjson', nd));
    assert.equal(m.rows, 4);
    assert.equal(m.rejected, 2);
    const r = await rejects(m);
    assert.deepEqual(
      r.map((x) => [x.line, x.reason]),
      [
        [4, 'not valid JSON'],
        [5, 'record is not a JSON object'],
      ],
    );
    // Unparsed records are not copied (they may hold fields the contract does not map): the line points at them.
    assert.equal(r[0]?.raw, null);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const rows = await queryParquet(bronzeFile(m), 'SELECT order_id, amount FROM p ORDER BY 1');
    assert.deepEqual(rows, [
      { order_id: '1', amount: 0 },
      { order_id: '3', amount: 2.5 },
      { order_id: '4', amount: 0 },
      { order_id: '5', amount: 0 },
    ]);
  });

  it('reads a JSON array, and quarantines a malformed one whole with DuckDB’s error', async () => {
    const ok = converted(
      await drop(
        'orders/arr.json',
        JSON.stringify([
          { order_id: 1, customer: 'a', order_date: '2024-01-01' },
          { order_id: 2, customer: 'b', order_date: 'nope' },
        ]),
      ),
    );
    assert.equal(ok.rows, 1);
    assert.equal(ok.rejected, 1);
    assert.equal((await rejects(ok))[0]?.record, 2);
    const bad = await drop('orders/broken.json', '[{"order_id":1},{"order_id":');
    assert.equal(bad.status, 'quarantined');
    const err = JSON.parse(
      (
        await readAll(
          await h.store.read(
            h.cfg.quarantineBucket,
            (bad as { quarantine: { name: string } }).quarantine.name,
          ),
        )
      ).toString(),
    ) as { error: { code: string; message: string }; copy: string };
    assert.equal(err.error.code, 'BAD_DATA');
    assert.match(err.error.message, /DuckDB/);
    assert.match(err.copy, /^gs:\/\/quarantine\/_failed\/orders\//);
  });

  it('reads gzipped input like plain input (detected by magic bytes, not name)', async () => {
    const csv = 'order_id,customer,order_date\n1,a,2024-01-01\n2,b,2024-01-02\n';
    const m = converted(await drop('orders/z.csv', zlib.gzipSync(csv)));
    assert.equal(m.source.gzip, true);
    assert.equal(m.rows, 2);
  });

  it('stops a gzip bomb at the decompressed-size limit and quarantines it', async () => {
    const cfg = { ...h.cfg, maxDecompressedBytes: 1024 * 1024 };
    const bomb = zlib.gzipSync(
      Buffer.from('order_id,customer,order_date\n' + '1,a,2024-01-01\n'.repeat(2_000_000)),
    );
    assert.ok(bomb.length < 200_000);
    const m = await h.store.write(cfg.rawBucket, 'orders/bomb.csv.gz', bomb);
    const out = await rawToBronzeFlow(
      { bucket: cfg.rawBucket, name: m.name, generation: m.generation },
      { cfg, store: h.store, log, engines },
    );
    assert.equal(out.status, 'quarantined');
    assert.equal((out as { error: { code: string } }).error.code, 'DECOMPRESSED_TOO_LARGE');
    const names = bronzeNames({ bucket: cfg.rawBucket, name: m.name, generation: m.generation });
    assert.equal(await h.store.stat(cfg.bronzeBucket, names.parquet), undefined, 'no partial Parquet');
  });

  it('rejects a line longer than the limit without failing the file', async () => {
    h = { ...h, cfg: { ...h.cfg, maxLineBytes: 4096 } };
    const long = JSON.stringify({ order_id: 2, customer: 'x'.repeat(10_000), order_date: '2024-01-01' });
    const m = converted(
      await drop(
        'orders/long.ndjson',
        `{"order_id":1,"customer":"a","order_date":"2024-01-01"}\n${long}\n{"order_id":3,"customer":"c","order_date":"2024-01-01"}\n`,
      ),
    );
    assert.equal(m.rows, 2);
    assert.equal(m.rejected, 1);
    assert.equal((await rejects(m))[0]?.line, 2);
  });

  it('a record longer than DuckDB’s read buffer is a reject with its line, not lost (NDJSON, 12 MB, default limit)', async () => {
    assert.equal(h.cfg.maxLineBytes, 8 * 1024 ** 2);
    const long = JSON.stringify({
      order_id: 2,
      customer: 'x'.repeat(12 * 1024 ** 2),
      order_date: '2024-01-01',
    });
    const m = converted(
      await drop(
        'orders/huge.ndjson',
        `{"order_id":1,"customer":"a","order_date":"2024-01-01"}\n${long}\n{"order_id":3,"customer":"c","order_date":"2024-01-01"}\n`,
      ),
    );
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [2, 1, 3]);
    const [r] = await rejects(m);
    assert.equal(r?.line, 2);
    assert.equal(r?.source, m.source.uri, 'a structural reject names its source');
    assert.match(r?.reason ?? '', /longer than SMELTER_MAX_LINE_BYTES \(8388608 bytes\)/);
  });

  it('a CSV record longer than the read buffer, quoted or not, is a reject with its line; counts balance', async () => {
    h = { ...h, cfg: { ...h.cfg, maxLineBytes: 64 * 1024 } }; // read buffer: 4 MiB
    const big = 'y'.repeat(5 * 1024 ** 2);
    const csv =
      'order_id,customer,order_date\n1,a,2024-01-01\n' +
      `2,"${big},\n""${big}",2024-01-01\n` +
      '3,c,2024-01-01\n' +
      `4,${big},2024-01-01\n` +
      '5,e,2024-01-01\n';
    const m = converted(await drop('orders/huge.csv', csv));
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [3, 2, 5]);
    const rows = await rejects(m);
    assert.deepEqual(
      rows.map((r) => [r.line, r.source, r.error_type.split(', ')[0]]),
      [
        [3, m.source.uri, 'LINE SIZE OVER MAXIMUM'],
        [5, m.source.uri, 'LINE SIZE OVER MAXIMUM'],
      ],
    );
    const ids = await queryParquet<{ order_id: string }>(bronzeFile(m), 'SELECT order_id FROM p ORDER BY 1');
    assert.deepEqual(
      ids.map((r) => Number(r.order_id)),
      [1, 3, 5],
    );
  });

  it('quarantines a CSV whose header has an unterminated quote (never 0 rows + 0 rejects)', async () => {
    const out = await drop(
      'orders/openquote.csv',
      'order_id,"customer,order_date\n1,a,2024-01-01\n2,b,2024-01-02\n',
    );
    assert.equal(out.status, 'quarantined', JSON.stringify(out));
    const q = out as {
      error: { code: string; message: string };
      quarantine: { bucket: string; name: string };
    };
    assert.equal(q.error.code, 'BAD_DATA');
    assert.match(q.error.message, /unterminated quote/);
    const record = JSON.parse(
      (await readAll(await h.store.read(q.quarantine.bucket, q.quarantine.name))).toString(),
    ) as {
      copy: string | null;
    };
    assert.ok(record.copy, 'the original is kept in quarantine');
  });

  it('an unterminated quote in a data row: the rows before it are kept, the rest of the file is one reject', async () => {
    const m = converted(
      await drop(
        'orders/openrow.csv',
        'order_id,customer,order_date\n1,a,2024-01-01\n2,"b,2024-01-02\n3,c,2024-01-03\n',
      ),
    );
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [1, 1, 2]);
    const [r] = await rejects(m);
    assert.equal(r?.line, 3);
    assert.match(r?.reason ?? '', /unterminated quote/);
    assert.match(String(r?.raw), /3,c,2024-01-03/, 'the swallowed records are in the reject');
  });

  it('checks rowsIn against its own count of records: a file DuckDB splits into fewer records is quarantined', async () => {
    // Mixed line ends: after a CR LF, DuckDB's reader drops the `" ` that follows a lone CR (3 rows, no
    // reject); the Node side reads 4 records. Publishing would lose one without a trace.
    const row = (id: number): string =>
      JSON.stringify({ order_id: id, customer: 'c', order_date: '2024-01-01' });
    const out = await drop('orders/mixed.ndjson', `${row(1)}\r\n${row(2)}\r" \r\n${row(4)}\r\n`);
    assert.equal(out.status, 'quarantined', JSON.stringify(out));
    assert.equal((out as { error: { code: string } }).error.code, 'COUNT_MISMATCH');
    const names = bronzeNames({ bucket: h.cfg.rawBucket, name: 'orders/mixed.ndjson', generation: out.gen });
    // Not committed: no manifest, so the loader never loads its Parquet (test/shared/warehouse/commit.test.ts).
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, names.manifest), undefined, 'no manifest');
  });

  it('rejects a JSON object, array or boolean for a string column instead of keeping its text', async () => {
    const lines = [
      { order_id: 1, customer: 'a', order_date: '2024-01-01', note: 'ok' },
      { order_id: 2, customer: { name: 'b' }, order_date: '2024-01-01' },
      { order_id: 3, customer: 'c', order_date: '2024-01-01', note: ['x'] },
      { order_id: 4, customer: true, order_date: '2024-01-01' },
      { order_id: 5, customer: 'true', order_date: '2024-01-01', note: '{not an object}' },
      { order_id: 6, customer: 7, order_date: '2024-01-01', note: null },
    ];
    const m = converted(await drop('orders/kinds.ndjson', lines.map((l) => JSON.stringify(l)).join('\n')));
    assert.deepEqual([m.rows, m.rejected], [3, 3]);
    assert.deepEqual(
      (await rejects(m)).map((r) => [r.line, r.reason]),
      [
        [2, 'customer: expected a string, got a JSON object'],
        [3, 'note: expected a string, got a JSON array'],
        [4, 'customer: expected a string, got a JSON boolean'],
      ],
    );
    const kept = await queryParquet<{ customer: string; note: string | null }>(
      bronzeFile(m),
      'SELECT customer, note FROM p ORDER BY order_id',
    );
    assert.deepEqual(kept, [
      { customer: 'a', note: 'ok' },
      { customer: 'true', note: '{not an object}' },
      { customer: '7', note: null },
    ]);
  });

  it('stops a gzip bomb under the size cap by its decompression ratio', async () => {
    assert.equal(h.cfg.maxDecompressionRatio, 100);
    const body = Buffer.from('order_id,customer,order_date\n' + '1,a,2024-01-01\n'.repeat(1_400_000)); // 21 MB
    const gz = zlib.gzipSync(body, { level: 9 });
    assert.ok(body.length / gz.length > 100 && body.length < h.cfg.maxDecompressedBytes);
    const out = await drop('orders/ratio.csv.gz', gz);
    assert.equal(out.status, 'quarantined', JSON.stringify(out));
    const err = (out as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'DECOMPRESSED_TOO_LARGE');
    assert.match(err.message, /SMELTER_MAX_DECOMPRESSION_RATIO/);
  });

  it('quarantines unknown datasets, unsupported formats and files outside a dataset folder', async () => {
    for (const [name, code] of [
      ['nosuch/a.csv', 'UNKNOWN_DATASET'],
      ['orders/book.xlsx', 'UNSUPPORTED_FORMAT'],
      ['orders/bin.csv', 'UNSUPPORTED_FORMAT'],
      ['toplevel.csv', 'UNKNOWN_DATASET'],
    ] as const) {
      const out = await drop(name, name.endsWith('bin.csv') ? Buffer.from([0x50, 0, 0, 1, 2]) : 'a,b\n1,2\n');
      assert.equal(out.status, 'quarantined', name);
      assert.equal((out as { error: { code: string } }).error.code, code, name);
    }
  });

  it('fills defaults (the seed’s fillna(0)) and normalises header names on the bundled rainfall contract', async () => {
    const csv =
      'Station,Region,Day,Rain (mm)\nst1,North,2024-01-01,\nst1,North,2024-01-02,NA\nst1,North,2024-01-03,4.5\n';
    const m = converted(await drop('rainfall/r.csv', csv));
    const rows = await queryParquet(bronzeFile(m), 'SELECT station_id, rain_mm FROM p ORDER BY date');
    assert.deepEqual(rows, [
      { station_id: 'ST1', rain_mm: 0 },
      { station_id: 'ST1', rain_mm: 0 },
      { station_id: 'ST1', rain_mm: 4.5 },
    ]);
  });

  it('is idempotent: the same event ten times yields one output and no error', async () => {
    const m = await h.store.write(
      h.cfg.rawBucket,
      'orders/d.csv',
      'order_id,customer,order_date\n1,a,2024-01-01\n',
    );
    const ref = { bucket: h.cfg.rawBucket, name: m.name, generation: m.generation };
    const outs = [];
    for (let i = 0; i < 10; i++)
      outs.push(await rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines }));
    assert.equal(outs.filter((o) => o.status === 'converted').length, 1);
    assert.equal(outs.filter((o) => o.status === 'duplicate').length, 9);
    const objs = [];
    for await (const o of h.store.list(h.cfg.bronzeBucket)) objs.push(o.name);
    assert.equal(objs.filter((n) => n.endsWith('.parquet')).length, 1);
    assert.equal(objs.filter((n) => n.endsWith('.manifest.json')).length, 1);
  });

  it('concurrent deliveries produce exactly one output (losers ask for a retry, then see a duplicate)', async () => {
    const m = await h.store.write(
      h.cfg.rawBucket,
      'orders/c.csv',
      'order_id,customer,order_date\n1,a,2024-01-01\n',
    );
    const ref = { bucket: h.cfg.rawBucket, name: m.name, generation: m.generation };
    const settled = await Promise.allSettled(
      [1, 2, 3].map(() => rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines })),
    );
    for (const s of settled)
      if (s.status === 'rejected') assert.ok(isSmelterError(s.reason) && s.reason.kind === 'transient');
    const again = await rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines });
    assert.equal(again.status, 'duplicate');
    const parquet = [];
    for await (const o of h.store.list(h.cfg.bronzeBucket))
      if (o.name.endsWith('.parquet')) parquet.push(o.name);
    assert.equal(parquet.length, 1);
  });

  it('a crash mid-write leaves nothing; the retry yields the single complete output', async () => {
    const body =
      'order_id,customer,order_date\n' +
      Array.from({ length: 50_000 }, (_, i) => `${i},c${i},2024-01-01`).join('\n') +
      '\n';
    const m = await h.store.write(h.cfg.rawBucket, 'orders/crash.csv', body);
    const ref = { bucket: h.cfg.rawBucket, name: m.name, generation: m.generation };
    // A store whose Parquet upload dies after some bytes, like an instance killed mid-upload.
    const crashing: ObjectStore = Object.create(h.store) as ObjectStore;
    crashing.write = async (bucket, name, source, opts) => {
      if (!name.endsWith('.parquet')) return h.store.write(bucket, name, source, opts);
      const cut = new PassThrough();
      cut.on('error', () => undefined);
      let n = 0;
      (source as Readable).on('data', (c: Buffer) => {
        n += c.length;
        if (n > 1000) cut.destroy(transient('STORAGE_UNAVAILABLE', 'connection reset mid-upload'));
        else cut.write(c);
      });
      return h.store.write(bucket, name, cut, opts);
    };
    await assert.rejects(
      rawToBronzeFlow(ref, { cfg: h.cfg, store: crashing, log, engines }),
      (e: unknown) => isSmelterError(e) && e.kind === 'transient',
    );
    const names = bronzeNames(ref);
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, names.parquet), undefined);
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, names.manifest), undefined);
    const m2 = converted(await rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines }));
    assert.equal(m2.rows, 50_000);
  });

  it('a crash after the Parquet but before the manifest is completed by the retry without a second Parquet', async () => {
    const m = await h.store.write(
      h.cfg.rawBucket,
      'orders/half.csv',
      'order_id,customer,order_date\n1,a,2024-01-01\n2,b,2024-01-01\n',
    );
    const ref = { bucket: h.cfg.rawBucket, name: m.name, generation: m.generation };
    const first = converted(await rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines }));
    const names = bronzeNames(ref);
    await h.store.delete(h.cfg.bronzeBucket, names.manifest); // as if we died right before writing it
    const gen = (await h.store.stat(h.cfg.bronzeBucket, names.parquet))?.generation;
    const again = converted(await rawToBronzeFlow(ref, { cfg: h.cfg, store: h.store, log, engines }));
    assert.equal(again.rows, first.rows);
    assert.equal(
      (await h.store.stat(h.cfg.bronzeBucket, names.parquet))?.generation,
      gen,
      'Parquet untouched',
    );
  });

  /**
   * 100,000 orders in the raw bucket, and a store whose reads of them fail (a transient socket hang-up)
   * after 200,000 bytes; `offerFile` keeps the local file on offer, so only the Node side's read fails.
   */
  async function flakyOrders(offerFile: boolean): Promise<{ ref: SourceRef; flaky: ObjectStore }> {
    const body =
      'order_id,customer,order_date\n' +
      Array.from({ length: 100_000 }, (_, i) => `${i},c,2024-01-01`).join('\n') +
      '\n';
    const m = await h.store.write(h.cfg.rawBucket, 'orders/flaky.csv', body);
    const ref = { bucket: h.cfg.rawBucket, name: m.name, generation: m.generation };
    const flaky: ObjectStore = Object.create(h.store) as ObjectStore;
    flaky.read = async (bucket, name, opts) => {
      const src = await h.store.read(bucket, name, opts);
      let n = 0;
      const out = new PassThrough();
      src.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 200_000) out.destroy(transient('STORAGE_UNAVAILABLE', 'socket hang up'));
        else out.write(c);
      });
      src.on('end', () => out.end());
      return offerFile ? Object.assign(out, { [LOCAL_FILE]: localFileOf(src) }) : out;
    };
    return { ref, flaky };
  }

  it('a source read failure mid-stream never yields a truncated Parquet', async () => {
    const { ref, flaky } = await flakyOrders(false);
    await assert.rejects(rawToBronzeFlow(ref, { cfg: h.cfg, store: flaky, log, engines }), (e: unknown) =>
      isSmelterError(e, 'STORAGE_UNAVAILABLE'),
    );
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, bronzeNames(ref).parquet), undefined);
  });

  /** A logger keeping its DEBUG lines (how DuckDB read the source). */
  function debugLog(): { log: ReturnType<typeof createLogger>; lines: string[] } {
    const lines: string[] = [];
    return { lines, log: createLogger({ format: 'text', level: 'DEBUG', sink: (l) => lines.push(l) }) };
  }
  async function convertWith(name: string, store: ObjectStore, logger = log): Promise<BronzeManifest> {
    const meta = await h.store.stat(h.cfg.rawBucket, name);
    return converted(
      await rawToBronzeFlow(
        { bucket: h.cfg.rawBucket, name, generation: String(meta?.generation) },
        { cfg: h.cfg, store, log: logger, engines },
      ),
    );
  }

  it('scans a local file on every thread, across read buffers: exact rows, rejects and lines (CRLF, BOM)', async () => {
    // Read buffers of 4 MiB: the ~9 MB file spans three, scanned in parallel.
    h = { ...h, cfg: { ...h.cfg, maxLineBytes: 64 * 1024, duckdbThreads: 2 } };
    const lines = ['order_id,customer,amount,order_date,status'];
    const bad = new Map<number, string>();
    let sum = 0;
    for (let i = 1; i <= 240_000; i++) {
      const at = (k: number): boolean => i % k === 0;
      const line = lines.length + 1;
      if (at(39_999)) {
        lines.push(`${i},c,1,2024-02-30,new`);
        bad.set(line, 'CAST'); // DuckDB's own reject
      } else if (at(70_001)) {
        lines.push(`${i},c,1,2024-01-01,new,extra`);
        bad.set(line, 'TOO MANY COLUMNS');
      } else if (at(90_001)) {
        lines.push(`${i},,1,2024-01-01,new`);
        bad.set(line, 'CONTRACT'); // found by pass 2, its line recovered from DuckDB's
      } else {
        lines.push(`${i},customer-${i % 97},${i % 100},2024-01-${String(1 + (i % 28)).padStart(2, '0')},new`);
        sum += i;
      }
    }
    // A BOM too: DuckDB reads it in the file (the Node side strips it from the stream).
    const body = '\ufeff' + lines.join('\r\n') + '\r\n';
    assert.ok(body.length > 8 * 1024 ** 2);
    await h.store.write(h.cfg.rawBucket, 'orders/wide.csv', body);
    const { log: logger, lines: logged } = debugLog();
    const m = await convertWith('orders/wide.csv', h.store, logger);
    assert.ok(
      logged.some((l) => l.includes('DuckDB scanned the local file itself')),
      logged.join('\n'),
    );
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [240_000 - bad.size, bad.size, 240_000]);
    assert.deepEqual(
      (await rejects(m)).map((x) => [x.line, x.error_type]),
      [...bad],
    );
    assert.deepEqual(
      await queryParquet(bronzeFile(m), 'SELECT count(*)::INT n, sum(order_id)::BIGINT s FROM p'),
      [{ n: m.rows, s: String(sum) }],
    );
  });

  it('a 12 MB CSV line in a local file: DuckDB gets the guarded stream, the line is a reject with its number', async () => {
    assert.equal(h.cfg.maxLineBytes, 8 * 1024 ** 2);
    const csv = `order_id,customer,order_date\n1,a,2024-01-01\n2,${'x'.repeat(12 * 1024 ** 2)},2024-01-01\n3,c,2024-01-01\n`;
    await h.store.write(h.cfg.rawBucket, 'orders/long.csv', csv);
    const { log: logger, lines: logged } = debugLog();
    const m = await convertWith('orders/long.csv', h.store, logger);
    assert.ok(
      logged.some((l) => l.includes('needs the record guard')),
      logged.join('\n'),
    );
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [2, 1, 3]);
    const [r] = await rejects(m);
    assert.equal(r?.line, 3);
    assert.match(r?.reason ?? '', /longer than SMELTER_MAX_LINE_BYTES \(8388608 bytes\)/);
    assert.deepEqual([r?.error_type, r?.column], ['LINE SIZE OVER MAXIMUM', null]);
  });

  it('a local file whose counting read fails mid-way yields no Parquet, though DuckDB read the file whole', async () => {
    const { ref, flaky } = await flakyOrders(true);
    const { log: logger, lines: logged } = debugLog();
    await assert.rejects(
      rawToBronzeFlow(ref, { cfg: h.cfg, store: flaky, log: logger, engines }),
      (e: unknown) => isSmelterError(e, 'STORAGE_UNAVAILABLE'),
    );
    assert.ok(!logged.some((l) => l.includes('scanned the local file')), logged.join('\n'));
    assert.equal(await h.store.stat(h.cfg.bronzeBucket, bronzeNames(ref).parquet), undefined);
  });

  it('skips a superseded generation (a newer one has its own event)', async () => {
    const m1 = await h.store.write(
      h.cfg.rawBucket,
      'orders/s.csv',
      'order_id,customer,order_date\n1,a,2024-01-01\n',
    );
    await new Promise((r) => setTimeout(r, 5));
    await h.store.write(h.cfg.rawBucket, 'orders/s.csv', 'order_id,customer,order_date\n2,b,2024-01-01\n');
    const out = await rawToBronzeFlow(
      { bucket: h.cfg.rawBucket, name: m1.name, generation: m1.generation },
      { cfg: h.cfg, store: h.store, log, engines },
    );
    assert.equal(out.status, 'skipped');
  });
});
