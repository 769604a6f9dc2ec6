import { useRuntime, type Runtime } from '../shared/composition/runtime';
import { config, option, resetConfig, type Config } from '../shared/config';
import { createLogger, type Logger } from '../shared/log';

/**
 * CLI defaults: readable logs, no GCE metadata probing; configuration read from the environment and a
 * fresh process runtime over it (`rt`) for the services a command uses.
 */
export function cliEnv(): { cfg: Config; log: Logger; rt: Runtime } {
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  process.env.SMELTER_LOG_FORMAT ??= 'text';
  process.env.SMELTER_LOG_STDERR ??= '1';
  resetConfig();
  const rt = useRuntime();
  const cfg = config();
  return {
    cfg,
    log: createLogger({ format: option('logFormat') === 'json' ? 'json' : 'text' }),
    rt,
  };
}
