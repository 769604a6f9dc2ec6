/**
 * Deterministic sample rows for the warehouse's four seed domains, shaped like the dataset contracts
 * (contracts/datasets/*.json) and the event tables (contracts/events/*.json): the bundled samples in
 * samples/, the warehouse tests (which recompute every Gold table from these rows independently) and
 * the warehouse benchmark. Same seed → same rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { daysBetween, networkApiDay } from './network-api';
import { mulberry32, stations } from './rainfall';
import { storeApiData } from './store-api';

export type Row = Record<string, unknown>;

const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const day = (ms: number): string => iso(ms).slice(0, 10);
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

// ------------------------------------------------------------------ rainfall

export interface RainfallRowsOptions {
  stations?: number;
  days?: number;
  start?: string;
  seed?: number;
}

/** Rainfall rows as rawToBronze writes them (gaps already defaulted to 0, ids upper-case). */
export function rainfallRows(opts: RainfallRowsOptions = {}): Row[] {
  const st = stations(opts.stations ?? 8, opts.seed ?? 7);
  const rnd = mulberry32((opts.seed ?? 7) * 97 + 3);
  const start = Date.parse(`${opts.start ?? '2024-01-01'}T00:00:00Z`);
  const rows: Row[] = [];
  for (let d = 0; d < (opts.days ?? 30); d++) {
    const date = day(start + d * DAY);
    const spell = Math.floor(d / 7) % 3 === 2;
    for (const s of st) {
      let rain = rnd() < 0.55 ? 0 : round(-Math.log(1 - rnd()) * (spell ? 18 : 6), 1);
      if (spell && s.region === 'North' && rnd() < 0.4) rain = round(rain + 45 + rnd() * 90, 1);
      rows.push({
        station_id: s.id,
        station_name: s.name,
        region: s.region,
        latitude: s.lat,
        longitude: s.lon,
        date,
        rain_mm: rain,
        measured_at: `${date}T06:00:00.000Z`,
      });
    }
  }
  return rows;
}

// ------------------------------------------------------------------ store (API export)

const FIRST = [
  'Emma',
  'Liam',
  'Olivia',
  'Noah',
  'Ava',
  'Elijah',
  'Sophia',
  'Lucas',
  'Mia',
  'Amir',
  'Yuki',
  'Zoe',
];
const LAST = [
  'Smith',
  'Garcia',
  'Müller',
  'Rossi',
  'Dubois',
  'Kowalski',
  'Silva',
  'Jensen',
  'Tanaka',
  'Okafor',
];
const CITIES: [string, string][] = [
  ['Berlin', 'DE'],
  ['Paris', 'FR'],
  ['Madrid', 'ES'],
  ['Milan', 'IT'],
  ['Lisbon', 'PT'],
  ['Warsaw', 'PL'],
];
const CATEGORIES = ['smartphones', 'laptops', 'groceries', 'furniture', 'fragrances', 'beauty'];

export interface StoreSample {
  users: Row[];
  products: Row[];
  carts: Row[];
}

export function storeSample(
  opts: {
    users?: number;
    products?: number;
    carts?: number;
    days?: number;
    start?: string;
    seed?: number;
  } = {},
): StoreSample {
  const rnd = mulberry32(opts.seed ?? 11);
  const start = Date.parse(`${opts.start ?? '2024-03-01'}T00:00:00Z`);
  const users: Row[] = Array.from({ length: opts.users ?? 40 }, (_, i) => {
    const [city, country] = pick(rnd, CITIES);
    const first = pick(rnd, FIRST);
    const last = pick(rnd, LAST);
    const g = rnd();
    return {
      user_id: i + 1,
      first_name: first,
      last_name: last,
      email: `${first}.${last}${i + 1}@example.com`.toLowerCase(),
      age: rnd() < 0.05 ? null : 15 + Math.floor(rnd() * 60),
      gender: g < 0.48 ? 'female' : g < 0.96 ? 'male' : 'other',
      city,
      country,
      registered_at: iso(start - Math.floor(rnd() * 400) * DAY),
    };
  });
  const products: Row[] = Array.from({ length: opts.products ?? 24 }, (_, i) => {
    const category = CATEGORIES[i % CATEGORIES.length] as string;
    return {
      product_id: i + 1,
      title: `${category.slice(0, 1).toUpperCase()}${category.slice(1, -1)} ${i + 1}`,
      category,
      brand: `Brand ${String.fromCharCode(65 + (i % 7))}`,
      price: round(2 + rnd() * (category === 'laptops' ? 1500 : category === 'smartphones' ? 900 : 120)),
      stock: Math.floor(rnd() * 200),
      rating: round(1 + rnd() * 4, 1),
    };
  });
  const carts: Row[] = Array.from({ length: opts.carts ?? 150 }, (_, i) => {
    const lines = 1 + Math.floor(rnd() * 4);
    const chosen = new Set<number>();
    while (chosen.size < lines) chosen.add(1 + Math.floor(rnd() * products.length));
    const items = [...chosen].map((pid) => {
      const p = products[pid - 1] as Row;
      const quantity = 1 + Math.floor(rnd() * 3);
      return {
        product_id: pid,
        title: p.title,
        price: p.price,
        quantity,
        total: round((p.price as number) * quantity),
      };
    });
    const created = start + Math.floor(rnd() * (opts.days ?? 21) * DAY);
    return {
      cart_id: i + 1,
      user_id: 1 + Math.floor(rnd() * users.length),
      created_at: iso(created),
      products: items,
      total: round(items.reduce((s, x) => s + x.total, 0)),
      total_quantity: items.reduce((s, x) => s + x.quantity, 0),
    };
  });
  return { users, products, carts };
}

// ------------------------------------------------------------------ network quality

const NET_REGIONS = ['Nord', 'Sud', 'Est', 'Ouest', 'Centre'];
const ISPS = ['FiberCo', 'CableNet', 'MobiLink', 'SatLite'];

export function networkRows(
  opts: { users?: number; days?: number; start?: string; seed?: number } = {},
): Row[] {
  const rnd = mulberry32(opts.seed ?? 23);
  const start = Date.parse(`${opts.start ?? '2024-04-01'}T00:00:00Z`);
  const days = opts.days ?? 21;
  const rows: Row[] = [];
  const nUsers = opts.users ?? 30;
  let n = 0;
  for (let u = 1; u <= nUsers; u++) {
    const region = pick(rnd, NET_REGIONS);
    const isp = pick(rnd, ISPS);
    const base = isp === 'FiberCo' ? 300 : isp === 'CableNet' ? 80 : isp === 'MobiLink' ? 25 : 8;
    const firstDay = Math.floor(rnd() * days * 0.6);
    for (let d = firstDay; d < days; d++) {
      if (d !== firstDay && rnd() < 0.6) continue;
      const session = `s-${u}-${d}`;
      const tests = 1 + Math.floor(rnd() * 3);
      const at = start + d * DAY + Math.floor(rnd() * 20 * 3_600_000);
      for (let t = 0; t < tests; t++) {
        n++;
        const down = round(Math.max(0.5, base * (0.3 + rnd())), 1);
        rows.push({
          measurement_id: `m-${String(n).padStart(6, '0')}`,
          user_id: `u-${u}`,
          session_id: session,
          measured_at: iso(at + t * 60_000),
          region,
          isp,
          connection_type: isp === 'MobiLink' ? 'mobile' : isp === 'SatLite' ? 'satellite' : 'fixed',
          download_mbps: down,
          upload_mbps: round(down * (0.1 + rnd() * 0.4), 1),
          latency_ms: round((isp === 'SatLite' ? 550 : 12) + rnd() * 60, 1),
          jitter_ms: round(rnd() * 15, 1),
          packet_loss_pct: round(rnd() < 0.8 ? 0 : rnd() * 3, 2),
        });
      }
    }
  }
  return rows;
}

// ------------------------------------------------------------------ e-commerce events (event tables)

export interface EcommerceSample {
  orders: Row[];
  inventory: Row[];
  user_activity: Row[];
}

/** What the three event streams of one sample share; `meta` and `eid` number events in generation order. */
interface EcommerceGen {
  rnd: () => number;
  start: number;
  days: number;
  users: number;
  orders: number;
  products: { id: string; price: number }[];
  countries: readonly string[];
  meta(t: number): Row;
  eid(prefix: string): string;
}

/**
 * Event-table rows (envelope + contract fields + routeEvent's metadata) over `days` days: orders that
 * move through statuses, inventory changes with consistent levels, and sessions of user activity.
 */
export function ecommerceSample(
  opts: { users?: number; orders?: number; days?: number; start?: string; seed?: number } = {},
): EcommerceSample {
  const rnd = mulberry32(opts.seed ?? 31);
  const from = opts.start ?? '2024-05-06'; // a Monday: weekly cohorts line up with the sample
  let seq = 0;
  const g: EcommerceGen = {
    rnd,
    start: Date.parse(from.length === 10 ? `${from}T00:00:00Z` : from),
    days: opts.days ?? 21,
    users: opts.users ?? 25,
    orders: opts.orders ?? 60,
    products: Array.from({ length: 12 }, (_, i) => ({
      id: `P${String(i + 1).padStart(3, '0')}`,
      price: round(5 + rnd() * 195),
    })),
    countries: ['DE', 'FR', 'ES', 'IT', 'NL'],
    meta(t) {
      seq++;
      return { _message_id: String(100000 + seq), _publish_time: iso(t + 150), _processed_at: iso(t + 400) };
    },
    eid: (p) => `${p}-${String(seq + 1).padStart(6, '0')}`,
  };
  // In this order: the streams draw from one random sequence.
  const orders = sampleOrders(g);
  const inventory = sampleInventory(g);
  const user_activity = sampleActivity(g);
  return { orders, inventory, user_activity };
}

/** Orders, each through one path of statuses (one event per status). */
function sampleOrders(g: EcommerceGen): Row[] {
  const { rnd } = g;
  const orders: Row[] = [];
  for (let i = 0; i < g.orders; i++) {
    const placed = g.start + Math.floor(rnd() * g.days * DAY);
    const customer = `c-${1 + Math.floor(rnd() * g.users)}`;
    const lines = 1 + Math.floor(rnd() * 3);
    const items = Array.from({ length: lines }, () => {
      const p = pick(rnd, g.products);
      return { product_id: p.id, quantity: 1 + Math.floor(rnd() * 3), unit_price: p.price };
    });
    const subtotal = round(items.reduce((s, x) => s + x.quantity * x.unit_price, 0));
    const tax = round(subtotal * 0.19);
    const shipping = subtotal > 100 ? 0 : 4.9;
    const country = pick(rnd, g.countries);
    const base = {
      order_id: `o-${String(i + 1).padStart(5, '0')}`,
      customer_id: customer,
      items,
      shipping_address: {
        street: `${1 + Math.floor(rnd() * 99)} Main St`,
        city: 'City',
        postal_code: '10115',
        country,
      },
      subtotal,
      tax,
      shipping_cost: shipping,
      total_amount: round(subtotal + tax + shipping),
      currency: 'EUR',
      payment_method: pick(rnd, ['card', 'paypal', 'invoice']),
    };
    const r = rnd();
    const path =
      r < 0.15
        ? ['pending', 'cancelled']
        : r < 0.3
          ? ['pending', 'paid']
          : r < 0.4
            ? ['pending', 'paid', 'shipped', 'delivered', 'refunded']
            : ['pending', 'paid', 'shipped', 'delivered'];
    let t = placed;
    for (const status of path) {
      orders.push({
        event_id: g.eid('ord'),
        event_type: 'order',
        event_time: iso(t),
        ...base,
        status,
        ...g.meta(t),
      });
      t += Math.floor((0.2 + rnd() * 30) * 3_600_000);
    }
  }
  return orders;
}

/** Inventory changes spread over the period, with stock levels that stay consistent per product and warehouse. */
function sampleInventory(g: EcommerceGen): Row[] {
  const { rnd } = g;
  const warehouses = ['WH-BER', 'WH-PAR', 'WH-MAD'];
  const inventory: Row[] = [];
  const level = new Map<string, number>();
  const n = g.orders * 2;
  for (let i = 0; i < n; i++) {
    const t = g.start + Math.floor((i / n) * g.days * DAY) + Math.floor(rnd() * 3_600_000);
    const p = pick(rnd, g.products);
    const wh = pick(rnd, warehouses);
    const key = `${p.id}|${wh}`;
    const cur = level.get(key) ?? 20;
    const type = cur < 8 ? 'restock' : pick(rnd, ['sale', 'sale', 'sale', 'return', 'adjustment']);
    const change =
      type === 'restock'
        ? 30 + Math.floor(rnd() * 40)
        : type === 'sale'
          ? -Math.min(cur, 1 + Math.floor(rnd() * 5))
          : type === 'return'
            ? 1
            : Math.floor(rnd() * 5) - 2;
    const after = Math.max(0, cur + change);
    level.set(key, after);
    inventory.push({
      event_id: g.eid('inv'),
      event_type: 'inventory',
      event_time: iso(t),
      product_id: p.id,
      warehouse_id: wh,
      change_type: type,
      quantity_change: after - cur,
      quantity_after: after,
      reason: null,
      reference_id: null,
      ...g.meta(t),
    });
  }
  return inventory;
}

/** Sessions of user activity: each user's first day, then some later days; funnels of varying depth. */
function sampleActivity(g: EcommerceGen): Row[] {
  const { rnd } = g;
  const user_activity: Row[] = [];
  for (let u = 1; u <= g.users; u++) {
    const first = Math.floor(rnd() * g.days * 0.7);
    for (let d = first; d < g.days; d++) {
      if (d !== first && rnd() < 0.7) continue;
      const session = `sess-${u}-${d}`;
      let t = g.start + d * DAY + Math.floor(rnd() * 22 * 3_600_000);
      const device = pick(rnd, ['desktop', 'mobile', 'tablet']);
      const country = pick(rnd, g.countries);
      // Some sessions land on a product page directly (no page_view): the funnel must not count them.
      const steps: string[] = rnd() < 0.15 ? [] : ['page_view'];
      if (rnd() < 0.7) steps.push('product_view');
      if (rnd() < 0.5) steps.push('add_to_cart');
      if (steps.includes('add_to_cart') && rnd() < 0.5) steps.push('checkout', 'purchase');
      if (rnd() < 0.2) steps.push('search');
      for (const activity of steps) {
        const product = activity === 'page_view' || activity === 'search' ? null : pick(rnd, g.products).id;
        user_activity.push({
          event_id: g.eid('act'),
          event_type: 'user_activity',
          event_time: iso(t),
          user_id: `c-${u}`,
          session_id: session,
          activity_type: activity,
          page: activity === 'page_view' ? '/' : product ? `/p/${product}` : '/search',
          product_id: product,
          search_query: activity === 'search' ? 'shoes' : null,
          metadata: {
            device,
            browser: 'Firefox',
            os: 'Linux',
            country,
            referrer: null,
            duration_ms: Math.floor(rnd() * 30_000),
          },
          ...g.meta(t),
        });
        t += Math.floor(5_000 + rnd() * 120_000);
      }
    }
  }
  return user_activity;
}

// ------------------------------------------------------------------ bundled sample files

/**
 * The files under samples/, in the shapes of the real sources (regenerate with
 * `npx tsx -e "require('./shared/samples/domains').writeSampleFiles('samples')"`): one page of each
 * store endpoint as the dummyjson API answers it (`{"users":[…],"total":…,"skip":0,"limit":…}`), a week
 * of speed tests as data.gov.gr's query API answers it (a bare JSON array), and e-commerce events
 * (NDJSON for `smelter publish --file`, without routeEvent's metadata columns).
 */
export function sampleFiles(): Record<string, string> {
  const store = storeApiData({ users: 30, products: 30, carts: 20, seed: 5 });
  const page = (key: string, records: unknown[]): string =>
    JSON.stringify({ [key]: records, total: records.length, skip: 0, limit: records.length }, null, 1) + '\n';
  const measurements = daysBetween('2024-04-01', '2024-04-07').flatMap((d) =>
    networkApiDay(d, { seed: 5, devices: 40 }),
  );
  const shop = ecommerceSample();
  const events = [...shop.orders, ...shop.inventory, ...shop.user_activity]
    .sort((a, b) => String(a.event_time).localeCompare(String(b.event_time)))
    .map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !k.startsWith('_'))));
  return {
    'store/users.json': page('users', store.users),
    'store/products.json': page('products', store.products),
    'store/carts.json': page('carts', store.carts),
    'network/measurements.json': JSON.stringify(measurements, null, 1) + '\n',
    'ecommerce/events.ndjson': events.map((e) => JSON.stringify(e)).join('\n') + '\n',
  };
}

/** Writes sampleFiles() under `dir` (the bundled samples/ folder). */
export function writeSampleFiles(dir: string): void {
  for (const [name, text] of Object.entries(sampleFiles())) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}
