/**
 * The dashboard's JSON API over a warehouse holding the bundled samples, served as `smelter dashboard`
 * serves it (the DuckDB file opened read-only): every chart's numbers against an independent
 * computation (the Gold oracle of the warehouse tests, aggregated here in plain TypeScript), refusal of
 * unknown parameters and injection attempts, and caching until the Gold table changes.
 */
import assert from 'node:assert/strict';
import { PANELS } from '../../../shared/dashboard/charts';
import { SAMPLE_REJECTS } from '../../../shared/samples/warehouse';
import { FsObjectStore } from '../../../shared/adapters/storage/fs';
import { bronzeObjectName, writeBronzeParquet } from '../../../shared/samples/bronze';
import { loadDatasetContract } from '../../../shared/contracts/dataset';
import { assertRows, groupBy, sum, type Row } from '../warehouse/expect';
import { ecommerceGold, networkGold, rainfallGold, rainfallSilver, storeGold } from '../warehouse/oracle';
import { seededHome, serveHome, type SeededHome, type ServedHome } from '../../support/dashboard';

const n = (v: unknown): number => Number(v);
const s = (v: unknown): string => String(v);
const inRange = (d: unknown, from = '0001-01-01', to = '9999-12-31'): boolean => s(d) >= from && s(d) <= to;

interface Answer {
  id: string;
  rows: Row[];
  empty?: string;
  error?: string;
  version: string;
  cached: boolean;
}

describe('dashboard API', function () {
  this.timeout(60_000);
  let h: SeededHome;
  let srv: ServedHome;
  let gold: Record<string, Row[]>;

  const get = async (path: string): Promise<{ status: number; body: Answer & { error?: unknown } }> => {
    const res = await fetch(srv.url + path);
    return { status: res.status, body: (await res.json()) as Answer };
  };
  const chart = async (id: string, params: Record<string, string> = {}): Promise<Answer> => {
    const qs = new URLSearchParams(params).toString();
    const { status, body } = await get(`/api/charts/${id}${qs ? `?${qs}` : ''}`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.error, undefined, `${id}: ${String(body.error)}`);
    return body;
  };

  before(async () => {
    h = await seededHome();
    srv = await serveHome(h);
    const d = h.data;
    gold = {
      ...rainfallGold(rainfallSilver([d.rainfall])),
      ...ecommerceGold(d.ecommerce),
      ...storeGold(d.store),
      ...networkGold(d.network),
    };
  });
  after(async () => {
    await srv?.close();
    h?.remove();
  });

  const table = (name: string): Row[] => {
    const rows = gold[name];
    assert.ok(rows, `the oracle has no ${name}`);
    return rows;
  };

  describe('every chart returns the independently computed numbers', () => {
    it('rainfall: monthly per region, with and without filters', async () => {
      const expect = (from?: string, region?: string): Row[] =>
        table('gold.rainfall_region_monthly')
          .filter((r) => inRange(r.month, from ? `${from.slice(0, 7)}-01` : undefined))
          .filter((r) => !region || r.region === region)
          .map((r) => ({
            month: r.month,
            region: r.region,
            total_rain_mm: n(r.total_rain_mm),
            stations: n(r.stations),
          }));
      assertRows('all', (await chart('rainfall.region_monthly')).rows, expect(), ['month', 'region']);
      const some = await chart('rainfall.region_monthly', { from: '2024-02-10', region: 'North' });
      assertRows('filtered', some.rows, expect('2024-02-10', 'North'), ['month', 'region']);
      assert.equal(some.rows.length, 1);
    });

    it('rainfall: monthly per station, rainy days, payout triggers', async () => {
      const monthly = table('gold.rainfall_monthly').filter((r) => r.station_id === 'ST0003');
      assertRows(
        'station',
        (await chart('rainfall.station_monthly', { station: 'ST0003' })).rows,
        monthly.map((r) => ({
          month: r.month,
          station_id: r.station_id,
          total_rain_mm: n(r.total_rain_mm),
          rainy_days: n(r.rainy_days),
        })),
        ['month', 'station_id'],
      );
      const from = '2024-01-15';
      const to = '2024-02-14';
      const days = table('gold.rainfall_daily').filter((r) => inRange(r.date, from, to));
      const rainy = [...groupBy(days, (r) => s(r.station_id)).values()].map((g) => ({
        station_id: g[0]?.station_id,
        rainy_days: g.filter((r) => n(r.rain_mm) >= 1).length,
        days_observed: g.length,
      }));
      assertRows('rainy', (await chart('rainfall.rainy_days', { from, to })).rows, rainy, ['station_id']);
      const payouts = table('gold.rainfall_payout_triggers')
        .filter((r) => inRange(r.date, from, to))
        .map((r) => ({ date: r.date, station_id: r.station_id, rain_mm: n(r.rain_mm), tier: r.tier }));
      assertRows('payouts', (await chart('rainfall.payouts', { from, to })).rows, payouts, [
        'date',
        'station_id',
      ]);
    });

    it('e-commerce: revenue per day, funnel, daily active users, retention, top products, low stock', async () => {
      const from = '2024-05-10';
      const to = '2024-05-20';
      const rev = [
        ...groupBy(
          table('gold.ecommerce_daily_revenue').filter((r) => inRange(r.order_date, from, to)),
          (r) => `${s(r.order_date)}|${s(r.status)}`,
        ).values(),
      ].map((g) => ({
        order_date: g[0]?.order_date,
        status: g[0]?.status,
        revenue: sum(g.map((r) => n(r.revenue))),
        orders: sum(g.map((r) => n(r.orders))),
      }));
      assertRows('revenue', (await chart('ecommerce.revenue_daily', { from, to })).rows, rev, [
        'order_date',
        'status',
      ]);

      const f = table('gold.ecommerce_funnel_daily');
      assertRows(
        'funnel',
        (await chart('ecommerce.funnel')).rows,
        [
          { step: 'page view', sessions: sum(f.map((r) => n(r.page_view_sessions))) },
          { step: 'add to cart', sessions: sum(f.map((r) => n(r.add_to_cart_sessions))) },
          { step: 'purchase', sessions: sum(f.map((r) => n(r.purchase_sessions))) },
        ],
        ['step'],
      );
      assertRows(
        'dau',
        (await chart('ecommerce.dau', { from, to })).rows,
        table('gold.ecommerce_daily_active_users')
          .filter((r) => inRange(r.event_date, from, to))
          .map((r) => ({ event_date: r.event_date, active_users: n(r.active_users) })),
        ['event_date'],
      );
      assertRows(
        'retention',
        (await chart('ecommerce.retention')).rows,
        table('gold.ecommerce_weekly_retention').map((r) => ({
          cohort_week: r.cohort_week,
          week_number: n(r.week_number),
          cohort_size: n(r.cohort_size),
          retention: n(r.retention),
        })),
        ['cohort_week', 'week_number'],
      );
      const top = [
        ...groupBy(
          table('gold.ecommerce_product_daily').filter((r) => inRange(r.order_date, from, to)),
          (r) => s(r.product_id),
        ).values(),
      ]
        .map((g) => ({
          product_id: g[0]?.product_id,
          revenue: sum(g.map((r) => n(r.revenue))),
          units: sum(g.map((r) => n(r.units))),
        }))
        .sort((a, b) => b.revenue - a.revenue || s(a.product_id).localeCompare(s(b.product_id)))
        .slice(0, 10);
      const gotTop = (await chart('ecommerce.top_products', { from, to })).rows;
      assertRows('top', gotTop, top, ['product_id']);
      assert.deepEqual(
        gotTop.map((r) => r.product_id),
        top.map((r) => r.product_id),
        'ranked by revenue',
      );
      assertRows(
        'low stock',
        (await chart('ecommerce.low_stock')).rows,
        table('gold.ecommerce_inventory_current')
          .filter((r) => r.low_stock === true)
          .map((r) => ({
            product_id: r.product_id,
            warehouse_id: r.warehouse_id,
            quantity_on_hand: n(r.quantity_on_hand),
          })),
        ['product_id', 'warehouse_id'],
      );
    });

    it('store: purchases by segment (users, purchases, average value) and revenue per category', async () => {
      const from = '2024-03-05';
      const to = '2024-03-15';
      const customers = table('gold.store_customers');
      const daily = table('gold.store_purchases_daily').filter((r) => inRange(r.cart_date, from, to));
      const seg = [...groupBy(customers, (r) => `${s(r.age_group)}|${s(r.gender)}`).values()].map((g) => {
        const p = daily.filter((r) => r.age_group === g[0]?.age_group && r.gender === g[0]?.gender);
        const purchases = sum(p.map((r) => n(r.purchases)));
        const revenue = sum(p.map((r) => n(r.revenue)));
        return {
          age_group: g[0]?.age_group,
          gender: g[0]?.gender,
          users: g.length,
          purchases,
          ...(purchases ? { avg_purchase_value: revenue / purchases } : {}),
        };
      });
      assertRows('segments', (await chart('store.segments', { from, to })).rows, seg, [
        'age_group',
        'gender',
      ]);
      assertRows(
        'category',
        (await chart('store.category_daily', { from, to })).rows,
        table('gold.store_category_daily')
          .filter((r) => inRange(r.cart_date, from, to))
          .map((r) => ({
            cart_date: r.cart_date,
            category: r.category,
            revenue: n(r.revenue),
            units: n(r.units),
          })),
        ['cart_date', 'category'],
      );
    });

    it('network: download per day, regional metrics, frustration index, retention (region and ISP filters)', async () => {
      const rd = table('gold.network_regional_daily');
      const isp = (rd[0] as Row).isp as string;
      const region = (rd[0] as Row).region as string;
      const weighted = (g: Row[], col: string): number =>
        sum(g.map((r) => n(r[col]) * n(r.measurements))) / sum(g.map((r) => n(r.measurements)));
      const byDay = [
        ...groupBy(
          rd.filter((r) => r.isp === isp),
          (r) => `${s(r.measured_date)}|${s(r.region)}`,
        ).values(),
      ].map((g) => ({
        measured_date: g[0]?.measured_date,
        region: g[0]?.region,
        avg_download_mbps: weighted(g, 'avg_download_mbps'),
      }));
      assertRows('download', (await chart('network.download_daily', { isp })).rows, byDay, [
        'measured_date',
        'region',
      ]);
      const regional = [
        ...groupBy(
          rd.filter((r) => r.region === region),
          (r) => s(r.isp),
        ).values(),
      ].map((g) => ({
        region,
        isp: g[0]?.isp,
        measurements: sum(g.map((r) => n(r.measurements))),
        avg_latency_ms: weighted(g, 'avg_latency_ms'),
        max_latency_ms: Math.max(...g.map((r) => n(r.max_latency_ms))),
      }));
      assertRows('regional', (await chart('network.regional', { region })).rows, regional, ['region', 'isp']);
      const fr = [
        ...groupBy(
          table('gold.network_frustration_daily'),
          (r) => `${s(r.measured_date)}|${s(r.region)}`,
        ).values(),
      ].map((g) => ({
        measured_date: g[0]?.measured_date,
        region: g[0]?.region,
        sessions: sum(g.map((r) => n(r.sessions))),
        frustration_index: sum(g.map((r) => n(r.frustrated_sessions))) / sum(g.map((r) => n(r.sessions))),
      }));
      const from = '2024-04-05';
      const st = [
        ...groupBy(
          table('gold.network_frustration_staircase').filter((r) => inRange(r.session_date, from)),
          (r) => s(r.region),
        ).values(),
      ].flatMap((g) => {
        const total = sum(g.map((r) => n(r.sessions)));
        let below = 0;
        return [1, 2, 3, 4, 5].map((tier) => {
          const c = sum(g.filter((r) => n(r.tier) === tier).map((r) => n(r.sessions)));
          below += c;
          return {
            region: g[0]?.region,
            tier,
            sessions: c,
            share: c / total,
            cumulative_share: below / total,
          };
        });
      });
      const stair = (await chart('network.staircase', { from })).rows;
      assertRows('staircase', stair, st, ['region', 'tier']);
      assert.ok(
        stair.some((r) => n(r.cumulative_share) > 0 && n(r.cumulative_share) < 1),
        'a real staircase',
      );
      assertRows('frustration', (await chart('network.frustration')).rows, fr, ['measured_date', 'region']);
      assertRows(
        'retention',
        (await chart('network.retention')).rows,
        table('gold.network_user_retention').map((r) => ({
          cohort_week: r.cohort_week,
          week_number: n(r.week_number),
          retention: n(r.retention),
        })),
        ['cohort_week', 'week_number'],
      );
    });

    it('overview: files, loads, events, quarantine by reason, audits, model runs', async () => {
      const d = h.data;
      const datasets: Record<string, number> = {
        rainfall: d.rainfall.length,
        store_users: d.store.users.length,
        store_products: d.store.products.length,
        store_carts: d.store.carts.length,
        network_measurements: d.network.length,
      };
      const ingest = (await chart('overview.ingest')).rows;
      assertRows(
        'ingest',
        ingest,
        Object.entries(datasets).map(([dataset, rows]) => ({
          dataset,
          files: 1,
          rows_written: rows,
          rows_rejected: dataset === 'rainfall' ? SAMPLE_REJECTS.length : 0,
        })),
        ['dataset'],
      );
      assert.equal(
        ingest.find((r) => r.dataset === 'rainfall')?._problem,
        'rows rejected',
        'problems are flagged',
      );
      assert.equal(ingest.find((r) => r.dataset === 'store_users')?._problem, undefined);
      assertRows(
        'loads',
        (await chart('overview.loads')).rows,
        Object.entries(datasets).map(([dataset, rows]) => ({
          dataset,
          files: 1,
          problems: 0,
          rows_loaded: rows,
        })),
        ['dataset'],
      );
      assertRows(
        'events',
        (await chart('overview.events')).rows,
        [
          { event_type: 'orders', events: d.ecommerce.orders.length },
          { event_type: 'inventory', events: d.ecommerce.inventory.length },
          { event_type: 'user_activity', events: d.ecommerce.user_activity.length },
        ],
        ['event_type'],
      );
      const q = (await chart('overview.quarantine')).rows;
      assert.deepEqual(
        q.map((r) => [r.dataset, r.reason, r.count]),
        [
          ['rainfall', 'rain_mm: cannot convert … to float64', 2],
          ['rainfall', 'date: missing required value', 1],
        ],
      );
      const audits = (await chart('overview.audits')).rows;
      assert.ok(audits.length >= 20 && audits.every((a) => a.status === 'pass' && !a._problem));
      const runs = (await chart('overview.refreshes')).rows;
      assert.ok(runs.length >= 20, 'one row per model');
      assert.ok(runs.every((r) => r.status === 'ok' && !r._problem));
      assert.equal(runs[0]?.last_trigger, 'seed', 'the most recent run first');
      assert.ok(runs.some((r) => String(r.last_trigger).startsWith('load gs://bronze/rainfall/')));
      const dead = await chart('overview.dead_letters');
      assert.deepEqual(dead.rows, []);
      assert.match(dead.empty ?? '', /No dead letters/);
      assert.match((await chart('overview.parked')).empty ?? '', /No parked deliveries/);
      // Pulled sources: every declared source, its latest run (a failed one flagged).
      await new FsObjectStore(h.home).write(
        h.cfg.bronzeBucket,
        '_pull/network/last-run.json',
        Buffer.from(
          JSON.stringify({
            source: 'network',
            run: 'r1',
            status: 'failed',
            startedAt: '2024-06-02T00:00:00.000Z',
            finishedAt: '2024-06-02T00:00:05.000Z',
            pages: 2,
            records: 40,
            objects: 1,
            error: { code: 'HTTP_FAILED', message: 'HTTP 503 after 5 attempts' },
          }),
        ),
      );
      const pulls = (await chart('overview.pulls')).rows;
      assert.deepEqual(
        pulls.map((r) => [r.source, r.status, r.records, r._problem ?? null]),
        [
          ['network', 'failed', 40, 'pull failed'],
          ['store', 'never pulled', null, null],
        ],
      );
      assert.equal(pulls[0]?.error, 'HTTP_FAILED: HTTP 503 after 5 attempts');
    });

    it('covers every panel of the catalogue', () => {
      // The tests above name each panel; a new panel needs its own expected numbers here.
      const tested = new Set(
        ['region_monthly', 'station_monthly', 'rainy_days', 'payouts']
          .map((x) => `rainfall.${x}`)
          .concat(
            ['revenue_daily', 'funnel', 'dau', 'retention', 'top_products', 'low_stock'].map(
              (x) => `ecommerce.${x}`,
            ),
            ['segments', 'category_daily'].map((x) => `store.${x}`),
            ['download_daily', 'regional', 'frustration', 'staircase', 'retention'].map(
              (x) => `network.${x}`,
            ),
            [
              'ingest',
              'loads',
              'events',
              'quarantine',
              'audits',
              'refreshes',
              'dead_letters',
              'parked',
              'pulls',
            ].map((x) => `overview.${x}`),
          ),
      );
      assert.deepEqual(
        PANELS.map((p) => p.id).filter((id) => !tested.has(id)),
        [],
      );
    });
  });

  describe('refuses what it does not know', () => {
    it('unknown parameters, parameters a chart does not take, repeated and invalid values → 400', async () => {
      const cases = [
        '/api/charts/rainfall.region_monthly?sql=SELECT%201',
        '/api/charts/ecommerce.funnel?region=North',
        '/api/charts/rainfall.region_monthly?region=North&region=South',
        '/api/charts/rainfall.region_monthly?from=2024-02-30',
        '/api/charts/rainfall.region_monthly?from=yesterday',
        '/api/charts/rainfall.region_monthly?from=2024-03-01&to=2024-02-01',
        "/api/charts/rainfall.region_monthly?region=North'%20OR%20'1'%3D'1",
        '/api/charts/rainfall.region_monthly?region=x%3BDROP%20TABLE%20gold.rainfall_monthly',
        `/api/charts/rainfall.region_monthly?region=${'a'.repeat(65)}`,
        '/api/charts/nope.nothing',
        '/api/filters/nowhere',
        '/api/version/rainfall?x=1',
        '/api/catalogue?debug=1',
      ];
      for (const c of cases) {
        const { status, body } = await get(c);
        assert.equal(status, 400, c);
        assert.equal((body.error as unknown as { code: string }).code, 'BAD_REQUEST', c);
      }
      assert.equal((await get('/api/nothing')).status, 404);
      const post = await fetch(`${srv.url}/api/charts/rainfall.region_monthly`, {
        method: 'POST',
        body: 'x',
      });
      assert.equal(post.status, 405);
    });

    it('a value that passes validation is bound, never spliced: a quote in a name matches nothing', async () => {
      // Apostrophes are allowed (names like "Côte d'Ivoire"); bound, this one matches no region.
      const a = await chart('rainfall.region_monthly', { region: "North' --" });
      assert.deepEqual(a.rows, []);
      assert.ok(a.empty, 'an empty answer says why');
      assert.equal((await chart('rainfall.region_monthly')).rows.length, 10, 'the table is intact');
    });
  });

  describe('caching', () => {
    it('answers from the cache until the Gold table changes, then recomputes', async () => {
      const first = await chart('rainfall.region_monthly', { region: 'West' });
      const again = await chart('rainfall.region_monthly', { region: 'West' });
      assert.equal(again.cached, true);
      assert.equal(again.version, first.version);
      assert.deepEqual(again.rows, first.rows);
      const otherTable = await chart('network.regional');
      const version = async (page: string): Promise<string> =>
        ((await get(`/api/version/${page}`)).body as unknown as { version: string }).version;
      const [rainV, netV] = [await version('rainfall'), await version('network')];
      // New rainfall lands while the same dashboard keeps serving: it holds the file only while
      // querying (closed here as the idle timer would), so a writer can take it in between.
      await srv.wiring.close();
      await h.write(async (wh, store) => {
        const dataset = 'rainfall';
        const generation = String(Date.parse('2024-07-01T00:00:00Z') * 1000);
        const name = bronzeObjectName(dataset, 'more', generation);
        await writeBronzeParquet({
          contract: loadDatasetContract(h.cfg.contractsDir, dataset),
          rows: [
            {
              station_id: 'ST0005',
              station_name: 'Station 5',
              region: 'West',
              latitude: 1,
              longitude: 1,
              date: '2024-03-02',
              rain_mm: 12.5,
              measured_at: '2024-03-02T06:00:00.000Z',
            },
          ],
          file: await store.objectPath(h.cfg.bronzeBucket, name),
          sourceUri: 'gs://raw/rainfall/more.csv',
          generation,
          ingestedAt: '2024-07-01T00:00:02.000Z',
        });
        const st = await store.stat(h.cfg.bronzeBucket, name);
        assert.equal(
          (
            await wh.loadObject({
              bucket: h.cfg.bronzeBucket,
              name,
              generation: st?.generation ?? generation,
            })
          ).status,
          'loaded',
        );
      });
      // Table versions are re-read at most every 250 ms (versionTtlMs, local): a load faster than that
      // would still be answered from the versions read just before it.
      await new Promise((r) => setTimeout(r, 300));
      const after = await chart('rainfall.region_monthly', { region: 'West' });
      assert.equal(after.cached, false);
      assert.notEqual(after.version, first.version);
      const march = after.rows.find((r) => r.month === '2024-03-01');
      assert.equal(march?.total_rain_mm, 12.5, 'the new month is there');
      // The open rainfall page sees a new version (and reloads); the network page does not.
      assert.notEqual(await version('rainfall'), rainV);
      assert.equal(await version('network'), netV);
      // A table that did not change keeps its version and its cached answer.
      const same = await chart('network.regional');
      assert.equal(same.version, otherTable.version);
      assert.equal(same.cached, true);
    });
  });
});
