/**
 * BigQuery cannot be reached from here: the adapter is checked at the client boundary (sinon stubs of
 * the @google-cloud/bigquery client) — load job configuration, deterministic job ids, the 409 path,
 * error mapping — and every model and generated statement is checked as BigQuery SQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sinon from 'sinon';
import { BigQuery } from '@google-cloud/bigquery';
import {
  BigQueryEngine,
  bigqueryColumn,
  normalise,
  type BigQueryClientLike,
  type BigQueryField,
  type BigQueryJobLike,
} from '../../../../shared/adapters/warehouse/bigquery';
import { isSmelterError } from '../../../../shared/errors';
import { createLogger } from '../../../../shared/log';
import { BigQueryDialect, DuckDbDialect } from '../../../../shared/warehouse/dialect';
import { loadJobId } from '../../../../shared/warehouse/loader';
import { loadModels, type Model } from '../../../../shared/warehouse/model';
import { OPS_TABLES } from '../../../../shared/warehouse/ops';
import { Warehouse } from '../../../../shared/warehouse/service';
import { checkBigQuery, lintBigQuery } from './bigquery-sql';
import { REPO } from '../../../support/warehouse';

const PROJECT = 'acme-data';
const range = { startDate: '2024-01-01', endDate: '2024-02-01' };

function job(meta: BigQueryJobLike['metadata'], rows: unknown[] = []): BigQueryJobLike {
  return {
    metadata: meta,
    promise: sinon.stub().resolves([meta]),
    getQueryResults: sinon.stub().resolves([rows]),
    getMetadata: sinon.stub().resolves([meta]),
  };
}

const field = (name: string, type = 'STRING', mode = 'NULLABLE'): BigQueryField => ({ name, type, mode });
const RAIN_FIELDS: BigQueryField[] = [
  field('station_id'),
  field('station_name'),
  field('region'),
  field('latitude', 'FLOAT'),
  field('longitude', 'FLOAT'),
  field('date', 'DATE'),
  field('rain_mm', 'FLOAT'),
  field('measured_at', 'TIMESTAMP'),
  field('_source_uri'),
  field('_source_generation', 'INTEGER'),
  field('_ingested_at', 'TIMESTAMP'),
];

/**
 * A scripted stand-in for the BigQuery client: tables are schemas in a map; query jobs answer by the
 * shape of their SQL, which is recorded for the assertions.
 */
class FakeBigQuery implements BigQueryClientLike {
  readonly tables = new Map<string, BigQueryField[]>();
  readonly sql: string[] = [];
  readonly jobs = new Map<string, BigQueryJobLike>();
  constructor(private readonly models: Model[]) {}

  createJob = sinon
    .stub()
    .callsFake(
      async (cfg: {
        jobId: string;
        configuration: { load: { destinationTable: { datasetId: string; tableId: string } } };
      }) => {
        if (this.jobs.has(cfg.jobId))
          throw Object.assign(new Error(`Already Exists: Job ${PROJECT}:EU.${cfg.jobId}`), { code: 409 });
        const d = cfg.configuration.load.destinationTable;
        this.tables.set(`${d.datasetId}.${d.tableId}`, RAIN_FIELDS);
        const j = job({ status: { state: 'DONE' }, statistics: { load: { outputRows: '150' } } });
        this.jobs.set(cfg.jobId, j);
        return [j];
      },
    );

  job = sinon.stub().callsFake((id: string) => {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    return j;
  });

  dataset(ds: string): { table(t: string): { getMetadata(): Promise<unknown[]> } } {
    return {
      table: (t: string) => ({
        getMetadata: async () => {
          const f = this.tables.get(`${ds}.${t}`);
          if (!f) throw Object.assign(new Error(`Not found: Table ${PROJECT}:${ds}.${t}`), { code: 404 });
          return [{ schema: { fields: f } }];
        },
      }),
    };
  }

  private schemaOf(model: Model): BigQueryField[] {
    if (model.key === 'silver.rainfall') return RAIN_FIELDS;
    const cols = new Set([
      ...model.uniqueKey,
      ...(model.timeColumn ? [model.timeColumn] : []),
      ...model.clusterBy,
    ]);
    return [...cols].map((c) => field(c, c === model.timeColumn ? 'DATE' : 'STRING'));
  }

  createQueryJob = sinon.stub().callsFake(async (opts: { query: string; dryRun?: boolean }) => {
    const q = opts.query;
    this.sql.push(q);
    const stage = /^CREATE TABLE `[^.]+\.smelter_ops\.(_stage_(silver|gold)_(\w+?)_[0-9a-f]{8})`/.exec(q);
    if (stage) {
      const model = this.models.find((m) => m.key === `${stage[2]}.${stage[3]}`) as Model;
      this.tables.set(`smelter_ops.${stage[1]}`, this.schemaOf(model));
    }
    const created = /^CREATE TABLE IF NOT EXISTS `[^.]+\.(smelter_(?:silver|gold|ops))\.(\w+)`/.exec(q);
    if (created && created[1] !== 'smelter_ops') {
      const model = this.models.find(
        (m) => m.key === `${(created[1] as string).replace('smelter_', '')}.${created[2]}`,
      ) as Model;
      this.tables.set(`${created[1]}.${created[2]}`, this.schemaOf(model));
    }
    let rows: unknown[] = [];
    if (/^SELECT COUNT\(\*\) AS n, MIN\(/.test(q))
      rows = [{ n: 5, lo: { value: '2024-01-01' }, hi: { value: '2024-01-05' } }];
    else if (/^SELECT COUNT\(\*\) AS n/.test(q)) rows = [{ n: 0 }];
    else if (/^SELECT DISTINCT `date` AS d FROM `[^`]+_ops\._stage/.test(q))
      rows = ['01', '02', '03', '04', '05'].map((d) => ({ d: { value: `2024-01-${d}` } }));
    return [job({ status: { state: 'DONE' }, statistics: { query: { schema: { fields: [] } } } }, rows)];
  });
}

describe('warehouse on BigQuery (client boundary)', () => {
  it('renders every model and audit of the repository as BigQuery SQL that parses', () => {
    const d = new BigQueryDialect(PROJECT, 'smelter');
    const { models, audits } = loadModels(path.join(REPO, 'models'));
    for (const m of models) {
      const sql = d.render(m.sql, {
        self: d.table(m.target),
        range,
        batch: Object.fromEntries(m.inputs.map((i) => [i, '`_source_generation` = 1'])),
        allowedRefs: new Set([...m.inputs, m.key]),
        where: m.file,
      });
      assert.doesNotThrow(() => checkBigQuery(sql), `${m.key}`);
    }
    for (const a of audits)
      assert.doesNotThrow(
        () =>
          checkBigQuery(
            d.render(a.sql, { self: d.table({ layer: 'ops', name: '_stage_x' }), where: a.file }),
          ),
        a.name,
      );
  });

  it('the check catches DuckDB renderings (it can fail)', () => {
    const { models } = loadModels(path.join(REPO, 'models'));
    const silver = models.find((m) => m.key === 'silver.rainfall') as Model;
    const duck = new DuckDbDialect().render(silver.sql, {
      allowedRefs: new Set([...silver.inputs, silver.key]),
    });
    assert.throws(() => checkBigQuery(duck), /not BigQuery SQL|parser rejects/);
    assert.deepEqual(lintBigQuery('SELECT "a" FROM t'), [
      'double quotes (a string in BigQuery, an identifier in DuckDB)',
      'unqualified table reference "t"',
    ]);
  });

  it('loads a Bronze object with a PARQUET load job under a deterministic id, then merges with BigQuery SQL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-bqm-'));
    try {
      fs.cpSync(path.join(REPO, 'models', 'rainfall'), path.join(dir, 'rainfall'), { recursive: true });
      const fake = new FakeBigQuery(loadModels(dir).models);
      const engine = new BigQueryEngine({
        projectId: PROJECT,
        location: 'EU',
        prefix: 'smelter',
        client: fake,
      });
      const wh = await Warehouse.open({
        engine,
        contractsDir: path.join(REPO, 'contracts'),
        modelsDir: dir,
        latenessMs: 3600_000,
        log: createLogger({ format: 'silent' }),
      });
      const o = {
        bucket: 'acme-bronze',
        name: 'rainfall/ingest_date=2024-06-01/obs-1a2b3c4d-g1717200000000000.parquet',
        generation: '1717200000123456',
      };
      const out = await wh.loadObject(o);
      assert.equal(out.status, 'loaded');
      // The first load creates Silver (a plain INSERT); a second file is MERGEd into it.
      const o2 = {
        ...o,
        name: o.name.replace('g1717200000000000', 'g1717200000000001'),
        generation: '1717200000123457',
      };
      assert.equal((await wh.loadObject(o2)).status, 'loaded');

      sinon.assert.calledTwice(fake.createJob);
      const cfg = fake.createJob.firstCall.args[0] as Record<string, unknown>;
      assert.deepEqual(cfg, {
        configuration: {
          load: {
            sourceUris: [`gs://acme-bronze/${o.name}`],
            sourceFormat: 'PARQUET',
            parquetOptions: { enableListInference: true },
            writeDisposition: 'WRITE_APPEND',
            createDisposition: 'CREATE_IF_NEEDED',
            schemaUpdateOptions: ['ALLOW_FIELD_ADDITION'],
            destinationTable: { projectId: PROJECT, datasetId: 'smelter_bronze', tableId: 'rainfall' },
            timePartitioning: { type: 'DAY', field: '_ingested_at' },
            clustering: { fields: ['_source_generation'] },
          },
          labels: { app: 'smelter', kind: 'bronze-load' },
        },
        jobId: loadJobId(o),
        location: 'EU',
      });
      assert.ok(
        !(
          cfg as { configuration: { load: { sourceUris: string[] } } }
        ).configuration.load.sourceUris[0]?.includes('#'),
        'no generation suffix',
      );

      const sql = fake.sql;
      const find = (re: RegExp): string =>
        sql.find((s) => re.test(s)) ?? assert.fail(`no statement matching ${re}`);
      assert.match(
        find(/^INSERT INTO `acme-data\.smelter_ops\.load_ledger`/),
        /'loaded', NULL, CURRENT_TIMESTAMP/,
      );
      assert.match(find(/^INSERT INTO `acme-data\.smelter_ops\.load_ledger`/), /, 150, /);
      // The unique audit groups the keys itself: BigQuery's fingerprint may split values its GROUP BY joins.
      assert.ok(!sql.some((q) => q.startsWith('SELECT COUNT(*) - COUNT(DISTINCT')), 'no hash pre-check');
      find(
        /^SELECT COUNT\(\*\) AS n FROM \(SELECT `station_id`, `date` FROM .* GROUP BY `station_id`, `date` HAVING/,
      );
      assert.match(
        find(/^CREATE TABLE `acme-data\.smelter_ops\._stage_silver_rainfall_/),
        /OPTIONS \(expiration_timestamp = TIMESTAMP_ADD\(CURRENT_TIMESTAMP\(\), INTERVAL 1 DAY\)\) AS WITH may_repeat AS \(\s*SELECT COUNT\(\*\) > COUNT\(DISTINCT FARM_FINGERPRINT\(TO_JSON_STRING\(STRUCT\(station_id, date\)\)\)\) AS yes[\s\S]*FROM `acme-data\.smelter_bronze\.rainfall` WHERE \(`_source_generation` = 1717200000000000 AND `_ingested_at` >= TIMESTAMP '2024-05-31 23:59:00\.000\+00'\)[\s\S]*SELECT \* EXCEPT \(_rn\)/,
      );
      assert.equal(
        find(/^CREATE TABLE IF NOT EXISTS `acme-data\.smelter_silver\.rainfall`/).replace(/ AS SELECT.*/, ''),
        'CREATE TABLE IF NOT EXISTS `acme-data.smelter_silver.rainfall` PARTITION BY `date` CLUSTER BY `region`, `station_id`',
      );
      assert.match(
        find(/^MERGE INTO `acme-data\.smelter_silver\.rainfall`/),
        /^MERGE INTO `acme-data\.smelter_silver\.rainfall` AS t USING `acme-data\.smelter_ops\._stage_silver_rainfall_[0-9a-f]{8}` AS s ON t\.`station_id` = s\.`station_id` AND t\.`date` = s\.`date` AND t\.`date` BETWEEN DATE '2024-01-01' AND DATE '2024-01-05' WHEN MATCHED AND /,
      );
      assert.match(
        find(/^INSERT INTO `acme-data\.smelter_silver\.rainfall`/),
        /SELECT [^;]+ FROM `acme-data\.smelter_ops\._stage_silver_rainfall_[0-9a-f]{8}`$/,
      );
      assert.notEqual(loadJobId(o), fake.createJob.secondCall.args[0].jobId);
      assert.match(
        find(/^BEGIN TRANSACTION;\nDELETE FROM `acme-data\.smelter_gold\.rainfall_region_daily`/),
        /^BEGIN TRANSACTION;\nDELETE FROM `acme-data\.smelter_gold\.rainfall_region_daily` WHERE `date` >= DATE '2024-01-01' AND `date` < DATE '2024-01-06';\nINSERT INTO `acme-data\.smelter_gold\.rainfall_region_daily` \([^)]+\) SELECT [^;]+ FROM `acme-data\.smelter_ops\._stage_gold_rainfall_region_daily_[0-9a-f]{8}`;\nCOMMIT TRANSACTION;$/,
      );
      // Silver row for row: a view, not a second copy.
      assert.match(
        find(/^CREATE OR REPLACE VIEW `acme-data\.smelter_gold\.rainfall_daily`/),
        /FROM `acme-data\.smelter_silver\.rainfall`/,
      );
      assert.match(
        find(
          /^DELETE FROM `acme-data\.smelter_gold\.rainfall_monthly`|DELETE FROM `acme-data\.smelter_gold\.rainfall_monthly`/,
        ),
        /`month` >= DATE '2024-01-01' AND `month` < DATE '2024-02-01'/,
      );
      assert.ok(
        sql.some((s) => /^DROP TABLE IF EXISTS `acme-data\.smelter_ops\._stage_silver_rainfall_/.test(s)),
        'stages are dropped',
      );
      assert.match(
        find(/^UPDATE `acme-data\.smelter_ops\.load_ledger` SET status = 'done'/),
        /WHERE bucket = 'acme-bronze' AND name = 'rainfall\//,
      );
      for (const s of sql) assert.doesNotThrow(() => checkBigQuery(s), s.slice(0, 200));
      // The ops tables exist in the ops dataset.
      for (const t of OPS_TABLES)
        assert.ok(
          sql.some((s) => s.includes(`CREATE TABLE IF NOT EXISTS \`acme-data.smelter_ops.${t.ref.name}\``)),
        );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a duplicate delivery whose job id already exists reuses that job (409 means done)', async () => {
    const fake = new FakeBigQuery([]);
    const engine = new BigQueryEngine({
      projectId: PROJECT,
      location: 'EU',
      prefix: 'smelter',
      client: fake,
    });
    const load = {
      bucket: 'b',
      name: 'rainfall/x-g1.parquet',
      generation: '9',
      table: { layer: 'bronze', name: 'rainfall' } as const,
      jobId: 'smelter_load_x',
    };
    const first = await engine.loadParquet(load);
    const second = await engine.loadParquet({ ...load, ledgerSql: 'INSERT INTO x VALUES ({rows})' });
    assert.deepEqual(
      [first, second],
      [
        { rows: 150, jobId: 'smelter_load_x', reused: false },
        { rows: 150, jobId: 'smelter_load_x', reused: true },
      ],
    );
    sinon.assert.calledWith(fake.job, 'smelter_load_x', { location: 'EU' });
    assert.equal(fake.sql.at(-1), 'INSERT INTO x VALUES (150)');
  });

  it('maps BigQuery errors: schema conflicts are permanent, backend errors transient, SQL errors name the query', async () => {
    const client = {
      createJob: sinon.stub(),
      createQueryJob: sinon.stub(),
      job: sinon.stub(),
      dataset: () => ({
        table: () => ({ getMetadata: sinon.stub().rejects(Object.assign(new Error('boom'), { code: 500 })) }),
      }),
    };
    const engine = new BigQueryEngine({ projectId: PROJECT, location: 'EU', prefix: 'smelter', client });
    const load = {
      bucket: 'b',
      name: 'd/x.parquet',
      generation: '1',
      table: { layer: 'bronze', name: 'd' } as const,
      jobId: 'j',
    };
    const failing = (err: unknown): BigQueryJobLike => ({ ...job({}), promise: sinon.stub().rejects(err) });
    client.createJob.resolves([
      failing(
        Object.assign(
          new Error(
            'Provided Schema does not match Table acme-data:smelter_bronze.d. Field rain_mm has changed type from FLOAT to INTEGER',
          ),
          { errors: [{ reason: 'invalid' }] },
        ),
      ),
    ]);
    await assert.rejects(
      engine.loadParquet(load),
      (e: unknown) => isSmelterError(e, 'SCHEMA_INCOMPATIBLE') && e.kind === 'permanent',
    );
    client.createJob.resolves([
      failing(Object.assign(new Error('Backend error'), { errors: [{ reason: 'backendError' }] })),
    ]);
    await assert.rejects(
      engine.loadParquet(load),
      (e: unknown) => isSmelterError(e, 'WAREHOUSE_UNAVAILABLE') && e.kind === 'transient',
    );
    client.createJob.rejects(Object.assign(new Error('Service unavailable'), { code: 503 }));
    await assert.rejects(
      engine.loadParquet(load),
      (e: unknown) => isSmelterError(e) && e.kind === 'transient',
    );
    client.createJob.resolves([
      failing(
        Object.assign(new Error('Not found: URI gs://b/d/x.parquet'), {
          code: 404,
          errors: [{ reason: 'notFound' }],
        }),
      ),
    ]);
    await assert.rejects(
      engine.loadParquet(load),
      (e: unknown) => isSmelterError(e, 'NOT_FOUND') && e.kind === 'permanent',
    );
    client.createQueryJob.rejects(
      Object.assign(new Error('Syntax error: Unexpected keyword FROM at [1:8]'), {
        code: 400,
        errors: [{ reason: 'invalidQuery' }],
      }),
    );
    await assert.rejects(
      engine.query('SELECT FROM x'),
      (e: unknown) =>
        !isSmelterError(e) &&
        /Syntax error/.test((e as Error).message) &&
        (e as { query?: string }).query === 'SELECT FROM x',
    );
    client.createQueryJob.rejects(
      Object.assign(new Error('Could not serialize access to table due to concurrent update'), { code: 400 }),
    );
    await assert.rejects(engine.exec('MERGE …'), (e: unknown) => isSmelterError(e, 'WAREHOUSE_UNAVAILABLE'));
    await assert.rejects(
      engine.columns({ layer: 'silver', name: 'x' }),
      (e: unknown) => isSmelterError(e) && e.kind === 'transient',
    );
  });

  it('normalises BigQuery schemas and values', async () => {
    const c = bigqueryColumn({
      name: 'items',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [field('product_id'), field('quantity', 'INTEGER'), field('unit_price', 'NUMERIC')],
    });
    assert.deepEqual(c, {
      name: 'items',
      type: 'ARRAY<STRUCT<`product_id` STRING, `quantity` INT64, `unit_price` NUMERIC>>',
      family: 'array',
      signature: 'array<struct<product_id:string,quantity:int64,unit_price:numeric>>',
      nullable: true,
    });
    assert.deepEqual(
      normalise({
        d: BigQuery.date('2024-01-02'),
        t: BigQuery.timestamp('2024-01-02T03:04:05Z'),
        n: { value: 1 },
        a: [1],
      }),
      {
        d: '2024-01-02',
        t: '2024-01-02T03:04:05.000Z',
        n: { value: 1 },
        a: [1],
      },
    );
  });
});
