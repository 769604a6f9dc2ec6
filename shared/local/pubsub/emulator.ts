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
import { spawn } from 'node:child_process';
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

async function startOnce(opts: StartEmulatorOptions): Promise<EmulatorHandle> {
  const dataDir = path.join(opts.home, 'pubsub');
  fs.mkdirSync(dataDir, { recursive: true });
  await stopStaleEmulator(opts.home, opts.log);
  const logFile = path.join(dataDir, 'emulator.log');
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const fd = fs.openSync(logFile, 'w');
  const t0 = Date.now();
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
  const pid = child.pid;
  if (pid === undefined) throw new SmelterError('PUBSUB_UNAVAILABLE', `Could not start ${opts.launcher}`);
  const pipe = child.stdin;
  pipe?.on('error', () => undefined);
  (pipe as unknown as { unref?: () => void } | null)?.unref?.();
  const start = processStart(pid);
  const record: EmulatorRecord = { group: { pid, ...(start ? { start } : {}) }, owner: selfRef(), host };
  fs.writeFileSync(emulatorRecordFile(opts.home), JSON.stringify(record) + '\n');

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitedP = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  child.once('error', () => undefined);
  const killGroup = (signal: NodeJS.Signals): void => killGroupOf(pid, signal);
  const forget = (): void => {
    process.removeListener('exit', onExit);
    pipe?.destroy();
    fs.rmSync(emulatorRecordFile(opts.home), { force: true });
  };
  const onExit = (): void => killGroup('SIGKILL');
  process.once('exit', onExit);

  const tail = (): string => {
    try {
      return fs.readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n');
    } catch {
      return '';
    }
  };
  const deadline = t0 + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      killGroup('SIGKILL'); // the watchdog
      forget();
      throw new SmelterError(
        'PUBSUB_UNAVAILABLE',
        `Pub/Sub emulator exited during start-up (code ${exited.code}):\n${tail()}`,
        {
          details: { exitedEarly: true, logFile },
        },
      );
    }
    if (await emulatorReady(host, 500)) break;
    if (Date.now() > deadline) {
      killGroup('SIGKILL');
      forget();
      throw new SmelterError(
        'PUBSUB_UNAVAILABLE',
        `Pub/Sub emulator not ready after ${Date.now() - t0} ms:\n${tail()}`,
        {
          details: { logFile },
        },
      );
    }
    await sleep(100);
  }
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
      stopping ??= (async () => {
        if (!exited) {
          killGroup('SIGTERM');
          await within(exitedP, 5000);
          if (!exited) {
            killGroup('SIGKILL');
            await within(exitedP, 2000);
          }
        }
        killGroup('SIGKILL'); // what is left of the group: the watchdog
        forget();
        fs.rmSync(path.join(dataDir, 'env.yaml'), { force: true });
      })();
      return stopping;
    },
  };
}
