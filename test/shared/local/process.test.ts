/** Process identity (pid + start time) and the stack record a `kill -9` leaves behind. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isRunning, pidAlive, processStart, selfRef } from '../../../shared/local/process';
import { runningStack, stackInfoFile, type StackInfo } from '../../../shared/local/stack';

describe('local: process identity and the stack record', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'smelter-proc-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  const record = (info: Partial<StackInfo>): void => {
    fs.mkdirSync(path.dirname(stackInfoFile(home)), { recursive: true });
    fs.writeFileSync(stackInfoFile(home), JSON.stringify({ startedAt: 'then', endpoints: {}, ...info }));
  };

  it('a process is identified by its pid and start time', async () => {
    const me = selfRef();
    assert.equal(isRunning(me), true);
    assert.ok(me.start, 'Linux: /proc/self/stat gives the start time');
    assert.equal(isRunning({ pid: me.pid, start: `${me.start}1` }), false, 'same pid, another process');
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    assert.equal(pidAlive(gone.pid as number), false);
    assert.equal(processStart(gone.pid as number), undefined);
  });

  it('the record of a stack killed with -9 does not count as a running stack, even if its pid is reused', () => {
    record({ pid: process.pid, pidStart: selfRef().start as string });
    assert.equal(runningStack(home)?.pid, process.pid, 'the live process that wrote it');
    // A pid now held by another process (here: this one, with another start time).
    record({ pid: process.pid, pidStart: '1' });
    assert.equal(runningStack(home), undefined);
    record({ pid: 2 ** 22 + 7 }); // beyond pid_max: no such process
    assert.equal(runningStack(home), undefined);
    fs.writeFileSync(stackInfoFile(home), '{"pid": 1'); // torn
    assert.equal(runningStack(home), undefined);
  });
});
