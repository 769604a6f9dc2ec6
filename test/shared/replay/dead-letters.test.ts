import assert from 'node:assert/strict';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import {
  deadLetterSql,
  parseDeadLetterFilter,
  REPLAY_OF_ATTR,
  replayDeadLetters,
  type ReplayMessage,
  type StoredDeadLetter,
} from '../../../shared/replay/dead-letters';
import { ReplayLedger } from '../../../shared/replay/ledger';

const dl = (id: string, over: Partial<StoredDeadLetter> = {}): StoredDeadLetter => ({
  message_id: id,
  publish_time: '2026-11-30 10:00:00+00',
  event_type: 'order',
  event_id: `e-${id}`,
  attributes: JSON.stringify({ event_type: 'order', [REPLAY_OF_ATTR]: 'stale' }),
  data_base64: Buffer.from(JSON.stringify({ event_id: `e-${id}` })).toString('base64'),
  data_truncated: false,
  reasons: [{ path: '$.amount', code: 'required', reason: 'missing' }],
  dead_lettered_at: '2026-11-30T10:00:01Z',
  ...over,
});

describe('replay: dead letters (domain)', function () {
  it('publishes the original bytes with lineage, then records each one; a second run publishes nothing', async function () {
    const ledger = new ReplayLedger(new MemoryObjectStore(), 'quarantine');
    const rows = [
      dl('1'),
      dl('2', { data_truncated: true }),
      dl('3', { reasons: [{ code: 'unknown_type' }] }),
    ];
    const published: ReplayMessage[][] = [];
    const deps = {
      query: () => Promise.resolve(rows),
      publish: (b: ReplayMessage[]) => {
        published.push(b);
        return Promise.resolve(b.map((_, i) => `m${i}`));
      },
      ledger,
    };
    const first = await replayDeadLetters(deps, parseDeadLetterFilter({ reason: 'required' }));
    assert.deepEqual([first.matched, first.replayed, first.unreplayable.length], [2, 1, 1]);
    const m = published[0]?.[0];
    assert.ok(m);
    assert.equal(m.data.toString(), JSON.stringify({ event_id: 'e-1' }));
    assert.equal(m.attributes.event_type, 'order');
    assert.equal(m.attributes[REPLAY_OF_ATTR], '1@2026-11-30T10:00:00.000Z');
    assert.equal(m.attributes.smelter_replay_reasons, 'required');

    const second = await replayDeadLetters(deps, {});
    assert.deepEqual([second.replayed, second.alreadyReplayed], [1, 1]); // only id 3 is new
    assert.equal(published.length, 2);
    assert.equal(await ledger.count('dead-letters'), 2);
  });

  it('a crash between publishing and recording replays again (the router drops the duplicate by event_id)', async function () {
    const store = new MemoryObjectStore();
    const ledger = new ReplayLedger(store, 'quarantine');
    let calls = 0;
    const crashing = {
      query: () => Promise.resolve([dl('1')]),
      publish: (b: ReplayMessage[]) => {
        calls++;
        return Promise.resolve(b.map(() => 'm'));
      },
      ledger: Object.assign(Object.create(ledger) as ReplayLedger, {
        mark: () => Promise.reject(new Error('killed')),
      }),
    };
    await assert.rejects(replayDeadLetters(crashing, {}), /killed/);
    const retry = await replayDeadLetters({ ...crashing, ledger }, {});
    assert.deepEqual([calls, retry.replayed], [2, 1]);
  });

  it('dry runs publish and record nothing; filters are validated before they reach SQL', async function () {
    const ledger = new ReplayLedger(new MemoryObjectStore(), 'quarantine');
    const res = await replayDeadLetters(
      { query: () => Promise.resolve([dl('1')]), publish: () => Promise.reject(new Error('no')), ledger },
      {},
      { dryRun: true },
    );
    assert.equal(res.replayed, 1);
    assert.equal(await ledger.count('dead-letters'), 0);
    assert.match(deadLetterSql(parseDeadLetterFilter({ type: 'order' })), /WHERE event_type = 'order'/);
    assert.throws(() => parseDeadLetterFilter({ type: "o'; --" }), /--type/);
    assert.throws(() => parseDeadLetterFilter({ reason: 'A B' }), /--reason/);
    assert.throws(() => parseDeadLetterFilter({ since: 'soon' }), /--since/);
    assert.deepEqual(parseDeadLetterFilter({ since: '2026-11-30' }), { since: '2026-11-30T00:00:00.000Z' });
  });
});
