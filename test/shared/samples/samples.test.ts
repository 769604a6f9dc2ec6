/**
 * The bundled samples are in the real sources' shapes (dummyjson pages, data.gov.gr's bare array),
 * equal what shared/samples generates, and load through rawToBronze with every record in Bronze.
 */
import assert from 'node:assert/strict';
import { duckdbConversionEngines as engines } from '../../../shared/adapters/ingest/duckdb-engine';
import fs from 'node:fs';
import path from 'node:path';
import { rawToBronzeFlow, type BronzeManifest } from '../../../shared/ingest/bronze';
import { createLogger } from '../../../shared/log';
import { sampleFiles } from '../../../shared/samples/domains';
import { testHome, type TestHome } from '../../support/home';

const SAMPLES = path.join(__dirname, '../../../samples');
const log = createLogger({ format: 'silent' });

describe('bundled samples', function () {
  this.timeout(30_000);
  let h: TestHome;
  before(async () => {
    h = await testHome({
      SMELTER_CONTRACTS_DIR: path.join(__dirname, '../../../contracts'),
      SMELTER_DUCKDB_THREADS: '1',
    });
  });
  after(() => h?.cleanup());

  it('are what shared/samples generates (regenerate with writeSampleFiles)', () => {
    for (const [name, text] of Object.entries(sampleFiles()))
      assert.equal(fs.readFileSync(path.join(SAMPLES, name), 'utf8'), text, name);
  });

  for (const [file, dataset, key] of [
    ['store/users.json', 'store_users', 'users'],
    ['store/products.json', 'store_products', 'products'],
    ['store/carts.json', 'store_carts', 'carts'],
    ['network/measurements.json', 'network_measurements', undefined],
  ] as const)
    it(`${file} loads into ${dataset}: every record a row, none rejected`, async () => {
      const text = fs.readFileSync(path.join(SAMPLES, file), 'utf8');
      const doc = JSON.parse(text) as Record<string, unknown[]> | unknown[];
      const records = key ? (doc as Record<string, unknown[]>)[key] : doc;
      assert.ok(Array.isArray(records) && records.length > 10);
      const name = `${dataset}/${path.basename(file)}`;
      const m = await h.store.write(h.cfg.rawBucket, name, text);
      const out = await rawToBronzeFlow(
        { bucket: h.cfg.rawBucket, name, generation: m.generation },
        { cfg: h.cfg, store: h.store, log, engines },
      );
      assert.equal(out.status, 'converted', JSON.stringify(out));
      const manifest = (out as { manifest: BronzeManifest }).manifest;
      assert.deepEqual([manifest.rows, manifest.rejected], [records.length, 0]);
    });
});
