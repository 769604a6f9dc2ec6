import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../../shared/adapters/storage/fs';
import { DuckDbEngine } from '../../../shared/adapters/warehouse/duckdb';
import { getLocalWarehouse, type LocalWarehouse } from '../../../shared/adapters/warehouse/duckdb-local';
import { isSmelterError } from '../../../shared/errors';
import { Runtime } from '../../../shared/composition/runtime';
import { loadConfig } from '../../../shared/config';
import { createLogger } from '../../../shared/log';
import { bronzeObjectName } from '../../../shared/samples/bronze';

describe("the runtime's local warehouse: bounded memory", function () {
  this.timeout(60_000);
  let home: string;
  let rt: Runtime | undefined;

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-whmem-'));
  });
  afterEach(async () => {
    await rt?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('opens DuckDB with SMELTER_WAREHOUSE_MEMORY_LIMIT and loads a file larger than it through Silver and Gold', async () => {
    const cfg = loadConfig({ SMELTER_WAREHOUSE_MEMORY_LIMIT: '40MB' }, { home, backend: 'local' });
    rt = new Runtime({ config: cfg, log: createLogger({ format: 'silent' }) });
    const wh = await rt.get('warehouse');
    const local = await rt.get('localDuckDb')();
    const [setting] = await local.query<{ v: string }>("SELECT current_setting('memory_limit') AS v");
    // DuckDB reports 40MB (decimal) in binary units.
    assert.equal(setting?.v, '38.1 MiB');

    // ~300,000 rows of unique station-days: well over 40 MB once decoded, so the load, the Silver MERGE
    // and the Gold rebuilds only succeed if they stream or spill within the bound.
    const store = new FsObjectStore(home);
    await store.ensureBucket(cfg.bronzeBucket);
    const generation = String(Date.parse('2024-06-01T00:00:00Z') * 1000);
    const name = bronzeObjectName('rainfall', 'big', generation);
    const file = await store.objectPath(cfg.bronzeBucket, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const rows = 300_000;
    await local.run(
      `COPY (SELECT 'ST' || lpad((i % 3000)::VARCHAR, 5, '0') AS station_id,
          'Station with a fairly long name number ' || (i % 3000) AS station_name,
          ['North', 'South', 'East', 'West'][(i % 4) + 1] AS region,
          35 + (i % 3000) / 1000.0 AS latitude, 20 + (i % 3000) / 1000.0 AS longitude,
          (DATE '2024-01-01' + (i // 3000)::INTEGER) AS date, (i % 97) / 3.0 AS rain_mm,
          (TIMESTAMPTZ '2024-01-01 06:00:00+00' + to_days((i // 3000)::INTEGER)) AS measured_at,
          'gs://raw/rainfall/big.csv' AS _source_uri, ${generation}::BIGINT AS _source_generation,
          TIMESTAMPTZ '2024-06-01 00:00:02+00' AS _ingested_at
        FROM range(${rows}) t(i)) TO '${file}' (FORMAT parquet, COMPRESSION zstd)`,
    );
    const st = await store.stat(cfg.bronzeBucket, name);
    const out = await wh.loadObject({
      bucket: cfg.bronzeBucket,
      name,
      generation: st?.generation ?? generation,
    });
    assert.equal(out.status, 'loaded');
    const counts = await local.query<{ b: string; s: string; g: string }>(
      'SELECT (SELECT COUNT(*) FROM bronze.rainfall) AS b, (SELECT COUNT(*) FROM silver.rainfall) AS s, (SELECT COUNT(*) FROM gold.rainfall_daily) AS g',
    );
    assert.deepEqual(counts[0], { b: String(rows), s: String(rows), g: String(rows) });
  });

  it("creates the warehouse file in SMELTER_WAREHOUSE_STORAGE_VERSION (default: the installed DuckDB's format); a file keeps its format", async () => {
    let installed = '';
    const version = async (env: Record<string, string>): Promise<string | undefined> => {
      const cfg = loadConfig(env, { home, backend: 'local' });
      rt = new Runtime({ config: cfg, log: createLogger({ format: 'silent' }) });
      await rt.get('warehouse'); // opens the file with the configured options
      const local = await rt.get('localDuckDb')();
      const [lib] = await local.query<{ v: string }>('SELECT library_version AS v FROM pragma_version()');
      installed = `${(lib?.v ?? '').replace(/^(v\d+\.\d+)\..*$/, '$1')}.0+`;
      const [db] = await local.query<{ v: string }>(
        "SELECT tags['storage_version'] AS v FROM duckdb_databases() WHERE database_name = 'smelter'",
      );
      await rt.close();
      rt = undefined;
      return db?.v;
    };
    assert.equal(await version({}), installed);
    // Opened again asking for the old format: the file stays as created.
    assert.equal(await version({ SMELTER_WAREHOUSE_STORAGE_VERSION: 'v0.10.2' }), installed);
    fs.rmSync(path.join(home, 'warehouse'), { recursive: true, force: true });
    assert.equal(await version({ SMELTER_WAREHOUSE_STORAGE_VERSION: 'v0.10.2' }), 'v1.0.0+');
    assert.throws(
      () => loadConfig({ SMELTER_WAREHOUSE_STORAGE_VERSION: '1.5' }, { home, backend: 'local' }),
      /SMELTER_WAREHOUSE_STORAGE_VERSION/,
    );
  });
});

describe('the local warehouse engine: a statement that runs out of memory', function () {
  this.timeout(60_000);
  let home: string;
  let local: LocalWarehouse | undefined;

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-whoom-'));
  });
  afterEach(async () => {
    await local?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  // Two million distinct keys: under 16 MB, two threads' hash partitions do not fit, one thread spills;
  // under 10 MB one thread needs twice the limit.
  const KEYS = 2_000_000;
  const setup = async (memoryLimit: string, memoryMax: string): Promise<DuckDbEngine> => {
    local = await getLocalWarehouse(home, { memoryLimit, memoryMax, threads: 2 });
    const engine = new DuckDbEngine(local);
    await engine.exec(
      `CREATE TABLE k AS SELECT 'station-' || i AS k, DATE '2024-01-01' + CAST(i % 7 AS INTEGER) AS d FROM range(${KEYS}) r(i)`,
    );
    return engine;
  };
  const dupKeys = 'SELECT COUNT(*) AS n FROM (SELECT k, d FROM k GROUP BY k, d HAVING COUNT(*) > 1) AS dup';
  const settings = (engine: DuckDbEngine): Promise<unknown> =>
    engine.query("SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m");
  /** The constrained runs the engine asked for: undefined = one thread at the configured limit. */
  const record = (wh: LocalWarehouse): (number | undefined)[] => {
    const asked: (number | undefined)[] = [];
    const run = wh.constrained.bind(wh);
    wh.constrained = (fn, bytes) => {
      asked.push(bytes);
      return run(fn, bytes);
    };
    return asked;
  };

  it('runs again on one thread and completes, then restores the settings', async () => {
    const engine = await setup('16MB', '512MB');
    const before = await settings(engine);
    const asked = record(local as LocalWarehouse);
    assert.deepEqual(await engine.query(dupKeys), [{ n: '0' }]);
    assert.deepEqual(asked, [undefined], 'it ran out of memory on two threads, once');
    assert.deepEqual(await settings(engine), before);
  });

  it('then with twice the memory limit, up to SMELTER_WAREHOUSE_MEMORY_MAX', async () => {
    const engine = await setup('10MB', '64MB');
    const before = await settings(engine);
    const asked = record(local as LocalWarehouse);
    assert.deepEqual(await engine.query(dupKeys), [{ n: '0' }]);
    assert.deepEqual(asked, [undefined, 20e6]);
    assert.deepEqual(await settings(engine), before);
  });

  it('says which setting to raise when the most it may use is not enough (transient: memory may free up)', async () => {
    const engine = await setup('10MB', '10MB');
    await assert.rejects(
      engine.query(dupKeys),
      (e: unknown) =>
        isSmelterError(e, 'WAREHOUSE_UNAVAILABLE') &&
        e.kind === 'transient' &&
        /^DuckDB ran out of memory even on one thread with 10 MB; raise SMELTER_WAREHOUSE_MEMORY_MAX \(Out of Memory Error: [^\n]+\)$/.test(
          e.message,
        ),
    );
    assert.deepEqual(await engine.query("SELECT current_setting('threads') AS t"), [{ t: '2' }]);
  });
});
