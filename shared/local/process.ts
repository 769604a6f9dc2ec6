/**
 * Who owns what on this machine: a pid alone is not an identity (pids are reused), so records that
 * outlive a process keep its start time too (`/proc/<pid>/stat`, Linux; elsewhere only liveness can be
 * checked), and a pid whose start time differs is a stranger.
 */
import fs from 'node:fs';

/** True when a process with this pid exists (EPERM: it exists but is not ours). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot, or undefined (gone, or no /proc). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

export interface ProcessRef {
  pid: number;
  /** processStart(pid) when recorded; absent where /proc is not available. */
  start?: string;
}

export function selfRef(): ProcessRef {
  const start = processStart(process.pid);
  return { pid: process.pid, ...(start ? { start } : {}) };
}

/** True when the very process recorded in `ref` is still running. */
export function isRunning(ref: ProcessRef): boolean {
  if (!pidAlive(ref.pid)) return false;
  if (ref.start === undefined) return true;
  const now = processStart(ref.pid);
  return now === undefined || now === ref.start;
}

/** Real paths of every file some process of this user has open (Linux; empty set elsewhere). */
export function openFiles(): Set<string> {
  const out = new Set<string>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        out.add(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return out;
}
