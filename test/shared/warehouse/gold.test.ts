/**
 * Done-when: every Gold table equals an independent computation over the raw inputs; loading the same
 * Bronze file twice, or re-delivering every event, leaves Silver and Gold unchanged; late events
 * update the right partitions; a backfill is idempotent. All on the local DuckDB engine with the
 * repository's models.
 */
import assert from 'node:assert/strict';
import {
  ecommerceSample,
  networkRows,
  rainfallRows,
  storeSample,
  type Row,
} from '../../../shared/samples/domains';
import { loadModels } from '../../../shared/warehouse/model';
import { assertRows } from './expect';
import { GOLD_KEYS, ecommerceGold, networkGold, rainfallGold, rainfallSilver, storeGold } from './oracle';
import { REPO, testWarehouse, type TestWarehouse } from '../../support/warehouse';
import path from 'node:path';

async function table(t: TestWarehouse, name: string): Promise<Row[]> {
  return t.rows(`SELECT * FROM ${name}`);
}

/** Every Silver and Gold table, sorted, as text (lineage columns optionally left out). */
async function snapshot(t: TestWarehouse, opts: { lineage?: boolean } = {}): Promise<Record<string, string>> {
  const tables = await t.rows(
    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('silver', 'gold') ORDER BY 1",
  );
  const out: Record<string, string> = {};
  for (const { t: name } of tables as { t: string }[]) {
    const except = opts.lineage === false && name.startsWith('silver.') ? await lineageExclude(t, name) : '';
    out[name] = JSON.stringify(await t.rows(`SELECT * ${except} FROM ${name} ORDER BY ALL`));
  }
  return out;
}

async function lineageExclude(t: TestWarehouse, name: string): Promise<string> {
  const [schema, tbl] = name.split('.') as [string, string];
  const cols = (
    await t.rows(
      `SELECT column_name AS c FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = '${tbl}'`,
    )
  ).map((r) => r.c);
  const lin = ['_source_uri', '_source_generation', '_ingested_at'].filter((c) => cols.includes(c));
  return lin.length ? `EXCLUDE (${lin.join(', ')})` : '';
}

/** Names of the tables whose contents differ between two snapshots (short failure messages). */
function changedTables(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

function split<T>(rows: T[], pred: (r: T) => boolean): [T[], T[]] {
  return [rows.filter(pred), rows.filter((r) => !pred(r))];
}

describe('warehouse: Gold equals an independent computation over the raw inputs', function () {
  let t: TestWarehouse;
  const rain = rainfallRows({ stations: 6, days: 45, start: '2024-01-20' });
  // A second file re-delivers 2024-02-15..03-04 with corrected values: the later file must win in Silver.
  const corrections = rain
    .filter((r) => (r.date as string) >= '2024-02-15')
    .map((r, i) =>
      i % 3 === 0 ? { ...r, rain_mm: Math.round(((r.rain_mm as number) + 2.5) * 10) / 10 } : r,
    );
  // Values exactly on the thresholds (rainy day ≥ 1 mm, payout tiers ≥ 50/80/120 mm) and just below.
  const edge = [0.9, 1, 49.9, 50, 79.9, 80, 119.9, 120].map((rain_mm, i) => ({
    station_id: 'ST9999',
    station_name: 'Edge',
    region: 'North',
    latitude: 50,
    longitude: 5,
    date: `2024-01-2${i}`,
    rain_mm,
    measured_at: `2024-01-2${i}T06:00:00.000Z`,
  }));
  const rainFile1 = [...rain.filter((r) => (r.date as string) < '2024-02-20'), ...edge];
  const store = storeSample({ users: 30, products: 18, carts: 90, days: 14 });
  // Session bounds: a gap of exactly 30 minutes continues a session, 30 min 1 s starts a new one, and
  // midnight splits one. Session averages on the staircase's bounds (2, 10, 30, 100 Mbps open their
  // step) and just below.
  const edgeTest = (i: number, user: string, at: string, download_mbps: number): Row => ({
    measurement_id: `edge-${i}`,
    user_id: user,
    session_id: null,
    measured_at: at,
    region: 'Nord',
    isp: 'MobiLink',
    connection_type: 'mobile',
    download_mbps,
    upload_mbps: 2,
    latency_ms: 40,
    jitter_ms: 1,
    packet_loss_pct: 0,
  });
  const netEdge = [
    edgeTest(0, 'u-edge', '2024-04-03T10:00:00.000Z', 10),
    edgeTest(1, 'u-edge', '2024-04-03T10:30:00.000Z', 10),
    edgeTest(2, 'u-edge', '2024-04-03T11:00:01.000Z', 9.9),
    edgeTest(3, 'u-edge', '2024-04-03T11:10:00.000Z', 10),
    edgeTest(4, 'u-edge', '2024-04-03T23:50:00.000Z', 2),
    edgeTest(5, 'u-edge', '2024-04-04T00:05:00.000Z', 1.99),
    edgeTest(6, 'u-edge-2', '2024-04-03T12:00:00.000Z', 30),
    edgeTest(7, 'u-edge-2', '2024-04-03T15:00:00.000Z', 99.99),
    edgeTest(8, 'u-edge-2', '2024-04-03T18:00:00.000Z', 100),
  ];
  const net = [...networkRows({ users: 20, days: 18 }), ...netEdge];
  const shop = ecommerceSample({ users: 20, orders: 40, days: 20 });
  const objects: { bucket: string; name: string; generation: string }[] = [];

  before(async function () {
    this.timeout(60_000);
    t = await testWarehouse();
    const load = async (dataset: string, rows: Row[]): Promise<void> => {
      const o = await t.bronze(dataset, rows);
      objects.push(o);
      const r = await t.wh.loadObject(o);
      assert.equal(r.status, 'loaded', `${dataset}: ${JSON.stringify(r)}`);
    };
    await load('rainfall', [...rainFile1, rainFile1[0] as Row]); // a duplicate row inside one file too
    await load('rainfall', corrections);
    // Carts before users and products: the dependent Gold models wait, then catch up in full.
    const [cartsA, cartsB] = split(store.carts, (c) => (c.cart_id as number) % 2 === 0);
    await load('store_carts', cartsA);
    await load('store_users', store.users);
    await load('store_products', store.products);
    await load('store_carts', cartsB);
    const [netA, netB] = split(net, (r) => (r.measured_at as string) < '2024-04-10');
    await load('network_measurements', netA);
    await load('network_measurements', netB);
    await t.events('orders', shop.orders);
    await t.events('inventory', shop.inventory);
    await t.events('user_activity', shop.user_activity);
    const out = await t.wh.refresh();
    assert.ok(out.summary && out.summary.models.length >= 10);
  });
  after(async () => t?.close());

  it('runs every model of the repository on DuckDB', async () => {
    const models = loadModels(path.join(REPO, 'models'))
      .models.map((m) => m.key)
      .sort();
    const tables = (
      await t.rows(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('silver', 'gold') ORDER BY 1",
      )
    ).map((r) => r.t);
    assert.deepEqual(tables, models);
    for (const m of models)
      if (!m.endsWith('retention') && !m.includes('segment') && !m.includes('top_products'))
        assert.ok((await table(t, m)).length > 0, `${m} is empty`);
  });

  it('rainfall: daily/monthly per station and region, rainy days, max daily rain, payout triggers', async () => {
    const silver = rainfallSilver([[...rainFile1], corrections]);
    assert.equal((await table(t, 'silver.rainfall')).length, silver.length);
    const expected = rainfallGold(silver);
    assert.ok(
      (expected['gold.rainfall_payout_triggers'] as Row[]).length >= 2,
      'the sample crosses payout thresholds',
    );
    for (const [name, rows] of Object.entries(expected))
      assertRows(name, await table(t, name), rows, GOLD_KEYS[name] as string[]);
  });

  it('e-commerce: revenue by status and country, top products, inventory, funnel, DAU, weekly retention', async () => {
    const expected = ecommerceGold(shop);
    for (const [name, rows] of Object.entries(expected))
      assertRows(name, await table(t, name), rows, GOLD_KEYS[name] as string[]);
  });

  it('store: purchases by age group and gender with average purchase value, categories, customers', async () => {
    const expected = storeGold(store);
    for (const [name, rows] of Object.entries(expected))
      assertRows(name, await table(t, name), rows, GOLD_KEYS[name] as string[]);
  });

  it('network: sessions, regional metrics per day, frustration staircase and index, user retention', async () => {
    const expected = networkGold(net);
    const sessions = expected['silver.network_sessions'] as Row[];
    // The edge sessions: 30 minutes apart continue, 30 min 1 s apart start anew, midnight splits.
    assert.deepEqual(
      sessions
        .filter((x) => String(x.user_id).startsWith('u-edge'))
        .map((x) => [x.session_id, x.measurements])
        .sort(),
      [
        ['u-edge-2/2024-04-03/1', 1],
        ['u-edge-2/2024-04-03/2', 1],
        ['u-edge-2/2024-04-03/3', 1],
        ['u-edge/2024-04-03/1', 2],
        ['u-edge/2024-04-03/2', 2],
        ['u-edge/2024-04-03/3', 1],
        ['u-edge/2024-04-04/1', 1],
      ],
    );
    const steps = (expected['gold.network_frustration_staircase'] as Row[]).filter(
      (x) => x.session_date === '2024-04-03' && x.region === 'Nord' && x.isp === 'MobiLink',
    );
    assert.ok(steps.length === 5 && steps.every((x) => Number(x.sessions) >= 0));
    for (const [name, rows] of Object.entries(expected))
      assertRows(name, await table(t, name), rows, GOLD_KEYS[name] as string[]);
  });

  it('loading the same Bronze files again leaves Silver and Gold unchanged (ledger + idempotent merges)', async () => {
    const before = await snapshot(t);
    for (const o of objects) assert.equal((await t.wh.loadObject(o)).status, 'duplicate');
    assert.deepEqual(changedTables(before, await snapshot(t)), []);
    // The merges themselves are idempotent: re-running Silver/Gold over the files' whole range changes nothing.
    await t.wh.backfill({ dataset: 'rainfall', from: '2024-01-01', to: '2024-03-31' });
    await t.wh.backfill({ dataset: 'store', from: '2024-03-01', to: '2024-03-31' });
    assert.deepEqual(changedTables(before, await snapshot(t)), []);
    // The same data dropped again as a new object: Gold identical, Silver only newer lineage.
    const noLineage = await snapshot(t, { lineage: false });
    const again = await t.bronze('rainfall', corrections);
    assert.equal((await t.wh.loadObject(again)).status, 'loaded');
    assert.deepEqual(changedTables(noLineage, await snapshot(t, { lineage: false })), []);
  });

  it('re-delivering every event leaves Silver and Gold unchanged', async () => {
    const before = await snapshot(t);
    const redeliver = (rows: Row[]): Row[] =>
      rows.map((r) => ({ ...r, _message_id: `re-${String(r._message_id)}` }));
    await t.events('orders', redeliver(shop.orders));
    await t.events('inventory', redeliver(shop.inventory));
    await t.events('user_activity', redeliver(shop.user_activity));
    await t.wh.refresh();
    await t.wh.backfill({ dataset: 'ecommerce', from: '2024-05-01', to: '2024-06-30' });
    assert.deepEqual(changedTables(before, await snapshot(t)), []);
  });
});
