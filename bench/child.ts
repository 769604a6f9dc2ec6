/**
 * The parent/child protocol of the benchmarks that measure each variant in a fresh process (so peak
 * RSS is the variant's own): the child prints one `RESULT <json>` line, the parent spawns it and keeps
 * the median run.
 */
import { spawnSync } from 'node:child_process';

const PREFIX = 'RESULT ';

/** What every child reports; each benchmark adds its own figures. */
export interface RunFigures {
  variant: string;
  seconds: number;
  maxRssMB: number;
}

/** Prints the child's result for `runChild`. */
export function reportResult(r: RunFigures): void {
  process.stdout.write(PREFIX + JSON.stringify(r) + '\n');
}

/** Runs `node <args>` and returns the result it reported; throws with its stderr's tail if it failed. */
export function runChild<R extends RunFigures>(variant: string, args: string[], maxBuffer?: number): R {
  const p = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
    ...(maxBuffer ? { maxBuffer } : {}),
  });
  const line = p.stdout.split('\n').find((l) => l.startsWith(PREFIX));
  if (p.status !== 0 || !line)
    throw new Error(`${variant} failed (exit ${p.status}):\n${p.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(PREFIX.length)) as R;
}

/** The run with the median time; peak RSS is the worst of all runs (memory is a limit, not an average). */
export function median<R extends RunFigures>(rs: R[]): R {
  const sorted = [...rs].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)] as R;
  return { ...mid, maxRssMB: Math.max(...rs.map((r) => r.maxRssMB)) };
}
