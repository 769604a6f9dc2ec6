/** Serves a registered function on an ephemeral port (functions-framework's getTestServer) for real HTTP requests. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getTestServer } from '@google-cloud/functions-framework/testing';

export async function serve(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = getTestServer(target);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
