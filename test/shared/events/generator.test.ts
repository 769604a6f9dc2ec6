/**
 * The seeded event generator: determinism, the requested mix, and agreement with the event contracts
 * (every valid message passes routeEvent's validation, every invalid one fails it).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { readEventContractFile, StaticContracts } from '../../../shared/events/contract';
import {
  EventGenerator,
  seededRandom,
  summarise,
  type GeneratedMessage,
} from '../../../shared/events/generator';
import { decodeMessageData } from '../../../shared/events/parse';
import { validateEvent } from '../../../shared/events/validate';
import { packageRoot } from '../../../shared/paths';

const BASE = Date.parse('2026-05-01T12:00:00Z');

describe('pubsub: event generator', () => {
  it('is deterministic: same seed and base time → the same bytes and attributes', () => {
    const a = new EventGenerator({ seed: 'abc', invalidRate: 0.2, duplicateRate: 0.1, baseTime: BASE }).take(
      300,
    );
    const b = new EventGenerator({ seed: 'abc', invalidRate: 0.2, duplicateRate: 0.1, baseTime: BASE }).take(
      300,
    );
    assert.deepEqual(
      a.map((m) => [m.data.toString('base64'), m.attributes, m.kind]),
      b.map((m) => [m.data.toString('base64'), m.attributes, m.kind]),
    );
    const c = new EventGenerator({ seed: 'abd', invalidRate: 0.2, duplicateRate: 0.1, baseTime: BASE }).take(
      300,
    );
    assert.notDeepEqual(
      a.map((m) => m.data.toString('base64')),
      c.map((m) => m.data.toString('base64')),
    );
    assert.equal(seededRandom(7)(), seededRandom('7')());
  });

  it('produces all three types, the requested shares of invalid messages and duplicates', () => {
    const msgs = new EventGenerator({ seed: 1, invalidRate: 0.1, duplicateRate: 0.05, baseTime: BASE }).take(
      4000,
    );
    const s = summarise(msgs);
    assert.equal(s.total, 4000);
    for (const t of ['order', 'inventory', 'user_activity'])
      assert.ok((s.byType[t] ?? 0) > 400, `${t}: ${s.byType[t]}`);
    assert.ok(s.invalid > 320 && s.invalid < 480, `invalid ${s.invalid}`);
    assert.ok(s.duplicates > 140 && s.duplicates < 260, `duplicates ${s.duplicates}`);
    assert.deepEqual(Object.keys(s.invalidByKind).sort(), [
      'bad_json',
      'missing_fields',
      'not_utf8',
      'unknown_type',
      'wrong_types',
    ]);
    const none = summarise(new EventGenerator({ seed: 1, baseTime: BASE }).take(500));
    assert.equal(none.invalid + none.duplicates, 0);
  });

  it('duplicates re-publish an earlier valid message with the same event_id', () => {
    const msgs = new EventGenerator({ seed: 3, duplicateRate: 0.3, baseTime: BASE }).take(500);
    const valid = new Map(msgs.filter((m) => m.kind === 'valid').map((m) => [m.eventId, m]));
    const dups = msgs.filter((m) => m.kind === 'duplicate');
    assert.ok(dups.length > 50);
    for (const d of dups) assert.deepEqual(d.data, valid.get(d.eventId)?.data);
    assert.equal(valid.size, msgs.length - dups.length, 'valid event ids are unique');
  });

  it('hangs together: totals add up, stock never negative, times just before the base time', () => {
    for (const m of new EventGenerator({ seed: 9, baseTime: BASE }).take(2000)) {
      const e = JSON.parse(m.data.toString()) as Record<string, unknown>;
      const t = Date.parse(e.event_time as string);
      assert.ok(t <= BASE && t > BASE - 6000);
      if (e.event_type === 'order') {
        const items = e.items as { quantity: number; unit_price: number }[];
        const cents = (x: unknown): number => Math.round((x as number) * 100);
        assert.equal(
          cents(e.subtotal),
          items.reduce((n, i) => n + i.quantity * cents(i.unit_price), 0),
        );
        assert.equal(cents(e.total_amount), cents(e.subtotal) + cents(e.tax) + cents(e.shipping_cost));
      }
      if (e.event_type === 'inventory') assert.ok((e.quantity_after as number) >= 0);
    }
  });

  it('agrees with the event contracts: valid ones pass routeEvent validation, invalid ones fail it', () => {
    const dir = path.join(packageRoot, 'contracts', 'events');
    const contracts = new StaticContracts(
      ['order', 'inventory', 'user_activity'].map((t) => readEventContractFile(path.join(dir, `${t}.json`))),
    );
    const now = new Date(BASE).toISOString();
    const verdict = (m: GeneratedMessage): boolean => {
      const d = decodeMessageData(m.data.toString('base64'), { maxEventBytes: 1024 ** 2 });
      if (!d.ok) return false;
      const r = validateEvent(d.value, m.attributes, contracts, {
        messageId: '1',
        publishTime: now,
        processedAt: now,
      });
      return r.violations.length === 0;
    };
    const msgs = new EventGenerator({
      seed: 'contracts',
      invalidRate: 0.3,
      duplicateRate: 0.05,
      baseTime: BASE,
    }).take(3000);
    const wrong = msgs.filter((m) => verdict(m) !== (m.kind !== 'invalid'));
    assert.deepEqual(
      wrong.slice(0, 3).map((m) => `${m.kind}/${m.invalid}: ${m.data.toString().slice(0, 200)}`),
      [],
    );
  });
});
