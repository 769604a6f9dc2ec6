/**
 * Personal data end to end: the store users export (dummyjson shape, with passwords, SSNs, card numbers,
 * IBANs and IPs) dropped through `smelter drop --wait` as a user runs it. No file under SMELTER_HOME —
 * Bronze Parquet (decoded, not its compressed bytes), quarantine records, manifests, any warehouse table —
 * and no log line holds a dropped or hashed value; Gold holds no masked value in clear; hashes are the
 * keyed HMAC of the value, so they join.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { hmacHex } from '../../../shared/governance/hmac';
import { packageRoot } from '../../../shared/paths';
import { childEnv, SMELTER_BIN } from '../../support/cli';

type Json = Record<string, unknown>;

function smelter(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SMELTER_BIN, ...args], {
      cwd: packageRoot,
      env: childEnv({ SMELTER_PUBSUB_EMULATOR: 'off', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .flatMap((e) => (e.isFile() ? [path.join(e.parentPath, e.name)] : []));
}

describe('governance: personal data never leaks (store users through the whole chain)', function () {
  this.timeout(120_000);
  let tmp: string;
  let env: Record<string, string>;
  const KEY = 'test-key-0123456789abcdef';

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-pii-'));
    env = { SMELTER_HOME: path.join(tmp, 'home'), SMELTER_PII_HASH_KEY: KEY, SMELTER_LOG_LEVEL: 'DEBUG' };
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('drops secrets, hashes what joins, keeps masked columns out of Gold', async function () {
    const doc = JSON.parse(
      fs.readFileSync(path.join(packageRoot, 'samples', 'store', 'users.json'), 'utf8'),
    ) as {
      users: Json[];
    };
    // One user the contract rejects (age out of range): its quarantine row must not copy secrets either.
    const bad: Json = { ...(doc.users[0] as Json), id: 9999, age: 999 };
    const users: Json[] = [...doc.users, bad];
    const file = path.join(tmp, 'users.json');
    fs.writeFileSync(file, JSON.stringify({ ...doc, users }));
    const drop = await smelter(['drop', file, '--dataset', 'store_users', '--wait', '--json'], env);
    assert.equal(drop.code, 0, drop.out);
    const result = JSON.parse(drop.out.trim().split('\n').pop() ?? '{}') as {
      rows: number;
      rejected: number;
    };
    assert.deepEqual([result.rows, result.rejected], [doc.users.length, 1]);

    const secrets = users.flatMap((u) => {
      const bank = (u.bank ?? {}) as Json;
      return [u.password, u.ssn, bank.cardNumber, bank.iban, u.ip].map(String);
    });
    const emails = users.map((u) => String(u.email).toLowerCase());
    const leaks = (text: string, values: string[]): string[] => values.filter((v) => text.includes(v));

    const home = env.SMELTER_HOME as string;
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    let parquets = 0;
    // Every bucket but raw, which holds the file as the source sent it (the replay source).
    const stored = ['bronze', 'quarantine', 'archive'].flatMap((b) =>
      fs.existsSync(path.join(home, 'buckets', b)) ? filesUnder(path.join(home, 'buckets', b)) : [],
    );
    for (const f of stored) {
      if (f.endsWith('.parquet')) {
        parquets++;
        const rows = (await c.runAndReadAll(`SELECT * FROM read_parquet('${f}')`)).getRowObjectsJson();
        assert.deepEqual(leaks(JSON.stringify(rows), secrets), [], f);
      } else assert.deepEqual(leaks(fs.readFileSync(f, 'latin1'), secrets), [], f);
    }
    assert.ok(parquets >= 1);
    assert.ok(
      filesUnder(path.join(home, 'buckets', 'quarantine')).some((f) => f.endsWith('.rejects.ndjson')),
      'the rejected user is in quarantine',
    );
    assert.deepEqual(leaks(drop.out, secrets), [], 'logs');

    c.closeSync();
    const wh = await DuckDBInstance.create(path.join(home, 'warehouse', 'smelter.duckdb'), {
      access_mode: 'READ_ONLY',
    });
    const w = await wh.connect();
    const tables = (
      await w.runAndReadAll(
        // Tables and views (a Bronze table is a view over its Parquet files).
        "SELECT table_schema AS schema_name, table_name FROM information_schema.tables WHERE table_catalog = 'smelter'",
      )
    ).getRowObjectsJson() as { schema_name: string; table_name: string }[];
    assert.ok(tables.some((t) => t.schema_name === 'gold' && t.table_name === 'store_customers'));
    for (const t of tables) {
      const rows = JSON.stringify(
        (await w.runAndReadAll(`SELECT * FROM "${t.schema_name}"."${t.table_name}"`)).getRowObjectsJson(),
      );
      assert.deepEqual(leaks(rows, secrets), [], `${t.schema_name}.${t.table_name}`);
      if (t.schema_name === 'gold')
        assert.deepEqual(leaks(rows, emails), [], `${t.table_name}: masked email in Gold`);
    }
    // Hashes are HMAC(key, value): the same email hashes alike wherever it is stored, so tables join on it.
    const gold = (
      await w.runAndReadAll('SELECT user_id, email_key FROM gold.store_customers ORDER BY user_id LIMIT 3')
    ).getRowObjectsJson() as { user_id: string; email_key: string }[];
    for (const g of gold) {
      const u = users.find((x) => String(x.id) === String(g.user_id));
      assert.equal(g.email_key, hmacHex(KEY, String(u?.email).toLowerCase()));
    }
    const joined = await w.runAndReadAll(
      'SELECT count(*) AS n FROM gold.store_customers g JOIN silver.store_users s ON g.email_key = s.email_key',
    );
    assert.equal(Number((joined.getRowObjectsJson()[0] as { n: string }).n), doc.users.length);
    w.closeSync();
    wh.closeSync();
  });

  it('readers by role: analyst sees masked values, pii_reader and owner clear ones; no role on unknown names', async function () {
    const sql =
      'SELECT user_id, email, first_name, phone, birth_date, age FROM silver.store_users ORDER BY user_id LIMIT 2';
    const as = async (role: string): Promise<Json[]> => {
      const r = await smelter(['query', sql, '--role', role, '--json'], env);
      assert.equal(r.code, 0, r.out);
      return JSON.parse(r.out.trim().split('\n').pop() ?? '[]') as Json[];
    };
    const clear = await as('pii_reader');
    assert.deepEqual(await as('owner'), clear);
    const u = (
      JSON.parse(fs.readFileSync(path.join(packageRoot, 'samples', 'store', 'users.json'), 'utf8')) as {
        users: Json[];
      }
    ).users[0] as Json;
    assert.equal(clear[0]?.email, String(u.email).toLowerCase());
    const masked = await as('analyst');
    const domain = String(u.email).toLowerCase().split('@')[1];
    assert.deepEqual(masked[0], {
      user_id: clear[0]?.user_id,
      email: `XXXXX@${domain}`, // EMAIL_MASK
      first_name: '', // DEFAULT_MASKING_VALUE
      phone: `XXXXX${String(u.phone).slice(-4)}`, // LAST_FOUR_CHARACTERS
      birth_date: `${String(clear[0]?.birth_date).slice(0, 4)}-01-01`, // DATE_YEAR
      age: clear[0]?.age, // not personal: as is
    });
    // Gold through the masked schema reads the same (nothing to mask there); a string is left alone.
    const gold = await smelter(
      [
        'query',
        "SELECT count(*) AS n, 'silver.store_users' AS s FROM gold.store_customers",
        '--role',
        'analyst',
        '--json',
      ],
      env,
    );
    assert.equal(gold.code, 0, gold.out);
    assert.match(gold.out, /"s":"silver\.store_users"/);
    const status = await smelter(['status'], env);
    assert.match(
      status.out,
      /store_users: .*email \(email, mask\).*email_key \(email, hash\).*password \(secret, drop\)/,
    );
    const bad = await smelter(['query', 'SELECT 1', '--role', 'admin'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /--role must be one of owner, pii_reader, analyst/);
  });
});
