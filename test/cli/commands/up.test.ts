/**
 * `smelter up` (what `npm start` runs) in a child process: every function served on consecutive ports,
 * the storage triggers, embedded Pub/Sub; other CLI processes find it through <home>/state/stack.json.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../../shared/paths';
import { childEnv, runSmelter, SMELTER_BIN } from '../../support/cli';
import { rainfallCsv, waitFor } from '../../support/local';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A first port with the ports `up` uses (functions on base…base+3, admin on base+9, dashboard on base+10) free. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const checks = await Promise.all(Array.from({ length: 11 }, (_, k) => portFree(base + k)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error('no free port range');
}

describe('smelter up (child process)', function () {
  this.timeout(30_000);
  let tmp: string;
  let home: string;
  let env: Record<string, string>;
  let up: ChildProcess;
  let upOut = '';
  let upErr = '';
  let base: number;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-up-'));
    home = path.join(tmp, 'home');
    base = await freeBase();
    env = {
      SMELTER_HOME: home,
      SMELTER_PORT: String(base),
      SMELTER_PUBSUB_EMULATOR: 'off',
      SMELTER_REFRESH_INTERVAL_MS: '600000',
    };
    up = spawn(process.execPath, [SMELTER_BIN, 'up', '--no-sample'], {
      cwd: packageRoot,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stdout?.on('data', (c: Buffer) => (upOut += c.toString('utf8')));
    up.stderr?.on('data', (c: Buffer) => (upErr += c.toString('utf8')));
    const exited = new Promise<never>((_, reject) =>
      up.once('exit', (code) => reject(new Error(`smelter up exited (${code}):\n${upOut}\n${upErr}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitFor('"Smelter is up"', () => upOut.includes('Smelter is up'), 20_000), exited]);
  });

  after(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      const done = new Promise((r) => up.once('exit', r));
      up.kill('SIGKILL');
      await done;
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const manifests = (dataset: string): string[] => {
    const dir = path.join(home, 'buckets', 'bronze', dataset);
    if (!fs.existsSync(dir)) return [];
    return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.manifest.json'));
  };

  it('serves every function on consecutive ports and registers itself for other CLI processes', async () => {
    for (const [i, fn] of ['rawToBronze', 'ingestHttp', 'routeEvent', 'loadWarehouse'].entries())
      assert.match(upOut, new RegExp(`${fn}\\s+http://127\\.0\\.0\\.1:${base + i}`));
    const s = await runSmelter(['status', '--json'], env);
    assert.equal(s.code, 0, s.stderr);
    const report = JSON.parse(s.stdout) as {
      stack: { pid: number; endpoints: Record<string, string>; admin: string; live: { deliveries: object } };
    };
    assert.equal(report.stack.pid, up.pid);
    assert.equal(report.stack.endpoints.rawToBronze, `http://127.0.0.1:${base}`);
    assert.equal(report.stack.admin, `http://127.0.0.1:${base + 9}`);
    assert.ok(report.stack.live.deliveries, 'live delivery counters from the admin endpoint');

    // The dashboard: in the banner, served by the stack (which owns the DuckDB file), found by `smelter dashboard`.
    const dash = `http://127.0.0.1:${base + 10}`;
    assert.match(upOut, new RegExp(`dashboard\\s+${dash.replace(/\./g, '\\.')}`));
    const cat = await fetch(`${dash}/api/catalogue`);
    assert.equal(cat.status, 200);
    const d = await runSmelter(['dashboard'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, new RegExp(`serves the dashboard: ${dash.replace(/\./g, '\\.')}`));

    // A second `up` on the same home refuses to start.
    const again = await runSmelter(['up', '--no-sample'], env);
    assert.equal(again.code, 1);
  });

  it('converts a file copied into the raw bucket folder and one posted to ingestHttp', async () => {
    const dir = path.join(home, 'buckets', 'raw', 'rainfall');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'by-hand.csv'), rainfallCsv(10));
    const res = await fetch(`http://127.0.0.1:${base + 1}/?dataset=rainfall&filename=posted.csv`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: rainfallCsv(4),
    });
    assert.equal(res.status, 202);
    const found = await waitFor('both Bronze manifests', () => {
      const m = manifests('rainfall');
      return m.some((f) => path.basename(f).startsWith('by-hand-')) &&
        m.some((f) => /-posted-[0-9a-f]{8}-g\d+\.manifest\.json$/.test(path.basename(f)))
        ? m
        : undefined;
    });
    assert.equal(found.length, 2);
  });

  it('`drop --wait --json` uses the running stack', async () => {
    const file = path.join(tmp, 'dropped.csv');
    fs.writeFileSync(file, rainfallCsv(6));
    const r = await runSmelter(['drop', file, '--dataset', 'rainfall', '--wait', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rows: number; output: { name: string } };
    assert.equal(out.rows, 6);
    // The stack converted it, not functions started by `drop` itself.
    assert.match(upErr, /converted to bronze .*object=rainfall\/dropped\.csv/);
    assert.doesNotMatch(r.stderr, /converted to bronze/);
  });

  it('stops on SIGTERM and unregisters', async () => {
    assert.ok(fs.existsSync(path.join(home, 'state', 'stack.json')));
    const code = new Promise<number | null>((r) => up.once('exit', (c) => r(c)));
    up.kill('SIGTERM');
    assert.equal(await code, 0);
    assert.ok(!fs.existsSync(path.join(home, 'state', 'stack.json')));
  });
});
