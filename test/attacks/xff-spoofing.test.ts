// X02 (Envoy use_remote_address / xff_num_trusted_hops, Traefik trustedIPs): X-Forwarded-For spoofing. From a peer
// outside `trustedProxies` the client address used for ACLs, rate limits and logs is the peer itself, and the
// backend gets `X-Forwarded-For: <peer>` (the row allows append or replace: Turnpike replaces, so a backend that
// reads the leftmost entry cannot be fooled). `Forwarded` and the client-address headers of other proxies and CDNs
// (X-Real-IP, True-Client-IP, CF-Connecting-IP, ...) are not forwarded from an untrusted peer. From a trusted peer
// the rightmost address that is not itself trusted is the client, and the chain is passed on with the peer appended.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { nextEvent } from '../helpers/events.ts';
import { parseResponses } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type Arrival, type RecordingBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

let backend: RecordingBackend;
let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
let port: number;

const UNTRUSTED = '127.0.0.2';
const TRUSTED = '127.0.0.3';

before(async () => {
  backend = await startRecordingBackend();
  gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: ["${TRUSTED}/32", "10.1.0.0/16"] }]
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes:
  - { name: internal, match: { path: /internal }, upstream: app, plugins: [{ ip-filter: { allow: [10.0.0.0/8] } }] }
  - { name: blocked, match: { path: /blocked }, upstream: app, plugins: [{ ip-filter: { deny: ["${UNTRUSTED}/32"] } }] }
  - { name: public, match: { path: /public }, upstream: app }
`);
  port = gateway.port('web');
});
after(async () => {
  await gateway.stop();
  await backend.close();
});

let n = 0;
/** A request from `from` (a loopback source address); the status, what arrived, and the client IP the gateway used. */
async function from(source: string, path: string, headers: string) {
  const url = `${path}?n=${n++}`;
  const ended = nextEvent(
    'turnpike:request:end',
    gateway.runtime.gateway,
    (e) => (e.ctx as { path: string; query: string }).query === url.slice(url.indexOf('?')),
    `the end of ${url}`,
  );
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: source });
    let t = '';
    socket.on('data', (d: Buffer) => (t += d.toString('latin1')));
    socket.on('close', () => resolve(t));
    socket.on('error', reject);
    socket.write(`GET ${url} HTTP/1.1\r\nHost: a\r\n${headers}Connection: close\r\n\r\n`);
  });
  const event = await ended;
  const arrival: Arrival | undefined = backend.arrivals.find((a) => a.url === url);
  return { status: parseResponses(text)[0]!.status, arrival, clientIp: (event.ctx as { clientIp: string }).clientIp };
}

const SPOOFS = [
  'X-Forwarded-For: 10.0.0.1\r\n',
  'X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n',
  'X-Forwarded-For: 10.0.0.1, 10.1.0.1\r\n',
  'Forwarded: for=10.0.0.1\r\n',
  'X-Real-IP: 10.0.0.1\r\n',
  'True-Client-IP: 10.0.0.1\r\n',
  'CF-Connecting-IP: 10.0.0.1\r\n',
  'X-Client-IP: 10.0.0.1\r\nX-Cluster-Client-IP: 10.0.0.1\r\n',
];

test('from an untrusted peer, no spoofed header makes the client address anything but the peer', async () => {
  for (const spoof of SPOOFS) {
    const internal = await from(UNTRUSTED, '/internal/x', spoof);
    assert.equal(internal.status, 403, `${spoof}: the allow-list sees the real peer`);
    assert.equal(internal.clientIp, UNTRUSTED, 'the access log and rate limits see the real peer');
    assert.equal((await from(UNTRUSTED, '/blocked/x', spoof)).status, 403, `${spoof}: the deny-list sees the peer`);
  }
});

test('from an untrusted peer the backend gets X-Forwarded-For replaced by the peer and no other client address', async () => {
  for (const spoof of SPOOFS) {
    const { status, arrival } = await from(UNTRUSTED, '/public/x', spoof);
    assert.equal(status, 200);
    const h = arrival!.headers;
    assert.equal(h['x-forwarded-for'], UNTRUSTED, spoof);
    for (const name of [
      'forwarded',
      'x-real-ip',
      'true-client-ip',
      'cf-connecting-ip',
      'x-client-ip',
      'x-cluster-client-ip',
    ]) {
      assert.equal(h[name], undefined, `${name} from an untrusted peer reached the backend`);
    }
    assert.ok(!JSON.stringify(arrival!.rawHeaders).includes('10.0.0.'), `${spoof}: ${arrival!.rawHeaders.join(' ')}`);
  }
});

test('from a trusted peer the rightmost untrusted address is the client, and the chain goes on with the peer', async () => {
  const cases: [string, string, number][] = [
    ['X-Forwarded-For: 10.0.0.1\r\n', '10.0.0.1', 200],
    ['X-Forwarded-For: 192.0.2.9, 10.0.0.1\r\n', '10.0.0.1', 200],
    ['X-Forwarded-For: 10.0.0.1, 10.1.0.1\r\n', '10.0.0.1', 200],
    ['X-Forwarded-For: 10.0.0.1, 192.0.2.9\r\n', '192.0.2.9', 403],
    ['X-Forwarded-For: 192.0.2.9\r\nX-Forwarded-For: 10.0.0.1\r\n', '10.0.0.1', 200],
  ];
  for (const [xff, client, status] of cases) {
    const r = await from(TRUSTED, '/internal/x', xff);
    assert.equal(r.clientIp, client, xff);
    assert.equal(r.status, status, xff);
    if (status === 200) assert.match(r.arrival!.headers['x-forwarded-for'] as string, new RegExp(`, ${TRUSTED}$`));
  }
  const real = await from(TRUSTED, '/public/x', 'X-Real-IP: 10.0.0.7\r\n');
  assert.equal(real.arrival!.headers['x-real-ip'], '10.0.0.7', 'a trusted proxy may pass its client address on');
});
