import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { MatchConfig } from '../../src/config/schema.ts';
import { Router, hostName, type RouteDefinition } from '../../src/routing/router.ts';

type Routes = Record<string, MatchConfig>;

function router(routes: Routes, caseSensitive = true): Router<string> {
  return new Router(
    Object.entries(routes).map(([value, match]): RouteDefinition<string> => ({ match, value })),
    { caseSensitive },
  );
}

interface Request {
  readonly method?: string;
  readonly host?: string;
  readonly headers?: IncomingHttpHeaders;
}

/** `url` is a path with an optional query string. */
function find(r: Router<string>, url: string, req: Request = {}) {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const m = r.find(req.method ?? 'GET', req.host ?? '', path, req.headers ?? {}, query);
  // A path claimed by routes that do not take the method reads as `405 <Allow>`.
  if (m !== undefined && 'versions' in m) return { value: `404 versions ${m.versions.join(',')}`, params: {} };
  return m?.value === undefined && m !== undefined ? { value: `405 ${m.allow}`, params: {} } : m;
}

function route(r: Router<string>, url: string, req: Request = {}): string | undefined {
  return find(r, url, req)?.value;
}

describe('paths', () => {
  test('a string path matches on a segment boundary', () => {
    const r = router({ users: { path: '/users' } });
    for (const p of ['/users', '/users/', '/users/7', '/users/7/posts']) assert.equal(route(r, p), 'users', p);
    for (const p of ['/usersX', '/user', '/', '/other/users']) assert.equal(route(r, p), undefined, p);
  });

  test('a prefix of / matches everything, and no path means /', () => {
    const r1 = router({ root: { path: '/' } });
    const r2 = router({ none: {} });
    for (const p of ['/', '/a', '/a/b/', '//x']) {
      assert.equal(route(r1, p), 'root', p);
      assert.equal(route(r2, p), 'none', p);
    }
  });

  test('{ prefix } behaves like a string path', () => {
    const r = router({ api: { path: { prefix: '/api' } } });
    assert.equal(route(r, '/api'), 'api');
    assert.equal(route(r, '/api/x'), 'api');
    assert.equal(route(r, '/apix'), undefined);
  });

  test('a prefix with a trailing slash needs something after the slash', () => {
    const r = router({ under: { path: '/users/' } });
    assert.equal(route(r, '/users/'), 'under');
    assert.equal(route(r, '/users/7'), 'under');
    assert.equal(route(r, '/users'), undefined);
  });

  test('an exact path matches only that path', () => {
    const r = router({ health: { path: { exact: '/healthz' } }, root: { path: { exact: '/' } } });
    assert.equal(route(r, '/healthz'), 'health');
    assert.equal(route(r, '/healthz/'), undefined);
    assert.equal(route(r, '/healthz/x'), undefined);
    assert.equal(route(r, '/'), 'root');
    assert.equal(route(r, '/x'), undefined);
  });

  test('paths are case-sensitive', () => {
    const r = router({ a: { path: '/Api' } });
    assert.equal(route(r, '/Api/x'), 'a');
    assert.equal(route(r, '/api/x'), undefined);
  });

  test('a :param segment in a prefix captures one segment', () => {
    const r = router({ user: { path: '/users/:id' } });
    assert.deepEqual(find(r, '/users/7')?.params, { id: '7' });
    assert.deepEqual(find(r, '/users/7/posts/3')?.params, { id: '7' });
    assert.equal(route(r, '/users'), undefined);
  });

  test('a parameter needs a non-empty segment', () => {
    const r = router({ user: { path: '/users/:id' }, users: { path: '/users' } });
    assert.equal(route(r, '/users/'), 'users');
    assert.equal(route(r, '/users//posts'), 'users');
    assert.equal(route(router({ user: { path: '/users/:id' } }), '/users/'), undefined);
  });

  test('exact paths take parameters too', () => {
    const r = router({ post: { path: { exact: '/users/:id/posts/:post' } } });
    assert.deepEqual(find(r, '/users/7/posts/9'), { value: 'post', params: { id: '7', post: '9' } });
    assert.equal(route(r, '/users/7/posts/9/x'), undefined);
  });

  test('params are decoded', () => {
    const r = router({ file: { path: '/files/:name' }, re: { path: { regex: '^/re/(?<name>[^/]+)$' } } });
    assert.deepEqual(find(r, '/files/a%20b')?.params, { name: 'a b' });
    assert.deepEqual(find(r, '/files/a%2Fb/rest')?.params, { name: 'a/b' });
    assert.deepEqual(find(r, '/re/caf%C3%A9')?.params, { name: 'café' });
  });

  test('the wildcard of a prefix is not exposed as a param', () => {
    const r = router({ files: { path: '/files' }, root: { path: '/' } });
    assert.deepEqual(find(r, '/files/a/b')?.params, {});
    assert.deepEqual(find(r, '/anything')?.params, {});
  });

  test('regex paths expose named groups as params', () => {
    const r = router({ versioned: { path: { regex: '^/v(?<version>[0-9]+)/(?<rest>.*)$' } } });
    assert.deepEqual(find(r, '/v2/users/7'), { value: 'versioned', params: { version: '2', rest: 'users/7' } });
    assert.equal(route(r, '/vx/users'), undefined);
  });

  test('a regex without named groups gives no params, and optional groups that did not match are left out', () => {
    const r = router({ plain: { path: { regex: '^/v[0-9]+/' } }, opt: { path: { regex: '^/o(?<x>a)?(?<y>b)$' } } });
    assert.deepEqual(find(r, '/v1/x'), { value: 'plain', params: {} });
    assert.deepEqual(find(r, '/ob')?.params, { y: 'b' });
  });

  test('static segments of a config path are compared decoded', () => {
    const r = router({ cafe: { path: '/caf%C3%A9' }, colon: { path: '/a:b' } });
    assert.equal(route(r, '/caf%C3%A9/menu'), 'cafe');
    assert.equal(route(r, '/a:b'), 'colon');
  });

  test('a malformed path still reaches the / prefix and regex routes', () => {
    const r = router({
      users: { path: '/users' },
      root: { path: '/', methods: ['POST'] },
      re: { path: { regex: '^/users/' } },
    });
    // The POST-only `/` route claims the path for its method: GET is 405, not the less specific regex route.
    assert.equal(route(r, '/users/%zz'), '405 POST');
    assert.equal(route(r, '/users/%zz', { method: 'POST' }), 'root');
    const open = router({ users: { path: '/users' }, re: { path: { regex: '^/users/' } } });
    assert.equal(route(open, '/users/%zz'), 're');
  });

  test('a path with a parameter that is not a whole segment, or with *, is rejected', () => {
    assert.throws(() => router({ a: { path: '/files/:name.json' } }), /parameter/);
    assert.throws(() => router({ a: { path: '/files/*' } }), /cannot contain/);
    assert.throws(() => router({ a: { path: { exact: '/:' } } }), /parameter/);
  });
});

describe('precedence within a host', () => {
  test('the longest prefix wins', () => {
    const r = router({ root: { path: '/' }, api: { path: '/api' }, v1: { path: '/api/v1' } });
    assert.equal(route(r, '/api/v1/users'), 'v1');
    assert.equal(route(r, '/api/v1'), 'v1');
    assert.equal(route(r, '/api/v2'), 'api');
    assert.equal(route(r, '/api'), 'api');
    assert.equal(route(r, '/apiv1'), 'root');
    assert.equal(route(r, '/'), 'root');
  });

  test('a static segment beats a parameter, which beats a shorter prefix', () => {
    const r = router({ users: { path: '/users' }, user: { path: '/users/:id' }, me: { path: '/users/me' } });
    assert.equal(route(r, '/users/me'), 'me');
    assert.equal(route(r, '/users/me/settings'), 'me');
    assert.equal(route(r, '/users/mex'), 'user');
    assert.equal(route(r, '/users/7'), 'user');
    assert.equal(route(r, '/users'), 'users');
  });

  test('an earlier static segment beats a longer pattern with a parameter there', () => {
    const r = router({ deep: { path: '/a/:x/c/d' }, ab: { path: '/a/b' } });
    assert.equal(route(r, '/a/b/c/d'), 'ab');
    assert.deepEqual(find(r, '/a/z/c/d'), { value: 'deep', params: { x: 'z' } });
  });

  test('exact beats prefix, even a more specific prefix', () => {
    const r = router({
      root: { path: '/' },
      health: { path: { exact: '/healthz' } },
      healthPrefix: { path: '/healthz' },
      me: { path: '/users/me' },
      user: { path: { exact: '/users/:id' } },
    });
    assert.equal(route(r, '/healthz'), 'health');
    assert.equal(route(r, '/healthz/x'), 'healthPrefix');
    assert.equal(route(r, '/users/me'), 'user');
    assert.equal(route(r, '/users/me/x'), 'me');
  });

  test('a prefix beats a regex, and regex routes are tried in config order', () => {
    const r = router({
      re1: { path: { regex: '^/v[0-9]+/' } },
      re2: { path: { regex: '^/v' } },
      v1: { path: '/v1' },
    });
    assert.equal(route(r, '/v1/x'), 'v1');
    assert.equal(route(r, '/v2/x'), 're1');
    assert.equal(route(r, '/vx'), 're2');
    assert.equal(route(r, '/x'), undefined);
  });

  test('several routes with the same path pattern are tried in config order', () => {
    const r = router({
      first: { path: '/api', headers: { 'x-first': 'yes' } },
      second: { path: '/api/' },
      third: { path: '/api' },
    });
    assert.equal(route(r, '/api/x', { headers: { 'x-first': 'yes' } }), 'first');
    assert.equal(route(r, '/api/x'), 'second');
    assert.equal(route(r, '/api'), 'third');
  });

  test('routes naming the same parameter differently keep their own names', () => {
    const r = router({ getUser: { path: { exact: '/users/:id' }, methods: ['GET'] }, other: { path: '/users/:uid' } });
    assert.deepEqual(find(r, '/users/7'), { value: 'getUser', params: { id: '7' } });
    assert.deepEqual(find(r, '/users/7', { method: 'POST' }), { value: 'other', params: { uid: '7' } });
  });
});

describe('predicates and fall-through', () => {
  test('POST to a GET-only path is 405, never passed to a less specific route', () => {
    const r = router({ A: { path: '/orders', methods: ['GET'] }, B: { path: '/' } });
    assert.equal(route(r, '/orders'), 'A');
    assert.equal(route(r, '/orders', { method: 'POST' }), '405 GET, HEAD');
    assert.equal(route(r, '/orders/1', { method: 'POST' }), '405 GET, HEAD');
    assert.equal(route(r, '/other', { method: 'POST' }), 'B');
  });

  test('a path claimed by its most specific routes is 405 for other methods; routes with the same segments share it', () => {
    const r = router({
      exact: { path: { exact: '/a/b/c' }, methods: ['PUT'] },
      abc: { path: '/a/b/c', methods: ['PATCH'] },
      ab: { path: '/a/b', methods: ['POST'] },
      ax: { path: '/a/:x', methods: ['DELETE'] },
      a: { path: '/a', methods: ['OPTIONS'] },
      re: { path: { regex: '^/a/' }, methods: ['TRACE'] },
      root: { path: '/', methods: ['GET'] },
    });
    const expected: Record<string, string | undefined> = {
      PUT: 'exact',
      PATCH: 'abc',
      POST: '405 PUT, PATCH',
      DELETE: '405 PUT, PATCH',
      GET: '405 PUT, PATCH',
      CONNECT: '405 PUT, PATCH',
    };
    for (const [method, value] of Object.entries(expected)) assert.equal(route(r, '/a/b/c', { method }), value, method);
    // Below the claimed path's level each route still takes its own path.
    assert.equal(route(r, '/a/b', { method: 'POST' }), 'ab');
    assert.deepEqual(find(r, '/a/z/c', { method: 'DELETE' })?.params, { x: 'z' });
    assert.equal(route(r, '/a', { method: 'OPTIONS' }), 'a');
    assert.equal(route(r, '/a/z/c', { method: 'POST' }), '405 DELETE');
    assert.equal(route(r, '/b', { method: 'GET' }), 'root');
    // A header or query predicate that does not match passes the route over: it claims nothing.
    const h = router({ beta: { path: '/a', methods: ['GET'], headers: { 'x-beta': '1' } }, root: { path: '/' } });
    assert.equal(route(h, '/a', { method: 'POST' }), 'root');
    assert.equal(route(h, '/a', { method: 'POST', headers: { 'x-beta': '1' } }), '405 GET, HEAD');
  });

  test('a method refused under /users/me is 405, other users still reach /users/:id with their params', () => {
    const r = router({ me: { path: '/users/me', methods: ['GET'] }, user: { path: '/users/:id' } });
    assert.equal(route(r, '/users/me/x', { method: 'POST' }), '405 GET, HEAD');
    assert.deepEqual(find(r, '/users/you/x', { method: 'POST' }), { value: 'user', params: { id: 'you' } });
  });

  test('a route that only might match is checked at lookup', () => {
    const r = router({
      me: { path: '/users/me', methods: ['GET'] },
      posts: { path: '/users/:id/posts' },
      user: { path: '/users/:id', methods: ['POST'] },
      ab: { path: { exact: '/a/b/:x' }, methods: ['GET'] },
      ayc: { path: { exact: '/a/:y/c' } },
    });
    // /users/me (GET only) claims everything below it for other methods.
    assert.equal(route(r, '/users/me/posts/1', { method: 'POST' }), '405 GET, HEAD');
    assert.deepEqual(find(r, '/users/you/posts/1', { method: 'POST' }), { value: 'posts', params: { id: 'you' } });
    assert.deepEqual(find(r, '/users/you/other', { method: 'POST' }), { value: 'user', params: { id: 'you' } });
    assert.equal(route(r, '/users/you/other', { method: 'PUT' }), '405 POST');
    assert.deepEqual(find(r, '/a/b/c'), { value: 'ab', params: { x: 'c' } });
    assert.equal(route(r, '/a/b/c', { method: 'POST' }), '405 GET, HEAD');
    assert.deepEqual(find(r, '/a/z/c', { method: 'POST' }), { value: 'ayc', params: { y: 'z' } });
    assert.equal(route(r, '/a/z/d', { method: 'POST' }), undefined);
  });

  test('HEAD matches a route that allows GET', () => {
    const r = router({ get: { path: '/x', methods: ['GET'] }, post: { path: '/x', methods: ['POST'] } });
    assert.equal(route(r, '/x', { method: 'HEAD' }), 'get');
    assert.equal(route(r, '/x', { method: 'POST' }), 'post');
    assert.equal(route(r, '/x', { method: 'PUT' }), '405 GET, HEAD, POST');
    assert.equal(route(router({ post: { path: '/x', methods: ['POST'] } }), '/x', { method: 'HEAD' }), '405 POST');
  });

  test('headers route an API version', () => {
    const r = router({
      v2: { path: '/api', headers: { 'x-api-version': '2' } },
      v3: { path: '/api', headers: { 'x-api-version': { regex: '^3(\\.[0-9]+)?$' } } },
      json: { path: '/api', headers: { accept: { regex: 'json' }, 'x-tenant': 'acme' } },
      v1: { path: '/api' },
    });
    assert.equal(route(r, '/api/x', { headers: { 'x-api-version': '2' } }), 'v2');
    assert.equal(route(r, '/api/x', { headers: { 'x-api-version': '3.1' } }), 'v3');
    assert.equal(route(r, '/api/x', { headers: { 'x-api-version': '4' } }), 'v1');
    assert.equal(route(r, '/api/x', { headers: { 'x-api-version': '20' } }), 'v1');
    assert.equal(route(r, '/api/x'), 'v1');
    assert.equal(route(r, '/api/x', { headers: { accept: 'application/json', 'x-tenant': 'acme' } }), 'json');
    assert.equal(route(r, '/api/x', { headers: { accept: 'application/json' } }), 'v1');
  });

  test('a header with several values matches when any value does', () => {
    const r = router({ cookie: { headers: { 'set-cookie': { regex: '^b=' } } }, other: {} });
    assert.equal(route(r, '/', { headers: { 'set-cookie': ['a=1', 'b=2'] } }), 'cookie');
    assert.equal(route(r, '/', { headers: { 'set-cookie': ['a=1'] } }), 'other');
  });

  test('query predicates match exact and regex', () => {
    const r = router({
      debug: { path: '/search', query: { debug: '1' } },
      page: { path: '/search', query: { page: { regex: '^[0-9]+$' }, q: 'a b' } },
      flag: { path: '/search', query: { flag: '' } },
      plain: { path: '/search' },
    });
    assert.equal(route(r, '/search?debug=1'), 'debug');
    assert.equal(route(r, '/search?x=2&debug=1&y'), 'debug');
    assert.equal(route(r, '/search?debug=1&debug=2'), 'debug');
    assert.equal(route(r, '/search?debug=10'), 'plain');
    assert.equal(route(r, '/search?debugx=1'), 'plain');
    assert.equal(route(r, '/search?page=12&q=a+b'), 'page');
    assert.equal(route(r, '/search?page=12&q=a%20b'), 'page');
    assert.equal(route(r, '/search?pa%67e=3&q=a%20b'), 'page');
    assert.equal(route(r, '/search?page=x&q=a+b'), 'plain');
    assert.equal(route(r, '/search?page=1'), 'plain');
    assert.equal(route(r, '/search?flag'), 'flag');
    assert.equal(route(r, '/search?flag='), 'flag');
    assert.equal(route(r, '/search?q=%zz&flag'), 'flag');
    assert.equal(route(r, '/search'), 'plain');
  });

  test('a query predicate sees the first occurrence of a repeated name, as Envoy and NGINX ($arg_NAME) do', () => {
    const r = router({ debug: { path: '/search', query: { debug: '1' } }, plain: { path: '/search' } });
    assert.equal(route(r, '/search?debug=1&debug=2'), 'debug');
    assert.equal(route(r, '/search?debug=2&debug=1'), 'plain');
    assert.equal(route(r, '/search?debug&debug=1'), 'plain', 'a name without = is an empty first value');
    assert.equal(route(r, '/search?de%62ug=1&debug=2'), 'debug', 'names compare decoded');
  });
});

describe('hosts', () => {
  test('an exact host matches only that host', () => {
    const r = router({ api: { host: 'api.example.com' } });
    assert.equal(route(r, '/', { host: 'api.example.com' }), 'api');
    assert.equal(route(r, '/', { host: 'www.example.com' }), undefined);
    assert.equal(route(r, '/', { host: '' }), undefined);
  });

  test('wildcard host matches subdomains but not the apex', () => {
    const r = router({ wild: { host: '*.example.com' } });
    assert.equal(route(r, '/', { host: 'a.example.com' }), 'wild');
    assert.equal(route(r, '/', { host: 'a.b.example.com' }), 'wild');
    assert.equal(route(r, '/', { host: 'example.com' }), undefined);
    assert.equal(route(r, '/', { host: 'badexample.com' }), undefined);
    assert.equal(route(r, '/', { host: '.example.com' }), undefined);
  });

  test('exact host beats wildcard beats any', () => {
    const r = router({
      any: {},
      wide: { host: '*.example.com' },
      narrow: { host: '*.api.example.com' },
      exact: { host: 'v1.api.example.com' },
    });
    assert.equal(route(r, '/', { host: 'v1.api.example.com' }), 'exact');
    assert.equal(route(r, '/', { host: 'v2.api.example.com' }), 'narrow');
    assert.equal(route(r, '/', { host: 'x.v2.api.example.com' }), 'narrow');
    assert.equal(route(r, '/', { host: 'api.example.com' }), 'wide');
    assert.equal(route(r, '/', { host: 'example.com' }), 'any');
    assert.equal(route(r, '/', { host: 'other.org' }), 'any');
    assert.equal(route(r, '/', { host: '' }), 'any');
  });

  test('a host table with no matching route falls through to less specific hosts, unless its methods claim the path', () => {
    const r = router({
      exactGet: { host: 'api.example.com', path: '/orders', methods: ['GET'] },
      wildOrders: { host: '*.example.com', path: '/orders', headers: { 'x-beta': '1' } },
      any: { path: '/' },
    });
    assert.equal(route(r, '/orders', { host: 'api.example.com' }), 'exactGet');
    assert.equal(
      route(r, '/orders', { host: 'b.example.com', method: 'POST', headers: { 'x-beta': '1' } }),
      'wildOrders',
    );
    assert.equal(route(r, '/orders', { host: 'b.example.com', method: 'POST' }), 'any');
    assert.equal(route(r, '/orders', { host: 'api.example.com', method: 'POST' }), '405 GET, HEAD');
    assert.equal(route(r, '/other', { host: 'api.example.com' }), 'any');
  });

  test('a more specific host wins over a more specific path', () => {
    const r = router({ anyDeep: { path: '/a/b/c' }, hostRoot: { host: 'h.example.com', path: '/' } });
    assert.equal(route(r, '/a/b/c', { host: 'h.example.com' }), 'hostRoot');
    assert.equal(route(r, '/a/b/c', { host: 'g.example.com' }), 'anyDeep');
  });

  test('the port and a trailing dot of the host are ignored', () => {
    const r = router({
      api: { host: 'api.example.com' },
      wild: { host: '*.example.com:8443' },
      v6: { host: 'localhost' },
    });
    assert.equal(route(r, '/', { host: 'api.example.com:8080' }), 'api');
    assert.equal(route(r, '/', { host: 'api.example.com.' }), 'api');
    assert.equal(route(r, '/', { host: 'api.example.com.:80' }), 'api');
    assert.equal(route(r, '/', { host: 'x.example.com:1' }), 'wild');
    assert.equal(route(r, '/', { host: 'localhost:3000' }), 'v6');
    assert.equal(hostName('[::1]:8080'), '[::1]');
    assert.equal(hostName('[::1]'), '[::1]');
    assert.equal(hostName('example.com'), 'example.com');
  });

  test('a route with several hosts is in each of them', () => {
    const r = router({ both: { host: ['a.example.com', '*.b.example.com', 'a.example.com'] }, any: {} });
    assert.equal(route(r, '/', { host: 'a.example.com' }), 'both');
    assert.equal(route(r, '/', { host: 'x.b.example.com' }), 'both');
    assert.equal(route(r, '/', { host: 'c.example.com' }), 'any');
  });
});

describe('scale', () => {
  /** `n` routes: a quarter each of static prefixes, parametric paths, exact hosts and wildcard hosts. */
  function build(n: number): Router<string> {
    const routes: Routes = { root: { path: '/' } };
    for (let i = 0; i < n / 4; i++) {
      routes[`static${i}`] = { path: `/s${i}` };
      routes[`param${i}`] = { path: `/p${i}/:id`, methods: ['GET'] };
      routes[`exact${i}`] = { path: { exact: `/e${i}` }, host: `h${i}.example.com` };
      routes[`wild${i}`] = { path: `/w`, host: `*.w${i}.example.com` };
    }
    return router(routes);
  }

  test('a table of 10,000 routes finds the same routes as a table of 10', () => {
    // Correctness at size only: the cost of a lookup at 10 vs 10,000 routes is measured by the bench's
    // turnpike-10k-routes target, never in a timed test.
    for (const n of [10, 10_000]) {
      const r = build(n);
      const last = Math.ceil(n / 4) - 1;
      assert.equal(route(r, `/s${last}/x`), `static${last}`);
      assert.equal(route(r, `/s${last}x`), 'root');
      assert.deepEqual(find(r, `/p${last}/42`), { value: `param${last}`, params: { id: '42' } });
      assert.equal(route(r, `/p${last}/42`, { method: 'POST' }), '405 GET, HEAD');
      assert.equal(route(r, `/p${last}`, { method: 'POST' }), 'root');
      assert.equal(route(r, `/e${last}`, { host: `h${last}.example.com` }), `exact${last}`);
      assert.equal(route(r, `/e${last}`, { host: `h0.example.com` }), 'root');
      assert.equal(route(r, '/w', { host: `a.w${last}.example.com:80` }), `wild${last}`);
      assert.equal(route(r, '/w', { host: `w${last}.example.com` }), 'root');
      assert.equal(route(r, '/s', { host: 'nowhere' }), 'root');
    }
  });
});

// A direct transcription of the precedence rules: every route in precedence order, each checked alone.
describe('reference model', () => {
  type Seg = string | null;
  function segs(p: string): Seg[] {
    return p.split('/').map((s) => (s.startsWith(':') ? null : s));
  }
  function compare(a: Seg[], b: Seg[]): number {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length) return 1;
      if (i >= b.length) return -1;
      if ((a[i] === null) !== (b[i] === null)) return a[i] === null ? 1 : -1;
    }
    return 0;
  }
  interface Ref {
    name: string;
    index: number;
    kind: 'exact' | 'prefix';
    segs: Seg[];
    needsMore: boolean;
    method?: string;
  }
  function matches(r: Ref, path: string): boolean {
    const p = path.slice(1).split('/');
    const enough =
      r.kind === 'exact'
        ? p.length === r.segs.length
        : r.needsMore
          ? p.length > r.segs.length
          : p.length >= r.segs.length;
    return enough && r.segs.every((s, i) => (s === null ? p[i] !== '' : s === p[i]));
  }

  test('the router agrees with a simple model on random routes and paths', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const words = ['a', 'b', ':x', ':y'];
    const pathWords = ['a', 'b', 'c', ''];
    for (let round = 0; round < 300; round++) {
      const refs: Ref[] = [];
      const defs: RouteDefinition<string>[] = [];
      const count = 1 + rand(8);
      for (let i = 0; i < count; i++) {
        const len = rand(4);
        const parts = Array.from({ length: len }, () => words[rand(words.length)]!);
        // Distinct parameter names within one path.
        const body = parts.map((w, j) => (w.startsWith(':') ? `${w}${j}` : w)).join('/');
        const kind = rand(3) === 0 ? 'exact' : 'prefix';
        const trailing = kind === 'prefix' && len > 0 && rand(4) === 0;
        const source = '/' + body + (trailing ? '/' : '');
        const method = rand(2) === 0 ? 'GET' : undefined;
        const name = `r${i}`;
        const refSegs = kind === 'prefix' ? (len === 0 ? [] : segs(body)) : segs(body);
        refs.push({
          name,
          index: i,
          kind,
          segs: refSegs,
          needsMore: kind === 'prefix' && (trailing || len === 0),
          method,
        });
        const path = kind === 'exact' ? { exact: source } : source;
        defs.push({ value: name, match: method ? { path, methods: [method] } : { path } });
      }
      const ordered = [...refs].sort((a, b) =>
        a.kind !== b.kind ? (a.kind === 'exact' ? -1 : 1) : compare(a.segs, b.segs) || a.index - b.index,
      );
      const r = new Router(defs);
      for (let j = 0; j < 30; j++) {
        const path = '/' + Array.from({ length: rand(5) }, () => pathWords[rand(pathWords.length)]).join('/');
        for (const method of ['GET', 'POST']) {
          // The first route whose path matches but whose method does not claims the path: only routes with the
          // same segments may still take the request, else 405.
          let claim: Ref | undefined;
          let expected: Ref | undefined;
          for (const ref of ordered) {
            if (!matches(ref, path)) continue;
            if (
              claim !== undefined &&
              (claim.segs.length !== ref.segs.length || claim.segs.some((s, i) => s !== ref.segs[i]))
            )
              continue;
            if (ref.method === undefined || ref.method === method) {
              expected = ref;
              break;
            }
            claim ??= ref;
          }
          const got = find(r, path, { method });
          const detail = `${method} ${path} with ${defs.map((d) => `${d.value}=${JSON.stringify(d.match)}`).join(' ')}`;
          assert.equal(got?.value, expected?.name ?? (claim === undefined ? undefined : '405 GET, HEAD'), detail);
          if (expected !== undefined) {
            const p = path.slice(1).split('/');
            const body = defs[expected.index]!.match.path;
            const source = typeof body === 'string' ? body : (body as { exact: string }).exact;
            const params: Record<string, string> = {};
            source
              .slice(1)
              .split('/')
              .forEach((s, i) => {
                if (s.startsWith(':')) params[s.slice(1)] = p[i]!;
              });
            assert.deepEqual(got?.params, params, detail);
          }
        }
      }
    }
  });
});

describe('letter case', () => {
  test('paths are case-sensitive by default: /ADMIN is not /admin', () => {
    const r = router({ admin: { path: '/admin' }, open: { path: '/' } });
    assert.equal(route(r, '/admin/x'), 'admin');
    for (const p of ['/ADMIN', '/Admin/x']) assert.equal(route(r, p), 'open', p);
  });

  test('caseSensitive false: every kind of path matches whatever the case, and parameters keep the case sent', () => {
    const r = router(
      {
        admin: { path: '/Admin' },
        exact: { path: { exact: '/Login' } },
        user: { path: '/users/:Name/posts' },
        open: { path: '/' },
      },
      false,
    );
    for (const p of ['/admin', '/ADMIN/x', '/aDmIn/']) assert.equal(route(r, p), 'admin', p);
    assert.equal(route(r, '/LOGIN'), 'exact');
    assert.deepEqual(find(r, '/USERS/BoB/Posts'), { value: 'user', params: { Name: 'BoB' } });
    assert.equal(route(r, '/adminx'), 'open');
    // Regex routes come after every prefix (here without the catch-all); they get the i flag.
    const rx = router({ rx: { path: { regex: '^/Files/(?<file>[a-z]+)$' } } }, false);
    assert.deepEqual(find(rx, '/files/ReadMe'), { value: 'rx', params: { file: 'ReadMe' } });
  });

  test('caseSensitive false: a method claim and its 405 hold for every case of the path', () => {
    const r = router({ orders: { path: '/orders', methods: ['GET'] }, open: { path: '/' } }, false);
    assert.equal(route(r, '/ORDERS', { method: 'POST' }), '405 GET, HEAD');
  });
});
