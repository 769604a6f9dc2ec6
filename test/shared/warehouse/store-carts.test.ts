/**
 * Carts come from an API without a date: each pull stamps them with its own time (the contract's
 * fallback) and pulls them all again. Silver keeps one row per cart, at the earliest time it was
 * seen, so a second pull adds nothing to Gold; a cart seen earlier moves its purchase to that day.
 */
import assert from 'node:assert/strict';
import { storeSample, type Row } from '../../../shared/samples/domains';
import { assertRows } from './expect';
import { GOLD_KEYS, storeGold } from './oracle';
import { testWarehouse, type TestWarehouse } from '../../support/warehouse';

describe('warehouse: store carts pulled again and again (no date in the source)', function () {
  this.timeout(60_000);
  let t: TestWarehouse;
  const store = storeSample({ users: 12, products: 10, carts: 20, days: 1, seed: 9 });
  const at = (carts: Row[], created_at: string): Row[] => carts.map((c) => ({ ...c, created_at }));

  before(async () => {
    t = await testWarehouse();
    for (const [d, rows] of [
      ['store_users', store.users],
      ['store_products', store.products],
    ] as const)
      assert.equal((await t.wh.loadObject(await t.bronze(d, rows))).status, 'loaded');
  });
  after(async () => t?.close());

  const gold = async (carts: Row[]): Promise<void> => {
    const expected = storeGold({ users: store.users, products: store.products, carts });
    for (const [name, rows] of Object.entries(expected))
      assertRows(name, await t.rows(`SELECT * FROM ${name}`), rows, GOLD_KEYS[name] as string[]);
  };

  it('the first pull lands every cart once', async () => {
    const first = at(store.carts, '2024-05-02T12:00:00.000Z');
    assert.equal((await t.wh.loadObject(await t.bronze('store_carts', first))).status, 'loaded');
    assert.equal((await t.rows('SELECT * FROM silver.store_carts')).length, store.carts.length);
    await gold(first);
  });

  it('a later pull of the same carts adds nothing and keeps their first time', async () => {
    const later = at(store.carts, '2024-05-03T12:00:00.000Z');
    assert.equal((await t.wh.loadObject(await t.bronze('store_carts', later))).status, 'loaded');
    const rows = await t.rows(
      'SELECT count(*)::INT n, count(DISTINCT cart_id)::INT carts, min(cart_date)::VARCHAR lo, max(cart_date)::VARCHAR hi FROM silver.store_carts',
    );
    assert.deepEqual(rows, [
      { n: store.carts.length, carts: store.carts.length, lo: '2024-05-02', hi: '2024-05-02' },
    ]);
    await gold(at(store.carts, '2024-05-02T12:00:00.000Z'));
  });

  it('a cart seen earlier (an older export) moves to that day; its old day no longer counts it', async () => {
    const [moved, ...rest] = store.carts as [Row, ...Row[]];
    const older = at([moved], '2024-05-01T08:00:00.000Z');
    assert.equal((await t.wh.loadObject(await t.bronze('store_carts', older))).status, 'loaded');
    await gold([...older, ...at(rest, '2024-05-02T12:00:00.000Z')]);
  });
});
