/**
 * Personal data in events, through the real router (in-memory adapters): what a contract declares
 * `drop` is in no table row, archive line, dead letter or log line; `hash` fields hold the keyed HMAC
 * everywhere they are kept; a replayed dead letter is not hashed twice, and a producer cannot claim
 * "already hashed" without the key.
 */
import assert from 'node:assert/strict';
import { ObjectStoreArchive } from '../../../shared/adapters/events/archive-store';
import { MemoryObjectStore } from '../../../shared/adapters/storage/memory';
import { StaticContracts, validateEventContract, type EventContract } from '../../../shared/events/contract';
import type {
  DeadLetterMessage,
  DeadLetterRecord,
  EventRow,
  IncomingMessage,
} from '../../../shared/events/ports';
import { PII_HASHED_ATTR, PII_SIG_ATTR, storedEventFields } from '../../../shared/events/privacy';
import { EventRouter } from '../../../shared/events/router';
import { hmacHex } from '../../../shared/governance/hmac';
import { replayMessage, type StoredDeadLetter } from '../../../shared/replay/dead-letters';
import { readAll } from '../../support/home';
import { b64, captureLogger } from '../../support/events';

const KEY = 'events-privacy-key-0123456789';

const CONTRACT = {
  event_type: 'signup',
  table: 'signups',
  cluster: ['email'],
  fields: [
    { name: 'user_id', type: 'string', required: true },
    { name: 'plan', type: 'string', required: true, accepted: ['free', 'pro'] },
    {
      name: 'email',
      type: 'string',
      required: true,
      pattern: '[^@]+@[^@]+',
      sensitive: { class: 'email', policy: 'hash' },
    },
    { name: 'full_name', type: 'string', sensitive: { class: 'name', policy: 'mask' } },
    { name: 'password', type: 'string', sensitive: { class: 'secret', policy: 'drop' } },
    {
      name: 'address',
      type: {
        struct: [
          { name: 'street', type: 'string', sensitive: { class: 'address', policy: 'hash' } },
          { name: 'city', type: 'string' },
        ],
      },
    },
    {
      name: 'cards',
      type: {
        array: {
          struct: [
            { name: 'number', type: 'string', sensitive: { class: 'payment_card', policy: 'drop' } },
            { name: 'brand', type: 'string' },
          ],
        },
      },
    },
  ],
};

const contract = (over: Record<string, unknown> = {}): EventContract =>
  validateEventContract(structuredClone({ ...CONTRACT, ...over }), 'signup.json');

function signup(i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_type: 'signup',
    event_id: `s-${i}`,
    event_time: '2024-05-01T10:00:00Z',
    user_id: `U-${i}`,
    plan: 'pro',
    email: `person${i}@example.com`,
    full_name: `Person Number${i}`,
    password: `hunter2-secret-${i}`,
    address: { street: `${i} Secret Lane`, city: 'Lyon' },
    cards: [{ number: `4111111111111${String(i).padStart(3, '0')}`, brand: 'visa' }],
    ...over,
  };
}

/** Values that may never be kept in clear (dropped or hashed) for event i. */
const secretsOf = (i: number): string[] => [
  `hunter2-secret-${i}`,
  `4111111111111${String(i).padStart(3, '0')}`,
  `person${i}@example.com`,
  `${i} Secret Lane`,
];

describe('events: personal data declared in the contract (router)', () => {
  let rows: EventRow[];
  let dead: DeadLetterRecord[];
  let topic: DeadLetterMessage[];
  let store: MemoryObjectStore;
  let cap: ReturnType<typeof captureLogger>;

  const router = (c: EventContract = contract()): EventRouter =>
    new EventRouter(
      {
        contracts: new StaticContracts([c]),
        warehouse: {
          kind: 'memory',
          insertEvents: async (_c, r) => {
            rows.push(...r);
            return [];
          },
          insertDeadLetters: async (r) => void dead.push(...r),
          close: async () => {},
        },
        archive: new ObjectStoreArchive(store, 'archive'),
        deadLetters: { kind: 'memory', publish: async (m) => void topic.push(...m), close: async () => {} },
        log: cap.log,
        piiKey: () => KEY,
      },
      { maxEventBytes: 1 << 20, maxEventAgeMs: 3600_000, batchMaxRows: 50, batchMaxMs: 0 },
    );
  const message = (
    payload: unknown,
    id: string,
    attributes: Record<string, string> = {},
  ): IncomingMessage => ({
    data: b64(payload),
    attributes,
    messageId: id,
    publishTime: '2024-05-01T10:00:01.000Z',
  });
  const archiveText = async (): Promise<string> => {
    let text = '';
    for await (const o of store.list('archive'))
      text += (await readAll(await store.read('archive', o.name))).toString();
    return text;
  };
  /** Everything the router kept or said: rows, archive, dead-letter rows and topic messages, log lines. */
  const everything = async (): Promise<string> =>
    JSON.stringify(rows) +
    (await archiveText()) +
    JSON.stringify(dead) +
    dead.map((d) => Buffer.from(d.data_base64, 'base64').toString()).join('\n') +
    topic.map((m) => m.data.toString() + JSON.stringify(m.attributes)).join('\n') +
    JSON.stringify(cap.lines);

  beforeEach(() => {
    rows = [];
    dead = [];
    topic = [];
    store = new MemoryObjectStore();
    cap = captureLogger();
  });

  it('refuses contracts whose sensitivity the router or the tables cannot honour', () => {
    const refused = (over: Record<string, unknown>, pattern: RegExp): void =>
      assert.throws(() => contract(over), pattern);
    const withField = (f: Record<string, unknown>): Record<string, unknown> => ({
      fields: [...CONTRACT.fields, f],
    });
    refused(
      withField({ name: 'event_id', type: 'string', sensitive: { class: 'secret', policy: 'drop' } }),
      /event_id identifies the event .* cannot be dropped/,
    );
    refused(
      withField({
        name: 'token',
        type: 'string',
        required: true,
        sensitive: { class: 'secret', policy: 'drop' },
      }),
      /fields\.token\.sensitive\.policy: a dropped field cannot be required/,
    );
    refused(
      {
        fields: [
          ...CONTRACT.fields.slice(0, 5),
          {
            name: 'address',
            type: {
              struct: [{ name: 'street', type: 'string', sensitive: { class: 'address', policy: 'mask' } }],
            },
          },
        ],
      },
      /fields\.address\.street\.sensitive\.policy: only top-level fields can be masked/,
    );
    refused(
      withField({ name: 'ssn', type: 'string', sensitive: { class: 'ssn', policy: 'drop' } }),
      /fields\.ssn\.sensitive\.class: one of email, name/,
    );
    refused({ cluster: ['password'] }, /cluster: password is dropped/);
    assert.throws(
      () =>
        contract({
          partition: 'born',
          fields: [
            ...CONTRACT.fields,
            {
              name: 'born',
              type: 'date',
              required: true,
              sensitive: { class: 'date_of_birth', policy: 'hash' },
            },
          ],
        }),
      /partition: born is hashed/,
    );
    // The stored layout: drop fields gone at any depth, hash fields strings.
    const stored = JSON.stringify(storedEventFields(contract().fields));
    assert.doesNotMatch(stored, /password|"number"/);
    assert.match(stored, /"street","type":"string"/);
  });

  it('drops and hashes before anything leaves the router: table, archive, dead letter, logs', async () => {
    const r = router();
    const outcomes = await Promise.all([
      r.route(message(signup(1), 'm-1')),
      // Invalid for several reasons, among them the sensitive fields' own rules.
      r.route(message(signup(2, { plan: 'gold', email: 'not-an-email-2 secret' }), 'm-2')),
      r.route(
        message(signup(3, { password: 12345678, cards: [{ number: { x: '4111111111111003' } }] }), 'm-3'),
      ),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['stored', 'dead-lettered', 'dead-lettered'],
    );
    const row = rows[0] as EventRow;
    assert.equal(row.email, hmacHex(KEY, 'person1@example.com'));
    assert.deepEqual(row.address, { street: hmacHex(KEY, '1 Secret Lane'), city: 'Lyon' });
    assert.deepEqual(row.cards, [{ brand: 'visa' }]);
    assert.equal(row.full_name, 'Person Number1', 'mask fields are stored (masked when read)');
    assert.ok(!Object.hasOwn(row, 'password'));
    const archived = JSON.parse((await archiveText()).trim()) as EventRow;
    assert.deepEqual(archived, row, 'the archive line is the stored row');

    const kept = JSON.parse(Buffer.from(dead[0]?.data_base64 ?? '', 'base64').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(kept.email, hmacHex(KEY, 'not-an-email-2 secret'), 'hashed as sent, even when invalid');
    assert.ok(!Object.hasOwn(kept, 'password'));
    assert.equal(kept.plan, 'gold', 'the rest is kept as sent, for a replay');
    const reasons = JSON.stringify(dead[0]?.reasons);
    assert.match(reasons, /\$\.email.*\(personal data\) does not match/);
    assert.equal(dead[0]?.data_truncated, false);
    const third = JSON.parse(Buffer.from(dead[1]?.data_base64 ?? '', 'base64').toString()) as Record<
      string,
      unknown
    >;
    assert.ok(!Object.hasOwn(third, 'password'), 'dropped whatever its (wrong) type');
    assert.deepEqual(third.cards, [{}]);

    const all = await everything();
    for (const i of [1, 2, 3]) for (const s of secretsOf(i)) assert.ok(!all.includes(s), `${s} leaked`);
    assert.ok(!all.includes('not-an-email-2'), 'an invalid sensitive value is not quoted either');
    assert.ok(!all.includes('12345678'));
  });

  it('a replayed dead letter is not hashed twice; a forged "already hashed" marker is ignored', async () => {
    // Dead-lettered under a contract without "gold"; replayed after the fix.
    await router().route(message(signup(4, { plan: 'gold' }), 'm-4', { origin: 'shop' }));
    const rec = dead[0] as DeadLetterRecord;
    assert.equal(JSON.parse(rec.attributes)[PII_HASHED_ATTR], 'address.street,email');
    const replay = replayMessage(rec as unknown as StoredDeadLetter);
    assert.ok(!('unreplayable' in replay));
    const fixed = contract({
      fields: CONTRACT.fields.map((f) =>
        f.name === 'plan' ? { ...f, accepted: ['free', 'pro', 'gold'] } : f,
      ),
    });
    const again = router(fixed);
    const out = await again.route({
      data: replay.data.toString('base64'),
      attributes: replay.attributes,
      messageId: 'm-4-replay',
      publishTime: '2024-05-02T10:00:00.000Z',
    });
    assert.equal(out.status, 'stored', JSON.stringify(out.reasons));
    const row = rows[0] as EventRow;
    assert.equal(row.email, hmacHex(KEY, 'person4@example.com'), 'hashed once');
    assert.deepEqual(row.address, { street: hmacHex(KEY, '4 Secret Lane'), city: 'Lyon' });

    // A producer cannot skip hashing by sending the marker: without a valid signature it is ignored.
    const forged = await again.route(
      message(signup(5), 'm-5', {
        [PII_HASHED_ATTR]: 'email,address.street',
        [PII_SIG_ATTR]: 'f'.repeat(64),
      }),
    );
    assert.equal(forged.status, 'stored');
    assert.equal(rows[1]?.email, hmacHex(KEY, 'person5@example.com'));
    // A signature over other bytes does not carry over either.
    const moved = await again.route(
      message(signup(6), 'm-6', {
        [PII_HASHED_ATTR]: replay.attributes[PII_HASHED_ATTR] as string,
        [PII_SIG_ATTR]: replay.attributes[PII_SIG_ATTR] as string,
      }),
    );
    assert.equal(moved.status, 'stored');
    assert.equal(rows[2]?.email, hmacHex(KEY, 'person6@example.com'));
  });

  it('withholds a payload it cannot parse when its type declares drop/hash fields', async () => {
    const r = router();
    const text = JSON.stringify(signup(7)).slice(0, -5); // cut: not JSON any more
    const out = await r.route({
      data: Buffer.from(text).toString('base64'),
      attributes: { event_type: 'signup' },
      messageId: 'm-7',
      publishTime: '2024-05-01T10:00:01.000Z',
    });
    assert.equal(out.status, 'dead-lettered');
    assert.equal(dead[0]?.data_base64, '');
    assert.equal(dead[0]?.data_bytes, Buffer.byteLength(text));
    const replay = replayMessage(dead[0] as unknown as StoredDeadLetter);
    assert.ok('unreplayable' in replay && /withheld/.test(replay.unreplayable));
    const all = await everything();
    for (const s of secretsOf(7)) assert.ok(!all.includes(s), `${s} leaked`);
  });
});
