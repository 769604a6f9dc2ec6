/**
 * storeHealth over an in-memory object store: Bronze manifests folded per dataset, failed files and
 * rejected rows grouped by reason (values in quotes ignored), the reject-line budget, pull runs and
 * parked deliveries.
 */
import assert from 'node:assert/strict';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { storeHealth } from '../../../shared/dashboard/health';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

function manifest(dataset: string, uri: string, rows: number, rejected: number, ingestedAt: string): unknown {
  return { dataset, source: { uri }, rows, rejected, rowsIn: rows + rejected, ingestedAt };
}

describe('storeHealth', function () {
  let store: MemoryObjectStore;
  beforeEach(async function () {
    store = new MemoryObjectStore();
    await store.write(
      'bronze',
      'a/1.manifest.json',
      json(manifest('a', 'gs://raw/a/1.csv', 10, 2, '2026-01-02T00:00:00Z')),
    );
    await store.write(
      'bronze',
      'a/2.manifest.json',
      json(manifest('a', 'gs://raw/a/2.csv', 5, 0, '2026-01-03T00:00:00Z')),
    );
    await store.write('bronze', 'a/2.parquet', Buffer.from('x'));
    await store.write(
      'quarantine',
      '_failed/b/x/error.json',
      json({ source: { uri: 'gs://raw/b/x.csv' }, error: { code: 'BAD', message: "column 'q' missing" } }),
    );
    await store.write(
      'quarantine',
      'a/1.rejects.ndjson',
      Buffer.from(
        [
          { reason: "value 'x' is not a number", error_type: 'CAST', line: 3 },
          { reason: "value 'y' is not a number", error_type: 'CAST', line: 4 },
          'not json',
          { reason: 'too long', record: 7 },
        ]
          .map((r) => (typeof r === 'string' ? r : JSON.stringify(r)))
          .join('\n\n'),
      ),
    );
  });

  it('folds manifests per dataset and counts failed files, even for a dataset with no manifest', async function () {
    const rows = await storeHealth({
      store,
      bronzeBucket: 'bronze',
      quarantineBucket: 'quarantine',
    }).ingest();
    assert.deepEqual(rows, [
      {
        dataset: 'a',
        files: 2,
        last_file: 'gs://raw/a/2.csv',
        last_at: '2026-01-03T00:00:00Z',
        rows_in: 17,
        rows_written: 15,
        rows_rejected: 2,
        failed_files: 0,
      },
      {
        dataset: 'b',
        files: 0,
        last_file: '',
        last_at: '',
        rows_in: 0,
        rows_written: 0,
        rows_rejected: 0,
        failed_files: 1,
      },
    ]);
  });

  it('groups rejected rows and failed files by reason, largest group first, within the line budget', async function () {
    const h = storeHealth({ store, bronzeBucket: 'bronze', quarantineBucket: 'quarantine' });
    assert.deepEqual(await h.quarantine(), [
      {
        dataset: 'a',
        kind: 'rows (cast)',
        reason: 'value … is not a number',
        count: 2,
        example: 'a/1.rejects.ndjson line 3',
      },
      {
        dataset: 'a',
        kind: 'rows (rejected)',
        reason: 'too long',
        count: 1,
        example: 'a/1.rejects.ndjson record 7',
      },
      { dataset: 'b', kind: 'file', reason: 'BAD: column … missing', count: 1, example: 'gs://raw/b/x.csv' },
    ]);
    const capped = storeHealth({
      store,
      bronzeBucket: 'bronze',
      quarantineBucket: 'quarantine',
      maxRejectLines: 1,
    });
    assert.deepEqual(
      (await capped.quarantine()).map((g) => [g.kind, g.count]),
      [
        ['rows (cast)', 1],
        ['file', 1],
      ],
    );
  });

  it('lists declared and pulled sources with their last run, and parked deliveries', async function () {
    await store.write(
      'bronze',
      '_pull/shop/last-run.json',
      json({
        source: 'shop',
        run: 'r',
        status: 'failed',
        startedAt: 's',
        pages: 1,
        records: 3,
        objects: 1,
        error: { code: 'HTTP', message: '503' },
      }),
    );
    await store.write(
      'bronze',
      '_pull/shop/state.json',
      json({ source: 'shop', endpoints: {}, updatedAt: 'u' }),
    );
    const h = storeHealth({
      store,
      bronzeBucket: 'bronze',
      quarantineBucket: 'quarantine',
      sources: () => ['news'],
      parked: () => [{ parkedAt: 'p', id: 'e1', target: 't', attempts: 3, lastError: 'boom' }],
    });
    assert.deepEqual(await h.pulls(), [
      {
        source: 'news',
        status: 'never pulled',
        finished_at: null,
        records: null,
        pages: null,
        state_saved_at: null,
        error: null,
      },
      {
        source: 'shop',
        status: 'failed',
        finished_at: 's',
        records: 3,
        pages: 1,
        state_saved_at: 'u',
        error: 'HTTP: 503',
      },
    ]);
    assert.deepEqual(await h.parked(), [
      { parked_at: 'p', subject: 'e1', target: 't', attempts: 3, last_error: 'boom' },
    ]);
  });
});
