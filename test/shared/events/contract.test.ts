import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventContractRegistry, validateEventContract } from '../../../shared/events/contract';
import { bigqueryDeadLetterSpec, bigqueryTableSpec } from '../../../shared/events/schema';
import { isSmelterError, SmelterError } from '../../../shared/errors';

describe('event contracts', () => {
  it('lists every problem of an invalid contract', () => {
    let err: unknown;
    try {
      validateEventContract(
        {
          event_type: 'Bad-Type',
          table: 'dead_letter',
          partition: 'amount',
          cluster: ['nope', 'tags', 'a', 'b', 'c'],
          colour: 'blue',
          fields: [
            { name: 'event_id', type: 'string' },
            { name: 'amount', type: 'float64', accepted: [1], pattern: '[', maxLength: 3 },
            { name: 'tags', type: { array: 'string' }, minItems: -1 },
            { name: 'kind', type: 'string', min: 1, accepted: [] },
            { name: 'nested', type: { struct: [{ name: '__proto__', type: 'string' }] } },
            { name: 'grid', type: { array: { array: 'int64' } } },
            { name: 'size', type: 'int64', min: 5, max: 1 },
          ],
        },
        'bad.json',
      );
    } catch (e) {
      err = e;
    }
    assert.ok(isSmelterError(err, 'CONTRACT_INVALID'));
    const problems = (err as SmelterError).details.problems as string[];
    const expect = [
      'colour: unknown contract key',
      'event_type: must match',
      'table: "dead_letter" is reserved',
      'fields.event_id: event_id is an envelope column',
      'fields.amount.accepted: only string and int64',
      'fields.amount.pattern: only string fields',
      'fields.amount.maxLength',
      'fields.tags.minItems',
      'fields.kind.accepted: a non-empty array',
      'fields.kind.min: only numeric fields',
      'fields.nested[0].name',
      'arrays of arrays are not supported',
      'fields.size: min is greater than max',
      'partition: must be event_time or a required timestamp/date field',
      'cluster: BigQuery allows at most 4',
      'cluster: unknown field "nope"',
      'cluster: tags must be a top-level scalar',
    ];
    for (const e of expect)
      assert.ok(
        problems.some((p) => p.includes(e)),
        `missing problem: ${e}\n${problems.join('\n')}`,
      );
  });

  it('takes additional_fields ignore (default), keep or reject, and names the file and the choices otherwise', () => {
    const base = { event_type: 'ping', table: 'pings', fields: [{ name: 'host', type: 'string' }] };
    assert.equal(validateEventContract(base, 'ping.json').additional_fields, 'ignore');
    for (const m of ['ignore', 'keep', 'reject'])
      assert.equal(
        validateEventContract({ ...base, additional_fields: m }, 'ping.json').additional_fields,
        m,
      );
    assert.throws(
      () => validateEventContract({ ...base, additional_fields: 'store' }, 'contracts/events/ping.json'),
      (e: unknown) =>
        isSmelterError(e, 'CONTRACT_INVALID') &&
        e.message.includes('contracts/events/ping.json') &&
        e.message.includes('additional_fields: "store" is not one of "ignore", "keep", "reject"'),
    );
  });

  it('maps to the BigQuery layout deploy creates: envelope, fields, metadata; DAY partition; clustering', () => {
    const c = validateEventContract(
      {
        event_type: 'ping',
        table: 'pings',
        cluster: ['host'],
        fields: [
          { name: 'host', type: 'string', required: true },
          { name: 'tags', type: { array: 'string' } },
          { name: 'geo', type: { struct: [{ name: 'lat', type: 'float64' }] } },
        ],
      },
      'ping.json',
    );
    const spec = bigqueryTableSpec(c);
    assert.deepEqual(
      spec.schema.map((f) => [f.name, f.type, f.mode]),
      [
        ['event_id', 'STRING', 'REQUIRED'],
        ['event_type', 'STRING', 'REQUIRED'],
        ['event_time', 'TIMESTAMP', 'REQUIRED'],
        ['host', 'STRING', 'REQUIRED'],
        ['tags', 'STRING', 'REPEATED'],
        ['geo', 'RECORD', 'NULLABLE'],
        ['_message_id', 'STRING', 'REQUIRED'],
        ['_publish_time', 'TIMESTAMP', 'REQUIRED'],
        ['_processed_at', 'TIMESTAMP', 'REQUIRED'],
      ],
    );
    assert.deepEqual(spec.timePartitioning, { type: 'DAY', field: 'event_time' });
    assert.deepEqual(spec.clustering, { fields: ['host'] });
    const dl = bigqueryDeadLetterSpec();
    assert.equal(dl.table, 'dead_letter');
    assert.deepEqual(
      dl.schema.find((f) => f.name === 'reasons')?.fields?.map((f) => f.name),
      ['path', 'code', 'reason'],
    );
  });

  describe('registry', () => {
    let dir: string;
    let now = 0;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-contracts-'));
      fs.mkdirSync(path.join(dir, 'events'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (name: string, body: unknown): void =>
      fs.writeFileSync(
        path.join(dir, 'events', `${name}.json`),
        typeof body === 'string' ? body : JSON.stringify(body),
      );
    const contract = (type: string, table = `${type}s`) => ({
      event_type: type,
      table,
      fields: [{ name: 'x', type: 'string' }],
    });

    it('notices added, changed, broken and removed files without a restart', () => {
      write('ping', contract('ping'));
      const problems: SmelterError[] = [];
      const reg = new EventContractRegistry(dir, {
        refreshMs: 1000,
        now: () => now,
        onProblem: (e) => problems.push(e),
      });
      assert.deepEqual(reg.types(), ['ping']);
      write('pong', contract('pong'));
      assert.equal(reg.get('pong'), undefined, 'not re-scanned within refreshMs');
      now += 1000;
      assert.equal(reg.get('pong')?.table, 'pongs');

      write('ping', '{ not json');
      fs.utimesSync(path.join(dir, 'events', 'ping.json'), new Date(), new Date(Date.now() + 5000));
      now += 1000;
      assert.throws(
        () => reg.get('ping'),
        (e: unknown) => isSmelterError(e, 'CONTRACT_INVALID') && e.kind === 'transient',
      );
      assert.equal(reg.get('pong')?.event_type, 'pong', 'one broken file does not take the others down');
      assert.equal(problems.length, 1);

      fs.rmSync(path.join(dir, 'events', 'ping.json'));
      now += 1000;
      assert.equal(reg.get('ping'), undefined);
      assert.deepEqual(reg.types(), ['pong']);
    });

    it('refuses a file whose name is not its event type, and two types sharing a table', () => {
      write('ping', contract('pong'));
      write('a', contract('a', 'shared'));
      write('b', contract('b', 'shared'));
      const reg = new EventContractRegistry(dir);
      assert.throws(() => reg.get('ping'), /declares event_type "pong", expected "ping"/);
      assert.throws(() => reg.get('a'), /a, b all use table "shared"/);
      assert.throws(() => reg.get('b'), /all use table/);
      assert.deepEqual(reg.all(), []);
    });
  });
});
