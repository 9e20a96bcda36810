// Automatic HTTPS against Debian's pebble (a real ACME CA) with pebble-challtestsrv as its DNS: a certificate
// obtained through http-01 (answered on the http listener, redirectToHttps sparing it) and through tls-alpn-01 (on
// the https listener), the storage folder reused on restart (no new order), tls and acme on one listener, and one
// order for an instance of two workers. The served chain is checked against pebble's own root.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, test, after } from 'node:test';
import { connect } from 'node:tls';
import { acmeConfig as config, freePorts, isPlaceholder, served, start, stop } from '../helpers/acme.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { spawnGateway } from '../helpers/process.ts';
import { closedPort } from '../helpers/ports.ts';
import { request, tempDir } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

describe('with pebble', () => {
  let pebble: Pebble;
  let http: number;
  let https: number;
  before(async () => {
    [http, https] = (await freePorts(2)) as [number, number];
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
