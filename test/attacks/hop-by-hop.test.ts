// X01 (Traefik forwardedHeaders.connection; RFC 9110 §7.6.1): hop-by-hop abuse, a client naming in `Connection` the
// headers it wants a proxy to strip. Headers the client sent and listed are removed (they are hop-by-hop), but
// what the gateway itself sends (X-Forwarded-*, the request id, the consumer identity, Host) is added after that
// and always reaches the backend; authentication reads the client's headers before any of this, so listing
// `Authorization` or the API key header changes nothing of the decision. `Content-Length`, `Transfer-Encoding` and
// `Host` listed in Connection are ignored: the body is framed upstream as it was received.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_KEY, startAttackGateway } from '../helpers/attack-gateway.ts';
import { exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type Arrival, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url, apiRequestsPerMinute: 1000 });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

let n = 0;
async function send(path: string, headers: string, body = ''): Promise<{ status: number; arrival?: Arrival }> {
  const url = `${path}${path.includes('?') ? '&' : '?'}n=${n++}`;
  const method = body === '' ? 'GET' : 'POST';
  const length = body === '' ? '' : `Content-Length: ${body.length}\r\n`;
  const r = await exchange(gw.http, `${method} ${url} HTTP/1.1\r\nHost: a\r\n${length}${headers}\r\n\r\n${body}`);
  assert.equal(r.responses.length, 1, r.text);
  return { status: r.responses[0]!.status, arrival: backend.arrivals.find((a) => a.url === url) };
}

test('Connection: close, X-Forwarded-For removes the client XFF but the gateway XFF still reaches the backend', async () => {
  const { status, arrival } = await send(
    '/public/x',
    'X-Forwarded-For: 10.9.9.9\r\nConnection: close, X-Forwarded-For',
  );
  assert.equal(status, 200);
  assert.equal(arrival!.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(arrival!.headers['x-forwarded-proto'], 'http');
});

test('listing the request id, forwarded headers and Host keeps the gateway-generated ones', async () => {
  const { arrival } = await send(
    '/public/x',
    'X-Request-Id: client-id\r\nConnection: close, X-Request-Id, X-Forwarded-Host, X-Forwarded-Proto, Host',
  );
  assert.equal(arrival!.headers['x-request-id'], 'client-id', 'a valid client request id is kept, not stripped');
  assert.equal(arrival!.headers['x-forwarded-host'], 'a');
  assert.equal(arrival!.headers['x-forwarded-proto'], 'http');
  assert.equal(arrival!.headers.host, 'a');
});

test('Connection: keep-alive, Authorization authenticates with the token and strips it upstream', async () => {
  const token = await gw.token();
  const ok = await send('/api/x', `Authorization: Bearer ${token}\r\nConnection: close, Authorization`);
  assert.equal(ok.status, 200);
  assert.equal(ok.arrival!.headers.authorization, undefined);
  const none = await send('/api/x', 'Connection: close, Authorization');
  assert.equal(none.status, 401);
  assert.equal(none.arrival, undefined);
});

test('listing the API key header neither blocks nor grants access; the identity header still reaches the backend', async () => {
  const ok = await send('/admin/x', `X-Api-Key: ${ADMIN_KEY}\r\nConnection: close, X-Api-Key, X-Consumer-Name`);
  assert.equal(ok.status, 200);
  assert.equal(ok.arrival!.headers['x-consumer-name'], 'operator');
  assert.equal(ok.arrival!.headers['x-api-key'], undefined);
  const spoof = await send('/admin/x', 'X-Consumer-Name: operator\r\nConnection: close, X-Real-IP, X-Consumer-Name');
  assert.equal(spoof.status, 401);
  const open = await send('/public/x', 'X-Consumer-Name: operator\r\nConnection: close, X-Real-IP');
  assert.equal(open.arrival!.headers['x-consumer-name'], undefined, 'a client-sent identity is never forwarded');
});

test('Content-Length or Transfer-Encoding in Connection is ignored: the body arrives whole and framed', async () => {
  for (const listed of ['Content-Length', 'Transfer-Encoding', 'content-length, transfer-encoding, host']) {
    const { status, arrival } = await send('/public/body', `Connection: close, ${listed}`, 'hello world');
    assert.equal(status, 200);
    assert.equal(arrival!.body.toString(), 'hello world');
    assert.equal(arrival!.complete, true);
    assert.equal(arrival!.headers['content-length'], '11', listed);
  }
});

test('a header the client listed in Connection is removed upstream', async () => {
  const { arrival } = await send('/public/x', 'X-Secret-Hop: 1\r\nX-Kept: 2\r\nConnection: close, X-Secret-Hop');
  assert.equal(arrival!.headers['x-secret-hop'], undefined);
  assert.equal(arrival!.headers['x-kept'], '2');
});
