/**
 * `smelter replay dead-letters` on the GCP backend: the same query, rendered for BigQuery, reads the
 * dead-letter table of the events dataset and is BigQuery Standard SQL; BigQuery's row shapes
 * (timestamps as {value}, reasons as JSON text) filter and replay like DuckDB's.
 */
import assert from 'node:assert/strict';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import {
  deadLetterSql,
  parseDeadLetterFilter,
  replayDeadLetters,
  type ReplayMessage,
  type StoredDeadLetter,
} from '../../../shared/replay/dead-letters';
import { ReplayLedger } from '../../../shared/replay/ledger';
import { BigQueryDialect } from '../../../shared/warehouse/dialect/bigquery';
import { checkBigQuery } from '../adapters/warehouse/bigquery-sql';

describe('replay: dead letters on BigQuery', () => {
  const d = new BigQueryDialect('proj-1', 'smelter', 'EU');

  it('the query reads <prefix>_events.dead_letter and is BigQuery SQL', () => {
    for (const raw of [{}, { type: 'order' }, { reason: 'required,not_accepted', since: '2026-11-01' }]) {
      const sql = d.render(deadLetterSql(parseDeadLetterFilter(raw)), { where: 'query' });
      assert.match(sql, /`proj-1\.smelter_events\.dead_letter`/);
      checkBigQuery(sql);
    }
  });

  it('replays rows in BigQuery shapes (timestamps as {value}, reasons as JSON text), once', async () => {
    const row: StoredDeadLetter = {
      message_id: '1234',
      publish_time: { value: '2026-11-30T10:00:00.000Z' },
      event_type: 'order',
      event_id: 'e-1',
      attributes: JSON.stringify({ event_type: 'order' }),
      data_base64: Buffer.from('{"event_id":"e-1"}').toString('base64'),
      data_truncated: false,
      reasons: JSON.stringify([{ path: '$.status', code: 'not_accepted', reason: 'x' }]),
      dead_lettered_at: { value: '2026-11-30T10:00:01.000Z' },
    };
    const published: ReplayMessage[] = [];
    const deps = {
      query: async () => [row],
      ledger: new ReplayLedger(new MemoryObjectStore(), 'quarantine'),
      publish: async (b: ReplayMessage[]) => {
        published.push(...b);
        return b.map((_, i) => `r-${i}`);
      },
    };
    const filter = parseDeadLetterFilter({ reason: 'not_accepted', since: '2026-11-30' });
    assert.equal((await replayDeadLetters(deps, filter)).replayed, 1);
    assert.equal((await replayDeadLetters(deps, filter)).replayed, 0, 'a second replay adds nothing');
    assert.equal(published.length, 1);
    assert.equal(published[0]?.data.toString(), '{"event_id":"e-1"}');
    assert.equal((await replayDeadLetters(deps, parseDeadLetterFilter({ since: '2026-12-01' }))).matched, 0);
  });
});
