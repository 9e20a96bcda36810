// request-validation through the gateway: the plugin line verbatim against specs/checkout.yaml (OpenAPI
// 3.0) written beside the config, an OpenAPI 3.1 route checking responses too, a JSON Schema for a body, and specs
// that do not load as config errors with the spec file's line.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { ConfigError, loadConfigFile } from '../../src/config/loader.ts';
import { explainConfigFile } from '../../src/explain/offline.ts';
import { startGateway, type Gateway } from '../../src/index.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { assertProblem } from '../helpers/problem.ts';
import { request, startBackend, tempDir, type Backend } from '../helpers/servers.ts';

const CHECKOUT_30 = `openapi: 3.0.3
info: { title: checkout, version: "1" }
paths:
  /checkout:
    parameters:
      - { name: dryRun, in: query, schema: { type: boolean } }
    get:
      responses: { "200": { description: ok } }
    post:
      parameters:
        - { name: x-client-version, in: header, schema: { type: integer, minimum: 1 } }
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: "#/components/schemas/Order" } }
      responses: { "201": { description: created } }
  /checkout/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, format: int32 } }
        - { name: tags, in: query, explode: false, schema: { type: array, items: { type: string, maxLength: 3 } } }
      responses: { "200": { description: ok } }
components:
  schemas:
    Order:
      type: object
      additionalProperties: false
      required: [email, items]
      properties:
        email: { type: string, format: email }
        coupon: { type: string, nullable: true }
        items: { type: array, minItems: 1, items: { $ref: "#/components/schemas/Item" } }
    Item:
      type: object
      required: [sku, qty]
      properties:
        sku: { type: string }
        qty: { type: integer, minimum: 0, exclusiveMinimum: true, maximum: 100 }
`;

const ORDERS_31 = {
  openapi: '3.1.0',
  info: { title: 'orders', version: '2' },
  servers: [{ url: 'https://api.example.com/api' }],
  paths: {
    '/orders/{id}': {
      get: {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^o-' } }],
        responses: {
          '200': {
            description: 'an order',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } },
          },
          '4XX': { description: 'not found', content: { 'application/problem+json': {} } },
        },
      },
    },
  },
  components: {
    schemas: {
      Order: {
        type: 'object',
        required: ['id', 'total'],
        properties: { id: { type: 'string' }, total: { type: 'number' }, note: { type: ['string', 'null'] } },
      },
    },
  },
};

const NOTE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  required: ['text'],
  properties: { text: { type: 'string', minLength: 1 } },
};

let backend: Backend;
let gw: Gateway;
let dir: string;
const logLines: string[] = [];
const received: { path: string; body: string }[] = [];

function writeSpecs(into: string): void {
  mkdirSync(join(into, 'specs'), { recursive: true });
  writeFileSync(join(into, 'specs', 'checkout.yaml'), CHECKOUT_30);
  writeFileSync(join(into, 'specs', 'orders.json'), JSON.stringify(ORDERS_31, null, 2));
  writeFileSync(join(into, 'specs', 'note.json'), JSON.stringify(NOTE_SCHEMA));
}

const config = (upstream: string): string => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
accessLog: { enabled: false }
upstreams:
  checkout-stable: { targets: [{ url: "${upstream}" }] }
routes:
  - name: checkout
    match: { path: /checkout }
    upstream: checkout-stable
    limits: { maxBodySize: 2kb }
    plugins:
      - request-validation: { openapi: specs/checkout.yaml }
  - name: orders
    match: { path: /api/orders }
    upstream: checkout-stable
    plugins:
      - request-validation: { openapi: specs/orders.json, response: true }
  - name: notes
    match: { path: /notes }
    upstream: checkout-stable
    plugins:
      - request-validation: { schema: specs/note.json }
`;

before(async () => {
  backend = await startBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, body: Buffer.concat(chunks).toString() });
      const json = (status: number, body: unknown, type = 'application/json') =>
        res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
      if (path === '/api/orders/o-1') return json(200, { id: 'o-1', total: 12.5, note: null });
      if (path === '/api/orders/o-bad') return json(200, { id: 7, note: 3 });
      if (path === '/api/orders/o-html') return res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>');
      if (path === '/api/orders/o-gone') return json(404, { title: 'gone' }, 'application/problem+json');
      if (path === '/api/orders/o-500') return json(500, { anything: true });
      json(req.method === 'POST' ? 201 : 200, { ok: true });
    });
  });
  dir = tempDir();
  writeSpecs(dir);
  const file = join(dir, 'turnpike.yaml');
  writeFileSync(file, config(backend.url));
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  gw = await startGateway({ configFile: file, log, watch: false });
});

after(async () => {
  await gw?.stop();
  await backend?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(gw.port(), path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });

const GOOD_ORDER = { email: 'ada@example.com', coupon: null, items: [{ sku: 'A1', qty: 2 }] };

describe('request-validation with OpenAPI 3.0 (specs/checkout.yaml)', () => {
  test('a request that matches goes through with its body intact', async () => {
    const r = await post('/checkout?dryRun=true', GOOD_ORDER, { 'x-client-version': '3' });
    assert.equal(r.status, 201, r.body);
    assert.deepEqual(JSON.parse(received.at(-1)!.body), GOOD_ORDER);
    assert.equal((await request(gw.port(), '/checkout/42?tags=a,bc')).status, 200);
  });

  test('a bad request gets 400 with every error: where, JSON pointer, message', async () => {
    const before = received.length;
    const r = await post(
      '/checkout?dryRun=maybe',
      { email: 'not-an-email', items: [{ sku: 'A1', qty: 0 }, { qty: 101 }], extra: 1 },
      { 'x-client-version': '0' },
    );
    assertProblem(r, 400, 'TP_REQUEST_INVALID', [backend.url]);
    const body = JSON.parse(r.body);
    const seen = new Set(body.errors.map((e: { in: string; pointer: string }) => `${e.in} ${e.pointer}`));
    for (const expected of [
      'query /dryRun',
      'header /x-client-version',
      'body /email',
      'body /items/0/qty',
      'body /items/1/sku',
      'body /items/1/qty',
      'body /extra',
    ])
      assert.ok(seen.has(expected), `${expected} missing from ${r.body}`);
    assert.equal(body.errorCount, body.errors.length);
    for (const e of body.errors) assert.equal(typeof e.message, 'string');
    assert.equal(received.length, before, 'a refused request never reaches the upstream');
  });

  test('at most 20 errors are listed; errorCount counts them all', async () => {
    const items = Array.from({ length: 30 }, () => ({ sku: 1, qty: 'x' }));
    const r = await post('/checkout', { email: 'ada@example.com', items });
    assertProblem(r, 400, 'TP_REQUEST_INVALID');
    const body = JSON.parse(r.body);
    assert.equal(body.errors.length, 20);
    assert.ok(body.errorCount >= 60, r.body);
  });

  test('path parameters, array query parameters, content type, a missing or unparsable body', async () => {
    const id = await request(gw.port(), '/checkout/abc?tags=a,toolong');
    assertProblem(id, 400, 'TP_REQUEST_INVALID');
    assert.deepEqual(
      JSON.parse(id.body)
        .errors.map((e: { in: string; pointer: string }) => `${e.in} ${e.pointer}`)
        .sort(),
      ['path /id', 'query /tags/1'],
    );
    const type = await post('/checkout', 'email=a', { 'content-type': 'application/x-www-form-urlencoded' });
    assertProblem(type, 400, 'TP_REQUEST_INVALID');
    assert.match(
      JSON.parse(type.body).errors[0].message,
      /application\/x-www-form-urlencoded is not one of: application\/json/,
    );
    const none = await request(gw.port(), '/checkout', { method: 'POST' });
    assertProblem(none, 400, 'TP_REQUEST_INVALID');
    assert.deepEqual(JSON.parse(none.body).errors, [{ in: 'body', pointer: '', message: 'is required' }]);
    const broken = await post('/checkout', '{"email":');
    assertProblem(broken, 400, 'TP_REQUEST_INVALID');
    assert.match(JSON.parse(broken.body).errors[0].message, /^is not JSON/);
  });

  test('an unknown path is 404, a method the path does not describe is 405 with Allow', async () => {
    assertProblem(await request(gw.port(), '/checkout/1/items'), 404, 'TP_OPERATION_NOT_FOUND');
    const r = await request(gw.port(), '/checkout', { method: 'DELETE' });
    assertProblem(r, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.equal(r.headers.allow, 'GET, POST, HEAD');
  });

  test("a body past the route's maxBodySize is 413", async () => {
    const r = await post('/checkout', { email: 'ada@example.com', items: [{ sku: 'x'.repeat(3000), qty: 1 }] });
    assertProblem(r, 413, 'TP_BODY_TOO_LARGE');
  });
});

describe('request-validation with OpenAPI 3.1 and response: true', () => {
  test('servers set the base path; a good response passes', async () => {
    const r = await request(gw.port(), '/api/orders/o-1');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { id: 'o-1', total: 12.5, note: null });
    assertProblem(await request(gw.port(), '/api/orders/x-1'), 400, 'TP_REQUEST_INVALID');
  });

  test('a response that breaks the contract is 502 and a log line, naming no upstream', async () => {
    const r = await request(gw.port(), '/api/orders/o-bad');
    assertProblem(r, 502, 'TP_UPSTREAM_CONTRACT', [backend.url, '"id":7']);
    // Logged before the 502 is written (pino writes to this stream synchronously).
    const line = logLines.find((l) => l.includes('does not match the API description'));
    assert.ok(line !== undefined, logLines.join(''));
    const logged = JSON.parse(line);
    assert.equal(logged.route, 'orders');
    assert.equal(logged.operation, 'GET /orders/{id}');
    const pointers = logged.errors.map((e: { pointer: string }) => e.pointer).sort();
    assert.deepEqual(pointers, ['/id', '/note', '/total']);
    assertProblem(await request(gw.port(), '/api/orders/o-html'), 502, 'TP_UPSTREAM_CONTRACT');
  });

  test('documented non-JSON and undocumented statuses pass as they are', async () => {
    assert.equal((await request(gw.port(), '/api/orders/o-gone')).status, 404);
    assert.equal((await request(gw.port(), '/api/orders/o-500')).status, 500);
  });
});

describe('request-validation with a JSON Schema for the body', () => {
  test('checks JSON bodies; bodiless GETs pass, bodiless POSTs do not', async () => {
    assert.equal((await post('/notes', { text: 'hi' })).status, 201);
    const bad = await post('/notes', { text: '' });
    assertProblem(bad, 400, 'TP_REQUEST_INVALID');
    assert.equal(JSON.parse(bad.body).errors[0].pointer, '/text');
    assert.equal((await request(gw.port(), '/notes')).status, 200);
    assertProblem(await request(gw.port(), '/notes', { method: 'POST' }), 400, 'TP_REQUEST_INVALID');
  });
});

describe('a spec that does not load is a config error with file and line', () => {
  const problemsOf = (spec: string): string[] => {
    const d = tempDir();
    writeSpecs(d);
    writeFileSync(join(d, 'specs', 'checkout.yaml'), spec);
    const file = join(d, 'turnpike.yaml');
    writeFileSync(file, config('http://127.0.0.1:1'));
    try {
      loadConfigFile(file, LOAD_OPTIONS);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.line} ${p.path}: ${p.message} [${p.code}]`);
    }
    return [];
  };

  test('YAML that does not parse, a $ref to nothing, a schema that does not compile, no openapi version', () => {
    const at = '12 routes[0].plugins[0].request-validation.openapi';
    assert.deepEqual(problemsOf(CHECKOUT_30), []);
    assert.ok(problemsOf('openapi: 3.0.3\npaths: {\n')[0]!.startsWith(`${at}: specs/checkout.yaml:3:1: not YAML`));
    const ref = problemsOf(CHECKOUT_30.replace('#/components/schemas/Item', '#/components/schemas/Nope'));
    assert.match(
      ref[0]!,
      /specs\/checkout.yaml:32:59: \$ref #\/components\/schemas\/Nope points at nothing in the document \[TP_CONFIG_FILE\]$/,
    );
    const type = problemsOf(CHECKOUT_30.replace('sku: { type: string }', 'sku: { type: strin }'));
    assert.match(type[0]!, /specs\/checkout.yaml:\d+:\d+: the schema does not compile: .*strin/);
    assert.match(
      problemsOf('swagger: "2.0"\n')[0]!,
      /specs\/checkout.yaml:1:1: expected "openapi: 3.0.x" or "openapi: 3.1.x"/,
    );
  });
});

describe('turnpike explain says what request-validation would do', () => {
  const step = async (method: string, url: string) => {
    const e = await explainConfigFile(join(dir, 'turnpike.yaml'), { method, url }, () => {});
    return e.plugins.find((p) => p.name === 'request-validation')!;
  };

  test('the operation it found, or the answer it would give', async () => {
    const ok = await step('POST', 'http://127.0.0.1/checkout?dryRun=true');
    assert.equal(ok.decision, 'continue');
    assert.match(ok.summary, /operation POST \/checkout of OpenAPI specs\/checkout.yaml/);
    const bad = await step('GET', 'http://127.0.0.1/checkout/abc');
    assert.equal(bad.decision, 'answer');
    assert.equal(bad.code, 'TP_REQUEST_INVALID');
    const gone = await step('DELETE', 'http://127.0.0.1/checkout');
    assert.deepEqual([gone.status, gone.code], [405, 'TP_METHOD_NOT_ALLOWED']);
  });
});
