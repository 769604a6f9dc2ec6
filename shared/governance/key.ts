/**
 * The per-deployment key of `hash` columns. On GCP it comes from Secret Manager as the
 * SMELTER_PII_HASH_KEY environment variable (deploy/ mounts it); locally, when unset, a random key is
 * generated once into `<SMELTER_HOME>/state/pii-hash-key` so hashes stay stable across runs.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { SmelterError } from '../errors';

export function piiHashKey(cfg: Pick<Config, 'piiHashKey' | 'backend' | 'home'>): string {
  if (cfg.piiHashKey) return cfg.piiHashKey;
  if (cfg.backend !== 'local')
    // A deployment problem, not bad data: retried (and alerted on) rather than quarantined.
    throw new SmelterError(
      'CONFIG_INVALID',
      'SMELTER_PII_HASH_KEY is not set: a contract has hash columns (deploy/ mounts it from Secret Manager)',
      { kind: 'transient' },
    );
  const file = path.join(cfg.home, 'state', 'pii-hash-key');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    return fs.readFileSync(file, 'utf8').trim();
  }
}

export const hasHashColumns = (columns: readonly { sensitive?: { policy: string } }[]): boolean =>
  columns.some((c) => c.sensitive?.policy === 'hash');
