// S11 (HAProxy http_transfer_encoding.vtc s1/s2, c11): response framing from a backend. A response with both
// Transfer-Encoding: chunked and Content-Length: the row expects HAProxy's "TE wins, extra bytes discarded,
// connection not reused"; Turnpike refuses it with 502 instead (its HTTP/1 parser, llhttp in strict mode, refuses
// the message, and RFC 9112 §6.3 says such a message "ought to be handled as an error"): the safety the row asks
// for holds either way (no smuggled response ever reaches a client, the connection is never reused).
// `Transfer-Encoding: chunked, chunked` is a 502, as the row asks, and so is any coding but `chunked` alone.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';
import { problemCode, rawRequest } from '../helpers/upstream-faults.ts';

/** What the backend answers to a request for /public/<name>. */
const ANSWERS: Record<string, string> = {
  tecl:
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nX: smuggled\r\n\r\n',
  cltefirst:
    'HTTP/1.1 200 OK\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nX: smuggled\r\n\r\n',
  tete: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  twote: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  gzipchunked: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  identity: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello',
  xchunked: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  twocl: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  cllist: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!',
  clsign: 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello',
  badchunk: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n',
  foldte: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello',
  // Legal: the coding's name is case-insensitive, and a response may carry more bytes after its end.
  upper: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  extra:
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nX: smuggled\r\nContent-Length: 9\r\n\r\nsmuggled!',
};

let backend: ScriptedBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startScriptedBackend((socket: Socket, _conn, head) => {
    let answered = 0;
    // Every request on the connection is answered from its path (a reused connection is visible in `raw`).
    socket.on('data', () => {
      const heads = backend.raw[_conn]!.split('\r\n\r\n').slice(0, -1);
      for (; answered < heads.length; answered++) {
        const name = /^GET \/public\/(\w+)/.exec(heads[answered]!)?.[1] ?? 'ok';
        socket.write(ANSWERS[name] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine');
      }
    });
    void head;
  });
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const get = (name: string) =>
  rawRequest(gw.http, `GET /public/${name} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);

/** The request that follows on the gateway's pooled connections gets the backend's genuine answer. */
async function nextIsGenuine(): Promise<void> {
  const r = await get('ok');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body, 'genuine');
  assert.ok(!r.text.includes('smuggled'), r.text);
}

/** How many requests each backend connection carried. */
const requestsPerConnection = (): number[] => backend.raw.map((t) => t.split('\r\n\r\n').length - 1);

for (const name of ['tecl', 'cltefirst']) {
  test(`a response with both Transfer-Encoding and Content-Length (${name}) is a 502 and its tail never answers anyone`, async () => {
    const before = backend.connections();
    const r = await get(name);
    assert.equal(r.status, 502, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
    assert.ok(!r.text.includes('smuggled'), r.text);
    assert.ok(!r.text.includes(String(backend.port)), 'the backend address leaked');
    await nextIsGenuine();
    // The poisoned connection carried one request and was not reused.
    assert.equal(requestsPerConnection()[before], 1);
  });
}

for (const name of ['tete', 'twote', 'gzipchunked', 'identity', 'xchunked']) {
  test(`a response with a Transfer-Encoding other than chunked alone (${name}) is a 502`, async () => {
    const before = backend.connections();
    const r = await get(name);
    assert.equal(r.status, 502, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
    assert.ok(!r.text.includes('hello'), r.text);
    await nextIsGenuine();
    assert.equal(requestsPerConnection()[before], 1);
  });
}

for (const name of ['twocl', 'cllist', 'clsign', 'foldte']) {
  test(`a response with broken framing (${name}) is a 502 and the connection is not reused`, async () => {
    const before = backend.connections();
    const r = await get(name);
    assert.equal(r.status, 502, r.text);
    assert.equal(problemCode(r), 'TP_UPSTREAM_BAD_RESPONSE');
    await nextIsGenuine();
    assert.equal(requestsPerConnection()[before], 1);
  });
}

test('a chunked body whose framing breaks after the head is never completed: the client connection is cut', async () => {
  const before = backend.connections();
  const r = await get('badchunk');
  assert.equal(r.closed, true);
  assert.ok(!r.text.includes('hello') && !r.text.endsWith('0\r\n\r\n'), r.text);
  await nextIsGenuine();
  assert.equal(requestsPerConnection()[before], 1);
});

test('Transfer-Encoding: Chunked (any case) is relayed as a normal chunked body', async () => {
  const r = await get('upper');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body, '5\r\nhello\r\n0\r\n\r\n');
});

test('bytes after a complete response never become the answer to the next request', async () => {
  const r = await get('extra');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body, 'hello');
  for (let i = 0; i < 3; i++) await nextIsGenuine();
});
