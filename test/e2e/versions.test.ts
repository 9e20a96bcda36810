// API versions (issue 19.1): the version from a header, a media type in Accept or a /v{version}/ prefix (stripped
// before forwarding), routes that take one version, 404 naming the versions a path exists in, a deprecated
// route's Deprecation/Sunset/Link headers and its 410 after the sunset (on a manual clock), the version in the
// access log and in turnpike_requests_total. The versioning section and the users routes are the issue's, verbatim.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { explain } from '../../src/explain/explain.ts';
import type { Gateway } from '../../src/index.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { ManualClock } from '../helpers/clock.ts';
import { assertProblem } from '../helpers/problem.ts';
import { until } from '../helpers/wait.ts';
import { json, request, startEchoBackend, startGatewayYaml, tempDir, type Backend } from '../helpers/servers.ts';

const ISSUE_EXAMPLE = `versioning:
  from: [header, mediaType, path]          # where a request's version comes from, in order
  header: api-version                      # api-version: 2
  mediaType: "application/vnd.acme.v{version}+json"   # Accept: application/vnd.acme.v2+json
  default: "1"
routes:
  - name: users-v1
    match: { path: /users, version: "1" }
    upstream: users-v1
    deprecated: { since: "2026-12-01T00:00:00Z", sunset: "2027-06-30T00:00:00Z", link: "https://docs.example.com/migrate-v2" }
  - name: users-v2
    match: { path: /users, version: "2" }
    upstream: users-v2
`;

const SUNSET = Date.parse('2027-06-30T00:00:00Z');

describe('versions', () => {
  let v1: Backend;
  let v2: Backend;
  let plain: Backend;
  let gw: Gateway;
  let port: number;
  const clock = new ManualClock();
  const log = join(tempDir(), 'access.log');

  before(async () => {
    [v1, v2, plain] = await Promise.all([startEchoBackend('v1'), startEchoBackend('v2'), startEchoBackend('plain')]);
    gw = await startGatewayYaml(
      `${ISSUE_EXAMPLE}  - name: checkout
    match: { path: /checkout }
    upstream: plain
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  users-v1: { targets: [{ url: "${v1.url}" }] }
  users-v2: { targets: [{ url: "${v2.url}" }] }
  plain: { targets: [{ url: "${plain.url}" }] }
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
accessLog: { output: ${log} }
`,
      { clock },
    );
    port = gw.port();
  });
  after(async () => {
    await gw.stop();
    await Promise.all([v1.close(), v2.close(), plain.close()]);
  });

  const get = (path: string, headers: Record<string, string> = {}) => request(port, path, { headers });

  test('the header, then the media type, then a /v{version}/ prefix, then the default pick the route', async () => {
    const byHeader = await get('/users/7', { 'api-version': '2' });
    assert.equal(byHeader.status, 200);
    assert.deepEqual([json(byHeader).name, json(byHeader).url], ['v2', '/users/7']);

    const byAccept = await get('/users', { accept: 'text/html;q=0.5, Application/VND.acme.v2+json; q=1' });
    assert.deepEqual([json(byAccept).name, json(byAccept).url], ['v2', '/users']);

    // The prefix is stripped before forwarding: the routes are written without it.
    const byPath = await get('/v2/users/7?x=1');
    assert.deepEqual([json(byPath).name, json(byPath).url], ['v2', '/users/7?x=1']);
    assert.deepEqual(json(await get('/v1/users')).url, '/users');
    assert.equal(json(await get('/v1/users')).name, 'v1');

    // The header comes first in `from`: it wins over the media type.
    const both = await get('/users', { 'api-version': '1', accept: 'application/vnd.acme.v2+json' });
    assert.equal(json(both).name, 'v1');

    const byDefault = await get('/users');
    assert.equal(json(byDefault).name, 'v1');
  });

  test('a route without a version takes any version and keeps its path', async () => {
    const r = await get('/checkout/pay', { 'api-version': '9' });
    assert.deepEqual([json(r).name, json(r).url], ['plain', '/checkout/pay']);
    // A /v{version} prefix is read for versioned routes only: /v2/checkout is no path of the unversioned route.
    assertProblem(await get('/v2/checkout'), 404, 'TP_ROUTE_NOT_FOUND');
  });

  test('a version no route has: 404 problem+json listing the versions of the path', async () => {
    for (const r of [await get('/users', { 'api-version': '3' }), await get('/v3/users/7')]) {
      assertProblem(r, 404, 'TP_VERSION_NOT_FOUND', [v1.url, v2.url]);
      assert.deepEqual(json(r).versions, ['1', '2']);
      assert.match(json(r).detail, /version 3/);
    }
    // Nothing was forwarded for them.
    assert.ok(v1.requests.every((q) => !q.url!.includes('v3')));
  });

  test('the deprecated route carries Deprecation, Sunset and Link; the other does not', async () => {
    const old = await get('/users');
    assert.equal(old.status, 200);
    assert.equal(old.headers.deprecation, `@${Date.parse('2026-12-01T00:00:00Z') / 1000}`);
    assert.equal(old.headers.sunset, 'Wed, 30 Jun 2027 00:00:00 GMT');
    assert.equal(old.headers.link, '<https://docs.example.com/migrate-v2>; rel="deprecation"; type="text/html"');
    const current = await get('/users', { 'api-version': '2' });
    assert.equal(current.headers.deprecation, undefined);
    assert.equal(current.headers.sunset, undefined);
  });

  test('the version is a label of turnpike_requests_total, bounded by the config', async () => {
    await get('/users', { 'api-version': 'x'.repeat(40) });
    // Requests are counted when their exchange ends: wait until none is in flight.
    const m = await until(async () => {
      const body = (await request(gw.admin!.port, '/metrics')).body;
      return /^turnpike_requests_in_flight 0$/m.test(body) && body;
    }, 'the requests to end');
    const count = (labels: string): number => {
      const line = m.split('\n').find((l) => l.startsWith(`turnpike_requests_total{${labels}} `));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.ok(count('route="users-v2",method="GET",status="2xx",version="2"') >= 3, m);
    assert.ok(count('route="users-v1",method="GET",status="2xx",version="1"') >= 3, m);
    assert.ok(count('route="checkout",method="GET",status="2xx",version="9"') === 0, m);
    assert.ok(count('route="checkout",method="GET",status="2xx",version="(other)"') >= 1, m);
    assert.ok(count('route="(no route)",method="GET",status="4xx",version="(other)"') >= 1, m);
    assert.ok(!m.includes('xxxxxxxx'), 'a client-chosen version is no label value');
  });

  test('turnpike explain names the version a route missed on, and the 404 of a version no route has', async () => {
    const url = `http://127.0.0.1:${port}/v2/users/7`;
    const e = await explain(gw.runtime.current, { method: 'GET', url, listener: 'web' });
    assert.equal(e.route?.name, 'users-v2');
    const v1Verdict = e.routes.find((r) => r.name === 'users-v1')!;
    assert.deepEqual(v1Verdict.misses, [{ on: 'version', detail: 'version 2 is not 1' }]);
    const missing = await explain(gw.runtime.current, {
      method: 'GET',
      url: `http://127.0.0.1:${port}/users/7`,
      listener: 'web',
      headers: { 'api-version': '3' },
    });
    assert.equal(missing.outcome.code, 'TP_VERSION_NOT_FOUND');
    assert.match(missing.outcome.summary, /versions: 1, 2/);
  });

  test('after the sunset the deprecated route answers 410 Gone, still with its headers', async () => {
    clock.advance(SUNSET - clock.now() + 1000);
    const gone = await get('/users');
    assertProblem(gone, 410, 'TP_VERSION_SUNSET', [v1.url]);
    assert.equal(gone.headers.sunset, 'Wed, 30 Jun 2027 00:00:00 GMT');
    assert.match(String(gone.headers.link), /rel="deprecation"/);
    assert.equal((await get('/users', { 'api-version': '2' })).status, 200);
  });

  test('the access log has the version of each request', async () => {
    await gw.stop();
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const v2Line = lines.find((l) => l.route === 'users-v2');
    assert.equal(v2Line.version, '2');
    const missed = lines.find((l) => l.error === 'TP_VERSION_NOT_FOUND');
    assert.equal(missed.version, '3');
    const gone = lines.find((l) => l.error === 'TP_VERSION_SUNSET');
    assert.equal(gone.version, '1');
  });
});

describe('versions in the config', () => {
  const problems = (yaml: string): string[] => {
    try {
      parseConfigText(`listeners: [{ name: web, protocol: http, port: 0 }]\n${yaml}`, 'cfg.yaml', {
        ...LOAD_OPTIONS,
        env: {},
      });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
    }
    return [];
  };

  test('match.version needs versioning:, placed at its line', () => {
    const found = problems('routes:\n  - match: { path: /a, version: "2" }\n    respond: { body: ok }\n');
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0]!, /^3 routes\[0\]\.match\.version: match\.version needs a top-level versioning/);
  });

  test('a mediaType source needs its template; a sunset before since is refused', () => {
    const found = problems(
      'versioning: { from: [mediaType] }\nroutes:\n  - deprecated: { since: "2027-01-01T00:00:00Z", sunset: "2026-01-01T00:00:00Z" }\n    respond: { body: ok }\n',
    );
    assert.ok(
      found.some((p) => /versioning.*mediaType: from lists mediaType/.test(p)),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => /deprecated\.sunset: sunset comes before since/.test(p)),
      found.join('\n'),
    );
  });

  test('two routes with one path and different versions are no duplicate', () => {
    assert.deepEqual(
      problems(
        `upstreams:\n  users-v1: { targets: [{ url: "http://127.0.0.1:1" }] }\n  users-v2: { targets: [{ url: "http://127.0.0.1:2" }] }\n${ISSUE_EXAMPLE}`,
      ),
      [],
    );
  });
});
