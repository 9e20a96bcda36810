// Serves one admin endpoint on a node:http server on port 0, until the admin listener exists to serve it
// (its method and path only; a throw is a 500).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminContext, AdminEndpoint } from '../../src/admin/endpoint.ts';

export interface ServedEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** `admin` holds what the endpoint reads (GET /metrics: `log` and `metrics`). */
export async function serveAdminEndpoint(
  endpoint: AdminEndpoint,
  admin: Pick<AdminContext, 'log' | 'metrics'>,
): Promise<ServedEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (
      path !== endpoint.path ||
      (req.method !== endpoint.method && !(endpoint.method === 'GET' && req.method === 'HEAD'))
    ) {
      res.writeHead(404).end();
      return;
    }
    Promise.resolve(endpoint.handle(req, res, {}, admin as AdminContext)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
