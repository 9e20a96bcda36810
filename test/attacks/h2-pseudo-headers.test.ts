// H03 (HAProxy h2_desync_attacks.vtc c3-c6; nginx h2_pseudo_header_order.t; RFC 9113 §8.3): malformed
// pseudo-headers, sent in HTTP/2 to the h2c and the TLS listener. The row allows RST_STREAM or 400; nghttp2
// resets the stream with PROTOCOL_ERROR for most, the frame guard ends the connection with GOAWAY(PROTOCOL_ERROR)
// for those it would let by, and Turnpike answers 400 TP_BAD_REQUEST where the check is the gateway's own (a
// Host beside :authority that names another host). Nothing malformed reaches the backend; with `:authority: a`
// and `host: b` the backend never sees `b`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { ERROR, headersFrame, RawH2, type Field, type H2Target, type Outcome } from '../helpers/h2-frames.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const M: Field = [':method', 'GET'];
const S: Field = [':scheme', 'http'];
const A: Field = [':authority', 'a'];
const P = (p: string): Field => [':path', p];

const MALFORMED: [string, Field[]][] = [
  ['path without a slash', [M, S, A, P('hello-world')]],
  ['path with a request line in it', [M, S, A, P('/public/x HTTP/1.1\r\nX: y')]],
  ['path with a space', [M, S, A, P('/public/a b')]],
  ['empty path', [M, S, A, P('')]],
  ['scheme that is a URL', [M, [':scheme', 'http://localhost/?'], A, P('/public/x')]],
  ['method with a ?', [[':method', 'GET?'], S, A, P('/public/x')]],
  ['method with a space', [[':method', 'GET /admin'], S, A, P('/public/x')]],
  ['duplicate :path', [M, S, A, P('/public/x'), P('/admin/secret')]],
  ['duplicate :method', [M, [':method', 'POST'], S, A, P('/public/x')]],
  ['pseudo-header after a regular one', [M, S, A, ['x-a', '1'], P('/public/x')]],
  ['unknown pseudo-header', [M, S, A, P('/public/x'), [':foo', 'bar']]],
  ['response pseudo-header in a request', [M, S, A, P('/public/x'), [':status', '200']]],
  ['missing :path', [M, S, A]],
  ['missing :method', [S, A, P('/public/x')]],
  ['missing :scheme', [M, A, P('/public/x')]],
  ['CONNECT with a :path', [[':method', 'CONNECT'], A, P('/public/x')]],
];

function assertRefused(name: string, o: Outcome): void {
  if (o.kind === 'response') assert.equal(o.status, 400, `${name}: answered ${o.status}`);
  else if (o.kind === 'reset' || o.kind === 'goaway') assert.equal(o.code, ERROR.PROTOCOL_ERROR, name);
  else assert.fail(`${name}: closed without RST_STREAM or GOAWAY`);
}

for (const side of ['h2c', 'tls'] as const) {
  describe(`over ${side}`, () => {
    const target = (): H2Target => (side === 'h2c' ? { port: gw.http } : { port: gw.https, ca: gw.ca });
    const send = async (fields: Field[]): Promise<Outcome> => {
      const c = await RawH2.open(target());
      c.send(headersFrame(1, fields, { endStream: true }));
      const o = await c.outcome(1);
      c.close();
      return o;
    };

    test('malformed pseudo-headers are refused and never reach the backend', async () => {
      for (const [name, fields] of MALFORMED) {
        const before = backend.arrivals.length;
        assertRefused(name, await send(fields));
        assert.equal(backend.arrivals.length, before, `${name} was forwarded`);
      }
      assert.ok(!backend.raw.join('').includes('/admin/secret'));
    });

    test(':authority a with host b is refused (400); the backend never sees b', async () => {
      const before = backend.arrivals.length;
      const o = await send([M, S, A, P('/public/mismatch'), ['host', 'b']]);
      assertRefused('authority/host mismatch', o);
      assert.equal(backend.arrivals.length, before);
      assert.ok(!backend.arrivals.some((a) => a.headers.host === 'b'));
    });

    test(':authority a with the same host a is served, and the backend sees host a', async () => {
      const o = await send([M, S, A, P('/public/same'), ['host', 'a']]);
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      assert.equal(backend.arrivals.find((a) => a.url === '/public/same')?.headers.host, 'a');
    });

    test('a request with only :authority reaches the backend with that authority as its Host', async () => {
      const o = await send([M, S, [':authority', 'good.example'], P('/public/auth')]);
      assert.equal(o.kind === 'response' && o.status, 200, JSON.stringify(o));
      assert.equal(backend.arrivals.find((a) => a.url === '/public/auth')?.headers.host, 'good.example');
    });
  });
}
