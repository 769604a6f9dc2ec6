import { config, resetConfig, type Config } from '../shared/config';
import { createLogger, type Logger } from '../shared/log';
import { resetRuntime } from '../shared/runtime';

/** CLI defaults: readable logs, no GCE metadata probing; configuration read from the environment. */
export function cliEnv(): { cfg: Config; log: Logger } {
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  process.env.SMELTER_LOG_FORMAT ??= 'text';
  process.env.SMELTER_LOG_STDERR ??= '1';
  resetConfig();
  resetRuntime();
  const cfg = config();
  return { cfg, log: createLogger({ format: process.env.SMELTER_LOG_FORMAT === 'json' ? 'json' : 'text' }) };
}
