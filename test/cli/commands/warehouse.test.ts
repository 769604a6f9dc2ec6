/**
 * `smelter query|refresh|backfill` and the admin routes behind them: through a running stack's admin
 * endpoint (the stack process owns the DuckDB file) or directly when no stack runs; the warehouse
 * status section; the local refresh scheduler.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sinon from 'sinon';
import { backfillCommand } from '../../../cli/commands/backfill';
import { formatTable, queryCommand } from '../../../cli/commands/query';
import { refreshCommand } from '../../../cli/commands/refresh';
import { AdminServer, callAdmin } from '../../../cli/local/admin';
import { warehouseAdminRoutes } from '../../../cli/local/warehouse';
import { loadConfig } from '../../../shared/config';
import { createLogger } from '../../../shared/log';
import { RefreshScheduler } from '../../../shared/local/scheduler';
import { stackInfoFile, type StackContext } from '../../../shared/local/stack';
import { rainfallRows } from '../../../shared/samples/domains';
import { formatWarehouseStatus, warehouseStatus } from '../../../shared/warehouse/status';
import { testWarehouse, type TestWarehouse } from '../../support/warehouse';

async function run(
  cmd: typeof queryCommand,
  args: string[],
  flags: Record<string, string | boolean> = {},
): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await cmd.run({ args, flags, out: (l) => out.push(l), err: (l) => out.push(l) });
  return { code, out };
}

function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });
}

describe('warehouse CLI, admin routes, status and scheduler', () => {
  it('formats query results as an aligned text table', () => {
    assert.deepEqual(
      formatTable(
        ['region', 'rain_mm', 'note'],
        [
          ['North', 12.5, null],
          ['South', '3', { a: 1 }],
        ],
      ),
      [
        'region  rain_mm  note',
        '------  -------  -------',
        'North      12.5  NULL',
        'South         3  {"a":1}',
        '(2 rows)',
      ],
    );
  });

  describe('through a running stack', () => {
    let t: TestWarehouse;
    let admin: AdminServer;
    const env = (): Record<string, string> => ({
      SMELTER_HOME: t.home,
      SMELTER_BACKEND: 'local',
      SMELTER_LOG_FORMAT: 'silent',
    });

    before(async () => {
      t = await testWarehouse();
      await t.wh.loadObject(await t.bronze('rainfall', rainfallRows({ stations: 3, days: 4 })));
      admin = new AdminServer();
      for (const [name, route] of Object.entries(warehouseAdminRoutes(async () => t.wh)))
        admin.route(name, route);
      const url = await admin.listen(0);
      fs.mkdirSync(path.dirname(stackInfoFile(t.home)), { recursive: true });
      fs.writeFileSync(
        stackInfoFile(t.home),
        JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), endpoints: {}, admin: url }),
      );
    });
    after(async () => {
      await admin.close();
      await t.close();
    });

    it('smelter query goes through the admin route (text and --json)', async () => {
      const spy = sinon.spy(t.wh, 'query');
      try {
        const text = await withEnv(env(), () =>
          run(queryCommand, [
            'SELECT region, SUM(rain_mm) AS rain FROM @ref(gold.rainfall_daily)',
            'GROUP BY region ORDER BY region',
          ]),
        );
        assert.equal(text.code, 0);
        assert.match(text.out[0] as string, /^region\s+rain$/);
        assert.equal(text.out.at(-1), '(3 rows)');
        const json = await withEnv(env(), () =>
          run(queryCommand, ["SELECT COUNT(*)::INTEGER AS n, 'x' AS s FROM gold.rainfall_daily"], {
            json: true,
          }),
        );
        assert.deepEqual(JSON.parse(json.out[0] as string), [{ n: 12, s: 'x' }]);
        assert.equal(spy.callCount, 2, 'served by the stack process');
      } finally {
        spy.restore();
      }
    });

    it('smelter refresh and backfill go through the admin routes; errors come back with their code', async () => {
      const r = await withEnv(env(), () => run(refreshCommand, [], {}));
      assert.equal(r.code, 0);
      assert.match(r.out.join('\n'), /skipped events\.orders \(no table yet\)/);
      const b = await withEnv(env(), () =>
        run(backfillCommand, [], { dataset: 'rainfall', from: '2024-01-01', to: '2024-01-02' }),
      );
      assert.match(
        b.out.join('\n'),
        /gold\.rainfall_region_daily\s+incremental_by_time_range\s+6 rows\s+2024-01-01\.\.2024-01-03/,
      );
      await assert.rejects(
        withEnv(env(), () =>
          run(backfillCommand, [], { dataset: 'nope', from: '2024-01-01', to: '2024-01-02' }),
        ),
        /Unknown dataset "nope"/,
      );
      const url = JSON.parse(fs.readFileSync(stackInfoFile(t.home), 'utf8')).admin as string;
      await assert.rejects(
        callAdmin(url, 'query', {}),
        (e: unknown) => (e as { code?: string }).code === 'BAD_REQUEST',
      );
    });

    it('reports the warehouse status: rows per layer, loads, audits', async () => {
      const url = JSON.parse(fs.readFileSync(stackInfoFile(t.home), 'utf8')).admin as string;
      const s = await callAdmin<Awaited<ReturnType<typeof warehouseStatus>>>(url, 'warehouse-status');
      // Bronze is a view over its loaded Parquet objects, counted from their footers.
      assert.deepEqual(s.layers.bronze, [{ table: 'rainfall', rows: 12, kind: 'view' }]);
      assert.ok(s.layers.gold?.some((g) => g.table === 'rainfall_daily' && g.rows === 12));
      assert.deepEqual(s.loads.byStatus, { done: 1 });
      assert.equal(s.audits.failing, 0);
      const text = formatWarehouseStatus(s).join('\n');
      assert.match(text, /gold:\n[\s\S]*rainfall_daily\s+12 rows/);
      assert.match(text, /loads: 1 done/);
    });
  });

  it('opens the warehouse directly when no stack runs, and releases it', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-cli-'));
    try {
      const r = await withEnv(
        { SMELTER_HOME: home, SMELTER_BACKEND: 'local', SMELTER_LOG_FORMAT: 'silent' },
        () => run(queryCommand, ['SELECT 40 + 2 AS answer']),
      );
      assert.deepEqual(r.out, ['answer', '------', '    42', '(1 row)']);
      assert.ok(fs.existsSync(path.join(home, 'warehouse', 'smelter.duckdb')));
      const again = await withEnv(
        { SMELTER_HOME: home, SMELTER_BACKEND: 'local', SMELTER_LOG_FORMAT: 'silent' },
        () => run(queryCommand, ['SELECT COUNT(*) AS n FROM ops.load_ledger'], { json: true }),
      );
      assert.deepEqual(JSON.parse(again.out[0] as string), [{ n: '0' }]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('the scheduler publishes refresh messages to the refresh topic, never overlapping', async () => {
    let release: () => void = () => undefined;
    const publish = sinon.stub().callsFake(() => new Promise<string>((r) => (release = () => r('1'))));
    const ctx = {
      cfg: loadConfig({}, { refreshTopic: 'refresh-topic' }),
      log: createLogger({ format: 'silent' }),
      pubsub: { mode: 'embedded', publish, status: async () => ({}) },
      statusSections: new Map(),
    } as unknown as StackContext;
    const s = new RefreshScheduler({ intervalMs: 3600_000 });
    assert.equal(s.name, 'scheduler');
    await s.start(ctx);
    sinon.assert.calledOnce(publish); // immediately at start
    assert.equal(await s.tick(), false, 'the previous publish is still running');
    release();
    await new Promise((r) => setImmediate(r));
    assert.equal(
      await (async () => {
        const p = s.tick();
        release();
        return p;
      })(),
      true,
    );
    assert.equal(publish.firstCall.args[0], 'refresh-topic');
    assert.equal(JSON.parse((publish.firstCall.args[1] as Buffer).toString()).reason, 'schedule');
    assert.deepEqual(publish.firstCall.args[2], { source: 'smelter-scheduler' });
    const section = await (ctx.statusSections.get('scheduler') as () => Promise<{ published: number }>)();
    assert.equal(section.published, 2);
    await s.stop();
  });
});
