/** The `smelter` CLI as a user runs it: `node bin/smelter.js …` in a child process, configured only by the environment. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../shared/paths';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const SMELTER_BIN = path.join(packageRoot, 'bin', 'smelter.js');

/**
 * A child process's environment: the parent's without SMELTER_* (other tests may have set some), no
 * GCP metadata server lookup, then `extra`.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SMELTER_')));
  return { ...base, METADATA_SERVER_DETECTION: 'none', ...extra };
}

export function runSmelter(args: string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SMELTER_BIN, ...args], {
      cwd: packageRoot,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
