// The access log's upstreamConnectMs: a number for a try that opened a new upstream connection (TCP, TLS), null for
// one that reused a kept-alive connection; told by each pool's connector (src/upstream/connect-timing.ts). The
// backends count the connections they accept, so the log is checked against what really happened.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createH2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type Ca, type Issued, type TestPki } from '../helpers/certs.ts';
import { request, startGatewayYaml, tempDir } from '../helpers/servers.ts';

interface Counted {
  readonly url: string;
  connections(): number;
  close(): void;
}

type AnyServer = Server | ReturnType<typeof createH2Server> | ReturnType<typeof createSecureServer>;

/** Listens on port 0 and counts the connections it accepts (after TLS for secure servers). */
async function counted(server: AnyServer, scheme: 'http' | 'https', event: string): Promise<Counted> {
  let n = 0;
  server.on(event, () => n++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    connections: () => n,
    close: () => {
      (server as Server).closeAllConnections?.();
      server.close();
    },
  };
}

/** `/close` answers with Connection: close, so the next request needs a new connection. */
function answer(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/close') res.setHeader('connection', 'close');
  res.end('ok');
}

/**
 * Sends each group of `paths` through a gateway to `upstream` (the paths of a group at once, the groups one after
 * the other); returns upstreamConnectMs of each path, in the order of `paths.flat()`.
 */
async function connectTimes(upstream: string, groups: (string | string[])[]): Promise<(number | null)[]> {
  const file = join(tempDir(), 'access.log');
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: ${upstream} }
routes: [{ name: app, match: { path: / }, upstream: app }]
accessLog: { output: ${file}, fields: [path, status, upstreamConnectMs] }
`);
  try {
    for (const group of groups) {
      const paths = typeof group === 'string' ? [group] : group;
      const answers = await Promise.all(paths.map((path) => request(gw.port(), path)));
      for (const [i, r] of answers.entries()) assert.equal(r.status, 200, paths[i]);
    }
  } finally {
    await gw.stop();
  }
  const paths = groups.flat();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const entries = lines.map((l) => JSON.parse(l) as { path: string; upstreamConnectMs: number | null });
  // Paths sent at once end in any order.
  assert.deepEqual(entries.map((e) => e.path).sort(), [...paths].sort());
  return paths.map((path) => entries.find((e) => e.path === path)!.upstreamConnectMs);
}

/** A number (>= 0) where `fresh` says a new connection, null elsewhere. */
function assertPattern(times: (number | null)[], fresh: boolean[]): void {
  assert.equal(times.length, fresh.length);
  for (const [i, t] of times.entries()) {
    if (fresh[i]) assert.ok(typeof t === 'number' && t >= 0, `try ${i + 1} opened a connection: ${t}`);
    else assert.equal(t, null, `try ${i + 1} reused a connection`);
  }
}

describe('upstreamConnectMs', () => {
  let pki: TestPki;
  let ca: Ca;
  let cert: Issued;
  before(() => {
    ({ pki, serverCa: ca } = makeTestPki());
    cert = pki.server(ca, { names: ['backend.internal'] });
  });
  after(() => pki.remove());

  test('HTTP/1.1: each new connection is timed, each reuse is null (a connection the backend closed is replaced)', async () => {
    const backend = await counted(createHttpServer(answer), 'http', 'connection');
    try {
      const times = await connectTimes(`{ targets: [{ url: "${backend.url}" }] }`, ['/a', '/b', '/close', '/c', '/d']);
      assertPattern(times, [true, false, false, true, false]);
      assert.equal(backend.connections(), 2);
    } finally {
      backend.close();
    }
  });

  test('HTTP/1.1: two tries at once open two connections, each timed; later tries reuse them', async () => {
    // Holds the first two requests until both have arrived: the gateway must open a connection for each.
    const held: ServerResponse[] = [];
    const backend = await counted(
      createHttpServer((req, res) => {
        if (req.url !== '/x' && req.url !== '/y') return answer(req, res);
        held.push(res);
        if (held.length === 2) for (const r of held) r.end('ok');
      }),
      'http',
      'connection',
    );
    try {
      const times = await connectTimes(`{ targets: [{ url: "${backend.url}" }] }`, [['/x', '/y'], '/a', '/b']);
      assertPattern(times, [true, true, false, false]);
      assert.equal(backend.connections(), 2);
    } finally {
      backend.close();
    }
  });

  test('HTTP/1.1 over TLS: the handshake is part of the new connection; a reuse is null', async () => {
    const backend = await counted(
      createHttpsServer({ cert: cert.cert, key: cert.key }, answer),
      'https',
      'secureConnection',
    );
    try {
      const tls = `tls: { ca: "${ca.certPath}", serverName: backend.internal }`;
      const times = await connectTimes(`{ targets: [{ url: "${backend.url}" }], ${tls} }`, [
        '/a',
        '/b',
        '/close',
        '/c',
      ]);
      assertPattern(times, [true, false, false, true]);
      assert.equal(backend.connections(), 2);
    } finally {
      backend.close();
    }
  });

  test('HTTP/2 (h2c, and ALPN over TLS): the try that opened the session is timed, the next streams are null', async () => {
    const h2c = await counted(
      createH2Server((_req, res) => res.end('ok')),
      'http',
      'connection',
    );
    const h2 = await counted(
      createSecureServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('ok')),
      'https',
      'secureConnection',
    );
    try {
      assertPattern(await connectTimes(`{ http2: true, targets: [{ url: "${h2c.url}" }] }`, ['/a', '/b', '/c']), [
        true,
        false,
        false,
      ]);
      assert.equal(h2c.connections(), 1);
      const tls = `tls: { ca: "${ca.certPath}", serverName: backend.internal }`;
      assertPattern(await connectTimes(`{ http2: true, targets: [{ url: "${h2.url}" }], ${tls} }`, ['/a', '/b']), [
        true,
        false,
      ]);
      assert.equal(h2.connections(), 1);
    } finally {
      h2c.close();
      h2.close();
    }
  });
});
