// The live dashboard in a real browser (playwright-core driving Debian's chromium, headless): the page loads with
// no console errors, logs in with the admin token, its numbers move while a load runs, the drain button drains
// (the next requests avoid that target, checked at the backends), and a killed target turns unhealthy on the page.
// With TURNPIKE_SCREENSHOTS=1 it writes docs/screenshots/dashboard-*.png (shown in the README). Over plain HTTP:
// the page and its files need no token, preact and htm come from the package, the stream needs the token.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Gateway } from '../../src/runtime/gateway.ts';
import { findOnPath } from '../provision.ts';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

const TOKEN = 'dashboard-test-token-0123456789';
const SCREENSHOTS = process.env.TURNPIKE_SCREENSHOTS === '1';
const SHOTS_DIR = new URL('../../docs/screenshots/', import.meta.url);
const WAIT = { timeout: 15_000 };

const hostPort = (b: Backend) => `127.0.0.1:${b.port}`;
/** Requests a backend got from clients (the health probes ask for /health). */
const served = (b: Backend) => b.requests.filter((r) => r.url !== '/health').length;

describe('the dashboard in a browser', () => {
  const backends: Backend[] = [];
  let a: Backend;
  let b: Backend;
  let c: Backend;
  let gw: Gateway & { file: string };
  let tcpEcho: Server;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  before(async () => {
    a = await startEchoBackend('a');
    b = await startEchoBackend('b');
    c = await startEchoBackend('c');
    const catalog = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end('{"items":[]}');
    });
    backends.push(a, b, c, catalog);
    tcpEcho = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => tcpEcho.listen(0, '127.0.0.1', resolve));
    gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: db, protocol: tcp, address: 127.0.0.1, port: 0, upstream: pg }
upstreams:
  pg: { targets: [{ url: "tcp://127.0.0.1:${(tcpEcho.address() as AddressInfo).port}" }] }
  app:
    targets: [{ url: "${a.url}" }, { url: "${b.url}" }, { url: "${c.url}" }]
    healthCheck:
      active: { path: /health, interval: 100ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1 }
  catalog: { targets: [{ url: "${catalog.url}" }] }
consumers:
  - { name: alice, credentials: { apiKeys: [alice-key-0000000001] } }
routes:
  - name: catalog
    match: { path: /catalog }
    upstream: catalog
    plugins: [{ cache: { store: memory } }]
  - name: partner
    match: { path: /partner }
    upstream: app
    plugins: [{ key-auth: {} }, { rate-limit: { limits: [{ requests: 5, per: 1m }] } }]
  - { name: app, match: { path: / }, upstream: app }
admin: { port: 0, auth: { tokens: ["${TOKEN}"] } }
`);
    const executablePath = findOnPath('chromium', process.env.PATH ?? '');
    assert.ok(executablePath, 'chromium is on PATH (npm test installs it: test/provision.ts)');
    // --no-sandbox: the tests may run as root (CI containers), where chromium refuses its sandbox.
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(err.message));
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await Promise.all(backends.map((x) => x.close()));
    tcpEcho?.close();
  });

  const cell = (selector: string) => page.locator(selector).textContent();
  const count = (text: string | null) => Number((text ?? '').replace(/[^\d]/g, ''));
  /** Waits until the digits of the element's text, read as a number, exceed `min` (a function: the page's CSP forbids eval). */
  const waitAbove = (selector: string, min: number) =>
    page.waitForFunction(
      ([sel, n]) => {
        const el = (
          globalThis as { document?: { querySelector(s: string): { textContent: string } | null } }
        ).document?.querySelector(sel);
        return el !== null && el !== undefined && Number(el.textContent.replace(/[^0-9]/g, '')) > n;
      },
      [selector, min] as const,
      WAIT,
    );

  test('the page loads without console errors and logs in with the admin token', async () => {
    const res = await page.goto(`http://127.0.0.1:${gw.admin!.port}/`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await page.locator('#token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForSelector('#status .live.on', WAIT);
    await page.waitForSelector(`tr[data-target="${hostPort(a)}"]`, WAIT);
    assert.deepEqual(consoleErrors, []);
  });

  test('a reload and an L4 session show on the page', async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = connect(gw.port('db'), '127.0.0.1', () => socket.end('ping'));
      let got = '';
      socket.on('data', (d) => (got += d));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
    });
    assert.equal(echoed, 'ping');
    const reloaded = await request(gw.admin!.port, '/api/reload', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(json(reloaded).ok, true, reloaded.body);
    await page.waitForSelector('#reloads :text-is("applied")', WAIT);
    await waitAbove('#l4 tr[data-listener="db"] td.closed', 0);
  });

  test('the numbers move while a load runs', async () => {
    let running = true;
    const load = async () => {
      while (running) {
        await request(gw.port(), '/x');
        await request(gw.port(), '/catalog');
      }
    };
    const loops = [load(), load()];
    try {
      await page.waitForSelector('tr[data-route="app"] td.requests', WAIT);
      const first = count(await cell('tr[data-route="app"] td.requests'));
      await waitAbove('tr[data-route="app"] td.requests', first);
    } finally {
      running = false;
      await Promise.all(loops);
    }
    // Some rate-limit decisions (alice gets 5 a minute, then 429s) and a p99 to show.
    for (let i = 0; i < 8; i++)
      await request(gw.port(), '/partner', { headers: { 'x-api-key': 'alice-key-0000000001' } });
    await waitAbove('#limits-by-consumer tr[data-key="alice"] td.limited', 2);
    assert.notEqual(await cell('tr[data-route="app"] td.p99'), '–');
    await waitAbove('#cache .hit-ratio', 0);
    assert.match((await cell('#cache .hit-ratio')) ?? '', /^\d+\.\d%$/);
    if (SCREENSHOTS) {
      mkdirSync(SHOTS_DIR, { recursive: true });
      await page.screenshot({ path: new URL('dashboard-overview.png', SHOTS_DIR).pathname, fullPage: true });
    }
  });

  test('the drain button drains: the next requests avoid that target', async () => {
    const row = `tr[data-target="${hostPort(a)}"]`;
    await page.locator(`${row} button.drain`).click();
    await page.waitForSelector(`${row} td.health :text-is("drained")`, WAIT);
    const before = served(a);
    const names = new Set<string>();
    for (let i = 0; i < 9; i++) names.add(json(await request(gw.port(), '/x')).name);
    assert.equal(served(a), before);
    assert.deepEqual(names, new Set(['b', 'c']));
    await page.locator(`${row} button.undrain`).click();
    await page.waitForSelector(`${row} td.health :text-is("healthy")`, WAIT);
  });

  test('a killed target turns unhealthy on the page', async () => {
    const row = `tr[data-target="${hostPort(c)}"]`;
    assert.equal(await cell(`${row} td.health`), 'healthy');
    await c.close();
    await page.waitForSelector(`${row} td.health :text-is("unhealthy")`, WAIT);
    if (SCREENSHOTS) {
      await page.locator(`tr[data-target="${hostPort(b)}"] button.drain`).click();
      await page.waitForSelector(`tr[data-target="${hostPort(b)}"] td.health :text-is("drained")`, WAIT);
      await page.locator('#upstreams').screenshot({ path: new URL('dashboard-upstreams.png', SHOTS_DIR).pathname });
    }
    assert.deepEqual(consoleErrors, []);
  });
});

describe('the dashboard files and stream over HTTP', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: hello, match: { path: / }, respond: { body: hi } }]
admin: { port: 0, auth: { tokens: ["${TOKEN}"] } }
`);
  });
  after(() => gw.stop());
  const get = (path: string, headers: Record<string, string> = {}) => request(gw.admin!.port, path, { headers });

  test('the page needs no token, and its import map names preact and htm served from the package, cached for a year', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /^text\/html/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const map = JSON.parse(/<script type="importmap">(.*?)<\/script>/s.exec(page.body)![1]!);
    assert.deepEqual(Object.keys(map.imports), ['preact', 'preact/hooks', 'htm']);
    for (const url of Object.values<string>(map.imports)) {
      const file = await get(url);
      assert.equal(file.status, 200, url);
      assert.match(file.headers['content-type'] ?? '', /^text\/javascript/);
      assert.equal(file.headers['cache-control'], 'public, max-age=31536000, immutable');
    }
    const app = await get('/dashboard/app.js');
    assert.equal(app.status, 200);
    assert.equal(app.headers['cache-control'], 'no-cache');
    assert.equal((await get('/dashboard/index.html')).status, 404);
    assert.equal((await get('/dashboard/vendor/preact.mjs')).status, 404);
  });

  test('the stream needs the token and sends one summary a second as Server-Sent Events', async () => {
    const refused = await get('/api/dashboard/stream');
    assert.equal(refused.status, 401);
    const res = await fetch(`http://127.0.0.1:${gw.admin!.port}/api/dashboard/stream`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes('\n\n')) text += (await reader.read()).value ?? '';
    await reader.cancel();
    assert.match(text, /^event: summary\ndata: /);
    const summary = JSON.parse(text.slice(text.indexOf('data: ') + 6, text.indexOf('\n\n')));
    assert.equal(summary.version, 1);
    assert.equal(summary.windowSeconds, 300);
    for (const key of ['routes', 'upstreams', 'rateLimits', 'cache', 'reloads', 'l4']) assert.ok(key in summary, key);
  });
});
