/**
 * Removes temporary files that no live process owns, left behind by crashed or killed runs:
 * - `<home>/tmp/objects/<pid>-…`   object-store temp files (`.part`, `.meta`): owned while their pid lives;
 * - `<home>/tmp/duckdb/…`          DuckDB spill files;
 * - `<tmpdir>/smelter-pipe-*`      FIFO folders of streamed conversions;
 * - `<tmpdir>/smelter-profile-*`   DuckDB query profiles of conversions.
 * Entries without a pid in their name are owned while some process has them (or anything inside them)
 * open, and are left alone for `minAgeMs` after their last change — the moment between creating a file
 * and opening it. The local stack sweeps at start and then periodically.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log';
import { openFiles, pidAlive } from './process';
import type { StackContext, StackPart } from './stack';

export interface SweepOptions {
  home: string;
  /** Where conversions put their pipes and profiles (default os.tmpdir()). */
  tmpDir?: string;
  minAgeMs?: number;
  now?: () => number;
}

export interface SweepResult {
  removed: string[];
  bytes: number;
}

export const DEFAULT_MIN_AGE_MS = 10 * 60_000;

export function sweepTemp(o: SweepOptions): SweepResult {
  const now = o.now?.() ?? Date.now();
  const minAgeMs = o.minAgeMs ?? DEFAULT_MIN_AGE_MS;
  const tmp = o.tmpDir ?? os.tmpdir();
  let open: Set<string> | undefined;
  const isOpen = (p: string): boolean => {
    open ??= openFiles();
    for (const f of open) if (f === p || f.startsWith(p + path.sep)) return true;
    return false;
  };
  const result: SweepResult = { removed: [], bytes: 0 };
  const remove = (p: string, st: fs.Stats): void => {
    try {
      fs.rmSync(p, { recursive: true, force: true });
      result.removed.push(p);
      result.bytes += st.isDirectory() ? 0 : st.size;
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  };
  const entries = (dir: string, match: (name: string) => boolean): [string, string][] => {
    try {
      return fs
        .readdirSync(dir)
        .filter(match)
        .map((n) => [n, path.join(dir, n)]);
    } catch {
      return [];
    }
  };
  const unowned = (p: string, st: fs.Stats): boolean => now - st.mtimeMs >= minAgeMs && !isOpen(p);

  for (const [name, p] of entries(path.join(o.home, 'tmp', 'objects'), () => true)) {
    const st = statOf(p);
    if (!st) continue;
    const pid = /^(\d+)-/.exec(name)?.[1];
    if (pid !== undefined ? !pidAlive(Number(pid)) : unowned(p, st)) remove(p, st);
  }
  for (const [, p] of [
    ...entries(path.join(o.home, 'tmp', 'duckdb'), () => true),
    ...entries(tmp, (n) => n.startsWith('smelter-pipe-') || /^smelter-profile-.*\.json$/.test(n)),
  ]) {
    const st = statOf(p);
    if (st && unowned(p, st)) remove(p, st);
  }
  return result;
}

function statOf(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The local stack's sweeper: once at start, then every `everyMs`. */
export class TempSweeper implements StackPart {
  readonly name = 'temp-sweeper';
  private timer: NodeJS.Timeout | undefined;
  swept = 0;

  constructor(private readonly opts: { everyMs?: number; tmpDir?: string; minAgeMs?: number } = {}) {}

  async start(ctx: StackContext): Promise<void> {
    const run = (): void => this.run(ctx.cfg.home, ctx.log);
    run();
    this.timer = setInterval(run, this.opts.everyMs ?? DEFAULT_MIN_AGE_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private run(home: string, log: Logger): void {
    try {
      const r = sweepTemp({
        home,
        ...(this.opts.tmpDir ? { tmpDir: this.opts.tmpDir } : {}),
        ...(this.opts.minAgeMs !== undefined ? { minAgeMs: this.opts.minAgeMs } : {}),
      });
      this.swept += r.removed.length;
      if (r.removed.length)
        log.info(`removed ${r.removed.length} temporary file(s) left by earlier runs (${r.bytes} bytes)`, {
          removed: r.removed.slice(0, 20),
        });
    } catch (err) {
      log.warn('temporary file sweep failed', { err });
    }
  }
}
