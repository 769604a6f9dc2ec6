/**
 * JSON shapes in dataset contracts, through the real adapters (filesystem store, DuckDB, Parquet read
 * back): wrapped documents unwrapped by the records path, nested paths and camelCase keys mapped,
 * arrays of objects kept as LIST<STRUCT>, a missing event time filled by the declared fallback — and
 * every record either in Bronze or in the quarantine.
 */
import assert from 'node:assert/strict';
import { duckdbConversionEngines as engines } from '../../../shared/adapters/ingest/duckdb-engine';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../../shared/log';
import {
  rawToBronzeFlow,
  type BronzeManifest,
  type BronzeOutcome,
  type QuarantineRow,
} from '../../../shared/ingest/bronze';
import { storeApiData, type ApiRecord } from '../../../shared/samples/store-api';
import { networkApiDay } from '../../../shared/samples/network-api';
import { readAll, testHome, type TestHome } from '../../support/home';
import { parquetSchema, queryParquet } from '../../support/parquet';

const log = createLogger({ format: 'silent' });
const REPO_CONTRACTS = path.join(__dirname, '../../../contracts/datasets');
type Json = Record<string, unknown>;

describe('JSON shapes in dataset contracts (fs store + DuckDB + Parquet)', function () {
  this.timeout(30_000);
  let h: TestHome;
  const api = storeApiData({ users: 40, products: 30, carts: 25, seed: 3 });

  before(async () => {
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contracts-'));
    fs.mkdirSync(path.join(contracts, 'datasets'));
    for (const f of ['store_users', 'store_products', 'store_carts', 'network_measurements'])
      fs.copyFileSync(path.join(REPO_CONTRACTS, `${f}.json`), path.join(contracts, 'datasets', `${f}.json`));
    fs.writeFileSync(
      path.join(contracts, 'datasets', 'strict_users.json'),
      JSON.stringify({
        dataset: 'strict_users',
        records: 'data.items',
        columns: [
          { name: 'user_id', type: 'int64', required: true, aliases: ['id'] },
          { name: 'first_name', type: 'string', aliases: ['name.firstname'] },
          { name: 'city', type: 'string', aliases: ['address.city'] },
        ],
        primaryKey: ['user_id'],
        unknownColumns: 'reject',
      }),
    );
    h = await testHome({ SMELTER_CONTRACTS_DIR: contracts, SMELTER_DUCKDB_THREADS: '1' });
  });
  after(() => h?.cleanup());

  async function drop(name: string, body: string, metadata?: Record<string, string>): Promise<BronzeOutcome> {
    const m = await h.store.write(h.cfg.rawBucket, name, body, metadata ? { metadata } : {});
    return rawToBronzeFlow(
      { bucket: h.cfg.rawBucket, name, generation: m.generation },
      { cfg: h.cfg, store: h.store, log, engines },
    );
  }
  function converted(o: BronzeOutcome): BronzeManifest {
    assert.equal(o.status, 'converted', JSON.stringify(o));
    return (o as { manifest: BronzeManifest }).manifest;
  }
  const parquet = (m: BronzeManifest): string => path.join(h.store.bucketDir(m.output.bucket), m.output.name);
  async function rejects(m: BronzeManifest): Promise<QuarantineRow[]> {
    if (!m.quarantine) return [];
    const text = (await readAll(await h.store.read(m.quarantine.bucket, m.quarantine.name))).toString();
    return text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as QuarantineRow);
  }
  const page = (key: string, records: ApiRecord[], skip = 0, total = records.length): Json => ({
    [key]: records,
    total,
    skip,
    limit: records.length,
  });

  it('unwraps a dummyjson page: one row per user, camelCase and nested paths mapped, PII never stored', async () => {
    const m = converted(
      await drop('store_users/users.json', JSON.stringify(page('users', api.users), null, 2)),
    );
    assert.equal(m.rows, api.users.length);
    assert.equal(m.rejected, 0);
    assert.equal(m.rowsIn, api.users.length);
    const rows = await queryParquet(
      parquet(m),
      'SELECT user_id, first_name, last_name, username, email, age, gender, city, state, country, latitude, longitude, hair, company, role FROM p ORDER BY user_id',
    );
    const expected = api.users.map((u) => {
      const a = u.address as Json;
      const c = u.company as Json;
      return {
        user_id: String(u.id),
        first_name: u.firstName,
        last_name: u.lastName,
        username: u.username,
        email: String(u.email).toLowerCase(),
        age: String(u.age),
        gender: u.gender,
        city: a.city,
        state: a.state,
        country: a.country,
        latitude: (a.coordinates as Json).lat,
        longitude: (a.coordinates as Json).lng,
        hair: u.hair,
        company: { name: c.name, department: c.department, title: c.title },
        role: u.role,
      };
    });
    assert.deepEqual(rows, expected);
    const columns = Object.keys(await parquetSchema(parquet(m)));
    for (const pii of ['password', 'ssn', 'bank', 'card_number', 'iban', 'ein', 'crypto'])
      assert.ok(!columns.includes(pii), `${pii} is not stored`);
    // Hashed columns hold a keyed hash, never the value.
    const hashed = await queryParquet(parquet(m), 'SELECT ip, email_key FROM p');
    for (const h of hashed) {
      assert.match(String(h.ip), /^[0-9a-f]{64}$/);
      assert.match(String(h.email_key), /^[0-9a-f]{64}$/);
    }
    const bytes = fs.readFileSync(parquet(m));
    for (const u of api.users) {
      const bank = u.bank as Json;
      for (const secret of [u.password, u.ssn, u.ip, bank.cardNumber, bank.iban])
        assert.ok(!bytes.includes(String(secret)), `${String(secret)} is not in the Parquet`);
    }
  });

  it('reads concatenated pages, bare arrays and NDJSON of records alike under a records path', async () => {
    const [a, b, c] = [api.users.slice(0, 15), api.users.slice(15, 30), api.users.slice(30)];
    const pages = [page('users', a, 0, 40), page('users', b, 15, 40), page('users', c, 30, 40)]
      .map((p) => JSON.stringify(p, null, 1))
      .join('\n');
    const m1 = converted(await drop('store_users/pages.json', pages));
    assert.deepEqual([m1.rows, m1.rejected], [40, 0]);
    const m2 = converted(await drop('store_users/array.json', JSON.stringify(api.users)));
    assert.deepEqual([m2.rows, m2.rejected], [40, 0]);
    const m3 = converted(
      await drop('store_users/part-00000.ndjson', api.users.map((u) => JSON.stringify(u)).join('\n') + '\n'),
    );
    assert.deepEqual([m3.rows, m3.rejected], [40, 0]);
    for (const m of [m1, m2, m3])
      assert.deepEqual(
        (
          await queryParquet(
            parquet(m),
            'SELECT count(DISTINCT user_id)::INT n, min(user_id)::INT lo, max(user_id)::INT hi FROM p',
          )
        )[0],
        { n: 40, lo: 1, hi: 40 },
      );
  });

  it('fakestore shape: nested paths of another API (name.firstname, address.city) and a records path two deep', async () => {
    const doc = {
      data: {
        count: 2,
        items: [
          { id: 1, name: { firstname: 'John', lastname: 'Doe' }, address: { city: 'kilcoole', number: 7 } },
          { id: 2, name: { firstname: 'David' }, address: { city: 'Cullman' } },
        ],
      },
      next: null,
    };
    const m = converted(await drop('strict_users/fake.json', JSON.stringify(doc)));
    assert.deepEqual(
      await queryParquet(parquet(m), 'SELECT user_id::INT id, first_name, city FROM p ORDER BY 1'),
      [
        { id: 1, first_name: 'John', city: 'kilcoole' },
        { id: 2, first_name: 'David', city: 'Cullman' },
      ],
    );
    // unknownColumns "reject": a key that is no spelling of a column or alias rejects its record only.
    const m2 = converted(
      await drop(
        'strict_users/extra.json',
        JSON.stringify({
          data: {
            items: [
              { ID: 3, firstName: 'Ann' },
              { id: 4, password: 'x' },
            ],
          },
        }),
      ),
    );
    assert.deepEqual([m2.rows, m2.rejected], [1, 1]);
    const [r] = await rejects(m2);
    assert.match(String(r?.reason), /unknown field\(s\): password/);
  });

  it('keeps cart lines as LIST<STRUCT> and fills the missing date from the pull window (or ingestion time)', async () => {
    const body = JSON.stringify(page('carts', api.carts));
    const dropped = converted(await drop('store_carts/export.json', body));
    assert.deepEqual([dropped.rows, dropped.rejected], [api.carts.length, 0]);
    const times = await queryParquet(
      parquet(dropped),
      'SELECT DISTINCT created_at = _ingested_at AS same FROM p',
    );
    assert.deepEqual(times, [{ same: true }]);

    const pulled = converted(
      await drop('store_carts/pulled/store/run-1/part-00000.json', body, {
        window_from: '2024-04-01T00:00:00.000Z',
        window_to: '2024-04-02T00:00:00.000Z',
      }),
    );
    const rows = await queryParquet(
      parquet(pulled),
      `SELECT cart_id::INT AS cart_id, user_id::INT AS user_id, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%g') AS created_at,
              total, total_products::INT AS total_products, total_quantity::INT AS total_quantity,
              to_json(products)::VARCHAR AS products FROM p ORDER BY cart_id`,
    );
    assert.deepEqual(
      rows.map((r) => ({ ...r, products: JSON.parse(String(r.products)) as unknown })),
      api.carts.map((c) => ({
        cart_id: c.id,
        user_id: c.userId,
        created_at: '2024-04-01T23:59:59.999',
        total: c.total,
        total_products: c.totalProducts,
        total_quantity: c.totalQuantity,
        products: (c.products as Json[]).map((l) => ({
          product_id: l.id,
          title: l.title,
          price: l.price,
          quantity: l.quantity,
          total: l.total,
          discounted_total: l.discountedTotal,
        })),
      })),
    );
    const schema = await parquetSchema(parquet(pulled));
    assert.ok(schema.products && schema.product_id && schema.quantity, JSON.stringify(schema));
    assert.equal(schema.products?.logical ?? schema.products?.converted, 'LIST');
  });

  it('a nested value that does not convert rejects its record with the reason; counts balance', async () => {
    const carts = api.carts.slice(0, 4).map((c) => structuredClone(c));
    ((carts[1] as Json).products as Json[])[0]!.quantity = 'two';
    (carts[2] as Json).products = { id: 1 };
    delete (carts[3] as Json).userId;
    const m = converted(await drop('store_carts/bad.json', JSON.stringify(page('carts', carts))));
    assert.deepEqual([m.rows, m.rejected, m.rowsIn], [1, 3, 4]);
    const rs = await rejects(m);
    assert.deepEqual(
      rs.map((r) => r.column),
      ['products', 'products', 'user_id'],
    );
    assert.match(String(rs[0]?.reason), /products: cannot convert/);
  });

  it('a truncated document keeps the records before the cut and rejects the cut one', async () => {
    const text = JSON.stringify(page('users', api.users.slice(0, 5)));
    const cut = text.slice(0, text.indexOf('"id":5') + 20);
    const m = converted(await drop('store_users/cut.json', cut));
    assert.deepEqual([m.rows, m.rejected], [4, 1]);
    assert.match(String((await rejects(m))[0]?.reason), /not valid JSON/);
  });

  it('converts a pulled part of 30,000 users (36 MB) within the default 128 MB DuckDB memory limit', async () => {
    // Each JSON call on a whole record costs DuckDB about twice SMELTER_MAX_LINE_BYTES: a contract of
    // this width once needed ~384 MB for 20,000 users.
    assert.equal(h.cfg.duckdbMemoryLimit, '128MB');
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++)
      lines.push(JSON.stringify({ ...api.users[i % api.users.length], id: i + 1 }));
    const m = converted(
      await drop('store_users/pulled/store/run-2/part-00000.ndjson', lines.join('\n') + '\n'),
    );
    assert.deepEqual([m.rows, m.rejected], [30_000, 0]);
  });

  it('loads data.gov.gr measurements (a bare array) into network_measurements', async () => {
    const day = networkApiDay('2024-04-01', { seed: 2 });
    const m = converted(
      await drop('network_measurements/pulled/network/2024-04-01/part-00000.json', JSON.stringify(day)),
    );
    assert.deepEqual([m.rows, m.rejected], [day.length, 0]);
    const rows = await queryParquet(
      parquet(m),
      `SELECT measurement_id, user_id, strftime(measured_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS measured_at, region, isp, connection_type, download_mbps, upload_mbps, latency_ms, session_id FROM p ORDER BY measurement_id`,
    );
    assert.deepEqual(
      rows,
      day.map((r) => ({
        measurement_id: r.id,
        user_id: r.device_id,
        measured_at: r.timestamp,
        region: r.region,
        isp: r.isp,
        connection_type: String(r.technology).toLowerCase(),
        download_mbps: r.download_speed,
        upload_mbps: r.upload_speed,
        latency_ms: r.latency,
        session_id: null,
      })),
    );
  });
});
