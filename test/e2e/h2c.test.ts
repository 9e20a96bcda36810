// h2c: a plain listener with `h2c: true` serves HTTP/2 with prior knowledge and HTTP/1.1 on the same port,
// through the same routes and plugins.
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { test } from 'node:test';
import { h2Request } from '../helpers/h2.ts';
import { json, request, startEchoBackend, startGatewayYaml } from '../helpers/servers.ts';

test('h2c with prior knowledge and HTTP/1.1 share a plain listener, routes and plugins', async () => {
  const echo = await startEchoBackend('app');
  const gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0, h2c: true }]
upstreams: { app: { targets: [{ url: "${echo.url}" }] } }
routes:
  - name: app
    match: { path: / }
    upstream: app
    plugins: [{ headers: { response: { set: { x-route: app } } } }]
`);
  const session = connect(`http://127.0.0.1:${gw.port()}`);
  try {
    // Bodies without content-length, as HTTP/2 allows.
    const results = await Promise.all(
      ['/a', '/b', '/c'].map((path) =>
        h2Request(session, { ':path': path, ':method': 'POST', 'content-type': 'text/plain' }, `body of ${path}`),
      ),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.route, 'app');
      const seen = JSON.parse(r.body) as { url: string; body: string; headers: Record<string, string> };
      assert.equal(seen.url, ['/a', '/b', '/c'][i]);
      assert.equal(seen.body, `body of ${seen.url}`);
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    }
    const h1 = await request(gw.port(), '/h1');
    assert.equal(h1.status, 200);
    assert.equal(json(h1).url, '/h1');
  } finally {
    session.close();
    await gw.stop();
    await echo.close();
  }
});
