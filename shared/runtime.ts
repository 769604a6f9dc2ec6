/**
 * Cold-start wiring shared by the function composition roots: configuration (read once), the logger
 * and the object-store driver chosen by SMELTER_BACKEND.
 */
import { config, type Config } from './config';
import { createLogger, type Logger } from './log';
import type { ObjectStore } from './storage/object-store';
import { FsObjectStore } from './adapters/storage/fs';

export function createObjectStore(cfg: Config): ObjectStore {
  if (cfg.backend === 'local') return new FsObjectStore(cfg.home);
  // Loaded lazily so the local backend never pays for the GCS client's start-up.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { GcsObjectStore } = require('./adapters/storage/gcs') as typeof import('./adapters/storage/gcs');
  return new GcsObjectStore({ projectId: cfg.project });
}

export interface Runtime {
  cfg: Config;
  log: Logger;
  store: ObjectStore;
}

let runtime: Runtime | undefined;

export function getRuntime(): Runtime {
  if (!runtime) {
    const cfg = config();
    // Functions log JSON for Cloud Logging; the local stack may ask for text.
    const env = process.env.SMELTER_LOG_FORMAT;
    const format = env === 'text' || env === 'silent' ? env : 'json';
    runtime = { cfg, log: createLogger({ format }), store: createObjectStore(cfg) };
  }
  return runtime;
}

/** For tests and the local stack: drop cached wiring after changing the environment. */
export function resetRuntime(r?: Runtime): void {
  runtime = r;
}
