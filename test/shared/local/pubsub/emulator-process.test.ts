/**
 * The emulator's process group is tied to the process that started it, checked with a stand-in launcher
 * (a shell script running a tiny Node server that answers the readiness page), so it runs everywhere
 * and fast: a SIGKILLed parent takes the group down with it, and a group left by a dead owner is
 * stopped at the next start — while a record naming a process that is gone never blocks a start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emulatorReady, emulatorRecordFile, startEmulator } from '../../../../shared/local/pubsub/emulator';
import { pidAlive } from '../../../../shared/local/process';

// Double quotes only: it goes between single quotes in a shell script.
const SERVER = `const http = require("node:http");
const port = Number(process.argv.find((a) => a.startsWith("--port="))?.slice(7));
http.createServer((q, s) => s.end("Ok")).listen(port, "127.0.0.1");`;

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pubsub: the emulator process group follows its owner', function () {
  this.timeout(60_000);
  let dir: string;
  let launcher: string;
  const groups: number[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-emuproc-'));
    launcher = path.join(dir, 'fake-emulator');
    fs.writeFileSync(launcher, `#!/bin/sh\nexec "${process.execPath}" -e '${SERVER}' -- "$@"\n`, {
      mode: 0o755,
    });
  });
  afterEach(() => {
    for (const g of groups.splice(0)) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kill -9 of the owner stops the emulator (parent-death pipe)', async () => {
    const home = path.join(dir, 'home');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'fixtures', 'start-emulator.ts'), launcher, home],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await until('the emulator to answer', () => out.includes('\n') || child.exitCode !== null, 40_000);
    const { pid, host } = JSON.parse(out) as { pid: number; host: string };
    groups.push(pid);
    assert.equal(await emulatorReady(host), true);
    child.kill('SIGKILL');
    await until(
      'the emulator group to go',
      async () => !groupAlive(pid) && !(await emulatorReady(host, 200)),
    );
  });

  it('a start stops an emulator left by a dead owner, and ignores a record of a process that is gone', async () => {
    const home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, 'pubsub'), { recursive: true });
    // An emulator whose owner is gone (the owner's pid: a process that has exited).
    const stale = spawn(launcher, ['--host=127.0.0.1', '--port=0'], { detached: true, stdio: 'ignore' });
    groups.push(stale.pid as number);
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    assert.equal(pidAlive(gone.pid as number), false);
    fs.writeFileSync(
      emulatorRecordFile(home),
      JSON.stringify({ group: { pid: stale.pid }, owner: { pid: gone.pid }, host: '127.0.0.1:1' }),
    );
    const emu = await startEmulator({ launcher, home, readyTimeoutMs: 10_000 });
    groups.push(emu.pid);
    try {
      await until('the stale emulator to be stopped', () => !groupAlive(stale.pid as number));
      assert.equal(await emulatorReady(emu.host), true);
      const rec = JSON.parse(fs.readFileSync(emulatorRecordFile(home), 'utf8')) as { group: { pid: number } };
      assert.equal(rec.group.pid, emu.pid);
    } finally {
      await emu.stop();
    }
    // stop() leaves nothing of the group, watchdog included (killed processes take a moment to be reaped).
    await until('the group to be gone after stop()', () => !groupAlive(emu.pid), 3000);
    assert.equal(fs.existsSync(emulatorRecordFile(home)), false);

    // A record naming processes that are gone: removed, and the start goes ahead.
    fs.writeFileSync(
      emulatorRecordFile(home),
      JSON.stringify({ group: { pid: gone.pid }, owner: { pid: gone.pid }, host: '127.0.0.1:1' }),
    );
    const again = await startEmulator({ launcher, home, readyTimeoutMs: 10_000 });
    groups.push(again.pid);
    await again.stop();
  });
});
