/**
 * Runs the Cloud SDK Pub/Sub emulator as a child process group. The launcher is a shell script that
 * execs Java; it is started detached (its own process group) so stopping kills the JVM too, and an
 * exit hook kills it if this process dies without stopping it (an orphaned JVM would hold the port).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SmelterError } from '../../errors';
import type { Logger } from '../../log';

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

async function startOnce(opts: StartEmulatorOptions): Promise<EmulatorHandle> {
  const dataDir = path.join(opts.home, 'pubsub');
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(dataDir, 'emulator.log');
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const fd = fs.openSync(logFile, 'w');
  const t0 = Date.now();
  const child = spawn(opts.launcher, ['--host=127.0.0.1', `--port=${port}`], {
    cwd: dataDir,
    detached: true,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      // Small heap and a fast-starting JIT: the emulator is a test fake, not a throughput server.
      CLOUD_PUBSUB_EMULATOR_OPTS: process.env.CLOUD_PUBSUB_EMULATOR_OPTS ?? '-Xmx512m -XX:+UseSerialGC',
    },
  });
  fs.closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new SmelterError('PUBSUB_UNAVAILABLE', `Could not start ${opts.launcher}`);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitedP = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  child.once('error', () => undefined);
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      /* already gone */
    }
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
      process.removeListener('exit', onExit);
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
      process.removeListener('exit', onExit);
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
        process.removeListener('exit', onExit);
        fs.rmSync(path.join(dataDir, 'env.yaml'), { force: true });
      })();
      return stopping;
    },
  };
}
