// C03 (HAProxy cache, nginx proxy_cache_valid): the cache never stores an error or a partial response: a 200 cut
// short by the backend (U01), 5xx (with and without max-age), a 206 to a request that asked for no range, and a
// response over maxObjectSize (1mb on the catalogue's /cache route; with Content-Length or chunked). After each,
// the same request goes to the backend again. A sound 200 is stored (the control that shows the test can tell).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import type { ScriptedBackend } from '../helpers/recording-backend.ts';
import { rawRequest, requestCount, startRequestScriptedBackend } from '../helpers/upstream-faults.ts';

const BIG = 1024 * 1024 + 1;

const ANSWERS: Record<string, () => string> = {
  truncated: () => `HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nCache-Control: max-age=60\r\n\r\n${'t'.repeat(40010)}`,
  truncatedChunked: () =>
    `HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n${'u'.repeat(1024)}\r\n`,
  e500: () => 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops',
  e500maxage: () => 'HTTP/1.1 500 Internal Server Error\r\nCache-Control: max-age=60\r\nContent-Length: 4\r\n\r\noops',
  e502: () => 'HTTP/1.1 502 Bad Gateway\r\nCache-Control: public, max-age=60\r\nContent-Length: 4\r\n\r\noops',
  e503: () =>
    'HTTP/1.1 503 Service Unavailable\r\nCache-Control: max-age=60\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\noops',
  partial: () =>
    'HTTP/1.1 206 Partial Content\r\nCache-Control: max-age=60\r\nContent-Range: bytes 0-3/100\r\nContent-Length: 4\r\n\r\npart',
  bigLength: () => `HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: ${BIG}\r\n\r\n${'b'.repeat(BIG)}`,
  bigChunked: () =>
    `HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n${BIG.toString(16)}\r\n${'c'.repeat(BIG)}\r\n0\r\n\r\n`,
  sound: () => 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\nsound',
};

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRequestScriptedBackend((socket, { path }) => {
    const name = path.split('/').pop()!;
    const answer = ANSWERS[name]!();
    if (name.startsWith('truncated')) socket.end(answer);
    else socket.write(answer);
  });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const get = (path: string) => rawRequest(gw.http, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);

test('a sound 200 is stored: the second request is a hit and does not reach the backend (control)', async () => {
  await get('/cache/sound');
  const second = await get('/cache/sound');
  assert.equal(second.headers['x-cache'], 'HIT');
  assert.equal(requestCount(backend, '/cache/sound'), 1);
});

for (const [name, what] of [
  ['truncated', 'a 200 the backend cut short'],
  ['truncatedChunked', 'a chunked 200 without its last chunk'],
  ['e500', 'a 500'],
  ['e500maxage', 'a 500 with max-age'],
  ['e502', 'a 502 with public, max-age'],
  ['e503', 'a 503 with max-age'],
  ['partial', 'a 206 to a request without Range'],
  ['bigLength', 'a 200 over maxObjectSize with Content-Length'],
  ['bigChunked', 'a chunked 200 that grows over maxObjectSize'],
] as const) {
  test(`${what} is not stored: the next request goes to the backend`, async () => {
    const path = `/cache/${name}`;
    const first = await get(path);
    const second = await get(path);
    assert.notEqual(second.headers['x-cache'], 'HIT', second.text.slice(0, 300));
    assert.equal(second.status, first.status);
    assert.equal(requestCount(backend, path), 2);
  });
}
