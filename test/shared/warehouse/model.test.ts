import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSmelterError } from '../../../shared/errors';
import { ModelGraph } from '../../../shared/warehouse/dag';
import { loadModels, parseAudit, parseModel } from '../../../shared/warehouse/model';
import {
  alignRange,
  changedDates,
  CHANGED_ALL,
  floorGrain,
  mergeChanges,
  nextGrain,
  rangesFor,
} from '../../../shared/warehouse/ranges';
import { classifyBronzeObject, loadJobId, batchPredicate } from '../../../shared/warehouse/loader';
import { DuckDbDialect } from '../../../shared/warehouse/dialect';
import { REPO } from '../../support/warehouse';

const model = (header: string, body = 'SELECT * FROM @ref(silver.a)', file = '/m/dom/gold/x.sql') =>
  parseModel(`${header}\n${body}\n`, file);
const fails = (fn: () => unknown, re: RegExp): void =>
  assert.throws(fn, (e: unknown) => isSmelterError(e, 'MODEL_FAILED') && re.test(e.message));

describe('warehouse models: header format, DAG, ranges', () => {
  it('parses a model header', () => {
    const m = model(
      [
        '-- model: gold.x',
        '-- kind: incremental_by_time_range',
        '-- description: Line one',
        '--   continued.',
        '-- A free-text comment line is ignored.',
        '-- time_column: d',
        '-- grain: month',
        '-- unique_key: a, d',
        '-- cluster_by: a',
        '-- inputs: silver.a',
        "-- audit: accepted_values(kind, 'x', 'it''s')",
        '-- audit: not_null(a)',
      ].join('\n'),
    );
    assert.equal(m.key, 'gold.x');
    assert.equal(m.kind, 'incremental_by_time_range');
    assert.equal(m.description, 'Line one continued.');
    assert.equal(m.grain, 'month');
    assert.equal(m.partitionBy, 'd');
    assert.deepEqual(m.uniqueKey, ['a', 'd']);
    assert.deepEqual(m.audits, [
      { type: 'accepted_values', column: 'kind', values: ['x', "it's"] },
      { type: 'not_null', columns: ['a'] },
    ]);
    assert.equal(m.domain, 'dom');
  });

  it('rejects incomplete or inconsistent headers, naming the file', () => {
    fails(() => model('-- kind: full\n-- inputs: silver.a'), /needs "-- model/);
    fails(() => model('-- model: gold.x\n-- kind: merge\n-- inputs: silver.a'), /needs unique_key/);
    fails(() => model('-- model: gold.x\n-- kind: incremental\n-- inputs: silver.a'), /needs time_column/);
    fails(() => model('-- model: silver.x\n-- kind: full\n-- inputs: silver.a'), /must target gold/);
    fails(
      () => model('-- model: gold.x\n-- kind: full\n-- inputs: silver.a, silver.b'),
      /silver\.b is declared but never referenced/,
    );
    fails(
      () => model('-- model: gold.x\n-- kind: full\n-- inputs: silver.b'),
      /@ref\(silver\.a\) is not declared/,
    );
    fails(() => model('-- model: gold.x\n-- kind: full\n-- inptus: silver.a'), /unknown header key "inptus"/);
    fails(() => model('-- model: gold.x\n-- kind: full\n-- inputs: silver.a', 'DELETE FROM x'), /one SELECT/);
    fails(
      () => model('-- model: gold.x\n-- kind: full\n-- inputs: silver.a', 'SELECT 1; SELECT 2'),
      /single statement/,
    );
    fails(() => parseAudit('nope(a)', 'f.sql'), /unknown audit/);
    fails(() => parseAudit('accepted_values(a, b)', 'f.sql'), /quoted string/);
  });

  it('derives the inputs from @ref/@batch calls; an -- inputs: header is optional but must agree', () => {
    const derived = model(
      '-- model: gold.x\n-- kind: merge\n-- unique_key: k',
      [
        "WITH a AS (SELECT * FROM @ref(silver.b) WHERE @batch(bronze.c) AND note <> '@ref(silver.z)')",
        '-- @ref(silver.commented_out)',
        'SELECT * FROM a JOIN @ref(silver.a) USING (k) JOIN @ref( silver.b ) USING (k)',
        'WHERE k NOT IN (SELECT k FROM @ref(gold.x)) AND @date_trunc(@to_date(ts), month) IS NOT NULL',
      ].join('\n'),
    );
    // Order of first use; the target itself (read to compare with what it wrote) is not an input.
    assert.deepEqual(derived.inputs, ['silver.b', 'bronze.c', 'silver.a']);
    const declared = model(
      '-- model: gold.x\n-- kind: full\n-- inputs: silver.a',
      'SELECT * FROM @ref(silver.a)',
    );
    assert.deepEqual(declared.inputs, ['silver.a']);
    fails(
      () =>
        model(
          '-- model: gold.x\n-- kind: full\n-- inputs: silver.b, silver.a',
          'SELECT * FROM @ref(silver.a)',
        ),
      /inputs:" header disagrees with the tables the SQL reads \(silver\.a\): input silver\.b is declared but never referenced/,
    );
    fails(
      () => model('-- model: gold.x\n-- kind: full', 'SELECT 1 AS k'),
      /^\/m\/dom\/gold\/x\.sql: the model reads no table/,
    );
    fails(
      () => model('-- model: gold.x\n-- kind: full', 'SELECT * FROM @ref(platinum.a)'),
      /^\/m\/dom\/gold\/x\.sql: @ref: "platinum\.a" is not a table reference/,
    );
  });

  it('loads every model of the repository and orders them by their inputs', () => {
    const { models, audits } = loadModels(path.join(REPO, 'models'));
    assert.ok(models.length >= 25 && audits.length >= 4);
    const g = new ModelGraph(models);
    const pos = new Map(g.order.map((m, i) => [m.key, i]));
    for (const m of g.order)
      for (const i of m.inputs)
        if (pos.has(i))
          assert.ok((pos.get(i) as number) < (pos.get(m.key) as number), `${i} before ${m.key}`);
    assert.deepEqual(g.sources(), [
      'bronze.network_measurements',
      'bronze.rainfall',
      'bronze.store_carts',
      'bronze.store_products',
      'bronze.store_users',
      'events.inventory',
      'events.orders',
      'events.user_activity',
    ]);
    assert.deepEqual(
      g.downstreamOf(['bronze.store_users']).map((m) => m.key),
      [
        'silver.store_users',
        'gold.store_customers',
        'gold.store_purchases_daily',
        'gold.store_purchases_by_segment',
      ].sort((a, b) => (pos.get(a) as number) - (pos.get(b) as number)),
    );
    for (const m of models) for (const s of g.sourcesOf(m)) assert.match(s, /^(bronze|events)\./);
  });

  it('detects cycles and unknown inputs', () => {
    const a = model('-- model: gold.a\n-- kind: full\n-- inputs: gold.b', 'SELECT * FROM @ref(gold.b)');
    const b = model(
      '-- model: gold.b\n-- kind: full\n-- inputs: gold.a',
      'SELECT * FROM @ref(gold.a)',
      '/m/dom/gold/b.sql',
    );
    fails(() => new ModelGraph([a, b]), /cycle: gold\.a → gold\.b → gold\.a/);
    fails(() => new ModelGraph([a]), /neither a source/);
  });

  it('loads audits beside the models and checks they target a model', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-m-'));
    try {
      fs.mkdirSync(path.join(dir, 'd', 'gold'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'd', 'audits'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'd', 'gold', 'x.sql'),
        '-- model: gold.x\n-- kind: full\n-- inputs: silver.a\nSELECT * FROM @ref(silver.a)',
      );
      fs.writeFileSync(
        path.join(dir, 'd', 'audits', 'a.sql'),
        '-- audit: pos\n-- model: gold.y\nSELECT * FROM @this WHERE v < 0',
      );
      fails(() => loadModels(dir), /checks gold\.y, which no model writes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns changed partitions into whole-grain ranges', () => {
    assert.equal(floorGrain('2024-05-09', 'week'), '2024-05-06');
    assert.equal(nextGrain('2024-01-31', 'month'), '2024-02-01');
    assert.deepEqual(
      rangesFor(changedDates(['2024-01-03', '2024-01-01', '2024-01-02', '2024-01-10']), 'day'),
      [
        { startDate: '2024-01-01', endDate: '2024-01-04' },
        { startDate: '2024-01-10', endDate: '2024-01-11' },
      ],
    );
    assert.deepEqual(rangesFor(changedDates(['2024-01-03', '2024-02-28']), 'month'), [
      { startDate: '2024-01-01', endDate: '2024-03-01' },
    ]);
    assert.deepEqual(
      rangesFor(changedDates(['2024-01-01', '2024-01-05', '2024-01-09'], '2024-01-08'), 'day'),
      [
        { startDate: '2024-01-01', endDate: '2024-01-02' },
        { startDate: '2024-01-05', endDate: '2024-01-06' },
        { startDate: '2024-01-08', endDate: '9999-12-31' },
      ],
    );
    const many = changedDates(
      Array.from(
        { length: 20 },
        (_, i) =>
          `2024-01-${String(1 + i * 1.5)
            .split('.')[0]
            ?.padStart(2, '0')}`,
      ),
    );
    assert.ok(rangesFor(many, 'day', 4).length <= 4);
    assert.deepEqual(rangesFor(CHANGED_ALL, 'day'), [{ startDate: '0001-01-01', endDate: '9999-12-31' }]);
    assert.deepEqual(mergeChanges(changedDates(['2024-01-01']), CHANGED_ALL), CHANGED_ALL);
    assert.deepEqual(alignRange({ startDate: '2024-01-10', endDate: '2024-01-11' }, 'week'), {
      startDate: '2024-01-08',
      endDate: '2024-01-15',
    });
  });

  it('picks Bronze objects and derives deterministic load job ids and batch predicates', () => {
    assert.deepEqual(classifyBronzeObject('rainfall/ingest_date=2024-01-01/a-1234abcd-g17.parquet'), {
      dataset: 'rainfall',
    });
    assert.equal(
      'skip' in classifyBronzeObject('rainfall/ingest_date=2024-01-01/a-1234abcd-g17.manifest.json'),
      true,
    );
    assert.equal('skip' in classifyBronzeObject('rainfall/x.rejects.ndjson'), true);
    assert.equal('skip' in classifyBronzeObject('_failed/rainfall/x.parquet'), true);
    const o = { bucket: 'bronze', name: 'rainfall/x-g1.parquet', generation: '5' };
    assert.equal(loadJobId(o), loadJobId({ ...o }));
    assert.notEqual(loadJobId(o), loadJobId({ ...o, generation: '6' }));
    assert.match(loadJobId(o), /^smelter_load_[0-9a-f]{40}$/);
    assert.equal(
      batchPredicate(
        new DuckDbDialect(),
        'rainfall/ingest_date=2024-06-01/a-1234abcd-g1717200000000000.parquet',
      ),
      `"_source_generation" = 1717200000000000 AND "_ingested_at" >= TIMESTAMPTZ '2024-05-31 23:59:00.000+00'`,
    );
    assert.equal(batchPredicate(new DuckDbDialect(), 'rainfall/hand-made.parquet'), 'TRUE');
  });
});
