/** Serves the dashboard's handler on 127.0.0.1 (for `smelter dashboard` and the local stack). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DashboardHandler } from '../../shared/dashboard/http';

export interface ServedDashboard {
  url: string;
  close(): Promise<void>;
}

export async function serveDashboard(handler: DashboardHandler, port: number): Promise<ServedDashboard> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(`port ${port} is in use (choose another with --port or SMELTER_PORT)`)
          : e,
      ),
    );
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The dashboard's default port: 10 above the stack's first port (8090 by default). */
export const dashboardPort = (basePort: number): number => basePort + 10;
