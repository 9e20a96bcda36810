// soap: a JSON client in front of a SOAP service written here, which checks the envelope it receives (version,
// SOAPAction, operation, namespace) and answers a result, a Fault, bad XML or a body too big.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import { request, requestBytes, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { assertProblem } from '../helpers/problem.ts';
import type { Gateway } from '../../src/index.ts';

const NS = { '1.1': 'http://schemas.xmlsoap.org/soap/envelope/', '1.2': 'http://www.w3.org/2003/05/soap-envelope' };
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' });

interface Received {
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let received: Received[] = [];
let backend: Backend;
let gw: Gateway;

/** The service: reads the envelope strictly (a wrong one is a 400 the test would see) and answers. */
function answer(version: '1.1' | '1.2', symbol: string): { status: number; xml: string } {
  const env = NS[version];
  if (symbol === 'FAULT' && version === '1.1')
    return {
      status: 500,
      xml:
        `<soap:Envelope xmlns:soap="${env}"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode>` +
        `<faultstring>unknown symbol</faultstring><detail><internal>db-7</internal></detail></soap:Fault></soap:Body></soap:Envelope>`,
    };
  if (symbol === 'FAULT')
    return {
      status: 400,
      xml:
        `<env:Envelope xmlns:env="${env}"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code>` +
        `<env:Reason><env:Text xml:lang="en">unknown symbol</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`,
    };
  return {
    status: 200,
    xml:
      `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${env}"><s:Body>` +
      `<q:GetQuoteResponse xmlns:q="urn:quotes"><q:symbol>${symbol}</q:symbol><q:price>12.5</q:price>` +
      `<q:history>11</q:history><q:history>12</q:history><q:note>a &amp; b</q:note></q:GetQuoteResponse></s:Body></s:Envelope>`,
  };
}

before(async () => {
  backend = await startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      received.push({ path: req.url ?? '', method: req.method ?? '', headers: req.headers, body });
      if (req.url === '/bad-xml')
        return res.writeHead(200, { 'content-type': 'text/xml' }).end('<s:Envelope><s:Body><oops></s:Body>');
      if (req.url === '/html-503') return res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>down</h1>');
      if (req.url === '/big')
        return res.writeHead(200, { 'content-type': 'text/xml' }).end(`<x>${'y'.repeat(4096)}</x>`);
      const version = String(req.headers['content-type']).startsWith('application/soap+xml') ? '1.2' : '1.1';
      const doc = parser.parse(body) as Record<string, any>;
      const op = doc['soap:Envelope']?.['soap:Body']?.GetQuote;
      if (doc['soap:Envelope']?.['@_xmlns:soap'] !== NS[version] || op?.['@_xmlns'] !== 'urn:quotes')
        return res.writeHead(400, { 'content-type': 'text/plain' }).end('not the envelope expected');
      const { status, xml } = answer(version, String(op.symbol));
      res.writeHead(status, { 'content-type': version === '1.1' ? 'text/xml; charset=utf-8' : 'application/soap+xml' });
      res.end(xml);
    });
  });
  gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { quotes: { targets: [{ url: "${backend.url}" }] } }
routes:
  - name: quotes-soap                          # JSON in front of a SOAP 1.1 service
    match: { path: /quotes }
    upstream: quotes
    plugins:
      - soap: { action: "urn:GetQuote", namespace: "urn:quotes", operation: GetQuote }
  - name: quotes-12
    match: { path: /quotes12 }
    upstream: quotes
    plugins:
      - soap: { action: "urn:GetQuote", namespace: "urn:quotes", operation: GetQuote, version: "1.2", faultStatus: 422 }
  - name: compressed
    match: { path: /quotes-gz }
    upstream: quotes
    plugins:
      - compress: { minSize: 10, types: [application/json] } # only the JSON is compressible
      - soap: { action: "urn:GetQuote", namespace: "urn:quotes", operation: GetQuote }
  - name: small
    match: { path: /big }
    upstream: quotes
    limits: { maxBodySize: 1kb }
    plugins:
      - soap: { namespace: "urn:quotes", operation: GetQuote }
  - name: other
    match: { path: / }
    upstream: quotes
    plugins:
      - soap: { namespace: "urn:quotes", operation: GetQuote }
`);
});
after(async () => {
  await gw.stop();
  await backend.close();
});

function post(path: string, body: string, headers: Record<string, string> = {}) {
  received = [];
  return request(gw.port(), path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

describe('soap', () => {
  test('1.1: the JSON body becomes the GetQuote envelope with SOAPAction; the answer comes back as JSON', async () => {
    const r = await post('/quotes', JSON.stringify({ symbol: 'ACME' }));
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    assert.deepEqual(JSON.parse(r.body), { symbol: 'ACME', price: 12.5, history: [11, 12], note: 'a & b' });
    const [got] = received;
    assert.equal(got!.method, 'POST');
    assert.equal(got!.headers.soapaction, '"urn:GetQuote"');
    assert.equal(got!.headers['content-type'], 'text/xml; charset=utf-8');
    assert.equal(Number(got!.headers['content-length']), Buffer.byteLength(got!.body));
    assert.match(got!.body, /<GetQuote xmlns="urn:quotes"><symbol>ACME<\/symbol><\/GetQuote>/);
  });

  test('1.2: application/soap+xml with the action parameter, no SOAPAction header', async () => {
    const r = await post('/quotes12', JSON.stringify({ symbol: 'ACME' }));
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).price, 12.5);
    const [got] = received;
    assert.equal(got!.headers['content-type'], 'application/soap+xml; charset=utf-8; action="urn:GetQuote"');
    assert.equal(got!.headers.soapaction, undefined);
    assert.ok(got!.body.includes(`xmlns:soap="${NS['1.2']}"`));
  });

  test('a Fault becomes problem+json with its code and string: 502 (1.1), faultStatus (1.2)', async () => {
    const r11 = await post('/quotes', JSON.stringify({ symbol: 'FAULT' }));
    assertProblem(r11, 502, 'TP_SOAP_FAULT', [backend.url, '127.0.0.1', 'db-7']);
    assert.deepEqual(
      [JSON.parse(r11.body).faultCode, JSON.parse(r11.body).faultString],
      ['soap:Client', 'unknown symbol'],
    );
    const r12 = await post('/quotes12', JSON.stringify({ symbol: 'FAULT' }));
    assertProblem(r12, 422, 'TP_SOAP_FAULT');
    assert.deepEqual(
      [JSON.parse(r12.body).faultCode, JSON.parse(r12.body).faultString],
      ['env:Sender', 'unknown symbol'],
    );
  });

  test('bad XML from the upstream is a 502 with the parser message; a non-XML HTTP error goes on as it is', async () => {
    const r = await post('/bad-xml', '{}');
    assertProblem(r, 502, 'TP_SOAP_BAD_RESPONSE', [backend.url]);
    assert.match(JSON.parse(r.body).detail, /oops/);
    const down = await post('/html-503', '{}');
    assert.equal(down.status, 503);
    assert.equal(down.body, '<h1>down</h1>');
  });

  test('a body that is not a JSON object, or has a key that is no XML name, is a 400 and never sent', async () => {
    for (const body of ['{"symbol": ', '[1,2]', '{"a b": 1}', '{"x": "\\u0001"}']) {
      const r = await post('/quotes', body);
      assertProblem(r, 400, 'TP_SOAP_BAD_REQUEST');
      assert.equal(received.length, 0, body);
    }
  });

  test('values are escaped; arrays repeat elements; @_ members are attributes', async () => {
    await post('/quotes', JSON.stringify({ symbol: '<x>&', tags: ['a', 'b'], opt: { '@_lang': 'e"n', '#text': 'v' } }));
    assert.match(
      received[0]!.body,
      /<symbol>&lt;x&gt;&amp;<\/symbol><tags>a<\/tags><tags>b<\/tags><opt lang="e&quot;n">v<\/opt>/,
    );
  });

  test('only POST is wrapped: another method is a 405 with Allow', async () => {
    received = [];
    const r = await request(gw.port(), '/quotes');
    assertProblem(r, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.equal(r.headers.allow, 'POST');
    assert.equal(received.length, 0);
  });

  test('compress runs after the transform: the JSON is what gets gzipped', async () => {
    received = [];
    const r = await requestBytes(gw.port(), '/quotes-gz', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ symbol: 'ACME' }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(gunzipSync(r.body).toString()).price, 12.5);
    assert.equal(received[0]!.headers['accept-encoding'], 'identity');
  });

  test('maxBodySize bounds both bodies: 413 for the request, 502 for the answer', async () => {
    const big = await post('/big', JSON.stringify({ symbol: 'x'.repeat(2048) }));
    assertProblem(big, 413, 'TP_BODY_TOO_LARGE');
    assert.equal(received.length, 0);
    // Chunked: no length declared, counted while it is read whole.
    const chunked = await post('/big', JSON.stringify({ symbol: 'x'.repeat(2048) }), {
      'transfer-encoding': 'chunked',
    });
    assertProblem(chunked, 413, 'TP_BODY_TOO_LARGE');
    assert.equal(received.length, 0);
    // A chunked body that fits is sent (as its envelope); the answer is too big to unwrap.
    const answer = await post('/big', '{}', { 'transfer-encoding': 'chunked' });
    assertProblem(answer, 502, 'TP_UPSTREAM_BODY_TOO_LARGE', [backend.url]);
    assert.match(received[0]!.body, /<GetQuote xmlns="urn:quotes"\/?>/);
  });
});
