/**
 * Runs the Cloud SDK Pub/Sub emulator as a child process group. The launcher is a shell script that
 * execs Java; it is started detached (its own process group) so stopping kills the JVM too.
 *
 * An orphaned JVM would keep the port and keep pushing to the functions' ports, so its life is tied to
 * this process three ways:
 * - an exit hook kills the group when this process exits normally;
 * - a parent-death pipe: a small shell watchdog in the group holds the read end of a pipe whose write
 *   end only this process holds; when this process dies — even by SIGKILL — the read sees EOF and the
 *   watchdog kills the group;
 * - a record (`<home>/pubsub/emulator.json`: group, start time, owner) checked at the next start: an
 *   emulator whose owner is gone is stopped; a record of a process that is gone is just removed, never
 *   a reason to refuse to start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SmelterError } from '../../errors';
import type { Logger } from '../../log';
import { isRunning, processStart, selfRef, type ProcessRef } from '../process';

export interface EmulatorHandle {
  /** `host:port`, the PUBSUB_EMULATOR_HOST value. */
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface StartEmulatorOptions {
  launcher: string;
  /** SMELTER_HOME: the emulator's folder is `<home>/pubsub`. */
  home: string;
  log?: Logger;
  port?: number;
  readyTimeoutMs?: number;
}

/** A port the OS reports free right now (tiny race with other processes; start() retries once). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** True when `GET http://host/` answers `Ok` (the emulator's readiness page). */
export async function emulatorReady(host: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok && (await res.text()).trim() === 'Ok';
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p` at most `ms`, without leaving a timer behind to hold the process open. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (t = setTimeout(r, ms)))]);
  clearTimeout(t);
}

export async function startEmulator(opts: StartEmulatorOptions): Promise<EmulatorHandle> {
  try {
    return await startOnce(opts);
  } catch (err) {
    // A port taken between freePort() and the JVM binding it: one more try on another port.
    if (opts.port === undefined && err instanceof SmelterError && err.details.exitedEarly)
      return startOnce(opts);
    throw err;
  }
}

/**
 * The watchdog: runs the launcher (`$0 $@`) in the background, waits for it, and meanwhile a subshell
 * (ignoring SIGTERM) blocks on fd 3 — the parent-death pipe — then stops the whole group. A background
 * list's stdin is /dev/null in sh, hence the copy to fd 3.
 */
const WATCHDOG = `exec 3<&0
"$0" "$@" </dev/null 3<&- &
emulator=$!
( trap '' TERM; cat <&3 >/dev/null; kill -TERM 0; sleep 5; kill -KILL 0 ) &
watchdog=$!
exec 3<&-
wait $emulator
code=$?
kill -KILL $watchdog 2>/dev/null
exit $code`;

interface EmulatorRecord {
  group: ProcessRef;
  owner: ProcessRef;
  host: string;
}

export function emulatorRecordFile(home: string): string {
  return path.join(home, 'pubsub', 'emulator.json');
}

/** Stops an emulator left by an earlier run whose owner is gone; removes a record of one that is gone. */
export async function stopStaleEmulator(home: string, log?: Logger): Promise<boolean> {
  const file = emulatorRecordFile(home);
  let rec: EmulatorRecord;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8')) as EmulatorRecord;
  } catch {
    return false;
  }
  if (isRunning(rec.owner) && rec.owner.pid !== process.pid) return false; // another live run owns it
  let stopped = false;
  if (isRunning(rec.group)) {
    log?.warn(
      `stopping a Pub/Sub emulator left running by an earlier run (pid ${rec.group.pid}, ${rec.host})`,
    );
    killGroupOf(rec.group.pid, 'SIGTERM');
    for (let i = 0; i < 30 && isRunning(rec.group); i++) await sleep(100);
    if (isRunning(rec.group)) killGroupOf(rec.group.pid, 'SIGKILL');
    stopped = true;
  }
  fs.rmSync(file, { force: true });
  return stopped;
}

function killGroupOf(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** The last lines of the emulator's log, for start-up errors. */
function logTail(logFile: string): string {
  try {
    return fs.readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n');
  } catch {
    return '';
  }
}

/** Spawns the launcher under the watchdog in its own process group, its output to `logFile`. */
function spawnGroup(
  opts: StartEmulatorOptions,
  dataDir: string,
  logFile: string,
  port: number,
): ChildProcess {
  const fd = fs.openSync(logFile, 'w');
  const child = spawn('/bin/sh', ['-c', WATCHDOG, opts.launcher, '--host=127.0.0.1', `--port=${port}`], {
    cwd: dataDir,
    detached: true,
    // stdin: the parent-death pipe (never written; only its closing matters).
    stdio: ['pipe', fd, fd],
    env: {
      ...process.env,
      // Small heap and a fast-starting JIT: the emulator is a test fake, not a throughput server.
      CLOUD_PUBSUB_EMULATOR_OPTS: process.env.CLOUD_PUBSUB_EMULATOR_OPTS ?? '-Xmx512m -XX:+UseSerialGC',
    },
  });
  fs.closeSync(fd);
  return child;
}

/**
 * A spawned emulator group tied to this process: recorded in `<home>/pubsub/emulator.json`, killed by
 * an exit hook, its exit observed; `forget()` undoes the ties once the group is gone.
 */
class EmulatorGroup {
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exitedP: Promise<void>;
  private readonly pipe: ChildProcess['stdin'];
  private readonly onExit = (): void => this.kill('SIGKILL');

  constructor(
    child: ChildProcess,
    readonly pid: number,
    private readonly home: string,
    host: string,
  ) {
    this.pipe = child.stdin;
    this.pipe?.on('error', () => undefined);
    (this.pipe as unknown as { unref?: () => void } | null)?.unref?.();
    const start = processStart(pid);
    const record: EmulatorRecord = { group: { pid, ...(start ? { start } : {}) }, owner: selfRef(), host };
    fs.writeFileSync(emulatorRecordFile(home), JSON.stringify(record) + '\n');
    this.exitedP = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      }),
    );
    child.once('error', () => undefined);
    process.once('exit', this.onExit);
  }

  kill(signal: NodeJS.Signals): void {
    killGroupOf(this.pid, signal);
  }

  forget(): void {
    process.removeListener('exit', this.onExit);
    this.pipe?.destroy();
    fs.rmSync(emulatorRecordFile(this.home), { force: true });
  }

  /** SIGTERM, then SIGKILL if the emulator has not exited; then kills what is left (the watchdog). */
  async stop(): Promise<void> {
    if (!this.exited) {
      this.kill('SIGTERM');
      await within(this.exitedP, 5000);
      if (!this.exited) {
        this.kill('SIGKILL');
        await within(this.exitedP, 2000);
      }
    }
    this.kill('SIGKILL'); // what is left of the group: the watchdog
    this.forget();
  }
}

/** Polls the readiness page until it answers; on early exit or timeout, kills the group and throws. */
async function waitReady(
  group: EmulatorGroup,
  o: { host: string; logFile: string; t0: number; timeoutMs: number },
): Promise<void> {
  const deadline = o.t0 + o.timeoutMs;
  const fail = (message: string, details: Record<string, unknown>): SmelterError => {
    group.kill('SIGKILL'); // with an exited emulator: the watchdog
    group.forget();
    return new SmelterError('PUBSUB_UNAVAILABLE', `${message}:\n${logTail(o.logFile)}`, { details });
  };
  for (;;) {
    if (group.exited)
      throw fail(`Pub/Sub emulator exited during start-up (code ${group.exited.code})`, {
        exitedEarly: true,
        logFile: o.logFile,
      });
    if (await emulatorReady(o.host, 500)) return;
    if (Date.now() > deadline)
      throw fail(`Pub/Sub emulator not ready after ${Date.now() - o.t0} ms`, { logFile: o.logFile });
    await sleep(100);
  }
}

async function startOnce(opts: StartEmulatorOptions): Promise<EmulatorHandle> {
  const dataDir = path.join(opts.home, 'pubsub');
  fs.mkdirSync(dataDir, { recursive: true });
  await stopStaleEmulator(opts.home, opts.log);
  const logFile = path.join(dataDir, 'emulator.log');
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const t0 = Date.now();
  const child = spawnGroup(opts, dataDir, logFile, port);
  const pid = child.pid;
  if (pid === undefined) throw new SmelterError('PUBSUB_UNAVAILABLE', `Could not start ${opts.launcher}`);
  const group = new EmulatorGroup(child, pid, opts.home, host);
  await waitReady(group, { host, logFile, t0, timeoutMs: opts.readyTimeoutMs ?? 30_000 });
  // Same file `gcloud beta emulators pubsub env-init --data-dir=<home>/pubsub` reads.
  fs.writeFileSync(path.join(dataDir, 'env.yaml'), `PUBSUB_EMULATOR_HOST: ${host}\n`);
  opts.log?.info(`Pub/Sub emulator ready on ${host} in ${Date.now() - t0} ms`, { pid, logFile });

  let stopping: Promise<void> | undefined;
  return {
    host,
    port,
    pid,
    dataDir,
    logFile,
    stop() {
      stopping ??= group.stop().then(() => fs.rmSync(path.join(dataDir, 'env.yaml'), { force: true }));
      return stopping;
    },
  };
}
