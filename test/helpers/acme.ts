// What the ACME tests share: the certificate a gateway serves for a name (and whether it chains to a CA), the
// placeholder's mark, and the config of an http listener beside an https one with acme: (test/e2e/acme*.test.ts).
import { after } from 'node:test';
import { connect, type PeerCertificate } from 'node:tls';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { freePort } from './ports.ts';
import { quietLog, startGatewayYaml } from './servers.ts';

/** `n` different free ports (freePort alone may hand out a port twice while none is bound yet). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface Served {
  readonly serial: string;
  readonly issuer: string;
  readonly authorized: boolean;
  readonly alpn: string | false;
}

/** The certificate the gateway serves for `servername` on `port`, and whether it chains to `ca`. */
export function served(port: number, servername: string, ca?: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        servername,
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
        ...(ca ? { ca } : {}),
      },
      () => {
        const cert: PeerCertificate = socket.getPeerCertificate();
        resolve({
          serial: cert.serialNumber,
          issuer: `${cert.issuer.CN ?? ''}|${cert.issuer.O ?? ''}`,
          authorized: socket.authorized,
          alpn: socket.alpnProtocol ?? false,
        });
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

export const isPlaceholder = (s: Served) => s.issuer.endsWith('|Turnpike placeholder');

export function acmeConfig(o: {
  http: number;
  https: number;
  directory: string;
  ca: string;
  storage: string;
  challenge?: string;
  extra?: string;
}): string {
  return `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: ${o.http}, redirectToHttps: true }
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: ${o.https}
    acme:
      directory: "${o.directory}"
      ca: ${o.ca}
      email: ops@example.com
      domains: [api.example.test, www.example.test]
      challenge: ${o.challenge ?? 'http-01'}
      storage: ${o.storage}${o.extra ?? ''}
routes: [{ name: all, match: { path: / }, respond: { status: 200, body: "ok" } }]
`;
}

const gateways: Gateway[] = [];
/** Starts a gateway in process (log silenced), stopped after the file's tests unless stop() was called. */
export async function start(yaml: string): Promise<Gateway> {
  const gw = await startGatewayYaml(yaml, { log: quietLog });
  gateways.push(gw);
  return gw;
}
export async function stop(gw: Gateway): Promise<void> {
  gateways.splice(gateways.indexOf(gw), 1);
  await gw.stop();
}
after(() => Promise.all(gateways.map((g) => g.stop())));
