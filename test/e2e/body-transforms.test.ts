// xml and json-transform through the gateway: the legacy-orders route (a JSON client in front of an XML
// backend) verbatim, composed with compress and cache, DOCTYPE refused, bodies that do not parse, maxBodySize.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { assertProblem } from '../helpers/problem.ts';
import { requestBytes, request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import type { Gateway } from '../../src/index.ts';

const ORDER_XML = `<?xml version="1.0" encoding="UTF-8"?>
<order status="open"><internalId>int-77</internalId><custNo>00042</custNo>
<items><sku>A&amp;B</sku><qty>2</qty><cost>3.5</cost></items><items><sku>C</sku><qty>1</qty><cost>9</cost></items></order>`;
const EXPECTED = {
  '@_status': 'open',
  customerId: '00042',
  items: [
    { sku: 'A&B', qty: 2 },
    { sku: 'C', qty: 1 },
  ],
};

let backend: Backend;
let gw: Gateway;
/** What the backend received, by path. */
const received = new Map<string, { headers: IncomingMessage['headers']; body: string }>();

before(async () => {
  backend = await startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      received.set(path, { headers: req.headers, body: Buffer.concat(chunks).toString() });
      const xml = (body: string, extra: Record<string, string> = {}) =>
        res.writeHead(200, { 'content-type': 'application/xml', ...extra }).end(body);
      if (path === '/legacy/orders/broken') return xml('<order><custNo>1</order>');
      if (path === '/legacy/orders/doctype')
        return xml('<?xml version="1.0"?><!DOCTYPE order [<!ENTITY x SYSTEM "file:///etc/passwd">]><order>&x;</order>');
      if (path === '/limited/big') return xml(`<order><note>${'x'.repeat(500)}</note></order>`);
      if (path === '/cached-orders')
        return xml(ORDER_XML.replace('int-77', 'int-' + 'z'.repeat(2000)), {
          'cache-control': 'max-age=60',
          etag: '"v1"',
        });
      if (path === '/xml-in' || path === '/limited')
        return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      xml(ORDER_XML);
    });
  });
  gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  legacy: { targets: [{ url: "${backend.url}" }] }
routes:
  - name: legacy-orders                        # JSON client, XML backend, and back
    match: { path: /legacy/orders }
    upstream: legacy
    plugins:
      - xml: { request: json-to-xml, response: xml-to-json, root: order }
      - json-transform:
          response: { remove: ["$.internalId", "$.items[*].cost"], rename: { "$.custNo": "$.customerId" } }
  - name: cached-orders
    match: { path: /cached-orders }
    upstream: legacy
    plugins:
      - xml: { response: xml-to-json, root: order }
      - json-transform: { response: { remove: ["$.items[*].cost"], set: { "$.source": "gateway" } } }
      - compress: { minSize: 10 }
      - cache: {}
  - name: xml-in
    match: { path: /xml-in }
    upstream: legacy
    plugins: [{ xml: { request: xml-to-json } }]
  - name: limited
    match: { path: /limited }
    upstream: legacy
    limits: { maxBodySize: 300 }
    plugins: [{ xml: { request: json-to-xml, response: xml-to-json, root: order } }]
`);
});
after(async () => {
  await gw.stop();
  await backend.close();
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  request(gw.port(), path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe('body transforms', () => {
  test('legacy-orders: the JSON request reaches the backend as XML, its XML answer reaches the client as edited JSON', async () => {
    const r = await post('/legacy/orders', JSON.stringify({ custNo: '00042', items: [{ sku: 'a<b', qty: 2 }] }));
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    assert.deepEqual(JSON.parse(r.body), EXPECTED);
    const up = received.get('/legacy/orders')!;
    assert.equal(up.headers['content-type'], 'application/xml');
    assert.equal(Number(up.headers['content-length']), Buffer.byteLength(up.body));
    assert.equal(up.headers['accept'], 'application/xml');
    assert.equal(
      up.body,
      '<?xml version="1.0" encoding="UTF-8"?>\n<order><custNo>00042</custNo><items><sku>a&lt;b</sku><qty>2</qty></items></order>',
    );
  });

  test('a request body that is not JSON: 400 with the parser message, nothing sent upstream', async () => {
    received.delete('/legacy/orders/x');
    const r = await post('/legacy/orders/x', '{"custNo": ');
    assertProblem(r, 400, 'TP_BAD_REQUEST_BODY');
    assert.match(JSON.parse(r.body).detail, /JSON/);
    assert.equal(received.has('/legacy/orders/x'), false);
  });

  test('JSON member names that are not XML names are refused, not written into the XML', async () => {
    const r = await post('/legacy/orders/x', JSON.stringify({ 'a><evil/><b': 1 }));
    assertProblem(r, 400, 'TP_BAD_REQUEST_BODY');
    assert.equal(received.has('/legacy/orders/x'), false);
  });

  test('an upstream body that does not parse: 502 with the parser message, no backend address', async () => {
    const r = await post('/legacy/orders/broken', '{}');
    assertProblem(r, 502, 'TP_UPSTREAM_BAD_BODY', [backend.url, String(backend.port)]);
    assert.match(JSON.parse(r.body).detail, /closing tag/);
  });

  test('a DOCTYPE is refused both ways (no entity definitions, no XXE)', async () => {
    const down = await post('/legacy/orders/doctype', '{}');
    assertProblem(down, 502, 'TP_UPSTREAM_BAD_BODY');
    assert.match(JSON.parse(down.body).detail, /DOCTYPE/);
    assert.doesNotMatch(down.body, /root:/);
    received.delete('/xml-in');
    const up = await request(gw.port(), '/xml-in', {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>',
    });
    assertProblem(up, 400, 'TP_BAD_REQUEST_BODY');
    assert.equal(received.has('/xml-in'), false);
    // XML's own entities and character references still read.
    const ok = await request(gw.port(), '/xml-in', {
      method: 'POST',
      headers: { 'content-type': 'text/xml' },
      body: '<a n="1">x &amp; y &lt; z</a>',
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(received.get('/xml-in')!.body), { a: { '#text': 'x & y < z', '@_n': '1' } });
    assert.equal(received.get('/xml-in')!.headers['content-type'], 'application/json');
  });

  test('maxBodySize: a request body over it is 413, an upstream body over it 502', async () => {
    received.delete('/limited');
    const big = await post('/limited', JSON.stringify({ note: 'y'.repeat(400) }), { 'transfer-encoding': 'chunked' });
    assertProblem(big, 413, 'TP_BODY_TOO_LARGE');
    assert.equal(received.has('/limited'), false);
    const down = await post('/limited/big', '{}');
    assertProblem(down, 502, 'TP_UPSTREAM_BODY_TOO_LARGE');
    const small = await post('/limited', JSON.stringify({ note: 'fits' }));
    assert.equal(small.status, 200);
    assert.equal(
      received.get('/limited')!.body,
      '<?xml version="1.0" encoding="UTF-8"?>\n<order><note>fits</note></order>',
    );
  });

  test('composes with compress and cache: the stored entry is the transformed, compressed one', async () => {
    const get = () => requestBytes(gw.port(), '/cached-orders', { headers: { 'accept-encoding': 'gzip' } });
    const before = backend.requests.filter((q) => q.url === '/cached-orders').length;
    const first = await get();
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(first.headers['content-encoding'], 'gzip');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.equal(first.headers.etag, 'W/"v1"');
    const doc = JSON.parse(gunzipSync(first.body).toString());
    assert.equal(doc.source, 'gateway');
    assert.deepEqual(doc.items, [
      { sku: 'A&B', qty: 2 },
      { sku: 'C', qty: 1 },
    ]);
    const second = await get();
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.headers['content-encoding'], 'gzip');
    assert.equal(second.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(gunzipSync(second.body).toString()), doc);
    assert.equal(backend.requests.filter((q) => q.url === '/cached-orders').length, before + 1);
    // The upstream was asked for a whole, unencoded body.
    assert.equal(backend.requests.at(-1)!.headers['accept-encoding'], 'identity');
  });
});
