/**
 * `smelter replay` as a user runs it (bin/smelter.js in a child process, no stack running): quarantined
 * rows and dead letters go through the chain again after a contract fix, exactly once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hmacHex } from '../../../shared/governance/hmac';
import { packageRoot } from '../../../shared/paths';
import { runSmelter, type CliRun } from '../../support/cli';

type Run = CliRun;

// No emulator: the in-process embedded Pub/Sub keeps the test fast and self-contained.
const smelter = (args: string[], env: Record<string, string>): Promise<Run> =>
  runSmelter(args, { SMELTER_PUBSUB_EMULATOR: 'off', SMELTER_LOG_LEVEL: 'ERROR', ...env });

const lastJson = (r: Run): Record<string, unknown> => {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`not JSON: ${r.stdout}\n${r.stderr}`);
  }
};

const editJson = (file: string, edit: (j: Record<string, unknown>) => void): void => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j, null, 2));
};

describe('smelter replay (after a contract fix)', function () {
  this.timeout(120_000);
  let tmp: string;
  let env: Record<string, string>;
  let contracts: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-replay-'));
    contracts = path.join(tmp, 'contracts');
    fs.cpSync(path.join(packageRoot, 'contracts'), contracts, { recursive: true });
    env = { SMELTER_HOME: path.join(tmp, 'home'), SMELTER_CONTRACTS_DIR: contracts };
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('quarantined rows: the file is replayed once, the fixed row lands in Silver, the good rows stay single', async function () {
    const csv = path.join(tmp, 'obs.csv');
    fs.writeFileSync(
      csv,
      [
        'station_id,station_name,region,lat,lon,date,rain_mm,measured_at',
        'ST0001,Station 1,North,50.1,4.2,2024-01-01,3.5,2024-01-01T06:00:00Z',
        'ST0002,Station 2,South,48.9,2.3,2024-01-01,0,2024-01-01T06:00:00Z',
        'ST0003,Station 3,East,47.0,5.0,2024-01-01,trace,2024-01-01T06:00:00Z',
      ].join('\n') + '\n',
    );
    const drop = await smelter(['drop', csv, '--dataset', 'rainfall', '--wait', '--json'], env);
    assert.equal(drop.code, 0, drop.stderr);
    assert.equal(lastJson(drop).rejected, 1);

    // Before the fix: a dry run says what would happen and copies nothing.
    const dry = await smelter(['replay', 'quarantine', '--dataset', 'rainfall', '--dry-run', '--json'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual([lastJson(dry).found, lastJson(dry).replayed, lastJson(dry).dryRun], [1, 1, true]);
    assert.ok(!fs.existsSync(path.join(env.SMELTER_HOME as string, 'buckets', 'raw', 'rainfall', '_replay')));

    // The fix: "trace" means no measurable rain.
    editJson(path.join(contracts, 'datasets', 'rainfall.json'), (j) => {
      const col = (j.columns as { name: string; nullValues?: string[] }[]).find((c) => c.name === 'rain_mm');
      assert.ok(col);
      col.nullValues = [...(col.nullValues ?? []), 'trace'];
    });
    const replay = await smelter(['replay', 'quarantine', '--dataset', 'rainfall', '--wait', '--json'], env);
    assert.equal(replay.code, 0, replay.stderr + replay.stdout);
    assert.deepEqual([lastJson(replay).replayed, lastJson(replay).alreadyReplayed], [1, 0]);

    const again = await smelter(['replay', 'quarantine', '--dataset', 'rainfall', '--json'], env);
    assert.deepEqual([lastJson(again).replayed, lastJson(again).alreadyReplayed], [0, 1]);
    const status = await smelter(['status', '--json'], env);
    assert.deepEqual((JSON.parse(status.stdout) as { replayed: unknown }).replayed, {
      deadLetters: 0,
      quarantine: { rainfall: 1 },
    });

    const q = await smelter(
      ['query', 'SELECT station_id, rain_mm FROM silver.rainfall ORDER BY station_id', '--json'],
      env,
    );
    assert.equal(q.code, 0, q.stderr);
    assert.deepEqual(
      (lastJson(q) as unknown as { station_id: string; rain_mm: number }[]).map((r) => [
        r.station_id,
        Number(r.rain_mm),
      ]),
      [
        ['ST0001', 3.5],
        ['ST0002', 0],
        ['ST0003', 0],
      ],
    );
  });

  it('dead letters: replayed with lineage, land after the fix, and a second replay adds nothing', async function () {
    const bad = {
      event_type: 'inventory',
      event_id: 'inv-transfer-1',
      event_time: '2026-11-30T10:00:00Z',
      product_id: 'P1',
      warehouse_id: 'W1',
      change_type: 'transfer',
      quantity_change: 5,
      quantity_after: 12,
    };
    const good = { ...bad, event_id: 'inv-restock-1', change_type: 'restock' };
    const events = path.join(tmp, 'events.ndjson');
    fs.writeFileSync(events, `${JSON.stringify(bad)}\n${JSON.stringify(good)}\n`);
    const pub = await smelter(['publish', '--file', events, '--wait', '--json'], env);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((lastJson(pub).landed as { deadLetters: number }).deadLetters, 1);

    editJson(path.join(contracts, 'events', 'inventory.json'), (j) => {
      const f = (j.fields as { name: string; accepted?: string[] }[]).find((x) => x.name === 'change_type');
      assert.ok(f?.accepted);
      f.accepted.push('transfer');
    });
    const dry = await smelter(
      ['replay', 'dead-letters', '--reason', 'not_accepted', '--dry-run', '--json'],
      env,
    );
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual([lastJson(dry).matched, lastJson(dry).replayed], [1, 1]);
    const none = await smelter(['replay', 'dead-letters', '--type', 'order', '--dry-run', '--json'], env);
    assert.equal(lastJson(none).matched, 0);

    const replay = await smelter(
      ['replay', 'dead-letters', '--reason', 'not_accepted', '--wait', '--json'],
      env,
    );
    assert.equal(replay.code, 0, replay.stderr + replay.stdout);
    const r = lastJson(replay);
    assert.equal(r.replayed, 1);
    assert.deepEqual((r.landed as { rows: Record<string, number> }).rows, { inventory: 1 });

    const again = await smelter(['replay', 'dead-letters', '--json'], env);
    assert.deepEqual([lastJson(again).replayed, lastJson(again).alreadyReplayed], [0, 1]);

    const q = await smelter(
      [
        'query',
        'SELECT event_id, change_type, _message_id FROM events.inventory ORDER BY event_id',
        '--json',
      ],
      env,
    );
    assert.equal(q.code, 0, q.stderr);
    const rows = lastJson(q) as unknown as { event_id: string; change_type: string; _message_id: string }[];
    assert.deepEqual(
      rows.map((x) => [x.event_id, x.change_type]),
      [
        ['inv-restock-1', 'restock'],
        ['inv-transfer-1', 'transfer'],
      ],
    );
    // Lineage: the ledger names the dead letter and the message that replayed it.
    const ledger = path.join(
      env.SMELTER_HOME as string,
      'buckets',
      'quarantine',
      '_replayed',
      'dead-letters',
    );
    const markers = fs
      .readdirSync(ledger)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(ledger, f), 'utf8')) as Record<string, unknown>);
    assert.equal(markers.length, 1);
    assert.equal(markers[0]?.eventId, 'inv-transfer-1');
    assert.deepEqual(markers[0]?.reasons, ['not_accepted']);
    assert.equal(markers[0]?.replayedAs, rows[1]?._message_id);
  });

  it('dead letters with personal data: stored hashed, replayed without a second hash', async function () {
    const KEY = 'replay-test-key-0123456789abcdef';
    const keyed = { ...env, SMELTER_PII_HASH_KEY: KEY };
    const street = '7 Replay Street';
    const order = {
      event_type: 'order',
      event_id: 'ord-lost-1',
      event_time: '2026-11-30T10:00:00Z',
      order_id: 'O-1',
      customer_id: 'C-1',
      customer_email: 'ana@example.com',
      status: 'lost',
      items: [{ product_id: 'P1', quantity: 1, unit_price: 10 }],
      shipping_address: { street, city: 'Lyon', country: 'FR' },
      total_amount: 10,
      currency: 'EUR',
    };
    const events = path.join(tmp, 'orders.ndjson');
    fs.writeFileSync(events, `${JSON.stringify(order)}\n`);
    const pub = await smelter(['publish', '--file', events, '--wait', '--json'], keyed);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((lastJson(pub).landed as { deadLetters: number }).deadLetters, 1);
    const kept = await smelter(['query', 'SELECT data_base64 FROM events.dead_letter', '--json'], keyed);
    const payload = Buffer.from(
      String((lastJson(kept) as unknown as { data_base64: string }[])[0]?.data_base64),
      'base64',
    ).toString();
    assert.ok(!payload.includes(street), 'the dead letter keeps the street hashed');

    editJson(path.join(contracts, 'events', 'order.json'), (j) => {
      const f = (j.fields as { name: string; accepted?: string[] }[]).find((x) => x.name === 'status');
      assert.ok(f?.accepted);
      f.accepted.push('lost');
    });
    const replay = await smelter(['replay', 'dead-letters', '--type', 'order', '--wait', '--json'], keyed);
    assert.equal(replay.code, 0, replay.stderr + replay.stdout);
    assert.deepEqual((lastJson(replay).landed as { rows: Record<string, number> }).rows, { orders: 1 });
    const q = await smelter(
      ['query', 'SELECT shipping_address.street AS street FROM events.orders', '--json'],
      keyed,
    );
    assert.deepEqual(lastJson(q), [{ street: hmacHex(KEY, street) }], 'hashed once, as if routed first time');
  });

  it('refuses filters that are not codes, types or times', async function () {
    for (const args of [
      ['--reason', "x' OR 1=1 --"],
      ['--type', 'order; DROP TABLE x'],
      ['--since', 'yesterday-ish'],
    ]) {
      const r = await smelter(['replay', 'dead-letters', ...args, '--dry-run'], env);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, /--(reason|type|since)/);
    }
  });
});
