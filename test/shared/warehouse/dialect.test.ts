import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  BigQueryDialect,
  DuckDbDialect,
  MACRO_NAMES,
  macroCalls,
  renderMacros,
  splitArgs,
} from '../../../shared/warehouse/dialect';
import { isSmelterError } from '../../../shared/errors';
import { REPO } from '../../support/warehouse';

const duck = new DuckDbDialect();
const bq = new BigQueryDialect('proj-1', 'smelter', 'EU');
const range = { startDate: '2024-01-01', endDate: '2024-02-01' };

describe('warehouse dialect: one model source, two engines', () => {
  it('names tables per engine', () => {
    assert.equal(duck.render('SELECT * FROM @ref(silver.rainfall)'), 'SELECT * FROM silver.rainfall');
    assert.equal(
      bq.render('SELECT * FROM @ref(silver.rainfall)'),
      'SELECT * FROM `proj-1.smelter_silver.rainfall`',
    );
  });

  it('renders date truncation, date arithmetic, casts, safe casts and division', () => {
    const sql =
      '@date_trunc(d, month) @date_trunc(d, week) @date_add(d, 7, day) @date_diff(a, b, week) @cast(x, int64) @safe_cast(x, timestamp) @safe_divide(a, b) @to_date(ts)';
    assert.equal(
      duck.render(sql),
      "CAST(date_trunc('month', d) AS DATE) CAST(date_trunc('week', d) AS DATE) CAST(d + INTERVAL (7) DAY AS DATE) " +
        "date_diff('week', date_trunc('week', b), date_trunc('week', a)) CAST(x AS BIGINT) TRY_CAST(x AS TIMESTAMPTZ) " +
        '(CAST(a AS DOUBLE) / NULLIF(CAST(b AS DOUBLE), 0)) CAST(ts AS DATE)',
    );
    assert.equal(
      bq.render(sql),
      'DATE_TRUNC(d, MONTH) DATE_TRUNC(d, ISOWEEK) DATE_ADD(d, INTERVAL 7 DAY) DATE_DIFF(a, b, ISOWEEK) CAST(x AS INT64) SAFE_CAST(x AS TIMESTAMP) SAFE_DIVIDE(a, b) CAST(ts AS DATE)',
    );
  });

  it('renders array unnesting and SELECT * EXCEPT', () => {
    const sql = 'SELECT @star_except(_rn, x) FROM t CROSS JOIN @unnest(t.items, item)';
    assert.equal(
      duck.render(sql),
      'SELECT * EXCLUDE (_rn, x) FROM t CROSS JOIN UNNEST(t.items) AS _unnest_item(item)',
    );
    assert.equal(bq.render(sql), 'SELECT * EXCEPT (_rn, x) FROM t CROSS JOIN UNNEST(t.items) AS item');
  });

  it('renders a key hash (a fingerprint of the values, typed apart on BigQuery)', () => {
    const sql = 'SELECT COUNT(DISTINCT @key_hash(b.id, d)) FROM t AS b';
    assert.equal(duck.render(sql), 'SELECT COUNT(DISTINCT hash(b.id, d)) FROM t AS b');
    assert.equal(
      bq.render(sql),
      'SELECT COUNT(DISTINCT FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(b.id, d)))) FROM t AS b',
    );
  });

  it('renders the run range and the batch predicate', () => {
    const sql = 'WHERE d >= @start_date AND d < @end_date AND ts >= @start AND @batch(bronze.x)';
    assert.equal(
      duck.render(sql, { range, batch: { 'bronze.x': 'g = 1' } }),
      "WHERE d >= DATE '2024-01-01' AND d < DATE '2024-02-01' AND ts >= TIMESTAMPTZ '2024-01-01 00:00:00+00' AND (g = 1)",
    );
    assert.equal(
      bq.render(sql, { range }),
      "WHERE d >= DATE '2024-01-01' AND d < DATE '2024-02-01' AND ts >= TIMESTAMP '2024-01-01 00:00:00+00' AND (TRUE)",
    );
  });

  it('leaves string literals, quoted identifiers and comments alone; nests macros', () => {
    const sql =
      'SELECT \'@ref(x.y)\', "@this", `@start` -- @end\n, @date_trunc(@to_date(ts), month) /* @ref */';
    assert.equal(
      duck.render(sql),
      "SELECT '@ref(x.y)', \"@this\", `@start` -- @end\n, CAST(date_trunc('month', CAST(ts AS DATE)) AS DATE) /* @ref */",
    );
    assert.deepEqual(splitArgs("a, f(b, c), 'x, y', [1, 2]"), ['a', 'f(b, c)', "'x, y'", '[1, 2]']);
    assert.equal(
      renderMacros('@a(@b(1), 2) x', (n, a) => `${n}[${(a ?? []).join('|')}]`),
      'a[@b(1)|2] x',
    );
  });

  it('rejects unknown macros, wrong arity, bad units and undeclared refs with the model file', () => {
    const bad = (sql: string, re: RegExp, ctx = {}): void =>
      assert.throws(
        () => duck.render(sql, { where: 'models/x/gold/y.sql', ...ctx }),
        (e: unknown) =>
          isSmelterError(e, 'MODEL_FAILED') &&
          re.test(e.message) &&
          e.message.startsWith('models/x/gold/y.sql'),
      );
    bad('@nope(1)', /unknown macro/);
    bad('@date_trunc(d)', /takes 2 argument/);
    bad('@date_trunc(d, fortnight)', /unit must be one of/);
    bad('@cast(x, varchar)', /type must be one of/);
    bad('@ref(silver.a)', /not declared/, { allowedRefs: new Set(['silver.b']) });
    bad('@ref(platinum.a)', /not a table reference/);
    bad('@this', /only defined/);
    bad('@this(1)', /takes 0 argument/);
    bad('@star_except', /needs arguments/);
    bad('@date_add(d, 1, week)', /@date_add: unit must be one of day, month, year, got week/);
    bad('@date_diff(a, b, quarter)', /unit must be one of day, week, month, year/);
    bad('@safe_cast(x, int64, 1)', /takes 2 argument\(s\), got 3/);
    bad('@ref(silver.a', /unbalanced parentheses/);
    bad('@date_trunc(@nope(d), month)', /@nope: unknown macro/);
  });

  it('rejects a bad date in the run range as a permanent MODEL_FAILED naming the file', () => {
    for (const [sql, startDate] of [
      ['@start_date', 'yesterday'],
      ['@start', '2024-13-01'],
      ['@end_date', '2024-01-01'],
    ] as const) {
      for (const d of [duck, bq])
        assert.throws(
          () =>
            d.render(`SELECT ${sql}`, {
              where: 'models/x/gold/y.sql',
              range: { startDate, endDate: sql === '@end_date' ? '01/02/2024' : '2024-02-01' },
            }),
          (e: unknown) =>
            isSmelterError(e, 'MODEL_FAILED') &&
            e.kind === 'permanent' &&
            /^models\/x\/gold\/y\.sql: @\w+: not a date: /.test(e.message),
        );
    }
    // The literals themselves refuse bad input permanently too (the runner's SQL uses them directly).
    for (const f of [() => duck.dateLiteral('2024-1-1'), () => bq.timestampLiteral('soon')])
      assert.throws(f, (e: unknown) => isSmelterError(e, 'MODEL_FAILED') && e.kind === 'permanent');
  });

  it('lists every macro call, nested ones included, outside literals and comments', () => {
    const calls = macroCalls(
      "SELECT @date_trunc(@to_date(ts), month), '@ref(x.y)' FROM @ref(silver.a) -- @ref(silver.b)\nJOIN @batch(bronze.c)",
    );
    assert.deepEqual(
      calls.map((c) => c.name),
      ['date_trunc', 'to_date', 'ref', 'batch'],
    );
    assert.deepEqual(calls[2]?.args, ['silver.a']);
  });

  it('documents every macro of the table in models/README.md', () => {
    const readme = fs.readFileSync(path.join(REPO, 'models', 'README.md'), 'utf8');
    for (const name of MACRO_NAMES) assert.match(readme, new RegExp(`\`@${name}[(\`]`), name);
  });

  it('generates MERGE with version-ordered updates, pruning and custom update expressions', () => {
    const m = duck.merge({
      target: { layer: 'silver', name: 'orders' },
      source: { layer: 'ops', name: '_stage' },
      key: ['order_id'],
      columns: ['order_id', 'status', 'ordered_at'],
      version: ['updated_at'],
      updates: { ordered_at: 'LEAST(t.ordered_at, s.ordered_at)' },
      targetFilter: "t.d >= DATE '2024-01-01'",
    });
    assert.match(
      m,
      /^MERGE INTO silver\.orders AS t USING ops\._stage AS s ON t\."order_id" = s\."order_id" AND t\.d >= DATE '2024-01-01' WHEN MATCHED THEN UPDATE SET /,
    );
    assert.match(
      m,
      /"status" = CASE WHEN \(\(s\."updated_at" IS NOT NULL AND \(t\."updated_at" IS NULL OR s\."updated_at" > t\."updated_at"\)\)/,
    );
    assert.match(
      m,
      /"ordered_at" = LEAST\(t\.ordered_at, s\.ordered_at\) WHEN NOT MATCHED THEN INSERT \("order_id", "status", "ordered_at"\) VALUES \(s\."order_id", s\."status", s\."ordered_at"\)$/,
    );
    const plain = bq.merge({
      target: { layer: 'silver', name: 'r' },
      source: { layer: 'ops', name: 's' },
      key: ['k'],
      columns: ['k', 'v'],
      version: ['v1', 'v2'],
    });
    assert.match(
      plain,
      /^MERGE INTO `proj-1\.smelter_silver\.r` AS t USING `proj-1\.smelter_ops\.s` AS s ON t\.`k` = s\.`k` WHEN MATCHED AND \(.*`v2`.*\) THEN UPDATE SET `v` = s\.`v` WHEN NOT MATCHED/,
    );
  });

  it('generates partitioned, clustered tables on BigQuery and plain ones on DuckDB', () => {
    const t = { layer: 'gold', name: 'g' } as const;
    assert.equal(
      bq.createTableAs(t, 'SELECT 1 AS d', { empty: true, partitionBy: 'd', clusterBy: ['a', 'b'] }),
      'CREATE TABLE IF NOT EXISTS `proj-1.smelter_gold.g` PARTITION BY `d` CLUSTER BY `a`, `b` AS SELECT * FROM (SELECT 1 AS d) WHERE FALSE',
    );
    assert.equal(
      duck.createTableAs(t, 'SELECT 1 AS d', { empty: true, partitionBy: 'd' }),
      'CREATE TABLE IF NOT EXISTS gold.g AS SELECT * FROM (SELECT 1 AS d) AS _q LIMIT 0',
    );
    assert.equal(bq.transaction(['A', 'B']), 'BEGIN TRANSACTION;\nA;\nB;\nCOMMIT TRANSACTION;');
    assert.equal(duck.dateRangePredicate('d', { startDate: '0001-01-01', endDate: '9999-12-31' }), 'TRUE');
    assert.equal(
      bq.dateRangePredicate('d', { startDate: '2024-01-01', endDate: '9999-12-31' }),
      "`d` >= DATE '2024-01-01'",
    );
  });
});
