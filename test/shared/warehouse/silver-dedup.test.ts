/**
 * Silver's dedup of one batch (models/rainfall/silver/rainfall.sql): only the keys a file holds more
 * than once are ranked, the others pass through an anti-join; a file without any passes as it is. Each
 * path must give exactly one row per
 * station-day, the right one (latest measured_at, then the larger rain_mm), and lose nothing.
 */
import assert from 'node:assert/strict';
import { rainfallRows, type Row } from '../../../shared/samples/domains';
import { testWarehouse, type TestWarehouse } from '../../support/warehouse';

describe('silver.rainfall: dedup of a batch', function () {
  this.timeout(30_000);
  let t: TestWarehouse;
  before(async () => {
    t = await testWarehouse();
  });
  after(async () => t?.close());

  it('keeps unique station-days as they are and the winning row of each duplicated one', async () => {
    const rows = rainfallRows({ stations: 5, days: 20, start: '2024-03-01' });
    const base = rows[3] as Row;
    const other = rows[11] as Row;
    const later = (r: Row, minutes: number): string =>
      new Date(Date.parse(String(r.measured_at)) + minutes * 60_000).toISOString();
    const file: Row[] = [
      ...rows,
      // A later reading of the same station-day wins whatever its value.
      { ...base, measured_at: later(base, 30), rain_mm: 0.5 },
      { ...base, measured_at: later(base, 10), rain_mm: 99 },
      // Same reading time: the larger value wins (a deterministic tie-break).
      { ...other, rain_mm: Number(other.rain_mm) + 7 },
      { ...other, rain_mm: Number(other.rain_mm) + 3 },
      // An exact copy changes nothing.
      { ...(rows[15] as Row) },
    ];
    const out = await t.wh.loadObject(await t.bronze('rainfall', file));
    assert.equal(out.status, 'loaded');
    const silver = await t.rows(
      `SELECT station_id, CAST(date AS VARCHAR) AS date, rain_mm, measured_at FROM silver.rainfall`,
    );
    assert.equal(silver.length, rows.length, 'one row per station-day, none lost');
    const get = (r: Row): Record<string, unknown> | undefined =>
      silver.find((s) => s.station_id === r.station_id && s.date === r.date);
    assert.equal(get(base)?.rain_mm, 0.5);
    assert.equal(get(other)?.rain_mm, Number(other.rain_mm) + 7);
    for (const r of rows.filter((x) => x !== base && x !== other))
      assert.equal(get(r)?.rain_mm, Number(r.rain_mm), `${String(r.station_id)} ${String(r.date)}`);
  });

  it('passes a file without repeated station-days as it is: every row, every value', async () => {
    const rows = rainfallRows({ stations: 7, days: 9, start: '2023-05-01' });
    const out = await t.wh.loadObject(await t.bronze('rainfall', rows));
    assert.equal(out.status, 'loaded');
    const silver = await t.rows(
      `SELECT station_id, CAST(date AS VARCHAR) AS date, rain_mm FROM silver.rainfall
       WHERE date BETWEEN DATE '2023-05-01' AND DATE '2023-05-09' ORDER BY station_id, date`,
    );
    const want = rows
      .map((r) => ({ station_id: r.station_id, date: r.date, rain_mm: Number(r.rain_mm) }))
      .sort((a, b) =>
        `${String(a.station_id)} ${String(a.date)}`.localeCompare(
          `${String(b.station_id)} ${String(b.date)}`,
        ),
      );
    assert.deepEqual(silver, want);
  });
});
