/**
 * The dashboard on BigQuery (client boundary, sinon stubs): every panel's query rendered for BigQuery
 * is BigQuery Standard SQL, its filters travel as query parameters (`@name`, values never in the SQL
 * text), and answers are versioned by the Gold tables' last modification (readable with Gold access).
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import {
  BigQueryEngine,
  bigqueryParams,
  type BigQueryClientLike,
} from '../../../shared/adapters/warehouse/bigquery';
import { PANELS } from '../../../shared/dashboard/charts';
import { PAGES } from '../../../shared/dashboard/pages';
import { DashboardService } from '../../../shared/dashboard/service';
import { checkBigQuery } from '../adapters/warehouse/bigquery-sql';

/** What the client returns for DATE values (the adapter unwraps BigQuery* wrappers by name). */
class BigQueryDate {
  constructor(readonly value: string) {}
}

function fakeClient(answer: (query: string) => Record<string, unknown>[]): BigQueryClientLike & {
  createQueryJob: sinon.SinonStub;
} {
  const createQueryJob = sinon.stub().callsFake(async (opts: { query: string }) => [
    {
      id: 'job',
      metadata: {},
      promise: async () => [],
      getQueryResults: async () => [answer(opts.query)],
      getMetadata: async () => [{}],
    },
  ]);
  return {
    createQueryJob,
    createJob: sinon.stub(),
    job: sinon.stub() as unknown as BigQueryClientLike['job'],
    dataset: sinon.stub() as unknown as BigQueryClientLike['dataset'],
  };
}

describe('dashboard on BigQuery (client boundary)', () => {
  it('every panel and filter query is BigQuery SQL once rendered, with @parameters', () => {
    const engine = new BigQueryEngine({
      projectId: 'p',
      location: 'EU',
      prefix: 'smelter',
      client: fakeClient(() => []),
    });
    const queries = [
      ...PANELS.flatMap((p) =>
        p.kind === 'sql' ? [{ id: p.id, sql: p.sql, params: p.params as string[] }] : [],
      ),
      ...PAGES.flatMap((pg) =>
        pg.filters.flatMap((f) =>
          f.optionsSql ? [{ id: `${pg.id}.${f.name}`, sql: f.optionsSql, params: [] }] : [],
        ),
      ),
    ];
    assert.ok(queries.length >= 20);
    for (const q of queries) {
      const sql = bigqueryParams(engine.dialect.render(q.sql, { where: q.id }));
      assert.doesNotMatch(sql, /\$[a-z]/, `${q.id}: a $placeholder left`);
      for (const p of q.params) assert.match(sql, new RegExp(`@${p}\\b`), `${q.id}: @${p}`);
      // (renamed for the lint only: it reads `@from AS` as a FROM clause)
      assert.doesNotThrow(() => checkBigQuery(sql.replace(/@(\w+)/g, '@p_$1')), `${q.id}:\n${sql}`);
    }
  });

  it('binds filter values as query parameters and versions answers by __TABLES__.last_modified_time', async () => {
    let modified = '1700000000000';
    const client = fakeClient((query) => {
      if (query.includes('__TABLES__')) return [{ t: 'gold.rainfall_region_monthly', v: modified }];
      return [{ month: new BigQueryDate('2024-01-01'), region: 'North', total_rain_mm: 12.5, stations: 2 }];
    });
    const engine = new BigQueryEngine({ projectId: 'p', location: 'EU', prefix: 'smelter', client });
    let now = 0;
    const svc = new DashboardService({ warehouse: engine, versionTtlMs: 0, now: () => now });
    const q = new URLSearchParams({ region: "North' OR TRUE --", from: '2024-01-01' });
    const a = await svc.answer('rainfall.region_monthly', q);
    assert.equal(a.error, undefined);
    const call = client.createQueryJob
      .getCalls()
      .find((c) => !String(c.args[0].query).includes('__TABLES__'));
    const opts = call?.args[0] as { query: string; params: Record<string, string> };
    assert.match(opts.query, /`p\.smelter_gold\.rainfall_region_monthly`/);
    assert.ok(!opts.query.includes('OR TRUE'), 'the value is not in the SQL text');
    assert.deepEqual(opts.params, { from: '2024-01-01', to: '9999-12-31', region: "North' OR TRUE --" });
    assert.equal(a.rows[0]?.month, '2024-01-01');
    now += 1000;
    assert.equal((await svc.answer('rainfall.region_monthly', q)).cached, true);
    modified = '1700000009999';
    now += 1000;
    const b = await svc.answer('rainfall.region_monthly', q);
    assert.equal(b.cached, false, 'a new last_modified_time invalidates');
  });
});
