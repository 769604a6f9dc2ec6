import assert from 'node:assert/strict';
import { StaticContracts, validateEventContract, type EventContract } from '../../../shared/events/contract';
import {
  decodeMessageData,
  forbiddenKeyPaths,
  jsonDepthExceeds,
  parseJsonSafely,
} from '../../../shared/events/parse';
import { MAX_VIOLATIONS, normaliseTimestamp, validateEvent } from '../../../shared/events/validate';
import { EventContractRegistry } from '../../../shared/events/contract';
import { config } from '../../../shared/config';
import { activity, b64, inventory, order } from '../../support/events';

const registry = new EventContractRegistry(config().contractsDir);
const meta = {
  messageId: 'm-1',
  publishTime: '2024-05-01T10:00:00.000Z',
  processedAt: '2024-05-01T10:00:01.000Z',
};

const check = (obj: Record<string, unknown>, attrs: Record<string, string> = {}, contracts = registry) =>
  validateEvent(obj, attrs, contracts, meta);
/** A loaded contract as its file would say it (without what loading adds). */
const stripMeta = (c: EventContract | undefined): Record<string, unknown> => {
  const { file: _file, hash: _hash, ...rest } = structuredClone(c) as EventContract;
  return rest;
};
const codes = (r: ReturnType<typeof check>): [string, string][] => r.violations.map((v) => [v.path, v.code]);

describe('event validation and normalisation', () => {
  it('accepts the sample events of every type and normalises them', () => {
    for (const e of [order(1), inventory(1), activity(1)])
      assert.deepEqual(check(e).violations, [], String(e.event_type));
    const r = check(order(1));
    assert.deepEqual(r.row, {
      event_id: 'ord-1',
      event_type: 'order',
      event_time: '2024-05-01T09:15:00.000Z',
      order_id: 'O-1',
      customer_id: 'C-1',
      customer_email: null,
      status: 'paid',
      items: [
        { product_id: 'P-1', quantity: 2, unit_price: '9.99' },
        { product_id: 'P-2', quantity: 1, unit_price: '5' },
      ],
      shipping_address: { street: '1 Main St', city: 'Lyon', postal_code: '69001', country: 'FR' },
      subtotal: '24.98',
      tax: '5',
      shipping_cost: null,
      total_amount: '29.98',
      currency: 'EUR',
      payment_method: null,
      _message_id: 'm-1',
      _publish_time: '2024-05-01T10:00:00.000Z',
      _processed_at: '2024-05-01T10:00:01.000Z',
    });
  });

  it('reports every violation with its path, not only the first', () => {
    const r = check(
      order(1, {
        event_id: undefined,
        event_time: '2024-02-30T10:00:00Z',
        status: 'lost',
        customer_id: { id: 1 },
        items: [{ product_id: 'P', quantity: 1.5 }, { quantity: '-3', unit_price: '1.0000000001' }, 'x'],
        shipping_address: ['Paris'],
        currency: 'euro',
        tax: -1,
      }),
    );
    assert.deepEqual(codes(r).sort(), [
      ['$.currency', 'pattern'],
      ['$.customer_id', 'wrong_type'],
      ['$.event_id', 'required'],
      ['$.event_time', 'wrong_type'],
      ['$.items[0].quantity', 'wrong_type'],
      ['$.items[0].unit_price', 'required'],
      ['$.items[1].product_id', 'required'],
      ['$.items[1].quantity', 'below_min'],
      ['$.items[1].unit_price', 'wrong_type'],
      ['$.items[2]', 'wrong_type'],
      ['$.shipping_address', 'wrong_type'],
      ['$.status', 'not_accepted'],
      ['$.tax', 'below_min'],
    ]);
    assert.equal(r.row, undefined);
    assert.equal(r.eventType, 'order');
    assert.match(
      r.violations.find((v) => v.path === '$.status')?.reason ?? '',
      /"lost" is not one of "pending"/,
    );
  });

  it('takes the type from the event_type attribute, and refuses a conflicting one', () => {
    const { event_type: _t, ...noType } = inventory(1);
    assert.deepEqual(check(noType, { event_type: 'inventory' }).violations, []);
    assert.deepEqual(codes(check(inventory(1), { event_type: 'order' })), [
      ['$.event_type', 'type_conflict'],
    ]);
    assert.deepEqual(codes(check(noType)), [['$.event_type', 'missing_type']]);
    const unknown = check({ event_type: 'refund', event_id: 'x', event_time: 'soon' });
    assert.deepEqual(codes(unknown), [
      ['$.event_type', 'unknown_type'],
      ['$.event_time', 'wrong_type'],
    ]);
    assert.match(unknown.violations[0]?.reason ?? '', /known: inventory, order, user_activity/);
  });

  it('coerces unambiguous values and refuses the rest', () => {
    const ok = check(
      inventory(1, { quantity_change: '-7', quantity_after: '9223372036854775807', event_id: 42 }),
    );
    assert.deepEqual(ok.violations, []);
    assert.equal(ok.row?.quantity_change, -7);
    assert.equal(ok.row?.quantity_after, '9223372036854775807'); // beyond 2^53: kept exact as a string
    assert.equal(ok.row?.event_id, '42');
    const bad = check(
      inventory(1, {
        quantity_change: JSON.parse('12345678901234567890') as number,
        quantity_after: '9223372036854775808',
        product_id: ['P'],
      }),
    );
    assert.deepEqual(codes(bad).sort(), [
      ['$.product_id', 'wrong_type'],
      ['$.quantity_after', 'above_max'],
      ['$.quantity_change', 'wrong_type'],
    ]);
    // numeric: canonical decimal strings; floats rounded to 9 decimals; longer decimal strings refused.
    const n = check(order(1, { subtotal: 0.1 + 0.2, tax: '0012.50', total_amount: '-0' }));
    assert.equal(n.row?.subtotal, '0.3');
    assert.equal(n.row?.tax, '12.5');
    assert.equal(n.row?.total_amount, '0');
    assert.deepEqual(codes(check(order(1, { total_amount: '1e3' }))), [['$.total_amount', 'wrong_type']]);
    // Strings accept numbers and booleans; missing optional arrays become [].
    const a = check(activity(1, { page: 404, metadata: { duration_ms: '1500', country: 'DE' } }));
    assert.deepEqual(a.violations, []);
    assert.equal(a.row?.page, '404');
    assert.deepEqual(a.row?.metadata, {
      device: null,
      browser: null,
      os: null,
      country: 'DE',
      referrer: null,
      duration_ms: 1500,
    });
  });

  it('normalises timestamps to UTC ISO 8601, keeping microseconds', () => {
    assert.equal(normaliseTimestamp('2024-05-01T12:00:00Z'), '2024-05-01T12:00:00.000Z');
    assert.equal(normaliseTimestamp('2024-05-01 12:00:00.123456789+05:30'), '2024-05-01T06:30:00.123456Z');
    assert.equal(normaliseTimestamp('2024-05-01T00:30:00-0100'), '2024-05-01T01:30:00.000Z');
    assert.equal(normaliseTimestamp('2024-12-31T23:59:59.5-02'), '2025-01-01T01:59:59.500Z');
    assert.equal(normaliseTimestamp('2024-05-01T12:00'), '2024-05-01T12:00:00.000Z'); // no offset: UTC, as BigQuery
    for (const bad of [
      '2024-02-30T00:00:00Z',
      '2024-05-01T24:00:00Z',
      '2024-05-01',
      '1714564800',
      '2024-05-01T12:00:00+25:00',
      '',
    ])
      assert.equal(normaliseTimestamp(bad), undefined, bad);
  });

  it('rejects undeclared fields (reject), keeps them aside (keep), or only counts them (ignore)', () => {
    const strict = new StaticContracts([
      validateEventContract(
        {
          event_type: 'ping',
          table: 'pings',
          additional_fields: 'reject',
          fields: [{ name: 'host', type: { struct: [{ name: 'name', type: 'string' }] } }],
        },
        'test',
      ),
    ]);
    const base = { event_type: 'ping', event_id: 'p', event_time: '2024-05-01T00:00:00Z' };
    assert.deepEqual(
      codes(check({ ...base, host: { name: 'a', ip: '1' }, extra: 1 }, {}, strict as never)).sort(),
      [
        ['$.extra', 'unknown_field'],
        ['$.host.ip', 'unknown_field'],
      ],
    );
    const sent = order(1, { coupon: 'X', shipping_address: { city: 'Lyon', country: 'FR', floor: 3 } });
    // The bundled order contract ignores them: counted, their values nowhere in the result.
    const ignored = check(sent);
    assert.deepEqual(ignored.violations, []);
    assert.equal(ignored.extra, undefined);
    assert.equal(ignored.ignored, 2);
    assert.ok(!JSON.stringify(ignored).includes('"X"'));
    const keep = new StaticContracts([
      validateEventContract({ ...stripMeta(registry.get('order')), additional_fields: 'keep' }, 'test'),
    ]);
    const kept = check(sent, {}, keep as never);
    assert.deepEqual(kept.violations, []);
    assert.deepEqual(kept.extra, { '$.coupon': 'X', '$.shipping_address.floor': 3 });
    assert.equal(kept.ignored, undefined);
  });

  it('reports forbidden keys anywhere, and never touches a prototype', () => {
    const text = `{"a":{"b":[{"__proto__":{"x":1}}]},"constructor":1,"event_type":"order","prototype":{}}`;
    const parsed = parseJsonSafely(text);
    assert.ok(parsed.ok);
    assert.deepEqual(forbiddenKeyPaths(parsed.value, text).sort(), [
      '$.a.b[0].__proto__',
      '$.constructor',
      '$.prototype',
    ]);
    const escaped = `{"\\u005f_proto__":{"polluted":1}}`;
    const p2 = parseJsonSafely(escaped);
    assert.ok(p2.ok);
    assert.deepEqual(forbiddenKeyPaths(p2.value, escaped), ['$.__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(forbiddenKeyPaths({ a: 1 }, '{"a":1}'), []);
    const r = check({ ...order(1), ...JSON.parse('{"__proto__":{"status":"x"}}') });
    assert.deepEqual(codes(r), [['$.__proto__', 'forbidden_key']]);
  });

  it('caps the list of violations', () => {
    const items = Array.from({ length: 500 }, () => ({ quantity: 'x' }));
    const r = check(order(1, { items }));
    assert.equal(r.violations.length, MAX_VIOLATIONS + 1);
    assert.equal(r.violations.at(-1)?.code, 'too_many_violations');
    assert.match(r.violations.at(-1)?.reason ?? '', /^1\d\d\d more violations/);
  });
});

describe('message decoding', () => {
  const limits = { maxEventBytes: 1024 };
  it('accepts base64 JSON objects (padded or not)', () => {
    const d = decodeMessageData(b64({ a: 1 }), limits);
    assert.ok(d.ok);
    assert.deepEqual(d.value, { a: 1 });
    const unpadded = b64({ ab: 1 }).replace(/=+$/, '');
    assert.ok(decodeMessageData(unpadded, limits).ok);
  });

  it('refuses, with a reason, what is not an event', () => {
    const code = (data: string | undefined, l = limits) => {
      const d = decodeMessageData(data, l);
      return d.ok ? 'ok' : d.violation.code;
    };
    assert.equal(code(undefined), 'no_data');
    assert.equal(code('abc$'), 'not_base64');
    assert.equal(code('YW Jj'), 'not_base64');
    assert.equal(code('YQ=a'), 'not_base64');
    assert.equal(code(Buffer.from([0xc3, 0x28]).toString('base64')), 'not_utf8');
    assert.equal(code(b64('{"a":')), 'not_json');
    assert.equal(code(b64('null')), 'not_object');
    assert.equal(code(b64('"x"')), 'not_object');
    assert.equal(code(b64({ a: 'x'.repeat(2000) })), 'too_large');
    assert.equal(code(b64('{"a":' + '['.repeat(65) + ']'.repeat(65) + '}')), 'too_deep');
    assert.equal(code(b64('{"a":"' + '['.repeat(100) + '"}')), 'ok'); // brackets inside strings do not count
  });

  it('refuses an unpaired UTF-16 surrogate in a key or a string, with its path; a pair is fine', () => {
    const at = (text: string): string => {
      const d = decodeMessageData(b64(text), limits);
      return d.ok ? 'ok' : `${d.violation.code} ${d.violation.path}`;
    };
    assert.equal(at('{"a":"x\\ud800"}'), 'lone_surrogate $.a');
    assert.equal(at('{"a":[1,{"b":"\\udc00y"}]}'), 'lone_surrogate $.a[1].b');
    assert.equal(at('{"k\\udbff":1}'), 'lone_surrogate $["k\ufffd"]');
    assert.equal(at('{"a":"\\ud83d\\ude00 and \\\\ud800"}'), 'ok'); // a pair, and an escaped backslash
  });

  it('keeps only the head of an oversize message', () => {
    const d = decodeMessageData(b64('y'.repeat(5000)), limits);
    assert.ok(!d.ok);
    assert.equal(d.size, 5000);
    assert.equal(d.bytes.length, 1024);
  });

  it('measures depth without recursion', () => {
    assert.equal(jsonDepthExceeds('['.repeat(100_000), 64), true);
    assert.equal(jsonDepthExceeds('{"a":"\\"[[["}', 1), false);
  });
});

describe('bundled event contracts', () => {
  it('are valid and cluster like the seed system', () => {
    const all = registry.all();
    assert.deepEqual(registry.problems(), []);
    const byType = Object.fromEntries(all.map((c) => [c.event_type, c])) as Record<string, EventContract>;
    assert.deepEqual(Object.keys(byType).sort(), ['inventory', 'order', 'user_activity']);
    assert.deepEqual(byType.order?.cluster, ['customer_id', 'status']);
    assert.deepEqual(byType.inventory?.cluster, ['product_id', 'warehouse_id']);
    assert.deepEqual(byType.user_activity?.cluster, ['user_id', 'activity_type']);
    for (const c of all) assert.equal(c.partition, 'event_time');
  });
});
