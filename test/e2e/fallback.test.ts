// Failing politely (issue 19 point 6): a route's `fallback` answers when its upstream cannot (never for the
// upstream's own 5xx unless onStatus lists it; a cache's stale copy first; Retry-After on a 503), and
// `errorPages` give the gateway's own errors as HTML to clients that prefer it. The access log (ctx.errorCode on
// turnpike:request:end) keeps the original error code.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfigFile, type ConfigProblem } from '../../src/config/loader.ts';
import { explain } from '../../src/explain/explain.ts';
import { formatExplanation } from '../../src/explain/format.ts';
import type { RequestContext } from '../../src/request-context.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { startGateway, type Gateway } from '../../src/runtime/gateway.ts';
import { ManualClock } from '../helpers/clock.ts';
import { nextEvent } from '../helpers/events.ts';
import { closedPort } from '../helpers/ports.ts';
import { assertProblem } from '../helpers/problem.ts';
import { quietLog, request, startBackend, tempDir, type Backend } from '../helpers/servers.ts';

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const FALLBACK_BODY = '{"error":"checkout is resting, try again soon"}';

describe('fallback and errorPages', () => {
  let ok: Backend, failing: Backend, flaky: Backend;
  let flakyDown = false;
  let deadPort: number;
  let gateway: Gateway;
  let port: number;
  const clock = new ManualClock();
  const dir = tempDir();

  before(async () => {
    mkdirSync(join(dir, 'pages'));
    writeFileSync(join(dir, 'pages', '404.html'), '<h1>Not here</h1>');
    writeFileSync(join(dir, 'pages', '5xx.html'), '<h1>Resting</h1>');
    ok = await startBackend((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    failing = await startBackend((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('own 500'));
    // Up, then (flakyDown) closing every connection: a failure with no answer of its own.
    flaky = await startBackend((req, res) =>
      flakyDown
        ? req.socket.destroy()
        : res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1' }).end(`fresh ${req.url}`),
    );
    deadPort = await closedPort();
    const yaml = `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  checkout-stable: { targets: [{ url: "http://127.0.0.1:${deadPort}" }] }
  ok: { targets: [{ url: "${ok.url}" }] }
  failing: { targets: [{ url: "${failing.url}" }], retries: { attempts: 0 } }
  flaky: { targets: [{ url: "${flaky.url}" }], retries: { attempts: 0 } }
routes:
  - name: checkout
    match: { path: /checkout }
    upstream: checkout-stable
    fallback: { status: 503, contentType: application/json, body: '{"error":"checkout is resting, try again soon"}' }
  - name: own-500
    match: { path: /own }
    upstream: failing
    fallback: { status: 503, contentType: text/plain, body: resting }
  - name: listed-500
    match: { path: /listed }
    upstream: failing
    fallback: { status: 200, contentType: text/plain, body: 'default answer', onStatus: [500, 503], headers: { x-fallback: "yes" } }
  - name: cached
    match: { path: /cached }
    upstream: flaky
    plugins: [{ cache: { staleIfError: 60s } }]
    fallback: { status: 503, contentType: text/plain, body: resting, headers: { retry-after: "30" } }
  - name: plain-dead
    match: { path: /dead }
    upstream: checkout-stable
  - name: ok
    match: { path: /ok }
    upstream: ok
errorPages:
  html: { 404: pages/404.html, 5xx: pages/5xx.html }   # for clients that accept text/html; APIs keep problem+json
`;
    // Relative page paths resolve from the config file's folder.
    const file = join(dir, 'turnpike.yaml');
    writeFileSync(file, `${yaml}\naccessLog: { enabled: false }\n`);
    gateway = await startGateway({ configFile: file, log: quietLog, watch: false, clock });
    port = gateway.port();
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([ok.close(), failing.close(), flaky.close()]);
  });

  /** The request's end as the access log sees it (status and error code). */
  function ended(path: string): Promise<RequestContext> {
    return nextEvent(
      'turnpike:request:end',
      gateway.runtime.gateway,
      (e) => (e.ctx as RequestContext).path === path,
      `the end of ${path}`,
    ).then((e) => e.ctx as RequestContext);
  }

  test("the issue's fallback answers a connect failure with its body, Retry-After, and the original code logged", async () => {
    const end = ended('/checkout');
    const r = await request(port, '/checkout');
    assert.equal(r.status, 503);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.body, FALLBACK_BODY);
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal((await end).errorCode, 'TP_UPSTREAM_UNAVAILABLE');
  });

  test("an upstream's own 500 is relayed, not replaced, when onStatus does not list it", async () => {
    const r = await request(port, '/own');
    assert.equal(r.status, 500);
    assert.equal(r.body, 'own 500');
  });

  test('onStatus lists the 500: the fallback answers it, with its headers', async () => {
    const r = await request(port, '/listed');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'default answer');
    assert.equal(r.headers['x-fallback'], 'yes');
    assert.equal(r.headers['retry-after'], undefined, 'only a 503 carries Retry-After');
  });

  test("a cache's stale-if-error copy comes before the fallback; without one the fallback answers", async () => {
    assert.equal((await request(port, '/cached/a')).body, 'fresh /cached/a');
    clock.advance(1100);
    flakyDown = true;
    try {
      const end = ended('/cached/a');
      const stale = await request(port, '/cached/a');
      assert.equal(stale.status, 200);
      assert.equal(stale.body, 'fresh /cached/a');
      assert.equal((await end).errorCode, 'TP_UPSTREAM_RESET');
      const none = await request(port, '/cached/b');
      assert.equal(none.status, 503);
      assert.equal(none.body, 'resting');
      assert.equal(none.headers['retry-after'], '30', "the config's Retry-After wins");
    } finally {
      flakyDown = false;
    }
  });

  test('errorPages: a browser gets the HTML page for a 404 and a 5xx, with the code logged; API clients keep problem+json', async () => {
    const end404 = ended('/nowhere');
    const page = await request(port, '/nowhere', { headers: { accept: BROWSER } });
    assert.equal(page.status, 404);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.body, '<h1>Not here</h1>');
    assert.equal((await end404).errorCode, 'TP_ROUTE_NOT_FOUND');

    const end502 = ended('/dead');
    const dead = await request(port, '/dead', { headers: { accept: BROWSER } });
    assert.equal(dead.status, 502);
    assert.equal(dead.body, '<h1>Resting</h1>');
    assert.equal((await end502).errorCode, 'TP_UPSTREAM_UNAVAILABLE');

    assertProblem(await request(port, '/nowhere'), 404, 'TP_ROUTE_NOT_FOUND');
    assertProblem(await request(port, '/nowhere', { headers: { accept: '*/*' } }), 404, 'TP_ROUTE_NOT_FOUND');
    assertProblem(
      await request(port, '/dead', { headers: { accept: 'application/json, text/html;q=0.5' } }),
      502,
      'TP_UPSTREAM_UNAVAILABLE',
    );
  });

  test('turnpike explain names the fallback', async () => {
    const e = await explain(gateway.runtime.current, {
      method: 'GET',
      url: 'http://127.0.0.1/listed',
      listener: 'web',
    });
    assert.deepEqual(e.terminal?.fallback, { status: 200, onStatus: [500, 503] });
    assert.match(formatExplanation(e), /fallback 200 when the upstream cannot answer and its 500, 503/);
  });

  test('a fallback answer is not replaced by an error page (it is the route owner’s answer)', async () => {
    const r = await request(port, '/checkout', { headers: { accept: BROWSER } });
    assert.equal(r.body, FALLBACK_BODY);
  });
});

describe('fallback and errorPages config checks', () => {
  function problems(yaml: string): readonly ConfigProblem[] {
    const dir = tempDir();
    const file = join(dir, 'turnpike.yaml');
    writeFileSync(file, yaml);
    try {
      loadConfigFile(file, LOAD_OPTIONS);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  }

  test('fallback beside respond is a config error at its line', () => {
    const found = problems(`listeners: [{ name: web, protocol: http, port: 8080 }]
routes:
  - match: { path: / }
    respond: { status: 200 }
    fallback: { status: 503, contentType: text/plain }
`);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0]!.line, 5);
    assert.match(found[0]!.message, /fallback stands in for an upstream/);
  });

  test('a missing error page is a config error with its file and line', () => {
    const found = problems(`listeners: [{ name: web, protocol: http, port: 8080 }]
routes:
  - { match: { path: / }, respond: { status: 200 } }
errorPages:
  html: { 404: pages/missing.html }
`);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0]!.code, 'TP_CONFIG_FILE');
    assert.equal(found[0]!.line, 5);
    assert.match(found[0]!.message, /pages\/missing\.html .*not found/);
  });
});
