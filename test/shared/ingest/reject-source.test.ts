/**
 * Quarantine rows of structural rejects name their source (issue 10 item 10), also when the file has
 * no contract violation to borrow it from.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { duckdbConversionEngines as engines } from '../../../shared/adapters/ingest/duckdb-engine';
import { rawToBronzeFlow } from '../../../shared/ingest/bronze';
import { createLogger } from '../../../shared/log';
import { readAll, testHome, type TestHome } from '../../support/home';

describe('structural rejects name their source', () => {
  let h: TestHome;
  beforeEach(async () => {
    const contracts = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-reject-source-'));
    fs.mkdirSync(path.join(contracts, 'datasets'));
    fs.writeFileSync(
      path.join(contracts, 'datasets', 'orders.json'),
      JSON.stringify({
        dataset: 'orders',
        columns: [
          { name: 'order_id', type: 'int64', required: true },
          { name: 'customer', type: 'string' },
        ],
        primaryKey: ['order_id'],
      }),
    );
    h = await testHome({ SMELTER_CONTRACTS_DIR: contracts, SMELTER_DUCKDB_THREADS: '1' });
  });
  afterEach(() => h.cleanup());

  it('a file with only structural rejects (a cast error, a short row): each quarantine row carries the source URI', async () => {
    const name = 'orders/only-structural.csv';
    const m = await h.store.write(h.cfg.rawBucket, name, 'order_id,customer\n1,a\nx,b\n3\n4,d\n');
    const out = await rawToBronzeFlow(
      { bucket: h.cfg.rawBucket, name, generation: m.generation },
      { cfg: h.cfg, store: h.store, log: createLogger({ format: 'silent' }), engines },
    );
    assert.equal(out.status, 'converted');
    const manifest = (out as { manifest: { rows: number; rejected: number; quarantine?: { name: string } } })
      .manifest;
    assert.deepEqual([manifest.rows, manifest.rejected], [2, 2]);
    const rows = (
      await readAll(await h.store.read(h.cfg.quarantineBucket, String(manifest.quarantine?.name)))
    )
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { source: string; line: number });
    assert.deepEqual(
      rows.map((r) => [r.line, r.source]),
      [
        [3, `gs://${h.cfg.rawBucket}/${name}`],
        [4, `gs://${h.cfg.rawBucket}/${name}`],
      ],
    );
  });
});
