/**
 * Independent computations of every Gold table, in plain TypeScript over the raw sample rows — written
 * from the business definitions (see each model's description), not from the SQL.
 */
import { distinct, groupBy, isoWeek, monthOf, sum, utcDate, type Row } from './expect';

const n = (v: unknown): number => Number(v);
const s = (v: unknown): string => String(v);
const avg = (xs: number[]): number => sum(xs) / xs.length;

// ------------------------------------------------------------------ rainfall

/** Silver: the latest loaded row of each station-day (files passed in load order). */
export function rainfallSilver(files: Row[][]): Row[] {
  const m = new Map<string, Row>();
  for (const f of files) for (const r of f) m.set(`${s(r.station_id)}|${s(r.date)}`, r);
  return [...m.values()];
}

export function rainfallGold(silver: Row[]): Record<string, Row[]> {
  const daily = silver.map((r) => ({
    date: r.date,
    station_id: r.station_id,
    station_name: r.station_name,
    region: r.region,
    rain_mm: n(r.rain_mm),
    is_rainy_day: n(r.rain_mm) >= 1,
  }));
  const regionDaily = [...groupBy(silver, (r) => `${s(r.date)}|${s(r.region)}`).values()].map((g) => ({
    date: g[0]?.date,
    region: g[0]?.region,
    stations: g.length,
    total_rain_mm: sum(g.map((r) => n(r.rain_mm))),
    avg_rain_mm: avg(g.map((r) => n(r.rain_mm))),
    max_rain_mm: Math.max(...g.map((r) => n(r.rain_mm))),
    rainy_stations: g.filter((r) => n(r.rain_mm) >= 1).length,
  }));
  const monthly = [...groupBy(silver, (r) => `${monthOf(s(r.date))}|${s(r.station_id)}`).values()].map(
    (g) => ({
      month: monthOf(s(g[0]?.date)),
      station_id: g[0]?.station_id,
      region: [...g].sort((a, b) => s(b.date).localeCompare(s(a.date)))[0]?.region,
      days_observed: g.length,
      total_rain_mm: sum(g.map((r) => n(r.rain_mm))),
      rainy_days: g.filter((r) => n(r.rain_mm) >= 1).length,
      max_daily_rain_mm: Math.max(...g.map((r) => n(r.rain_mm))),
    }),
  );
  const regionMonthly = [...groupBy(monthly, (r) => `${s(r.month)}|${s(r.region)}`).values()].map((g) => ({
    month: g[0]?.month,
    region: g[0]?.region,
    stations: g.length,
    station_days: sum(g.map((r) => r.days_observed)),
    total_rain_mm: sum(g.map((r) => r.total_rain_mm)),
    avg_station_rain_mm: avg(g.map((r) => r.total_rain_mm)),
    rainy_station_days: sum(g.map((r) => r.rainy_days)),
    max_daily_rain_mm: Math.max(...g.map((r) => r.max_daily_rain_mm)),
  }));
  const tiers: [string, number, number][] = [
    ['extreme', 120, 1],
    ['severe', 80, 0.5],
    ['heavy', 50, 0.25],
  ];
  const payouts = silver.flatMap((r) => {
    const t = tiers.find(([, th]) => n(r.rain_mm) >= th);
    return t
      ? [
          {
            date: r.date,
            station_id: r.station_id,
            region: r.region,
            rain_mm: n(r.rain_mm),
            tier: t[0],
            threshold_mm: t[1],
            payout_ratio: t[2],
            excess_mm: n(r.rain_mm) - t[1],
          },
        ]
      : [];
  });
  return {
    'gold.rainfall_daily': daily,
    'gold.rainfall_region_daily': regionDaily,
    'gold.rainfall_monthly': monthly,
    'gold.rainfall_region_monthly': regionMonthly,
    'gold.rainfall_payout_triggers': payouts,
  };
}

// ------------------------------------------------------------------ e-commerce

function uniqueEvents(rows: Row[]): Row[] {
  const m = new Map<string, Row>();
  for (const r of rows) if (!m.has(s(r.event_id))) m.set(s(r.event_id), r);
  return [...m.values()];
}

const newest = (a: Row, b: Row): number =>
  s(b.event_time).localeCompare(s(a.event_time)) || s(b.event_id).localeCompare(s(a.event_id));

export function ordersSilver(events: Row[]): Row[] {
  return [...groupBy(uniqueEvents(events), (r) => s(r.order_id)).values()].map((g) => {
    const latest = [...g].sort(newest)[0] as Row;
    const first = g.map((r) => s(r.event_time)).sort()[0] as string;
    const addr = latest.shipping_address as { country?: string } | null;
    return {
      order_id: latest.order_id,
      customer_id: latest.customer_id,
      status: latest.status,
      country: addr?.country ?? 'ZZ',
      currency: latest.currency,
      total_amount: n(latest.total_amount),
      items: latest.items,
      ordered_at: first,
      order_date: utcDate(first),
    };
  });
}

export function activitySilver(events: Row[]): Row[] {
  return uniqueEvents(events).map((r) => ({ ...r, event_date: utcDate(s(r.event_time)) }));
}

function retentionCells(activity: { user: string; date: string }[]): Row[] {
  const cohort = new Map<string, string>();
  for (const a of activity) {
    const c = cohort.get(a.user);
    if (!c || a.date < c) cohort.set(a.user, a.date);
  }
  const cells = groupBy(
    [...new Set(activity.map((a) => `${a.user}|${isoWeek(a.date)}`))].map((k) => {
      const [user, week] = k.split('|') as [string, string];
      return { user, week, cohort: isoWeek(cohort.get(user) as string) };
    }),
    (x) => `${x.week}|${x.cohort}`,
  );
  return [...cells.values()].map((g) => ({
    activity_week: g[0]?.week,
    cohort_week: g[0]?.cohort,
    week_number: Math.round((Date.parse(s(g[0]?.week)) - Date.parse(s(g[0]?.cohort))) / (7 * 86_400_000)),
    active_users: g.length,
  }));
}

function retentionView(cells: Row[]): Row[] {
  const size = new Map(
    cells.filter((c) => c.week_number === 0).map((c) => [s(c.cohort_week), n(c.active_users)]),
  );
  return cells
    .filter((c) => size.has(s(c.cohort_week)))
    .map((c) => ({
      ...c,
      cohort_size: size.get(s(c.cohort_week)),
      retention: n(c.active_users) / (size.get(s(c.cohort_week)) as number),
    }));
}

export function ecommerceGold(ev: {
  orders: Row[];
  inventory: Row[];
  user_activity: Row[];
}): Record<string, Row[]> {
  const orders = ordersSilver(ev.orders);
  const revenue = [
    ...groupBy(orders, (o) => `${s(o.order_date)}|${s(o.status)}|${s(o.country)}|${s(o.currency)}`).values(),
  ].map((g) => ({
    order_date: g[0]?.order_date,
    status: g[0]?.status,
    country: g[0]?.country,
    currency: g[0]?.currency,
    orders: g.length,
    customers: distinct(g.map((o) => o.customer_id)),
    revenue: sum(g.map((o) => n(o.total_amount))),
  }));
  const lines = orders
    .filter((o) => o.status !== 'cancelled' && o.status !== 'refunded')
    .flatMap((o) =>
      (o.items as Row[]).map((i) => ({
        order_date: o.order_date,
        order_id: o.order_id,
        product_id: i.product_id,
        quantity: n(i.quantity),
        price: n(i.unit_price),
      })),
    );
  const productDaily = [...groupBy(lines, (l) => `${s(l.order_date)}|${s(l.product_id)}`).values()].map(
    (g) => ({
      order_date: g[0]?.order_date,
      product_id: g[0]?.product_id,
      orders: distinct(g.map((l) => l.order_id)),
      units: sum(g.map((l) => l.quantity)),
      revenue: sum(g.map((l) => l.quantity * l.price)),
    }),
  );
  const byProduct = [...groupBy(productDaily, (p) => s(p.product_id)).values()].map((g) => ({
    product_id: g[0]?.product_id,
    orders: sum(g.map((p) => p.orders)),
    units: sum(g.map((p) => p.units)),
    revenue: sum(g.map((p) => p.revenue)),
  }));
  const top = byProduct.map((p) => ({
    ...p,
    revenue_rank: 1 + byProduct.filter((q) => q.revenue > p.revenue + 1e-9).length,
  }));

  const inv = uniqueEvents(ev.inventory);
  const inventory = [...groupBy(inv, (r) => `${s(r.product_id)}|${s(r.warehouse_id)}`).values()].map((g) => {
    const l = [...g].sort(newest)[0] as Row;
    return {
      product_id: l.product_id,
      warehouse_id: l.warehouse_id,
      quantity_on_hand: n(l.quantity_after),
      low_stock: n(l.quantity_after) <= 10,
      last_change_type: l.change_type,
      updated_at: l.event_time,
      last_event_id: l.event_id,
    };
  });

  const act = activitySilver(ev.user_activity);
  const funnel = [...groupBy(act, (a) => s(a.event_date)).values()].map((g) => {
    const sessions = [...groupBy(g, (a) => s(a.session_id)).values()].map((x) => {
      const types = new Set(x.map((a) => a.activity_type));
      const v = types.has('page_view') ? 1 : 0;
      const c = types.has('add_to_cart') ? 1 : 0;
      const p = types.has('purchase') ? 1 : 0;
      return { v, vc: v * c, vcp: v * c * p };
    });
    const v = sum(sessions.map((x) => x.v));
    const vc = sum(sessions.map((x) => x.vc));
    const vcp = sum(sessions.map((x) => x.vcp));
    return {
      event_date: g[0]?.event_date,
      sessions: sessions.length,
      page_view_sessions: v,
      add_to_cart_sessions: vc,
      purchase_sessions: vcp,
      view_to_cart_rate: v ? vc / v : null,
      cart_to_purchase_rate: vc ? vcp / vc : null,
    };
  });
  const dau = [...groupBy(act, (a) => s(a.event_date)).values()].map((g) => ({
    event_date: g[0]?.event_date,
    active_users: distinct(g.map((a) => a.user_id)),
    sessions: distinct(g.map((a) => a.session_id)),
    events: g.length,
    events_per_user: g.length / distinct(g.map((a) => a.user_id)),
  }));
  const cells = retentionCells(act.map((a) => ({ user: s(a.user_id), date: s(a.event_date) })));
  return {
    'gold.ecommerce_daily_revenue': revenue,
    'gold.ecommerce_product_daily': productDaily,
    'gold.ecommerce_top_products': top,
    'gold.ecommerce_inventory_current': inventory,
    'gold.ecommerce_funnel_daily': funnel,
    'gold.ecommerce_daily_active_users': dau,
    'gold.ecommerce_retention_cells': cells,
    'gold.ecommerce_weekly_retention': retentionView(cells),
  };
}

// ------------------------------------------------------------------ store

export function ageGroup(age: unknown): string {
  if (age === null || age === undefined) return 'unknown';
  const a = n(age);
  if (a < 18) return 'under 18';
  if (a < 25) return '18-24';
  if (a < 35) return '25-34';
  if (a < 45) return '35-44';
  if (a < 55) return '45-54';
  if (a < 65) return '55-64';
  return '65+';
}

export function storeGold(x: { users: Row[]; products: Row[]; carts: Row[] }): Record<string, Row[]> {
  const users = new Map(x.users.map((u) => [n(u.user_id), u]));
  const products = new Map(x.products.map((p) => [n(p.product_id), p]));
  const carts = x.carts.map((c): Row => {
    const u = users.get(n(c.user_id));
    return {
      ...c,
      cart_date: utcDate(s(c.created_at)),
      age_group: u ? ageGroup(u.age) : 'unknown',
      gender: (u?.gender as string | null | undefined) ?? 'unknown',
    };
  });
  const daily = [...groupBy(carts, (c) => `${s(c.cart_date)}|${s(c.age_group)}|${s(c.gender)}`).values()].map(
    (g) => ({
      cart_date: g[0]?.cart_date,
      age_group: g[0]?.age_group,
      gender: g[0]?.gender,
      purchases: g.length,
      customers: distinct(g.map((c) => c.user_id)),
      items: sum(g.map((c) => n(c.total_quantity))),
      revenue: sum(g.map((c) => n(c.total))),
      avg_purchase_value: sum(g.map((c) => n(c.total))) / g.length,
    }),
  );
  const segment = [...groupBy(carts, (c) => `${s(c.age_group)}|${s(c.gender)}`).values()].map((g) => ({
    age_group: g[0]?.age_group,
    gender: g[0]?.gender,
    purchases: g.length,
    items: sum(g.map((c) => n(c.total_quantity))),
    revenue: sum(g.map((c) => n(c.total))),
    avg_purchase_value: sum(g.map((c) => n(c.total))) / g.length,
  }));
  const lines = carts.flatMap((c) =>
    (c.products as Row[]).map((l) => ({
      cart_date: s(c.cart_date),
      cart_id: c.cart_id,
      category: (products.get(n(l.product_id))?.category as string | undefined) ?? 'unknown',
      quantity: n(l.quantity),
      total: n(l.total),
    })),
  );
  const category = [...groupBy(lines, (l) => `${l.cart_date}|${l.category}`).values()].map((g) => ({
    cart_date: g[0]?.cart_date,
    category: g[0]?.category,
    carts: distinct(g.map((l) => l.cart_id)),
    units: sum(g.map((l) => l.quantity)),
    revenue: sum(g.map((l) => l.total)),
  }));
  const customers = x.users.map((u) => ({
    user_id: n(u.user_id),
    age_group: ageGroup(u.age),
    gender: (u.gender as string | null) ?? 'unknown',
    email_key: u.email_key,
  }));
  return {
    'gold.store_purchases_daily': daily,
    'gold.store_purchases_by_segment': segment,
    'gold.store_category_daily': category,
    'gold.store_customers': customers,
  };
}

// ------------------------------------------------------------------ network

const SESSION_GAP_MS = 30 * 60_000;
/** Speed tiers of the staircase: [tier, label, min (inclusive), max (exclusive)]. */
const TIERS: [number, string, number, number | null][] = [
  [1, '< 2 Mbps', 0, 2],
  [2, '2-10 Mbps', 2, 10],
  [3, '10-30 Mbps', 10, 30],
  [4, '30-100 Mbps', 30, 100],
  [5, '>= 100 Mbps', 100, null],
];

/** Sessions: a user's tests of one UTC day, split where two consecutive tests are > 30 minutes apart. */
export function networkSessions(rows: Row[]): Row[] {
  const m = rows.map((r): Row => ({ ...r, measured_date: utcDate(s(r.measured_at)) }));
  const out: Row[] = [];
  for (const g of groupBy(m, (r) => `${s(r.user_id)}|${s(r.measured_date)}`).values()) {
    const sorted = [...g].sort(
      (a, b) =>
        Date.parse(s(a.measured_at)) - Date.parse(s(b.measured_at)) ||
        s(a.measurement_id).localeCompare(s(b.measurement_id)),
    );
    const sessions: Row[][] = [];
    let prev = -Infinity;
    for (const r of sorted) {
      const t = Date.parse(s(r.measured_at));
      if (t - prev > SESSION_GAP_MS) sessions.push([]);
      (sessions[sessions.length - 1] as Row[]).push(r);
      prev = t;
    }
    sessions.forEach((tests, k) => {
      const head = tests[0] as Row;
      out.push({
        session_date: head.measured_date,
        session_id: `${s(head.user_id)}/${s(head.measured_date)}/${k + 1}`,
        user_id: head.user_id,
        region: head.region,
        isp: head.isp,
        connection_type: head.connection_type ?? null,
        started_at: head.measured_at,
        ended_at: (tests[tests.length - 1] as Row).measured_at,
        measurements: tests.length,
        avg_download_mbps: avg(tests.map((r) => n(r.download_mbps))),
        avg_upload_mbps: avg(tests.map((r) => n(r.upload_mbps))),
        avg_latency_ms: avg(tests.map((r) => n(r.latency_ms))),
        min_download_mbps: Math.min(...tests.map((r) => n(r.download_mbps))),
      });
    });
  }
  return out;
}

export function networkGold(rows: Row[]): Record<string, Row[]> {
  const m = rows.map((r): Row => ({ ...r, measured_date: utcDate(s(r.measured_at)) }));
  const regional = [...groupBy(m, (r) => `${s(r.measured_date)}|${s(r.region)}|${s(r.isp)}`).values()].map(
    (g) => ({
      measured_date: g[0]?.measured_date,
      region: g[0]?.region,
      isp: g[0]?.isp,
      measurements: g.length,
      users: distinct(g.map((r) => r.user_id)),
      avg_download_mbps: avg(g.map((r) => n(r.download_mbps))),
      avg_upload_mbps: avg(g.map((r) => n(r.upload_mbps))),
      avg_latency_ms: avg(g.map((r) => n(r.latency_ms))),
      min_download_mbps: Math.min(...g.map((r) => n(r.download_mbps))),
      max_latency_ms: Math.max(...g.map((r) => n(r.latency_ms))),
    }),
  );
  const sessions = networkSessions(rows);
  const staircase: Row[] = [];
  for (const g of groupBy(sessions, (x) => `${s(x.session_date)}|${s(x.region)}|${s(x.isp)}`).values()) {
    let below = 0;
    for (const [tier, label, min, max] of TIERS) {
      const count = g.filter(
        (x) => n(x.avg_download_mbps) >= min && (max === null || n(x.avg_download_mbps) < max),
      ).length;
      below += count;
      staircase.push({
        session_date: g[0]?.session_date,
        region: g[0]?.region,
        isp: g[0]?.isp,
        tier,
        tier_label: label,
        min_mbps: min,
        max_mbps: max,
        sessions: count,
        total_sessions: g.length,
        share: count / g.length,
        cumulative_share: below / g.length,
      });
    }
  }
  const frustration = [
    ...groupBy(sessions, (x) => `${s(x.session_date)}|${s(x.region)}|${s(x.isp)}`).values(),
  ].map((g) => ({
    measured_date: g[0]?.session_date,
    region: g[0]?.region,
    isp: g[0]?.isp,
    sessions: g.length,
    frustrated_sessions: g.filter((x) => n(x.avg_download_mbps) < 10).length,
    frustration_index: g.filter((x) => n(x.avg_download_mbps) < 10).length / g.length,
  }));
  const cells = retentionCells(m.map((r) => ({ user: s(r.user_id), date: s(r.measured_date) })));
  return {
    'silver.network_sessions': sessions,
    'gold.network_regional_daily': regional,
    'gold.network_frustration_staircase': staircase,
    'gold.network_frustration_daily': frustration,
    'gold.network_retention_cells': cells,
    'gold.network_user_retention': retentionView(cells),
  };
}

/** Key columns of each Gold table (its grain). */
export const GOLD_KEYS: Record<string, string[]> = {
  'gold.rainfall_daily': ['station_id', 'date'],
  'gold.rainfall_region_daily': ['region', 'date'],
  'gold.rainfall_monthly': ['station_id', 'month'],
  'gold.rainfall_region_monthly': ['region', 'month'],
  'gold.rainfall_payout_triggers': ['station_id', 'date'],
  'gold.ecommerce_daily_revenue': ['order_date', 'status', 'country', 'currency'],
  'gold.ecommerce_product_daily': ['order_date', 'product_id'],
  'gold.ecommerce_top_products': ['product_id'],
  'gold.ecommerce_inventory_current': ['product_id', 'warehouse_id'],
  'gold.ecommerce_funnel_daily': ['event_date'],
  'gold.ecommerce_daily_active_users': ['event_date'],
  'gold.ecommerce_retention_cells': ['activity_week', 'cohort_week'],
  'gold.ecommerce_weekly_retention': ['activity_week', 'cohort_week'],
  'gold.store_purchases_daily': ['cart_date', 'age_group', 'gender'],
  'gold.store_purchases_by_segment': ['age_group', 'gender'],
  'gold.store_category_daily': ['cart_date', 'category'],
  'gold.store_customers': ['user_id'],
  'gold.network_regional_daily': ['measured_date', 'region', 'isp'],
  'silver.network_sessions': ['session_date', 'session_id'],
  'gold.network_frustration_staircase': ['session_date', 'region', 'isp', 'tier'],
  'gold.network_frustration_daily': ['measured_date', 'region', 'isp'],
  'gold.network_retention_cells': ['activity_week', 'cohort_week'],
  'gold.network_user_retention': ['activity_week', 'cohort_week'],
};
