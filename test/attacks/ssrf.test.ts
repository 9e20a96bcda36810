// D02 (HAProxy CONNECT validation, SSRF guidance): Turnpike has no dynamic upstreams: a request can only ever reach
// the targets its route names in the config. Absolute-form targets and Host values naming internal addresses choose
// a route (by host) and never a destination; CONNECT is refused 405 TP_METHOD_NOT_ALLOWED (over HTTP/2 too); an upstream's redirect is relayed to the client,
// never followed. A sentinel listener on 127.0.0.1 stands for the internal hosts and must see nothing. The row's
// DNS part (an allow-list enforced after resolution and pinned per connection, no rebinding: a discovered name that
// DNS maps to 10.0.0.1, 127.0.0.1 or 169.254.169.254) is dns-rebinding.test.ts, against discovery's
// allowNetworks/denyNetworks.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let sentinel: Server;
let sentinelPort: number;
let touched = 0;
let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;
let closedGw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  sentinel = createServer((s) => {
    touched++;
    s.destroy();
  });
  sentinel.listen(0, '127.0.0.1');
  await once(sentinel, 'listening');
  sentinelPort = (sentinel.address() as AddressInfo).port;
  // The backend redirects /redirect to the sentinel, as a compromised or careless backend might.
  backend = await startRecordingBackend((req, res, a) => {
    if (a.url.includes('redirect')) {
      res.writeHead(302, { location: `http://127.0.0.1:${sentinelPort}/latest/meta-data/`, 'content-length': 0 });
      res.end();
      return;
    }
    const body = JSON.stringify({ url: a.url, host: a.headers.host });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  gw = await startAttackGateway({ upstream: backend.url });
  closedGw = await startAttackGateway({ upstream: backend.url, noCatchAll: true });
});
after(async () => {
  await gw.stop();
  await closedGw.stop();
  await backend.close();
  sentinel.close();
});

const status = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

test('absolute-form targets naming internal hosts go to the configured upstream only, never to those hosts', async () => {
  const internal = [
    'http://169.254.169.254/latest/meta-data/',
    `http://127.0.0.1:${sentinelPort}/`,
    `http://localhost:${sentinelPort}/`,
    `http://[::1]:${sentinelPort}/`,
    `http://2130706433:${sentinelPort}/`,
    `http://0x7f.1:${sentinelPort}/`,
    `http://0.0.0.0:${sentinelPort}/`,
    `http://[::ffff:127.0.0.1]:${sentinelPort}/`,
  ];
  for (const target of internal) {
    const before = backend.arrivals.length;
    const { text } = await rawExchange(gw.http, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    // The open catch-all takes it (by path): the one configured backend answers, or the target is refused.
    assert.ok([200, 400].includes(status(text)), `${target}: ${text}`);
    if (status(text) === 200) assert.equal(backend.arrivals.length, before + 1, target);
  }
  assert.equal(touched, 0, 'an internal host was contacted');
});

test('without an open route, an absolute-form target for an unknown host is 404 and nothing is contacted', async () => {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(
    closedGw.http,
    'GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(status(text), 404, text);
  assert.match(text, /"code":"TP_ROUTE_NOT_FOUND"/);
  assert.equal(backend.arrivals.length, before);
  assert.equal(touched, 0);
});

test('Host headers naming internal addresses choose no destination', async () => {
  for (const host of ['127.0.0.1', '2130706433', '0x7f.1', '[::1]', '[::ffff:127.0.0.1]', '0.0.0.0', 'localhost.']) {
    const { text } = await rawExchange(
      gw.http,
      `GET /public/x HTTP/1.1\r\nHost: ${host}:${sentinelPort}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(status(text), 200, `${host}: ${text}`);
  }
  assert.equal(touched, 0);
});

test('CONNECT to an internal address is refused and nothing is contacted', async () => {
  for (const authority of [
    `127.0.0.1:${sentinelPort}`,
    '127.0.0.1:22',
    '169.254.169.254:80',
    `[::1]:${sentinelPort}`,
  ]) {
    const before = backend.arrivals.length;
    const { text, closed } = await rawExchange(
      gw.http,
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`,
      2000,
    );
    assert.ok(!/^HTTP\/1\.1 2\d\d/.test(text), `${authority}: ${text}`);
    assert.equal(status(text), 405, `${authority}: ${JSON.stringify(text)}`);
    assert.match(text, /"code":"TP_METHOD_NOT_ALLOWED"/);
    assert.equal(closed, true);
    assert.equal(backend.arrivals.length, before);
  }
  assert.equal(touched, 0);
});

test('CONNECT over HTTP/2 is refused 405 and nothing is contacted', async () => {
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  session.on('error', () => {});
  try {
    const before = backend.arrivals.length;
    const outcome = await new Promise<string>((resolve) => {
      const req = session.request(
        { ':method': 'CONNECT', ':authority': `127.0.0.1:${sentinelPort}` },
        { endStream: false },
      );
      req.on('response', (h) => resolve(String(h[':status'])));
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      req.on('close', () => resolve(`closed ${req.rstCode}`));
      req.write('SSH-2.0-probe\r\n');
    });
    assert.equal(outcome, '405');
    assert.equal(backend.arrivals.length, before);
  } finally {
    session.destroy();
  }
  assert.equal(touched, 0);
});

test("an upstream's redirect to an internal address is relayed to the client, never followed", async () => {
  const { text } = await rawExchange(gw.http, 'GET /public/redirect HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(status(text), 302, text);
  assert.match(text, new RegExp(`\\r\\nlocation: http://127\\.0\\.0\\.1:${sentinelPort}/latest/meta-data/\\r\\n`, 'i'));
  assert.equal(touched, 0);
});
