// Automatic HTTPS against Debian's pebble (a real ACME CA) with pebble-challtestsrv as its DNS: a certificate
// obtained through http-01 (answered on the http listener, redirectToHttps sparing it) and through tls-alpn-01
// (on the https listener), the self-signed placeholder before that, the storage folder reused on restart (no new
// order), and a renewal with a short validity. The served chain is checked against pebble's own root.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, get as httpsGet } from 'node:https';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { spawnGateway } from '../helpers/process.ts';
import { closedPort, freePort } from '../helpers/ports.ts';
import { quietLog, request, startGatewayYaml, tempDir } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

interface Served {
  readonly serial: string;
  readonly issuer: string;
  readonly authorized: boolean;
  readonly alpn: string | false;
}

/** The certificate the gateway serves for `servername` on `port`, and whether it chains to `ca`. */
function served(port: number, servername: string, ca?: string): Promise<Served> {
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

const isPlaceholder = (s: Served) => s.issuer.endsWith('|Turnpike placeholder');

function config(o: {
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
async function start(yaml: string): Promise<Gateway> {
  const gw = await startGatewayYaml(yaml, { log: quietLog });
  gateways.push(gw);
  return gw;
}
async function stop(gw: Gateway): Promise<void> {
  gateways.splice(gateways.indexOf(gw), 1);
  await gw.stop();
}
after(() => Promise.all(gateways.map((g) => g.stop())));

describe('with pebble', () => {
  let pebble: Pebble;
  let http: number;
  let https: number;
  before(async () => {
    http = await freePort();
    https = await freePort();
    pebble = await startPebble({ httpPort: http, tlsPort: https });
  });
  after(() => pebble.stop());

  test('http-01: a certificate chained to pebble for both names, redirectToHttps sparing the challenge path; restart reuses the folder', async () => {
    const storage = tempDir();
    const yaml = config({ http, https, directory: pebble.directory, ca: pebble.caFile, storage });
    let gw = await start(yaml);
    const root = await pebble.root();
    const issued = await until(
      async () => {
        const s = await served(https, 'api.example.test', root);
        return isPlaceholder(s) ? false : s;
      },
      'the ACME certificate',
      30_000,
    );
    assert.equal(issued.authorized, true, 'chains to pebble root');
    const intermediate = new X509Certificate(await pebble.intermediate());
    assert.equal(issued.issuer.split('|')[0], /CN=([^\n]+)/.exec(intermediate.subject)![1]);
    const www = await served(https, 'www.example.test', root);
    assert.equal(www.serial, issued.serial);
    assert.equal(www.authorized, true);
    assert.equal(pebble.issued(), 1);
    // redirectToHttps spares the challenge path (an unknown token: 404), redirects the rest.
    assert.equal((await request(http, '/x', { headers: { host: 'api.example.test' } })).status, 308);
    assert.equal((await request(http, '/.well-known/acme-challenge/nope')).status, 404);
    // An https request is served with it.
    assert.equal(issued.alpn, 'http/1.1');

    await stop(gw);
    gw = await start(yaml);
    const again = await until(
      async () => {
        const s = await served(https, 'api.example.test', root);
        return isPlaceholder(s) ? false : s;
      },
      'the stored certificate',
      10_000,
    );
    assert.equal(again.serial, issued.serial, 'the stored certificate, not a new one');
    assert.equal(pebble.issued(), 1, 'no new order');
    await stop(gw);
  });

  test('tls-alpn-01: validated on the https listener (acme-tls/1), RSA key when asked', async () => {
    const storage = tempDir();
    const before = pebble.issued();
    const gw = await start(
      config({
        http: await closedPort(), // http-01 cannot succeed here: only the https listener answers
        https,
        directory: pebble.directory,
        ca: pebble.caFile,
        storage,
        challenge: 'tls-alpn-01',
        extra: '\n      keyType: rsa-2048',
      }),
    );
    const root = await pebble.root();
    // Meanwhile the challenge's own certificate (self-signed, acmeIdentifier) is served for a name being validated.
    const issued = await until(
      async () => {
        const s = await served(https, 'www.example.test', root);
        return s.authorized ? s : false;
      },
      'the ACME certificate',
      30_000,
    );
    assert.equal(pebble.issued(), before + 1);
    const pem = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: https, servername: 'api.example.test', ca: root }, () => {
        resolve(
          `-----BEGIN CERTIFICATE-----\n${s.getPeerCertificate().raw.toString('base64')}\n-----END CERTIFICATE-----\n`,
        );
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(new X509Certificate(pem).publicKey.asymmetricKeyType, 'rsa');
    await stop(gw);
  });

  test('tls and acme together: the ACME certificate for its names, the file one for the rest, client certificates asked on both', async () => {
    const { pki, serverCa, clientCa, client } = makeTestPki();
    try {
      const other = pki.server(serverCa, { names: ['other.example.test'], file: 'other' });
      const yaml = config({ http, https, directory: pebble.directory, ca: pebble.caFile, storage: tempDir() }).replace(
        '    acme:\n',
        `    tls:\n      certificates: [{ cert: ${other.certPath}, key: ${other.keyPath} }]\n      clientAuth: { mode: require, ca: ${clientCa.certPath} }\n    acme:\n`,
      );
      const gw = await start(yaml);
      const root = await pebble.root();
      const handshake = (servername: string, ca: string, withCert: boolean) =>
        new Promise<{ authorized: boolean; serial: string }>((resolve, reject) => {
          const socket = connect(
            {
              host: '127.0.0.1',
              port: https,
              servername,
              ca,
              rejectUnauthorized: false,
              ...(withCert ? { cert: client.cert, key: client.key } : {}),
            },
            () => {
              // TLS 1.3: a refused client certificate arrives as an alert after the client's handshake ends.
              socket.once('data', () => undefined);
              socket.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
              socket.once('end', () =>
                resolve({ authorized: socket.authorized, serial: socket.getPeerCertificate().serialNumber }),
              );
            },
          );
          socket.on('error', reject);
        });
      const acmeCert = await until(
        async () => {
          const s = await handshake('api.example.test', root, true);
          return s.authorized ? s : false;
        },
        'the ACME certificate',
        30_000,
      );
      assert.notEqual(acmeCert.serial, other.serial.toUpperCase());
      const file = await handshake('other.example.test', serverCa.cert, true);
      assert.equal(file.authorized, true);
      assert.equal(file.serial, other.serial);
      // Without a client certificate, both names refuse the handshake.
      await assert.rejects(handshake('api.example.test', root, false));
      await assert.rejects(handshake('other.example.test', serverCa.cert, false));
      await stop(gw);
    } finally {
      pki.remove();
    }
  });

  test('workers: 2 with a storage folder: one order for the instance, every worker serves it (tls-alpn-01: a validation landing on the worker that did not order is answered too)', async () => {
    const before = pebble.issued();
    const yaml = config({
      http,
      https,
      directory: pebble.directory,
      ca: pebble.caFile,
      storage: tempDir(),
      challenge: 'tls-alpn-01',
    });
    const gw = await spawnGateway(`workers: 2\n${yaml}`, { listeners: 2, startTimeoutMs: 20_000 });
    try {
      const root = await pebble.root();
      const first = await until(
        async () => {
          const s = await served(https, 'api.example.test', root);
          return s.authorized ? s : false;
        },
        'the ACME certificate',
        30_000,
      );
      // New connections spread over the workers' sockets (SO_REUSEPORT): all get the one certificate once the
      // worker that waited has read it from the folder (its next poll, within a second).
      await until(
        async () => {
          for (let i = 0; i < 8; i++)
            if ((await served(https, 'www.example.test', root)).serial !== first.serial) return false;
          return true;
        },
        'every worker serving it',
        10_000,
      );
      assert.equal(pebble.issued(), before + 1);
      assert.equal(gw.logLines.filter((l) => l.includes('ACME: certificate issued')).length, 1);
    } finally {
      await gw.stop();
    }
  });
});

test('dns-01: a wildcard certificate, the TXT records set and removed by the hook (pebble-challtestsrv set-txt/clear-txt)', async () => {
  const pebble = await startPebble({ httpPort: await closedPort(), tlsPort: await closedPort() });
  try {
    const dir = tempDir();
    const calls = join(dir, 'calls.log');
    // The hook: `hook set|unset DOMAIN VALUE`, here a script posting to the challenge server's management API.
    const script = join(dir, 'dns-hook.mjs');
    writeFileSync(
      script,
      `import { appendFileSync } from 'node:fs';
const [action, domain, value] = process.argv.slice(2);
appendFileSync(${JSON.stringify(calls)}, action + ' ' + domain + '\\n');
const host = '_acme-challenge.' + domain + '.';
const res = await fetch(${JSON.stringify(pebble.challtestsrv)} + (action === 'set' ? '/set-txt' : '/clear-txt'), {
  method: 'POST',
  body: JSON.stringify(action === 'set' ? { host, value } : { host }),
});
if (!res.ok) process.exit(1);
`,
    );
    const hook = join(dir, 'dns-hook');
    writeFileSync(hook, `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`, { mode: 0o755 });
    const https = await freePort();
    const gw = await start(
      config({
        http: 0,
        https,
        directory: pebble.directory,
        ca: pebble.caFile,
        storage: tempDir(),
        challenge: 'dns-01',
        extra: `\n      hook: ${hook}`,
      }).replace('domains: [api.example.test, www.example.test]', 'domains: [example.test, "*.example.test"]'),
    );
    const root = await pebble.root();
    const issued = await until(
      async () => {
        const s = await served(https, 'any.example.test', root);
        return s.authorized ? s : false;
      },
      'the wildcard certificate',
      30_000,
    );
    assert.equal((await served(https, 'example.test', root)).serial, issued.serial);
    assert.deepEqual(readFileSync(calls, 'utf8').trim().split('\n').sort(), [
      'set example.test',
      'set example.test',
      'unset example.test',
      'unset example.test',
    ]);
    await stop(gw);
  } finally {
    await pebble.stop();
  }
});

test('the placeholder serves while the CA cannot be reached; the failed order is counted', async () => {
  const storage = tempDir();
  const gw = await start(
    config({
      http: 0,
      https: 0,
      directory: `https://127.0.0.1:${await closedPort()}/dir`,
      ca: '/dev/null',
      storage,
    }).replace('routes:', 'admin: { address: 127.0.0.1, port: 0 }\nmetrics: {}\nroutes:'),
  );
  const s = await served(gw.port('websecure'), 'api.example.test');
  assert.ok(isPlaceholder(s), s.issuer);
  const metrics = async () => (await request(gw.admin!.port, '/metrics')).body;
  await until(
    async () => /turnpike_acme_orders_total\{listener="websecure",outcome="failed"\} [1-9]/.test(await metrics()),
    'a failed order counted',
    10_000,
  );
  assert.match(await metrics(), /turnpike_certificate_expiry_seconds\{listener="websecure",name="api.example.test"\}/);
  const listed = JSON.parse((await request(gw.admin!.port, '/api/certificates')).body) as unknown;
  assert.match(
    JSON.stringify(listed),
    /"listener":"websecure","file":"acme \(placeholder\)","names":\["api.example.test","www.example.test"\],"issuer":"CN=api.example.test, O=Turnpike placeholder"/,
  );
  await stop(gw);
});

test('renewal: a certificate inside renewBefore is replaced, and served without a restart', async () => {
  const http = await freePort();
  const https = await freePort();
  const pebble = await startPebble({ httpPort: http, tlsPort: https, validitySeconds: 12 });
  try {
    const gw = await start(
      config({
        http,
        https,
        directory: pebble.directory,
        ca: pebble.caFile,
        storage: tempDir(),
        extra: '\n      renewBefore: 6s',
      }),
    );
    const root = await pebble.root();
    const first = await until(
      async () => {
        const s = await served(https, 'api.example.test', root);
        return isPlaceholder(s) ? false : s;
      },
      'the first certificate',
      30_000,
    );
    // A keep-alive connection made with the first certificate outlives the swap.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: root });
    const get = () =>
      new Promise<{ status: number; reused: boolean; serial: string }>((resolve, reject) => {
        const req = httpsGet(
          {
            host: '127.0.0.1',
            port: https,
            servername: 'api.example.test',
            path: '/',
            agent,
            headers: { host: 'api.example.test' },
          },
          (res) => {
            res.resume();
            const socket = res.socket as TLSSocket;
            const serial = socket.getPeerCertificate().serialNumber;
            res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket, serial }));
          },
        );
        req.on('error', reject);
      });
    assert.deepEqual(await get(), { status: 200, reused: false, serial: first.serial });
    const second = await until(
      async () => {
        const s = await served(https, 'api.example.test', root);
        return s.serial !== first.serial ? s : false;
      },
      'the renewed certificate',
      30_000,
    );
    assert.equal(second.authorized, true);
    assert.ok(pebble.issued() >= 2);
    assert.deepEqual(await get(), { status: 200, reused: true, serial: first.serial }, 'the open connection goes on');
    agent.destroy();
    await stop(gw);
  } finally {
    await pebble.stop();
  }
});
