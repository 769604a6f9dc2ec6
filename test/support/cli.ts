/** The `smelter` CLI as a user runs it: `node bin/smelter.js …` in a child process, configured only by the environment. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../shared/paths';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runSmelter(args: string[], env: Record<string, string>): Promise<CliRun> {
  // A clean environment: none of the SMELTER_* variables other tests may have set leak in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SMELTER_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'smelter.js'), ...args], {
      cwd: packageRoot,
      env: { ...base, METADATA_SERVER_DETECTION: 'none', ...env },
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
