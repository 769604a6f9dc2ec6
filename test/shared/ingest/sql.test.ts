/**
 * The conversion SQL on its own: what it binds, what it refuses up front, and what DuckDB does with it
 * on plain files (no pipes, no object store).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { DatasetContract } from '../../../shared/contracts/dataset';
import { isSmelterError } from '../../../shared/errors';
import {
  bindCsvColumns,
  buildConversionSql,
  lit,
  nativeCsvType,
  q,
  type ReadSpec,
} from '../../../shared/ingest/sql';
import { queryParquet } from '../../support/parquet';

const LINEAGE = {
  sourceUri: "gs://raw/d/it's.csv",
  generation: '1700000000000000',
  ingestedAt: '2024-05-01T00:00:00Z',
};

const C: DatasetContract = {
  dataset: 'd',
  columns: [
    { name: 'id', type: 'int64', required: true, aliases: ['ID No'] },
    { name: 'name', type: 'string', case: 'upper' },
    { name: 'qty', type: 'float64', default: 0, min: 0, max: 100 },
    { name: 'ok', type: 'bool' },
    { name: 'day', type: 'date', format: '%d/%m/%Y' },
    { name: 'kind', type: 'string', accepted: ['a', 'b'], nullValues: ['-'] },
  ],
  primaryKey: ['id'],
  nullValues: ['NA'],
};

const spec = (format: ReadSpec['format'], header?: string[]): ReadSpec => ({
  format,
  maxLineBytes: 64 * 1024,
  ...(header ? { header, delimiter: ',' } : {}),
});

describe('ingest/sql', () => {
  it('quotes identifiers and literals', () => {
    assert.equal(q('a"b'), '"a""b"');
    assert.equal(lit("it's"), "'it''s'");
  });

  it('binds CSV header positions by normalised name and alias; lists unknown columns', () => {
    const { bound, unknown } = bindCsvColumns(C, ['ID No', 'Name', ' extra ', '', 'okCol', 'Day']);
    assert.deepEqual(
      [...bound],
      [
        ['id', 0],
        ['name', 1],
        ['day', 5],
      ],
    );
    assert.deepEqual(unknown, [' extra ', 'okCol']);
  });

  it('types natively only columns DuckDB reads the way the contract means', () => {
    assert.equal(nativeCsvType({ name: 'x', type: 'float64' }), 'DOUBLE');
    assert.equal(nativeCsvType({ name: 'x', type: 'date' }), 'DATE');
    assert.equal(nativeCsvType({ name: 'x', type: 'timestamp' }), 'TIMESTAMPTZ');
    assert.equal(nativeCsvType({ name: 'x', type: 'date', format: '%d/%m/%Y' }), undefined);
    assert.equal(nativeCsvType({ name: 'x', type: 'float64', nullValues: ['-'] }), undefined);
    for (const type of ['int64', 'bool', 'numeric', 'string', 'json'] as const)
      assert.equal(nativeCsvType({ name: 'x', type }), undefined, type);
  });

  it('fills the CSV read spec: types per header position, contract column per position, null markers', () => {
    const s = spec('csv', ['id', 'qty', 'junk', 'day']);
    buildConversionSql(C, s, LINEAGE, 'x1');
    // qty is natively typed (a default does not stop that); day has a strptime format, so stays text.
    assert.deepEqual(s.csvTypes, ['VARCHAR', 'DOUBLE', 'VARCHAR', 'VARCHAR']);
    assert.deepEqual(s.csvContractColumns, ['id', 'qty', undefined, 'day']);
    assert.deepEqual(s.nullValues, ['NA']);
  });

  it('refuses a header that cannot match the contract, as one permanent error listing every problem', () => {
    assert.throws(
      () =>
        buildConversionSql({ ...C, unknownColumns: 'reject' }, spec('csv', ['name', 'x', 'y']), LINEAGE, 'x'),
      (e: unknown) =>
        isSmelterError(e, 'BAD_DATA') &&
        e.kind === 'permanent' &&
        JSON.stringify(e.details) ===
          JSON.stringify({
            problems: [
              'unknown column(s) in header: x, y',
              'required column "id" is missing from the header',
            ],
          }),
    );
    // A required column with a default may be absent.
    buildConversionSql(
      { ...C, columns: [{ name: 'id', type: 'int64', required: true, default: 1 }] },
      spec('csv', ['other']),
      LINEAGE,
      'x',
    );
  });

  it('names the reject tables by id and declares the output schema with lineage', () => {
    const sql = buildConversionSql(C, spec('ndjson'), LINEAGE, 'abc');
    assert.equal(sql.rejectsTable, 'rejects_abc');
    assert.equal(sql.rejectsScan, 'rejects_scan_abc');
    assert.deepEqual(
      sql.outputColumns.map((c) => `${c.name}:${c.type}`),
      [
        'id:BIGINT',
        'name:VARCHAR',
        'qty:DOUBLE',
        'ok:BOOLEAN',
        'day:DATE',
        'kind:VARCHAR',
        '_source_uri:VARCHAR',
        '_source_generation:BIGINT',
        '_ingested_at:TIMESTAMP WITH TIME ZONE',
      ],
    );
  });

  describe('run by DuckDB on files', () => {
    let db: DuckDBInstance;
    let conn: DuckDBConnection;
    let dir: string;
    before(async () => {
      db = await DuckDBInstance.create(':memory:', { threads: '1' });
      conn = await db.connect();
      await conn.run(`SET TimeZone = 'UTC'`);
    });
    after(() => conn.closeSync());
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-sql-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    async function readAndDrop(query: string, sql: { rejectsTable: string; rejectsScan: string }) {
      const rows = (await conn.runAndReadAll(query)).getRowObjectsJson();
      await conn.run(`DROP TABLE ${sql.rejectsTable}; DROP TABLE ${sql.rejectsScan}`);
      return rows;
    }

    async function run(s: ReadSpec, body: string, contract = C) {
      const input = path.join(dir, 'in');
      fs.writeFileSync(input, body);
      const sql = buildConversionSql(contract, s, LINEAGE, 't' + Math.random().toString(36).slice(2, 8));
      const out = path.join(dir, 'out.parquet');
      const copied = await conn.runAndReadAll(sql.valid(input, out, { rowGroupRows: 1000 }));
      const count = Number(Object.values(copied.getRowObjectsJson()[0] ?? {})[0]);
      const structural =
        s.format === 'json-array'
          ? []
          : await readAndDrop(`SELECT line, error_type FROM ${sql.rejectsTable} ORDER BY line`, sql);
      const rejectsFile = path.join(dir, 'rejects.json');
      await conn.run(sql.rejects(input, rejectsFile));
      if (s.format !== 'json-array') await readAndDrop('SELECT 1', sql);
      const rejects = fs
        .readFileSync(rejectsFile, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(
          (l) =>
            JSON.parse(l) as {
              record: number;
              violations: { column: string | null; reason: string }[];
              raw: unknown;
            },
        );
      return { count, rows: await queryParquet(out, 'SELECT * FROM p ORDER BY id'), rejects, structural };
    }

    it('CSV: cleans, casts and checks every value; pass 2 lists every violation of a dropped row', async () => {
      const csv = [
        'ID No,name,qty,ok,day,kind',
        '1, ada ,2.5,yes,31/12/2024,a',
        '2,bob,,N,01/01/2024,-',
        '3,cy,NA,1,,b',
        '4.5,dee,101,maybe,2024-01-01,z',
        ',eve,-1,true,01/02/2024,a',
      ].join('\n');
      const r = await run(spec('csv', csv.split('\n')[0]!.split(',')), csv + '\n');
      assert.equal(r.count, 3);
      assert.deepEqual(
        r.rows.map((x) => [x.id, x.name, x.qty, x.ok, x.day, x.kind]),
        [
          ['1', 'ADA', 2.5, true, '2024-12-31', 'a'],
          ['2', 'BOB', 0, false, '2024-01-01', null],
          ['3', 'CY', 0, true, null, 'b'],
        ],
      );
      assert.equal(r.rows[0]?._source_uri, LINEAGE.sourceUri);
      assert.equal(r.rows[0]?._source_generation, LINEAGE.generation);
      assert.deepEqual(r.structural, []);
      assert.deepEqual(
        r.rejects.map((x) => [x.record, x.violations.map((v) => `${v.column}: ${v.reason}`)]),
        [
          [
            4,
            [
              'id: cannot convert "4.5" to int64',
              'qty: value 101.0 is above the maximum 100',
              'ok: cannot convert "maybe" to bool',
              'day: cannot convert "2024-01-01" to date',
              'kind: value "z" is not one of the accepted values',
            ],
          ],
          [5, ['id: missing required value', 'qty: value -1.0 is below the minimum 0']],
        ],
      );
      // The raw record: cleaned values as text, natively typed ones as DuckDB read them.
      assert.deepEqual(JSON.parse(String(r.rejects[1]?.raw)), {
        id: null,
        name: 'EVE',
        qty: -1,
        ok: 'true',
        day: '01/02/2024',
        kind: 'a',
      });
    });

    it('CSV: a row with the wrong number of fields is a structural reject, recorded by line', async () => {
      const csv = 'id,name\n1,a\n2,b,extra\n3,c\n';
      const contract: DatasetContract = { dataset: 'd', columns: C.columns.slice(0, 2), primaryKey: ['id'] };
      const r = await run(spec('csv', ['id', 'name']), csv, contract);
      assert.equal(r.count, 2);
      assert.deepEqual(r.structural, [{ line: '3', error_type: 'TOO MANY COLUMNS' }]);
    });

    it('NDJSON: keys and aliases, non-objects, invalid JSON, blank lines, unknown fields', async () => {
      const contract: DatasetContract = { ...C, unknownColumns: 'reject' };
      const lines = [
        '{"ID No": 1, "name": "a", "qty": 3, "ok": true}',
        '',
        '[1, 2]',
        '{"id": 2, "name": "b", "zzz": 1}',
        '{not json',
        '{"id": "7", "qty": "1e1"}',
      ];
      const r = await run(spec('ndjson'), lines.join('\n') + '\n', contract);
      assert.equal(r.count, 2);
      assert.deepEqual(
        r.rows.map((x) => [x.id, x.name, x.qty, x.ok]),
        [
          ['1', 'A', 3, true],
          ['7', null, 10, null],
        ],
      );
      assert.deepEqual(
        r.rejects.map((x) => [x.record, x.violations.map((v) => v.reason)]),
        [
          // Numbered by physical line: the blank line counts.
          [3, ['record is not a JSON object']],
          [4, ['unknown field(s): zzz']],
          [5, ['not valid JSON']],
        ],
      );
    });

    it('a JSON array is read element by element', async () => {
      const r = await run(spec('json-array'), '[{"id": 1}, {"id": 2, "ok": "no"}, {"id": "x"}]');
      assert.equal(r.count, 2);
      assert.deepEqual(
        r.rows.map((x) => [x.id, x.ok]),
        [
          ['1', null],
          ['2', false],
        ],
      );
      assert.equal(r.rejects[0]?.violations[0]?.reason, 'cannot convert "x" to int64');
    });
  });
});
