/**
 * Personal data in events end to end on the local backend: the store users loaded by `smelter drop`,
 * then events carrying PII published through routeEvent (functions-framework, DuckDB, the filesystem
 * archive and dead-letter topic). No table row, archive object, dead-letter object or log line holds a
 * dropped value or a hashed value in clear; a hashed event field joins the hashed dataset column;
 * `smelter query --role analyst` shows the masked event field masked, `--role pii_reader` in clear; the
 * dashboard reads tables with masked columns through their masked views.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { routeEvent } from '../../../functions/route-event';
import { createDashboard } from '../../../shared/composition/dashboard';
import { closeRuntime, useRuntime } from '../../../shared/composition/runtime';
import { hmacHex } from '../../../shared/governance/hmac';
import { packageRoot } from '../../../shared/paths';
import { runSmelter } from '../../support/cli';
import { activity, captureLogger, msg, order, serveRouteEvent } from '../../support/events';
import { testHome, type TestHome } from '../../support/home';

type Json = Record<string, unknown>;

const KEY = 'events-leak-key-0123456789abcdef';

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .flatMap((e) => (e.isFile() ? [path.join(e.parentPath, e.name)] : []));
}

describe('governance: personal data in events never leaks (routeEvent, local backend)', function () {
  this.timeout(180_000);
  let h: TestHome;
  let env: Record<string, string>;
  const users = (
    JSON.parse(fs.readFileSync(path.join(packageRoot, 'samples', 'store', 'users.json'), 'utf8')) as {
      users: Json[];
    }
  ).users;
  const u = users[0] as Json;
  const email = String(u.email).toLowerCase();
  const ip = String(u.ip);
  const streets = ['12 Confidential Road', '34 Private Avenue'];

  before(async function () {
    h = await testHome({ SMELTER_PII_HASH_KEY: KEY });
    env = { SMELTER_HOME: h.home, SMELTER_PII_HASH_KEY: KEY, SMELTER_PUBSUB_EMULATOR: 'off' };
    const drop = await runSmelter(
      [
        'drop',
        path.join(packageRoot, 'samples', 'store', 'users.json'),
        '--dataset',
        'store_users',
        '--wait',
      ],
      env,
    );
    assert.equal(drop.code, 0, drop.stdout + drop.stderr);
  });
  after(async () => {
    await h?.cleanup();
  });

  it('drops and hashes before tables, archive, dead letters and logs; hashes join the datasets’ hashes', async function () {
    const cap = captureLogger();
    useRuntime({ config: h.cfg, log: cap.log, store: h.store });
    const served = await serveRouteEvent(routeEvent);
    const sent = [
      msg(activity(1, { ip }), 'm-1'),
      msg(
        order(1, {
          customer_email: email,
          shipping_address: { street: streets[0], city: 'Lyon', country: 'FR' },
        }),
        'm-2',
      ),
      // Invalid (status): dead-lettered, with its payload kept for a replay.
      msg(
        order(2, {
          status: 'lost',
          customer_email: email,
          shipping_address: { street: streets[1], city: 'Lyon', country: 'FR' },
        }),
        'm-3',
      ),
      // Invalid in a sensitive field itself: the reason must not quote it.
      msg(activity(2, { ip: `${ip} plus some text that is far too long for an address` }), 'm-4'),
    ];
    const codes = await Promise.all(sent.map((m) => served.post(m, 'binary')));
    assert.deepEqual(codes, [204, 204, 204, 204]);
    await served.close();
    await closeRuntime(); // flushes the router and releases the DuckDB file

    const clear = [ip, ...streets];
    const leaks = (text: string): string[] => clear.filter((v) => text.includes(v));
    // Archive objects, the dead-letter topic file, every other file the router wrote.
    const written = [
      ...filesUnder(path.join(h.home, 'buckets', h.cfg.archiveBucket)),
      ...filesUnder(path.join(h.home, 'state')),
    ];
    assert.ok(
      written.some((f) => f.includes(`${path.sep}events${path.sep}order${path.sep}`)),
      'orders archived',
    );
    for (const f of written) assert.deepEqual(leaks(fs.readFileSync(f, 'latin1')), [], f);
    assert.deepEqual(leaks(JSON.stringify(cap.lines)), [], 'log lines');

    const db = await DuckDBInstance.create(path.join(h.home, 'warehouse', 'smelter.duckdb'), {
      access_mode: 'READ_ONLY',
    });
    const c = await db.connect();
    const rows = async (sql: string): Promise<Json[]> =>
      (await c.runAndReadAll(sql)).getRowObjectsJson() as Json[];
    for (const t of ['orders', 'user_activity', 'dead_letter'])
      assert.deepEqual(leaks(JSON.stringify(await rows(`SELECT * FROM events.${t}`))), [], `events.${t}`);
    const dead = await rows(
      'SELECT event_id, data_base64, reasons FROM events.dead_letter ORDER BY event_id',
    );
    assert.deepEqual(
      dead.map((d) => d.event_id),
      ['act-2', 'ord-2'],
    );
    for (const d of dead) {
      const payload = Buffer.from(String(d.data_base64), 'base64').toString('utf8');
      assert.deepEqual(leaks(payload), [], `dead letter ${String(d.event_id)}`);
    }
    const keptOrder = JSON.parse(Buffer.from(String(dead[1]?.data_base64), 'base64').toString()) as Json;
    assert.equal((keptOrder.shipping_address as Json).street, hmacHex(KEY, streets[1] as string));
    assert.equal(
      keptOrder.customer_email,
      email,
      'mask fields are kept (the dead letter is not a reader view)',
    );

    const [o] = await rows('SELECT customer_email, shipping_address.street AS street FROM events.orders');
    assert.deepEqual(o, { customer_email: email, street: hmacHex(KEY, streets[0] as string) });
    // The same key and function as rawToBronze: the hashed IP joins store_users' hashed IP.
    const joined = await rows(
      'SELECT u.user_id FROM events.user_activity a JOIN silver.store_users u ON a.ip = u.ip',
    );
    assert.deepEqual(
      joined.map((r) => String(r.user_id)),
      [String(u.id)],
    );
    c.closeSync();
    db.closeSync();
  });

  it('analysts see the masked event field masked, pii_readers in clear; the dashboard reads masked views', async function () {
    const sql = "SELECT customer_email FROM events.orders WHERE event_id = 'ord-1'";
    const as = async (role: string): Promise<Json[]> => {
      const r = await runSmelter(['query', sql, '--role', role, '--json'], env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as Json[];
    };
    assert.deepEqual(await as('pii_reader'), [{ customer_email: email }]);
    assert.deepEqual(await as('analyst'), [{ customer_email: `XXXXX@${email.split('@')[1] as string}` }]);
    const status = await runSmelter(['status'], env);
    assert.match(
      status.stdout,
      /event:order: customer_email \(email, mask\), shipping_address\.street \(address, hash\)/,
    );
    assert.match(status.stdout, /event:user_activity: ip \(ip, hash\)/);

    // The dashboard goes through masked_events.orders (routeEvent created it with the table): without
    // the view its orders panel fails closed (nothing shown), while tables without masked columns
    // are read as they are.
    const count = async (): Promise<Json[]> => {
      const { service, close } = await createDashboard(h.cfg);
      try {
        return (await service.answer('overview.events')).rows;
      } finally {
        await close();
      }
    };
    const before = await count();
    assert.deepEqual(
      before
        .filter((r) => r.event_type === 'orders' || r.event_type === 'user_activity')
        .map((r) => [r.event_type, r.events]),
      [
        ['orders', 1],
        ['user_activity', 1],
      ],
    );
    const db = await DuckDBInstance.create(path.join(h.home, 'warehouse', 'smelter.duckdb'));
    const c = await db.connect();
    await c.run('DROP VIEW masked_events.orders');
    c.closeSync();
    db.closeSync();
    const after = await count();
    assert.deepEqual(
      after
        .filter((r) => r.event_type === 'orders' || r.event_type === 'user_activity')
        .map((r) => [r.event_type, r.events]),
      [
        ['orders', 0],
        ['user_activity', 1],
      ],
    );
  });
});
