/**
 * Seeded generator of realistic backend events for `smelter publish --generate`, the events benchmark
 * and tests: orders, inventory changes and user activity shaped like contracts/events/*.json, plus
 * invalid messages of several kinds and re-published duplicates. Same seed and base time → the same
 * bytes, in the same order.
 *
 * The world is stateful so the data hangs together: inventory levels per product and warehouse never
 * go negative, order totals add up (integer cents), users keep a session across events.
 */

export type GeneratedType = 'order' | 'inventory' | 'user_activity';
export type InvalidKind = 'bad_json' | 'not_utf8' | 'unknown_type' | 'missing_fields' | 'wrong_types';

export interface GeneratedMessage {
  data: Buffer;
  attributes: Record<string, string>;
  /** `duplicate`: the same bytes (same event_id) as an earlier valid message. */
  kind: 'valid' | 'invalid' | 'duplicate';
  eventType: string;
  /** null when the payload has none (or is not JSON). */
  eventId: string | null;
  invalid?: InvalidKind;
}

export interface GeneratorOptions {
  seed: number | string;
  /** Share of invalid messages, 0..1. */
  invalidRate?: number;
  /** Share of re-published earlier valid messages, 0..1. */
  duplicateRate?: number;
  /** Event times fall in the 5 s before this (ms since epoch; default: now). */
  baseTime?: number;
  /** Relative weights of the three types (default: activity 60, order 20, inventory 20). */
  weights?: Partial<Record<GeneratedType, number>>;
}

export const INVALID_KINDS: readonly InvalidKind[] = [
  'bad_json',
  'not_utf8',
  'unknown_type',
  'missing_fields',
  'wrong_types',
];

/** sfc32 seeded through cyrb128: small, fast, good enough for test data, identical on every platform. */
export function seededRandom(seed: number | string): () => number {
  const str = String(seed);
  let h1 = 1779033703,
    h2 = 3144134277,
    h3 = 1013904242,
    h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  let a = (h1 ^ h2 ^ h3 ^ h4) >>> 0,
    b = (h2 ^ h1) >>> 0,
    c = (h3 ^ h1) >>> 0,
    d = (h4 ^ h1) >>> 0;
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

const COUNTRIES: readonly {
  code: string;
  currency: string;
  vat: number;
  cities: readonly (readonly [string, string])[];
}[] = [
  {
    code: 'DE',
    currency: 'EUR',
    vat: 19,
    cities: [
      ['Berlin', '10115'],
      ['Hamburg', '20095'],
      ['München', '80331'],
    ],
  },
  {
    code: 'FR',
    currency: 'EUR',
    vat: 20,
    cities: [
      ['Paris', '75001'],
      ['Lyon', '69001'],
    ],
  },
  {
    code: 'NL',
    currency: 'EUR',
    vat: 21,
    cities: [
      ['Amsterdam', '1012'],
      ['Utrecht', '3511'],
    ],
  },
  {
    code: 'GB',
    currency: 'GBP',
    vat: 20,
    cities: [
      ['London', 'EC1A 1BB'],
      ['Manchester', 'M1 1AE'],
    ],
  },
  {
    code: 'US',
    currency: 'USD',
    vat: 8,
    cities: [
      ['New York', '10001'],
      ['Austin', '73301'],
      ['Seattle', '98101'],
    ],
  },
];
const STREETS = [
  'Main Street',
  'Hauptstraße',
  'Rue de la Paix',
  'Keizersgracht',
  'High Street',
  'Elm Avenue',
];
const STATUSES = [
  'pending',
  'confirmed',
  'paid',
  'paid',
  'shipped',
  'shipped',
  'delivered',
  'cancelled',
  'refunded',
];
const PAYMENTS = ['card', 'card', 'paypal', 'klarna', 'bank_transfer'];
const WAREHOUSES = ['WH-AMS', 'WH-BER', 'WH-LON', 'WH-NYC'];
const ACTIVITIES: [string, number][] = [
  ['page_view', 40],
  ['product_view', 20],
  ['search', 12],
  ['add_to_cart', 10],
  ['remove_from_cart', 3],
  ['checkout', 5],
  ['purchase', 4],
  ['login', 4],
  ['logout', 2],
];
const DEVICES: [string, string[]][] = [
  ['desktop', ['Windows', 'macOS', 'Linux']],
  ['mobile', ['iOS', 'Android']],
  ['tablet', ['iPadOS', 'Android']],
];
const BROWSERS = ['Chrome', 'Chrome', 'Safari', 'Firefox', 'Edge'];
const SEARCHES = ['running shoes', 'rain jacket', 'usb-c cable', 'coffee grinder', 'yoga mat', 'desk lamp'];
const CATEGORIES = ['shoes', 'outdoor', 'electronics', 'kitchen', 'sports', 'home'];
const REFERRERS = [
  'https://www.google.com/',
  'https://www.bing.com/',
  'https://news.example.com/',
  'https://t.co/x',
];
const UNKNOWN_TYPES = ['refund', 'shipment', 'page_click', 'Order'];

const PRODUCTS = 200;
const CUSTOMERS = 500;

export class EventGenerator {
  private readonly rnd: () => number;
  private readonly baseTime: number;
  private readonly invalidRate: number;
  private readonly duplicateRate: number;
  private readonly weights: [GeneratedType, number][];
  private readonly prices: number[] = [];
  private readonly levels = new Map<string, number>();
  private readonly sessions = new Map<number, string>();
  private readonly recentValid: GeneratedMessage[] = [];

  constructor(opts: GeneratorOptions) {
    this.rnd = seededRandom(opts.seed);
    this.baseTime = opts.baseTime ?? Date.now();
    this.invalidRate = clamp01(opts.invalidRate ?? 0);
    this.duplicateRate = clamp01(opts.duplicateRate ?? 0);
    const w = { user_activity: 60, order: 20, inventory: 20, ...opts.weights };
    this.weights = (Object.entries(w) as [GeneratedType, number][]).filter(([, n]) => n > 0);
    if (!this.weights.length) throw new Error('at least one event type needs a positive weight');
    // Prices in cents, log-uniform between 1.99 and ~300.
    for (let i = 0; i < PRODUCTS; i++)
      this.prices.push(Math.round(199 * Math.exp(this.rnd() * 5)) - (this.rnd() < 0.6 ? 1 : 0));
  }

  take(n: number): GeneratedMessage[] {
    const out: GeneratedMessage[] = [];
    for (let i = 0; i < n; i++) out.push(this.next());
    return out;
  }

  next(): GeneratedMessage {
    const r = this.rnd();
    if (r < this.duplicateRate && this.recentValid.length) {
      const orig = this.pick(this.recentValid);
      return { ...orig, kind: 'duplicate' };
    }
    const type = this.weighted(this.weights);
    const event = this.event(type);
    // Duplicates are drawn first, so the invalid share among the rest is scaled to keep it ≈ invalidRate overall.
    if (
      this.rnd() <
      this.invalidRate / Math.max(1e-9, 1 - (this.recentValid.length ? this.duplicateRate : 0))
    )
      return this.invalid(type, event);
    const msg: GeneratedMessage = {
      data: Buffer.from(JSON.stringify(event)),
      attributes: { event_type: type },
      kind: 'valid',
      eventType: type,
      eventId: event.event_id as string,
    };
    if (this.recentValid.length < 1000) this.recentValid.push(msg);
    else this.recentValid[Math.floor(this.rnd() * 1000)] = msg;
    return msg;
  }

  // ---------------------------------------------------------------------------------------------

  private event(type: GeneratedType): Record<string, unknown> {
    const envelope = {
      event_type: type,
      event_id: this.uuid(),
      event_time: new Date(this.baseTime - Math.floor(this.rnd() * 5000)).toISOString(),
    };
    switch (type) {
      case 'order':
        return { ...envelope, ...this.order() };
      case 'inventory':
        return { ...envelope, ...this.inventory() };
      case 'user_activity':
        return { ...envelope, ...this.activity() };
    }
  }

  private order(): Record<string, unknown> {
    const country = this.pick(COUNTRIES);
    const [city, postal] = this.pick(country.cities);
    const lines = 1 + Math.floor(this.rnd() ** 2 * 4);
    const items: { product_id: string; quantity: number; unit_price: number }[] = [];
    let subtotal = 0;
    for (let i = 0; i < lines; i++) {
      const p = Math.floor(this.rnd() * PRODUCTS);
      const quantity = 1 + Math.floor(this.rnd() ** 3 * 4);
      const cents = this.prices[p] as number;
      subtotal += cents * quantity;
      items.push({ product_id: sku(p), quantity, unit_price: cents / 100 });
    }
    const tax = Math.round((subtotal * country.vat) / 100);
    const shipping = subtotal >= 5000 ? 0 : 495;
    const orderId = `ORD-${String(Math.floor(this.rnd() * 9e8) + 1e8)}`;
    const customer = `CUST-${String(1 + Math.floor(this.rnd() * CUSTOMERS)).padStart(5, '0')}`;
    return {
      order_id: orderId,
      customer_id: customer,
      customer_email: `${customer.toLowerCase()}@example.com`,
      status: this.pick(STATUSES),
      items,
      shipping_address: {
        street: `${1 + Math.floor(this.rnd() * 200)} ${this.pick(STREETS)}`,
        city,
        postal_code: postal,
        country: country.code,
      },
      subtotal: subtotal / 100,
      tax: tax / 100,
      shipping_cost: shipping / 100,
      total_amount: (subtotal + tax + shipping) / 100,
      currency: country.currency,
      payment_method: this.pick(PAYMENTS),
    };
  }

  private inventory(): Record<string, unknown> {
    const p = Math.floor(this.rnd() * PRODUCTS);
    const warehouse = this.pick(WAREHOUSES);
    const key = `${p}/${warehouse}`;
    const level = this.levels.get(key) ?? 20 + Math.floor(this.rnd() * 200);
    let changeType = this.weighted<string>([
      ['sale', 60],
      ['restock', 15],
      ['return', 10],
      ['adjustment', 15],
    ]);
    if (changeType === 'sale' && level === 0) changeType = 'restock';
    let change: number;
    switch (changeType) {
      case 'sale':
        change = -Math.min(level, 1 + Math.floor(this.rnd() * 5));
        break;
      case 'restock':
        change = 20 + Math.floor(this.rnd() * 181);
        break;
      case 'return':
        change = 1 + Math.floor(this.rnd() * 2);
        break;
      default: {
        const delta = 1 + Math.floor(this.rnd() * 10);
        change = this.rnd() < 0.5 ? Math.min(delta, level) * -1 : delta;
      }
    }
    const after = level + change;
    this.levels.set(key, after);
    const ev: Record<string, unknown> = {
      product_id: sku(p),
      warehouse_id: warehouse,
      change_type: changeType,
      quantity_change: change || 0, // never -0
      quantity_after: after,
    };
    if (changeType === 'sale' || changeType === 'return')
      ev.reference_id = `ORD-${String(Math.floor(this.rnd() * 9e8) + 1e8)}`;
    if (changeType === 'adjustment')
      ev.reason = this.pick(['cycle count', 'damaged', 'found in aisle', 'system correction']);
    return ev;
  }

  private activity(): Record<string, unknown> {
    const user = 1 + Math.floor(this.rnd() * 1000);
    let session = this.sessions.get(user);
    if (!session || this.rnd() < 0.1) {
      session = this.uuid();
      this.sessions.set(user, session);
    }
    const type = this.weighted(ACTIVITIES);
    const [device, oses] = this.pick(DEVICES);
    const p = Math.floor(this.rnd() * PRODUCTS);
    const ev: Record<string, unknown> = {
      user_id: `USER-${String(user).padStart(6, '0')}`,
      session_id: session,
      activity_type: type,
      ip: `10.0.${user >> 8}.${user & 255}`,
    };
    switch (type) {
      case 'search': {
        const q = this.pick(SEARCHES);
        ev.page = `/search?q=${encodeURIComponent(q)}`;
        ev.search_query = q;
        break;
      }
      case 'product_view':
      case 'add_to_cart':
      case 'remove_from_cart':
        ev.page = `/products/${sku(p)}`;
        ev.product_id = sku(p);
        break;
      case 'purchase':
        ev.page = '/checkout/confirmation';
        ev.product_id = sku(p);
        break;
      case 'checkout':
        ev.page = '/checkout';
        break;
      case 'login':
      case 'logout':
        ev.page = `/account/${type}`;
        break;
      default:
        ev.page = this.rnd() < 0.3 ? '/' : `/category/${this.pick(CATEGORIES)}`;
    }
    const metadata: Record<string, unknown> = {
      device,
      browser: device === 'desktop' || this.rnd() < 0.5 ? this.pick(BROWSERS) : 'Safari',
      os: this.pick(oses),
      country: this.pick(COUNTRIES).code,
      duration_ms: Math.floor(200 + this.rnd() * this.rnd() * 60_000),
    };
    if (this.rnd() < 0.25) metadata.referrer = this.pick(REFERRERS);
    ev.metadata = metadata;
    return ev;
  }

  private invalid(type: GeneratedType, event: Record<string, unknown>): GeneratedMessage {
    const kind = this.weighted<InvalidKind>([
      ['bad_json', 20],
      ['not_utf8', 10],
      ['unknown_type', 20],
      ['missing_fields', 25],
      ['wrong_types', 25],
    ]);
    const eventId = event.event_id as string;
    const base = {
      kind: 'invalid' as const,
      invalid: kind,
      eventType: type,
      attributes: { event_type: type },
    };
    switch (kind) {
      case 'bad_json': {
        const text = JSON.stringify(event);
        // Cut inside the object: never valid JSON.
        const cut = 1 + Math.floor(this.rnd() * (text.length - 2));
        return { ...base, data: Buffer.from(text.slice(0, cut)), eventId: null };
      }
      case 'not_utf8': {
        const text = JSON.stringify({ ...event, note: '\u0000' });
        const at = text.indexOf('\\u0000');
        const data = Buffer.concat([
          Buffer.from(text.slice(0, at)),
          Buffer.from([0xc3, 0x28, 0xff]),
          Buffer.from(text.slice(at + 6)),
        ]);
        return { ...base, data, eventId: null };
      }
      case 'unknown_type': {
        const t = this.pick(UNKNOWN_TYPES);
        return {
          ...base,
          eventType: t,
          attributes: { event_type: t },
          data: Buffer.from(JSON.stringify({ ...event, event_type: t })),
          eventId,
        };
      }
      case 'missing_fields': {
        const required: Record<GeneratedType, string[]> = {
          order: ['order_id', 'customer_id', 'status', 'items', 'total_amount', 'currency'],
          inventory: ['product_id', 'warehouse_id', 'change_type', 'quantity_change', 'quantity_after'],
          user_activity: ['user_id', 'session_id', 'activity_type'],
        };
        const copy = { ...event };
        const fields = [...required[type], 'event_time'];
        const drop = 1 + Math.floor(this.rnd() * 2);
        for (let i = 0; i < drop; i++) delete copy[this.pick(fields)];
        return { ...base, data: Buffer.from(JSON.stringify(copy)), eventId };
      }
      case 'wrong_types': {
        const copy = structuredClone(event);
        const mutations: Record<GeneratedType, ((e: Record<string, unknown>) => void)[]> = {
          order: [
            (e) => ((e.items as Record<string, unknown>[])[0]!.quantity = 'three'),
            (e) => (e.total_amount = 'a lot'),
            (e) => (e.items = 'SKU-00001 x2'),
            (e) => (e.shipping_address = ['Berlin', 'DE']),
          ],
          inventory: [
            (e) => (e.quantity_change = 'minus five'),
            (e) => (e.quantity_after = { level: 3 }),
            (e) => (e.warehouse_id = ['WH-AMS']),
          ],
          user_activity: [
            (e) => (e.metadata = 'mobile'),
            (e) => (e.session_id = { id: 1 }),
            (e) => (e.user_id = { id: 7 }),
          ],
        };
        this.pick(mutations[type])(copy);
        if (this.rnd() < 0.3) copy.event_time = 'yesterday at noon';
        return { ...base, data: Buffer.from(JSON.stringify(copy)), eventId };
      }
    }
  }

  private uuid(): string {
    const h = (n: number): string =>
      Array.from({ length: n }, () => Math.floor(this.rnd() * 16).toString(16)).join('');
    return `${h(8)}-${h(4)}-4${h(3)}-${'89ab'[Math.floor(this.rnd() * 4)]}${h(3)}-${h(12)}`;
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rnd() * list.length)] as T;
  }

  private weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((n, [, w]) => n + w, 0);
    let r = this.rnd() * total;
    for (const [v, w] of entries) {
      r -= w;
      if (r < 0) return v;
    }
    return (entries[entries.length - 1] as readonly [T, number])[0];
  }
}

function sku(i: number): string {
  return `SKU-${String(i + 1).padStart(5, '0')}`;
}

function clamp01(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return Math.min(1, Math.max(0, x));
}

/** Counts by outcome and type, for printing what was published. */
export function summarise(messages: readonly GeneratedMessage[]): {
  total: number;
  byType: Record<string, number>;
  invalid: number;
  invalidByKind: Record<string, number>;
  duplicates: number;
} {
  const byType: Record<string, number> = {};
  const invalidByKind: Record<string, number> = {};
  let invalid = 0;
  let duplicates = 0;
  for (const m of messages) {
    if (m.kind === 'valid') byType[m.eventType] = (byType[m.eventType] ?? 0) + 1;
    else if (m.kind === 'duplicate') duplicates++;
    else {
      invalid++;
      const k = m.invalid ?? 'unknown';
      invalidByKind[k] = (invalidByKind[k] ?? 0) + 1;
    }
  }
  return { total: messages.length, byType, invalid, invalidByKind, duplicates };
}
