/** The delivery policy as a table: error kind × event age (× recording failed) → decision. */
import assert from 'node:assert/strict';
import { decideDelivery, recordedError, type DeliveryFacts } from '../../../shared/delivery/policy';
import { permanent, SmelterError, transient } from '../../../shared/errors';

const MAX = 60_000;
const errors = {
  none: undefined,
  transient: transient('WAREHOUSE_UNAVAILABLE', 'BigQuery 503'),
  permanent: permanent('UNKNOWN_DATASET', 'no contract'),
  // Not a SmelterError: a bug or an SDK error nobody classified. Retrying beats losing data.
  unknown: new Error('socket hang up'),
} as const;
const ages = { unknown: undefined, young: 1_000, atMax: MAX, old: MAX + 1 } as const;

type Row = [keyof typeof errors, keyof typeof ages, 'ok' | 'recordingFailed' | '', string];

const TABLE: Row[] = [
  ['none', 'young', 'ok', 'ack'],
  ['none', 'old', 'ok', 'ack'],
  ['transient', 'unknown', '', 'retry'],
  ['transient', 'young', '', 'retry'],
  ['transient', 'atMax', '', 'retry'],
  ['transient', 'old', '', 'record:expired'],
  ['unknown', 'young', '', 'retry'],
  ['unknown', 'old', '', 'record:expired'],
  ['permanent', 'unknown', '', 'record:permanent'],
  ['permanent', 'young', '', 'record:permanent'],
  ['permanent', 'old', '', 'record:permanent'],
  ['permanent', 'young', 'recordingFailed', 'retry'],
  ['permanent', 'old', 'recordingFailed', 'abandon'],
  ['transient', 'old', 'recordingFailed', 'abandon'],
  ['transient', 'unknown', 'recordingFailed', 'retry'],
  ['permanent', 'atMax', 'recordingFailed', 'retry'],
];

describe('delivery policy', () => {
  for (const [error, age, flag, expected] of TABLE)
    it(`${error} error × ${age} age${flag && flag !== 'ok' ? ' × ' + flag : ''} → ${expected}`, () => {
      const facts: DeliveryFacts = {
        result: flag === 'ok' ? { ok: true } : { ok: false, error: errors[error] },
        ageMs: ages[age],
        maxAgeMs: MAX,
        ...(flag === 'recordingFailed' ? { recordingFailed: true } : {}),
      };
      const d = decideDelivery(facts);
      assert.equal(d.action === 'record' ? `record:${d.cause}` : d.action, expected);
      if (d.action !== 'ack') assert.match(d.reason, /503|no contract|hang up/);
    });

  it('says how long an expired event has been failing, and records it as RETRIES_EXHAUSTED', () => {
    const err = errors.transient;
    const d = decideDelivery({ result: { ok: false, error: err }, ageMs: 120_000, maxAgeMs: MAX });
    assert.ok(d.action === 'record');
    assert.equal(d.reason, 'still failing 120 s after publication (SMELTER_MAX_EVENT_AGE_MS): BigQuery 503');
    const rec = recordedError(err, d);
    assert.equal(rec.code, 'RETRIES_EXHAUSTED');
    assert.equal(rec.kind, 'permanent');
    assert.equal(rec.details.lastCode, 'WAREHOUSE_UNAVAILABLE');
    assert.equal(rec.cause, err);
  });

  it('records a permanent error as itself', () => {
    const err = errors.permanent;
    const d = decideDelivery({ result: { ok: false, error: err }, ageMs: 0, maxAgeMs: MAX });
    assert.ok(d.action === 'record');
    assert.equal(recordedError(err, d), err);
    assert.ok(recordedError(err, d) instanceof SmelterError);
  });
});
