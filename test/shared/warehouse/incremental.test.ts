/**
 * The scheduled refresh: event tables reach Silver/Gold incrementally from each model's watermark
 * minus the lateness. Late events within the lateness update exactly the partitions they belong to
 * (even an old order's day, when its status changes late); events later than that wait for a backfill.
 */
import assert from 'node:assert/strict';
import { ecommerceSample, type Row } from '../../../shared/samples/domains';
import { assertRows } from './expect';
import { GOLD_KEYS, ecommerceGold } from './oracle';
import { testWarehouse, type TestWarehouse } from '../../support/warehouse';

const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

async function byKey(t: TestWarehouse, table: string, key: string): Promise<Map<string, string>> {
  const rows = await t.rows(`SELECT * FROM ${table} ORDER BY ALL`);
  const m = new Map<string, string[]>();
  for (const r of rows) m.set(String(r[key]), [...(m.get(String(r[key])) ?? []), JSON.stringify(r)]);
  return new Map([...m].map(([k, v]) => [k, v.join('\n')]));
}

function changedKeys(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
}

async function assertEcommerce(
  t: TestWarehouse,
  ev: { orders: Row[]; inventory: Row[]; user_activity: Row[] },
): Promise<void> {
  for (const [name, rows] of Object.entries(ecommerceGold(ev)))
    assertRows(name, await t.rows(`SELECT * FROM ${name}`), rows, GOLD_KEYS[name] as string[]);
}

describe('warehouse: incremental refresh with watermarks and lateness', function () {
  let t: TestWarehouse;
  const shop = ecommerceSample({ users: 15, orders: 30, days: 20, seed: 5 });
  const lateness = 2 * DAY;

  before(async function () {
    t = await testWarehouse({ latenessMs: lateness });
    await t.events('orders', shop.orders);
    await t.events('inventory', shop.inventory);
    await t.events('user_activity', shop.user_activity);
    await t.wh.refresh();
  });
  after(async () => t?.close());

  it('records a watermark per event-reading model: the newest event time it has processed', async () => {
    const newest = (rows: Row[]): string =>
      rows
        .map((r) => r.event_time as string)
        .sort()
        .at(-1) as string;
    assert.equal(await t.wh.ops.watermark('silver.user_activity'), newest(shop.user_activity));
    assert.equal(await t.wh.ops.watermark('silver.inventory'), newest(shop.inventory));
    assert.equal(await t.wh.ops.watermark('silver.orders'), newest(shop.orders));
  });

  it('late events within the lateness update the right partitions; later ones wait for a backfill', async () => {
    const wm = Date.parse((await t.wh.ops.watermark('silver.user_activity')) as string);
    const dateOf = (ms: number): string => iso(ms).slice(0, 10);
    const activeOn = (user: string, day: string): boolean =>
      shop.user_activity.some((a) => a.user_id === user && (a.event_time as string).slice(0, 10) === day);
    const late = wm - DAY; // within the lateness
    const tooLate = wm - 6 * DAY; // beyond it
    const lateUser = ['c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6'].find(
      (u) => !activeOn(u, dateOf(late)),
    ) as string;
    const tooLateUser = ['c-7', 'c-8', 'c-9', 'c-10', 'c-11'].find(
      (u) => !activeOn(u, dateOf(tooLate)),
    ) as string;
    const view = (user: string, at: number, id: string): Row => ({
      event_id: id,
      event_type: 'user_activity',
      event_time: iso(at),
      user_id: user,
      session_id: `late-${id}`,
      activity_type: 'page_view',
      page: '/',
      product_id: null,
      search_query: null,
      metadata: {
        device: 'mobile',
        browser: 'Firefox',
        os: 'Android',
        country: 'DE',
        referrer: null,
        duration_ms: 1000,
      },
      _message_id: `m-${id}`,
      _publish_time: iso(wm + 3600_000),
      _processed_at: iso(wm + 3600_000),
    });
    // An old order (placed ≥ 8 days before the watermark) is cancelled late.
    const latestByOrder = new Map<string, Row>();
    for (const o of shop.orders) {
      const p = latestByOrder.get(o.order_id as string);
      if (!p || (o.event_time as string) > (p.event_time as string))
        latestByOrder.set(o.order_id as string, o);
    }
    const firstByOrder = new Map<string, string>();
    for (const o of shop.orders) {
      const f = firstByOrder.get(o.order_id as string);
      if (!f || (o.event_time as string) < f) firstByOrder.set(o.order_id as string, o.event_time as string);
    }
    const orderWm = Date.parse((await t.wh.ops.watermark('silver.orders')) as string);
    const old = [...latestByOrder.values()].find(
      (o) =>
        o.status === 'delivered' &&
        Date.parse(firstByOrder.get(o.order_id as string) as string) < orderWm - 8 * DAY &&
        Date.parse(o.event_time as string) < orderWm - 3600_000,
    ) as Row;
    assert.ok(old, 'the sample has an old delivered order');
    // Late, but within the orders model's lateness window.
    const cancel: Row = {
      ...old,
      event_id: 'late-cancel',
      event_time: iso(orderWm - 3600_000),
      status: 'cancelled',
      _message_id: 'm-late-cancel',
    };
    const lateView = view(lateUser, late, 'late-1');
    const tooLateView = view(tooLateUser, tooLate, 'late-2');

    const dauBefore = await byKey(t, 'gold.ecommerce_daily_active_users', 'event_date');
    const revenueBefore = await byKey(t, 'gold.ecommerce_daily_revenue', 'order_date');
    await t.events('user_activity', [lateView, tooLateView]);
    await t.events('orders', [cancel]);
    await t.wh.refresh();

    const orderDay = (firstByOrder.get(old.order_id as string) as string).slice(0, 10);
    assert.deepEqual(
      changedKeys(dauBefore, await byKey(t, 'gold.ecommerce_daily_active_users', 'event_date')),
      [dateOf(late)],
    );
    assert.deepEqual(
      changedKeys(revenueBefore, await byKey(t, 'gold.ecommerce_daily_revenue', 'order_date')),
      [orderDay],
    );
    await assertEcommerce(t, {
      ...shop,
      orders: [...shop.orders, cancel],
      user_activity: [...shop.user_activity, lateView],
    });

    // Beyond the lateness: a backfill of that day brings it in — only that day's partitions change.
    const dauMid = await byKey(t, 'gold.ecommerce_daily_active_users', 'event_date');
    await t.wh.backfill({ dataset: 'ecommerce', from: dateOf(tooLate), to: dateOf(tooLate) });
    assert.deepEqual(changedKeys(dauMid, await byKey(t, 'gold.ecommerce_daily_active_users', 'event_date')), [
      dateOf(tooLate),
    ]);
    await assertEcommerce(t, {
      ...shop,
      orders: [...shop.orders, cancel],
      user_activity: [...shop.user_activity, lateView, tooLateView],
    });
  });

  it('a refresh with nothing new rewrites only the lateness window and changes nothing', async () => {
    const runs = await t.wh.refresh();
    const silver = runs.summary?.models.find((m) => m.model === 'silver.user_activity');
    const wm = Date.parse((await t.wh.ops.watermark('silver.user_activity')) as string);
    const since = new Date(wm - lateness).toISOString().slice(0, 10);
    assert.deepEqual(silver?.ranges, [{ startDate: since, endDate: '9999-12-31' }]);
    const before = await byKey(t, 'gold.ecommerce_retention_cells', 'activity_week');
    await t.wh.refresh();
    assert.deepEqual(
      changedKeys(before, await byKey(t, 'gold.ecommerce_retention_cells', 'activity_week')),
      [],
    );
  });
});
