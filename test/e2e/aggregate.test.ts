// The aggregate terminal against real upstreams: calls in parallel (proven by backends that answer only once all
// of them were asked), a dependent call, an optional call failing, a required call timing out or failing, the
// headers every call gets, and the route's plugins around the whole (key-auth once, the cache keeping the merge).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { assertProblem } from '../helpers/problem.ts';
import { closedPort } from '../helpers/ports.ts';
import { json, request, requestBytes, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

const backends: Backend[] = [];
const cleanups: (() => void)[] = [];
after(async () => {
  for (const c of cleanups) c();
  await Promise.all(backends.map((b) => b.close().catch(() => undefined)));
});

async function backend(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Backend> {
  const b = await startBackend(handler);
  backends.push(b);
  return b;
}

const sendJson = (res: ServerResponse, body: unknown, status = 200) => {
  res.writeHead(status, { 'content-type': 'application/json', server: 'secret-backend/1.0' });
  res.end(JSON.stringify(body));
};

/**
 * `n` backends that hold every answer until each of them has been asked once: a gateway making the calls one
 * after the other would wait on the first forever (and time out), so a 200 proves the calls ran in parallel.
 */
async function rendezvous(n: number): Promise<Backend[]> {
  const waiting: (() => void)[] = [];
  const arrived = (answer: () => void) => {
    waiting.push(answer);
    if (waiting.length === n) for (const a of waiting.splice(0)) a();
  };
  const out: Backend[] = [];
  for (let i = 0; i < n; i++)
    out.push(await backend((req, res) => arrived(() => sendJson(res, { from: i, url: req.url }))));
  return out;
}

const listener = 'listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]\n';
const target = (b: Backend | string) => `{ targets: [{ url: "${typeof b === 'string' ? b : b.url}" }] }`;

describe('aggregate', () => {
  test('calls without after run in parallel: three backends that answer only once all three were asked', async () => {
    const [a, b, c] = await rendezvous(3);
    const gw = await startGatewayYaml(`${listener}
upstreams: { a: ${target(a!)}, b: ${target(b!)}, c: ${target(c!)} }
routes:
  - name: all
    match: { path: /all/:id }
    aggregate:
      timeout: 5s
      calls:
        - { name: a, upstream: a, path: "/a/{params.id}" }
        - { name: b, upstream: b, path: "/b?q={query.q}" }
        - { name: c, upstream: c, path: /c, query: { id: "{params.id}" } }
`);
    try {
      const r = await request(gw.port('web'), '/all/7?q=x%20y');
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-turnpike-partial'], undefined);
      assert.deepEqual(json(r), {
        a: { from: 0, url: '/a/7' },
        b: { from: 1, url: '/b?q=x%20y' },
        c: { from: 2, url: '/c?id=7' },
      });
    } finally {
      await gw.stop();
    }
  });

  test("the issue's profile route: a dependent call, an optional call failing, the headers each call gets", async () => {
    const users = await backend((req, res) =>
      sendJson(res, { id: req.url!.split('/')[2], tierId: 'gold', name: 'Ada' }),
    );
    const billing = await backend((req, res) => sendJson(res, { tier: req.url }));
    const orders = `http://127.0.0.1:${await closedPort()}`;
    const gw = await startGatewayYaml(`${listener}
upstreams: { users: ${target(users)}, orders: ${target(orders)}, billing: ${target(billing)} }
routes:
  - name: profile                              # aggregation (KrakenD's merge, with dependencies)
    match: { path: /profile/:id, methods: [GET] }
    aggregate:
      timeout: 2s                              # the whole call
      calls:
        - { name: user, upstream: users, path: "/users/{params.id}" }
        - { name: orders, upstream: orders, path: "/orders?user={params.id}", optional: true, timeout: 500ms }
        - { name: tier, upstream: billing, path: "/tiers/{user.body.tierId}", after: [user] }
  - name: profile-root
    match: { path: /root/:id }
    aggregate:
      merge: root
      calls:
        - { name: user, upstream: users, path: "/users/{params.id}", forwardHeaders: [authorization] }
        - { name: tier, upstream: billing, path: "/tiers/{user.body.tierId}", after: [user], headers: { x-user: "{user.body.name}" } }
`);
    try {
      const r = await request(gw.port('web'), '/profile/42', {
        headers: { authorization: 'Bearer secret', cookie: 'sid=1', 'x-request-id': 'req-1' },
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['x-turnpike-partial'], 'true');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.deepEqual(json(r), {
        user: { id: '42', tierId: 'gold', name: 'Ada' },
        orders: null,
        tier: { tier: '/tiers/gold' },
      });
      const seen = billing.requests.at(-1)!.headers;
      assert.equal(seen['x-request-id'], 'req-1');
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(seen.authorization, undefined, 'Authorization only where forwardHeaders lists it');
      assert.equal(seen.cookie, undefined);

      const root = await request(gw.port('web'), '/root/5', { headers: { authorization: 'Bearer secret' } });
      assert.equal(root.status, 200, root.body);
      assert.equal(root.headers['x-turnpike-partial'], undefined);
      assert.deepEqual(json(root), { id: '5', tierId: 'gold', name: 'Ada', tier: '/tiers/gold' });
      assert.equal(users.requests.at(-1)!.headers.authorization, 'Bearer secret');
      assert.equal(billing.requests.at(-1)!.headers.authorization, undefined);
      assert.equal(billing.requests.at(-1)!.headers['x-user'], 'Ada');
    } finally {
      await gw.stop();
    }
  });

  test('a required call timing out: 504 naming the call, never the address; the others are not waited for', async () => {
    const held: ServerResponse[] = [];
    const slow = await backend((_req, res) => held.push(res));
    cleanups.push(() => held.forEach((r) => r.destroy()));
    const fast = await backend((_req, res) => sendJson(res, { ok: true }));
    const gw = await startGatewayYaml(`${listener}
upstreams: { slow: ${target(slow)}, fast: ${target(fast)} }
routes:
  - match: { path: /p }
    aggregate:
      calls:
        - { name: quick, upstream: fast, path: /q }
        - { name: stuck, upstream: slow, path: /s, timeout: 300ms }
`);
    try {
      const r = await request(gw.port('web'), '/p');
      assertProblem(r, 504, 'TP_AGGREGATE_CALL_TIMEOUT', [slow.url, String(slow.port)]);
      const body = json(r);
      assert.equal(body.call, 'stuck');
      assert.equal(body.cause, 'TP_UPSTREAM_TIMEOUT');
    } finally {
      await gw.stop();
    }
  });

  test('a required call failing: 502 naming it; a call waiting for a failed one is skipped (null when optional)', async () => {
    const broken = await backend((_req, res) => sendJson(res, { error: 'boom' }, 500));
    const fine = await backend((_req, res) => sendJson(res, { ok: true }));
    const gw = await startGatewayYaml(`${listener}
upstreams: { broken: ${target(broken)}, fine: ${target(fine)} }
routes:
  - match: { path: /required }
    aggregate:
      calls:
        - { name: good, upstream: fine, path: /g }
        - { name: bad, upstream: broken, path: /b }
  - match: { path: /skipped }
    aggregate:
      calls:
        - { name: bad, upstream: broken, path: /b, optional: true }
        - { name: next, upstream: fine, path: "/n/{bad.body.id}", after: [bad], optional: true }
        - { name: good, upstream: fine, path: /g }
  - match: { path: /skipped-required }
    aggregate:
      calls:
        - { name: bad, upstream: broken, path: /b, optional: true }
        - { name: next, upstream: fine, path: "/n/{bad.body.id}", after: [bad] }
`);
    try {
      const r = await request(gw.port('web'), '/required');
      assertProblem(r, 502, 'TP_AGGREGATE_CALL_FAILED', [broken.url, String(broken.port)]);
      assert.equal(json(r).call, 'bad');
      assert.match(json(r).detail, /answered 500/);

      const before = fine.requests.length;
      const s = await request(gw.port('web'), '/skipped');
      assert.equal(s.status, 200, s.body);
      assert.equal(s.headers['x-turnpike-partial'], 'true');
      assert.deepEqual(json(s), { bad: null, next: null, good: { ok: true } });
      assert.deepEqual(
        fine.requests.slice(before).map((q) => q.url),
        ['/g'],
        'the skipped call is never sent',
      );

      const sr = await request(gw.port('web'), '/skipped-required');
      assertProblem(sr, 502, 'TP_AGGREGATE_CALL_FAILED');
      assert.equal(json(sr).call, 'next');
      assert.match(json(sr).detail, /skipped: "bad"/);
    } finally {
      await gw.stop();
    }
  });

  test('plugins run around the whole aggregate: one authentication, the cache stores the merged answer', async () => {
    const users = await backend((req, res) =>
      sendJson(res, { user: req.url, consumer: req.headers['x-consumer-name'] }),
    );
    const orders = await backend((req, res) => sendJson(res, { orders: req.url }));
    const gw = await startGatewayYaml(`${listener}
consumers: [{ name: alice, credentials: { apiKeys: ["alice-key-0123456789"] } }]
upstreams: { users: ${target(users)}, orders: ${target(orders)} }
routes:
  - match: { path: /me }
    plugins:
      - key-auth: {}
      - cache: { defaultTtl: 1m }
    aggregate:
      calls:
        - { name: user, upstream: users, path: "/users/{consumer.name}" }
        - { name: orders, upstream: orders, path: /orders, headers: { x-who: "{consumer.name}" } }
  - match: { path: /gz }
    plugins: [{ compress: { minSize: 0 } }]
    aggregate:
      merge: root
      calls: [{ name: orders, upstream: orders, path: /gz }]
`);
    try {
      const denied = await request(gw.port('web'), '/me');
      assertProblem(denied, 401, 'TP_UNAUTHENTICATED');
      assert.equal(users.requests.length + orders.requests.length, 0, 'no call before authentication');

      const headers = { 'x-api-key': 'alice-key-0123456789' };
      const first = await request(gw.port('web'), '/me', { headers });
      assert.equal(first.status, 200, first.body);
      assert.equal(first.headers['x-cache'], 'MISS');
      const merged = { user: { user: '/users/alice', consumer: 'alice' }, orders: { orders: '/orders' } };
      assert.deepEqual(json(first), merged);
      assert.equal(orders.requests[0]!.headers['x-who'], 'alice');
      assert.equal(orders.requests[0]!.headers['x-consumer-name'], 'alice');

      const second = await request(gw.port('web'), '/me', { headers });
      assert.equal(second.headers['x-cache'], 'HIT');
      assert.deepEqual(json(second), merged);
      assert.equal(users.requests.length, 1, 'the hit made no call');
      assert.equal(orders.requests.length, 1);

      // compress encodes the merged answer like any body a terminal produced
      const gz = await requestBytes(gw.port('web'), '/gz', { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.equal(gz.headers['content-length'], undefined);
      assert.deepEqual(JSON.parse(gunzipSync(gz.body).toString()), { orders: '/gz' });
    } finally {
      await gw.stop();
    }
  });
});
