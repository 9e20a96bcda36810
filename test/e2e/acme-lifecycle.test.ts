// Automatic HTTPS against pebble, the rest of the life of a certificate: dns-01 through a hook (a wildcard), the
// self-signed placeholder while the CA cannot be reached, a renewal with a short validity swapped in without
// dropping an open connection.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { acmeConfig as config, freePorts, isPlaceholder, served, start, stop } from '../helpers/acme.ts';
import { startPebble } from '../helpers/pebble.ts';
import { closedPort, freePort } from '../helpers/ports.ts';
import { request, tempDir } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

test('dns-01: a wildcard certificate, the TXT records set and removed by the hook (pebble-challtestsrv set-txt/clear-txt)', async () => {
  const pebble = await startPebble({ httpPort: await closedPort(), tlsPort: await closedPort() });
  try {
    const dir = tempDir();
    const calls = join(dir, 'calls.log');
    // The hook: `hook set|unset DOMAIN VALUE`, here a script posting to the challenge server's management API.
    const script = join(dir, 'dns-hook.mjs');
    writeFileSync(
      script,
      `import { appendFileSync, readFileSync } from 'node:fs';
const [action, domain, value] = process.argv.slice(2);
const calls = ${JSON.stringify(calls)};
appendFileSync(calls, action + ' ' + domain + '\\n');
const host = '_acme-challenge.' + domain + '.';
// clear-txt removes every value of the host: only once the last one is unset (the other may still be validated).
const lines = readFileSync(calls, 'utf8').split('\\n');
const open = lines.filter((l) => l.startsWith('set ')).length - lines.filter((l) => l.startsWith('unset ')).length;
if (action === 'unset' && open > 0) process.exit(0);
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
    // Two records at once (the name and its wildcard), each removed again.
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
  const [http, https] = (await freePorts(2)) as [number, number];
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
