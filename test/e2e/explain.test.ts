// turnpike explain (the built CLI, as users run it) and POST /api/explain (a running gateway): the listener and
// route, why the other routes miss, each plugin's decision, the terminal and the target; and that explaining has no
// side effects: the rate-limit counter, the weighted round robin's order and the cache are as if it never happened,
// and no backend receives anything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE_FLAGS } from '../../src/runtime/node-flags.ts';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { makeTestPki, type Issued } from '../helpers/certs.ts';
import { CLI, spawnGateway, untilWorkersStarted } from '../helpers/process.ts';
import { json, request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const KEY = 'alice-key-0123456789abcdef';
const TOKEN = 'explain-admin-token-0123456789';

let a: Backend, b: Backend, web: Backend;
let cert: Issued;

const config = (ports: { https: number; http: number }, extra = '') => `${extra}
listeners:
  - name: public
    protocol: https
    address: 127.0.0.1
    port: ${ports.https}
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
  - { name: plain, protocol: http, address: 127.0.0.1, port: ${ports.http} }
consumers:
  - { name: alice, groups: [staff], credentials: { apiKeys: ["${KEY}"] } }
upstreams:
  users: { balance: weighted-round-robin, targets: [{ url: "${a.url}", weight: 3 }, { url: "${b.url}" }] }
  web: { targets: [{ url: "${web.url}" }] }
routes:
  - { name: orders-write, match: { host: api.example.com, path: /orders, methods: [POST] }, upstream: users }
  - { name: beta, match: { host: api.example.com, path: /users, headers: { x-beta: "1" } }, upstream: web }
  - name: users
    match: { host: api.example.com, path: /users/:id }
    upstream: users
    plugins: [{ key-auth: { header: x-api-key, query: apikey } }, { rate-limit: { limits: [{ requests: 100, per: 1m }] } }]
  - name: static
    match: { host: www.example.com, path: /static }
    upstream: web
    plugins: [{ cache: { defaultTtl: 1m } }]
  - { name: www, match: { host: www.example.com }, upstream: web }
admin: { address: 127.0.0.1, port: 0, auth: { tokens: ["${TOKEN}"] } }
accessLog: { enabled: false }
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'explain', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const backendHits = () => a.requests.length + b.requests.length + web.requests.length;

before(async () => {
  const { pki, serverCa } = makeTestPki();
  cert = pki.server(serverCa, { names: ['api.example.com', 'www.example.com'] });
  [a, b, web] = await Promise.all([startEchoBackend('a'), startEchoBackend('b'), startEchoBackend('web')]);
});
after(() => Promise.all([a, b, web].map((x) => x.close())));

describe('turnpike explain (the CLI)', () => {
  let file: string;
  const runs = new Map<string, Run>();
  // The file as deployed: https on 443, http on 8080. Nothing listens: explain only compiles it.
  const cases: Record<string, string[]> = {
    valid: ['GET', 'https://api.example.com/users/7', '-H', `x-api-key: ${KEY}`],
    validJson: ['GET', 'https://api.example.com/users/7', '-H', `x-api-key: ${KEY}`, '--json'],
    invalidJson: ['GET', 'https://api.example.com/users/7', '-H', 'x-api-key: not-a-key', '--json'],
    cacheJson: ['GET', 'https://www.example.com/static/app.js', '--json'],
    methodJson: ['DELETE', 'https://api.example.com/orders', '--json'],
    plainListener: ['GET', 'http://www.example.com/', '--listener', 'plain', '--json'],
    noListener: ['GET', 'http://api.example.com:9999/users/7'],
    queryKey: ['GET', `https://api.example.com/users/7?apikey=${KEY}&page=2`, '--json'],
  };

  before(async () => {
    file = join(tempDir(), 'turnpike.yaml');
    writeFileSync(file, config({ https: 443, http: 8080 }));
    // Each run is its own process: run them side by side.
    await Promise.all(
      Object.entries(cases).map(async ([name, args]) => runs.set(name, await cli(['--config', file, ...args]))),
    );
  });

  const ok = (name: string): Run => {
    const run = runs.get(name)!;
    assert.equal(run.code, 0, run.stderr);
    return run;
  };

  test('text: the listener, the route and why the others miss, the plugins, the terminal and the target', () => {
    const out = ok('valid').stdout;
    for (const line of [
      'listener  public (https :443), chosen by scheme https and port 443',
      'route     users  (id=7)',
      '  not orders-write: path /users/7 is not under /orders; method GET is not POST',
      '  not beta: header x-beta is absent (wants "1")',
      '  not static: host api.example.com is not www.example.com; path /users/7 is not under /static',
      '  not www: host api.example.com is not www.example.com',
      'terminal  upstream users',
      `  pick: ${a.url}: smooth weighted round robin, weights 3:1: pick 1 of a 4-pick cycle`,
      `result    forwarded to upstream users, target ${a.url}`,
    ])
      assert.ok(out.includes(line), `missing ${JSON.stringify(line)} in:\n${out}`);
    assert.match(out, /authenticate {6}key-auth {4}pass {4}authenticated: consumer "alice"/);
    assert.match(out, /limit +rate-limit +pass +allowed for c:alice: 100\/100 left per 1m \(read, not counted\)/);
    assert.match(out, new RegExp(`-> ${a.url} weight 3, healthy, 0 in flight`));
    assert.ok(!out.includes(KEY), 'the key is never printed');
  });

  test('--json: the same facts as data', () => {
    const e = JSON.parse(ok('validJson').stdout);
    assert.deepEqual(e.listener, {
      name: 'public',
      protocol: 'https',
      port: 443,
      chosenBy: 'scheme https and port 443',
    });
    assert.deepEqual(e.route, { name: 'users', index: 2, params: { id: '7' } });
    const misses = Object.fromEntries(e.routes.map((r: any) => [r.name, r.misses.map((m: any) => m.on)]));
    assert.deepEqual(misses, {
      'orders-write': ['path', 'method'],
      beta: ['header'],
      users: [],
      static: ['host', 'path'],
      www: ['host'],
    });
    assert.deepEqual(
      e.plugins.map((p: any) => [p.name, p.phase, p.decision]),
      [
        ['key-auth', 'authenticate', 'continue'],
        ['rate-limit', 'limit', 'continue'],
      ],
    );
    assert.equal(e.plugins[0].details.consumer, 'alice');
    assert.deepEqual(
      e.plugins[1].details.limits.map((l: any) => [l.requests, l.remaining]),
      [[100, 100]],
    );
    assert.deepEqual(e.terminal, { kind: 'upstream', reached: true, upstream: 'users' });
    assert.equal(e.upstream.balance, 'weighted-round-robin');
    assert.deepEqual(
      e.upstream.targets.map((t: any) => [t.url, t.weight, t.healthy, t.picked]),
      [
        [a.url, 3, true, true],
        [b.url, 1, true, false],
      ],
    );
    assert.equal(e.upstream.pick.target, a.url);
    assert.deepEqual(e.outcome, {
      status: null,
      by: 'upstream',
      summary: `forwarded to upstream users, target ${a.url}`,
    });
  });

  test('an invalid key: key-auth refuses, the gate answers 401, the rate limit and the terminal are not reached', () => {
    const e = JSON.parse(ok('invalidJson').stdout);
    assert.deepEqual(
      e.plugins.map((p: any) => [p.name, p.decision]),
      [
        ['key-auth', 'refused'],
        ['authentication', 'answer'],
        ['rate-limit', 'not-reached'],
      ],
    );
    assert.match(e.plugins[0].summary, /the key matches no consumer/);
    assert.equal(e.terminal.reached, false);
    assert.deepEqual([e.outcome.status, e.outcome.code], [401, 'TP_UNAUTHENTICATED']);
  });

  test('the cache route: its key and that nothing is stored yet', () => {
    const e = JSON.parse(ok('cacheJson').stdout);
    assert.equal(e.route.name, 'static');
    const cache = e.plugins.find((p: any) => p.name === 'cache');
    assert.equal(cache.decision, 'continue');
    assert.equal(cache.details.key, 'www.example.com/static/app.js');
    assert.equal(cache.details.stored, false);
    assert.match(cache.summary, /^MISS: not stored/);
  });

  test('a method the path does not take: 405 with Allow, and the route that claims the path says why', () => {
    const e = JSON.parse(ok('methodJson').stdout);
    assert.equal(e.route, null);
    assert.deepEqual([e.outcome.status, e.outcome.code], [405, 'TP_METHOD_NOT_ALLOWED']);
    assert.match(e.outcome.summary, /Allow: POST/);
    assert.deepEqual(e.routes.find((r: any) => r.name === 'orders-write').misses, [
      { on: 'method', detail: 'method DELETE is not POST' },
    ]);
  });

  test('--listener picks the listener by name; a URL no listener takes is an error naming the listeners', () => {
    const e = JSON.parse(ok('plainListener').stdout);
    assert.deepEqual([e.listener.name, e.listener.chosenBy, e.route.name], ['plain', '--listener', 'www']);
    const run = runs.get('noListener')!;
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no http listener on port 9999.*plain \(http :8080\).*\[TP_EXPLAIN_INVALID\]/);
  });

  test('a key in the query is verified and shown as the access log shows it', () => {
    const run = ok('queryKey');
    assert.ok(!run.stdout.includes(KEY), 'the key is never printed');
    const e = JSON.parse(run.stdout);
    assert.equal(e.request.url, 'https://api.example.com/users/7?apikey=[REDACTED]&page=2');
    assert.equal(e.plugins[0].details.consumer, 'alice');
  });
});

describe('POST /api/explain (a running gateway)', () => {
  let gw: Gateway & { file: string };
  const explain = (body: object, token: string | null = TOKEN) =>
    request(gw.admin!.port, '/api/explain', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const users = { method: 'GET', url: 'https://api.example.com/users/7', headers: { 'x-api-key': KEY } };

  before(async () => {
    gw = await startGatewayYaml(config({ https: 0, http: 0 }));
  });
  after(() => gw.stop());

  test('needs the admin token', async () => {
    const r = await explain(users, null);
    assert.equal(r.status, 401);
    assert.equal(json(r).code, 'TP_ADMIN_UNAUTHORIZED');
    assert.equal((await explain(users, 'wrong-token-0123456789')).status, 401);
  });

  test('answers the same JSON as the CLI on the same file', async () => {
    const r = await explain(users);
    assert.equal(r.status, 200, r.body);
    const fromApi = json(r);
    const run = await cli(['--config', gw.file, 'GET', users.url, '-H', `x-api-key: ${KEY}`, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const fromCli = JSON.parse(run.stdout);
    // The API names the port the listener is bound to (the file says 0), and notes differ by where it ran.
    assert.notEqual(fromApi.listener.port, 0);
    for (const e of [fromApi, fromCli]) {
      delete e.notes;
      delete e.listener.port;
    }
    assert.deepEqual(fromApi, fromCli);
    assert.equal(fromApi.listener.chosenBy, 'the only https listener (none is on port 443)');
    const bad = await explain({ method: 'GET', url: 'not a url' });
    assert.equal(bad.status, 400);
    assert.equal(json(bad).code, 'TP_EXPLAIN_INVALID');
  });

  test('explaining consumes no rate limit, moves no balancer and sends nothing upstream', async () => {
    const port = gw.port('plain');
    // The http listener by the port it is bound to.
    const body = { ...users, url: `http://api.example.com:${port}/users/7` };
    const hitsBefore = backendHits();
    const served: string[] = [];
    for (let i = 0; i < 8; i++) {
      const said = [json(await explain(body)), json(await explain(body))];
      for (const e of said) {
        assert.equal(e.listener.chosenBy, `scheme http and port ${port}`);
        assert.equal(e.plugins[1].details.limits[0].remaining, 100 - i, 'explaining counted nothing');
      }
      assert.equal(backendHits(), hitsBefore + i, 'explaining sent nothing upstream');
      const r = await request(port, '/users/7', { headers: { host: 'api.example.com', 'x-api-key': KEY } });
      assert.equal(r.status, 200, r.body);
      const name = json(r).name as string;
      assert.equal(
        name === 'a' ? a.url : b.url,
        said[0].upstream.pick.target,
        `request ${i + 1} went where explain said`,
      );
      served.push(name);
    }
    // Smooth weighted round robin 3:1, exactly as without the explanations in between.
    assert.deepEqual(served, ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
  });

  test('the cache: explain says MISS and stores nothing; after a real fill it says HIT', async () => {
    const port = gw.port('plain');
    const body = { method: 'GET', url: `http://www.example.com:${port}/static/app.js` };
    const cacheOf = async () => json(await explain(body)).plugins.find((p: any) => p.name === 'cache');
    assert.equal((await cacheOf()).details.stored, false);
    const hits = web.requests.length;
    // The Host a client of that URL sends (the cache key has it).
    const host = `www.example.com:${port}`;
    const first = await request(port, '/static/app.js', { headers: { host } });
    assert.equal(first.headers['x-cache'], 'MISS', 'explaining filled nothing');
    const stored = await cacheOf();
    assert.deepEqual([stored.decision, stored.status, stored.details.stored], ['answer', 200, true]);
    assert.match(stored.summary, /^HIT: stored \d+ s ago, fresh/);
    const second = await request(port, '/static/app.js', { headers: { host } });
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(web.requests.length, hits + 1, 'one fill, nothing for the explanations');
  });
});

test('with workers, one worker answers; its rate-limit peek reads the instance-wide counter', async () => {
  const gw = await spawnGateway(config({ https: 0, http: 0 }, 'workers: 2'), { listeners: 3 });
  try {
    await untilWorkersStarted(gw);
    const port = gw.port('plain');
    const r = await request(port, '/users/7', { headers: { host: 'api.example.com', 'x-api-key': KEY } });
    assert.equal(r.status, 200, r.body);
    const answer = await request(gw.port('admin'), '/api/explain', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        method: 'GET',
        url: `http://api.example.com:${port}/users/7`,
        headers: { 'x-api-key': KEY },
      }),
    });
    assert.equal(answer.status, 200, answer.body);
    const e = json(answer);
    assert.equal(e.route.name, 'users');
    assert.equal(e.plugins[1].details.limits[0].remaining, 99, 'the primary counted the one real request');
    assert.ok(e.notes.some((n: string) => n.startsWith('asked of one worker')));
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
