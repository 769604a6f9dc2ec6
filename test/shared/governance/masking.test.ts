import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import { readEventContractFile } from '../../../shared/events/contract';
import { maskedColumns, maskExpr, maskedViewSql, toMaskedSchemas } from '../../../shared/governance/masking';
import { packageRoot } from '../../../shared/paths';
import path from 'node:path';
import type { MaskingRule } from '../../../shared/governance/sensitivity';
import { checkBigQuery } from '../adapters/warehouse/bigquery-sql';

const RULES: MaskingRule[] = [
  'EMAIL_MASK',
  'LAST_FOUR_CHARACTERS',
  'DEFAULT_MASKING_VALUE',
  'SHA256',
  'DATE_YEAR',
  'ALWAYS_NULL',
];

describe('governance: masking rules and views', function () {
  it('DuckDB applies each rule as BigQuery documents it', async function () {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const one = async (rule: MaskingRule, value: string, type: unknown): Promise<unknown> =>
      (
        (
          await c.runAndReadAll(
            `SELECT ${maskExpr(rule, 'v', type, 'duckdb')} AS m FROM (SELECT ${value} AS v)`,
          )
        ).getRowObjectsJson()[0] as {
          m: unknown;
        }
      ).m;
    assert.equal(await one('EMAIL_MASK', "'ana.lee@example.com'", 'string'), 'XXXXX@example.com');
    assert.match(String(await one('EMAIL_MASK', "'not an email'", 'string')), /^[0-9a-f]{64}$/);
    assert.equal(await one('LAST_FOUR_CHARACTERS', "'+1 240-555-4793'", 'string'), 'XXXXX4793');
    assert.match(String(await one('LAST_FOUR_CHARACTERS', "'479'", 'string')), /^[0-9a-f]{64}$/);
    assert.equal(await one('DEFAULT_MASKING_VALUE', "'Emily'", 'string'), '');
    assert.equal(Number(await one('DEFAULT_MASKING_VALUE', '42', 'int64')), 0);
    assert.equal(await one('DATE_YEAR', "DATE '1992-02-04'", 'date'), '1992-01-01');
    assert.equal(await one('ALWAYS_NULL', "'x'", 'string'), null);
    for (const r of RULES)
      assert.equal(
        await one(
          r,
          r === 'DATE_YEAR' ? 'NULL::DATE' : 'NULL::VARCHAR',
          r === 'DATE_YEAR' ? 'date' : 'string',
        ),
        null,
        `${r} keeps NULL`,
      );
    c.closeSync();
  });

  it('renders the masked views as BigQuery Standard SQL', function () {
    const cols = RULES.map((rule, i) => ({
      name: `c${i}`,
      rule,
      type: rule === 'DATE_YEAR' ? 'date' : 'string',
    }));
    const sql = maskedViewSql(
      'bigquery',
      '`p.smelter_silver.store_users`',
      '`p.smelter_masked_silver.store_users`',
      cols,
      (x) => `\`${x}\``,
    );
    assert.match(sql, /EMAIL_MASK|CONCAT\('XXXXX'/);
    checkBigQuery(sql);
  });

  it('renders an event table’s masked view (the bundled orders: customer_email) as BigQuery SQL', function () {
    const c = readEventContractFile(path.join(packageRoot, 'contracts', 'events', 'order.json'));
    const masked = maskedColumns(c);
    assert.deepEqual(
      masked.map((m) => `${m.name}:${m.rule}`),
      ['customer_email:EMAIL_MASK'],
    );
    const sql = maskedViewSql(
      'bigquery',
      '`p.smelter_events.orders`',
      '`p.smelter_masked_events.orders`',
      masked,
      (x) => `\`${x}\``,
    );
    assert.match(sql, /SELECT \* REPLACE \(CASE WHEN `customer_email` IS NULL/);
    checkBigQuery(sql);
  });

  it('with a table filter, rewrites only the listed tables (events too), not a CTE named like a layer', function () {
    const only = (layer: string, table: string): boolean => `${layer}.${table}` === 'events.orders';
    assert.equal(
      toMaskedSchemas(
        'WITH events AS (SELECT * FROM events.orders) SELECT events.order_id FROM events JOIN events."orders" o ON true JOIN events.inventory i ON true',
        only,
      ),
      'WITH events AS (SELECT * FROM masked_events.orders) SELECT events.order_id FROM events JOIN masked_events."orders" o ON true JOIN events.inventory i ON true',
    );
  });

  it('points an analyst query at the masked schemas, outside strings and comments', function () {
    assert.equal(
      toMaskedSchemas(
        `SELECT s.email, 'silver.x' AS t FROM silver.store_users s JOIN "gold".c ON true -- gold.y`,
      ),
      `SELECT s.email, 'silver.x' AS t FROM masked_silver.store_users s JOIN "masked_gold".c ON true -- gold.y`,
    );
    assert.equal(toMaskedSchemas('SELECT silver FROM t'), 'SELECT silver FROM t');
    assert.equal(toMaskedSchemas('SELECT x.silver.y FROM t'), 'SELECT x.silver.y FROM t');
  });
});
