import { createDashboard } from '../../shared/composition/dashboard';
import { dashboardHandler } from '../../shared/dashboard/http';
import { runningStack } from '../../shared/local/stack';
import { flagNumber, type Command } from '../command';
import { cliEnv } from '../env';
import { dashboardPort, serveDashboard } from '../local/dashboard';

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary:
    'Serve the read-only web dashboard over the warehouse (works without `up`; BigQuery with SMELTER_BACKEND=gcp)',
  usage: 'dashboard [--port N]',
  async run({ flags, out }) {
    const { cfg } = cliEnv();
    const port = flagNumber(flags, 'port') ?? dashboardPort(cfg.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Error(`--port must be a port number, got ${port}`);
    const stack = cfg.backend === 'local' ? runningStack(cfg.home) : undefined;
    if (stack?.dashboard) {
      // The stack owns the DuckDB file (one writer per file) and already serves the dashboard.
      out(`The running stack (pid ${stack.pid}) serves the dashboard: ${stack.dashboard}`);
      return 0;
    }
    const wiring = await createDashboard(cfg);
    const served = await serveDashboard(dashboardHandler(wiring.service), port);
    out(
      `dashboard  ${served.url}   (${cfg.backend === 'gcp' ? `BigQuery ${cfg.project}` : cfg.home}; Ctrl-C to stop)`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await served.close();
    await wiring.close();
    return 0;
  },
};
