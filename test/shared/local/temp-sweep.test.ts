/** The temp-file sweep: what a crashed or killed run left behind goes; what a live process owns stays. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sweepTemp } from '../../../shared/local/temp-sweep';

describe('local: temp-file sweep', () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-sweep-'))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const file = (p: string, ageMs = 0, body = 'x'): string => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, body);
    const t = (Date.now() - ageMs) / 1000;
    fs.utimesSync(p, t, t);
    return p;
  };
  const age = (p: string, ageMs: number): void => {
    const t = (Date.now() - ageMs) / 1000;
    fs.utimesSync(p, t, t);
  };

  it('removes temp files whose owner is gone and keeps those a live process owns', async () => {
    const home = path.join(root, 'home');
    const tmp = path.join(root, 'tmp');
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    const objects = path.join(home, 'tmp', 'objects');
    const dead = file(path.join(objects, `${gone.pid}-0123456789ab-1.part`), 0, 'y'.repeat(1000));
    const deadMeta = file(path.join(objects, `${gone.pid}-0123456789ab-2.meta`));
    const mine = file(path.join(objects, `${process.pid}-0123456789ab-3.part`), 3_600_000);
    const spill = file(path.join(home, 'tmp', 'duckdb', 'duckdb_temp_storage-0.tmp'), 3_600_000);
    const freshSpill = file(path.join(home, 'tmp', 'duckdb', 'duckdb_temp_storage-1.tmp'));

    const oldPipes = path.join(tmp, 'smelter-pipe-AbC123');
    file(path.join(oldPipes, 'in'));
    age(oldPipes, 3_600_000);
    const busyPipes = path.join(tmp, 'smelter-pipe-busy');
    const held = fs.openSync(file(path.join(busyPipes, 'out')), 'r'); // a conversion has it open
    age(busyPipes, 3_600_000);
    const newPipes = path.join(tmp, 'smelter-pipe-new');
    file(path.join(newPipes, 'in'));
    const profile = file(path.join(tmp, 'smelter-profile-7f3a.json'), 3_600_000);
    const stranger = file(path.join(tmp, 'somebody-else.json'), 3_600_000);
    try {
      const r = sweepTemp({ home, tmpDir: tmp });
      assert.deepEqual(r.removed.sort(), [dead, deadMeta, spill, oldPipes, profile].sort());
      assert.ok(r.bytes >= 1000);
      for (const p of [mine, freshSpill, busyPipes, newPipes, stranger]) assert.ok(fs.existsSync(p), p);
      for (const p of r.removed) assert.equal(fs.existsSync(p), false, p);
      assert.deepEqual(sweepTemp({ home, tmpDir: tmp }).removed, [], 'nothing left to sweep');
    } finally {
      fs.closeSync(held);
    }
    assert.deepEqual(sweepTemp({ home, tmpDir: tmp }).removed, [busyPipes], 'closed: no longer owned');
  });
});
