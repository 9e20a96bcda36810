// ip-filter (allow/deny by client address, spoof-proof behind trusted proxies) and security-headers
// (hardening headers on every response of a route), through real gateways and an echo backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pluginConfigProblems } from '../helpers/config.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  json,
  request,
  startBackend,
  startEchoBackend,
  startGatewayYaml,
  type Backend,
  type SimpleResponse,
} from '../helpers/servers.ts';

const SECURITY_HEADERS = [
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
  'strict-transport-security',
  'content-security-policy',
  'permissions-policy',
];

/** The security headers of a response, absent ones left out, so deepEqual checks them exactly. */
function securityHeaders(r: SimpleResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of SECURITY_HEADERS) if (r.headers[name] !== undefined) out[name] = String(r.headers[name]);
  return out;
}

/** The config problems of one route's plugin list, as messages. */
const configProblems = pluginConfigProblems;

const assertForbidden = (r: SimpleResponse): void => assertProblem(r, 403, 'TP_IP_FORBIDDEN');

describe('ip-filter', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let direct: number; // no trusted proxies: the client is the TCP peer
  let proxied: number; // trusts 127.0.0.1: the client is taken from X-Forwarded-For

  before(async () => {
    backend = await startEchoBackend('app');
    gateway = await startGatewayYaml(`
listeners:
  - { name: direct, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: proxied, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: [127.0.0.1/32] }
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
routes:
  - match: { path: /allow }
    upstream: app
    plugins:
      - ip-filter: { allow: [10.0.0.0/8, "2001:db8::/32"] }
  - match: { path: /both }
    upstream: app
    plugins:
      - ip-filter: { allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.9.0.0/16, "2001:db8:bad::/48", 10.1.1.1] }
  - match: { path: /deny-loopback }
    upstream: app
    plugins:
      - ip-filter: { deny: [127.0.0.0/8, "::1"] }
  - match: { path: /loopback-only }
    upstream: app
    plugins:
      - ip-filter: { allow: [127.0.0.1] }
  - match: { path: /before-auth }
    upstream: app
    plugins:
      - key-auth: {}
      - ip-filter: { allow: [10.0.0.0/8] }
`);
    direct = gateway.port('direct');
    proxied = gateway.port('proxied');
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

  test('allow lets listed IPv4 addresses through and refuses others with 403 TP_IP_FORBIDDEN before the upstream', async () => {
    const ok = await request(proxied, '/allow', from('10.1.2.3'));
    assert.equal(ok.status, 200);
    assert.equal(json(ok).url, '/allow');
    const before = backend.requests.length;
    assertForbidden(await request(proxied, '/allow', from('11.1.2.3')));
    assertForbidden(await request(proxied, '/allow', from('192.168.0.1')));
    assert.equal(backend.requests.length, before, 'a refused request must not reach the upstream');
  });

  test('an IPv4-mapped IPv6 client address matches the IPv4 rules', async () => {
    assert.equal((await request(proxied, '/allow', from('::ffff:10.1.2.3'))).status, 200);
    assert.equal((await request(proxied, '/allow', from('::ffff:a01:203'))).status, 200); // hex form of 10.1.2.3
    assertForbidden(await request(proxied, '/allow', from('::ffff:11.1.2.3')));
    assertForbidden(await request(proxied, '/both', from('::ffff:10.9.0.1')));
  });

  test('IPv6 allow and deny ranges', async () => {
    assert.equal((await request(proxied, '/allow', from('2001:db8::1'))).status, 200);
    assert.equal((await request(proxied, '/allow', from('2001:DB8:ffff::42'))).status, 200);
    assertForbidden(await request(proxied, '/allow', from('2001:db9::1')));
    assertForbidden(await request(proxied, '/allow', from('::1')));
    assert.equal((await request(proxied, '/both', from('2001:db8:1::1'))).status, 200);
    assertForbidden(await request(proxied, '/both', from('2001:db8:bad::1')));
  });

  test('deny wins over allow, for subnets and single addresses', async () => {
    assert.equal((await request(proxied, '/both', from('10.8.255.255'))).status, 200);
    assertForbidden(await request(proxied, '/both', from('10.9.0.1')));
    assertForbidden(await request(proxied, '/both', from('10.1.1.1')));
    assert.equal((await request(proxied, '/both', from('10.1.1.2'))).status, 200);
  });

  test('deny alone refuses the listed addresses and lets every other one pass', async () => {
    assertForbidden(await request(direct, '/deny-loopback'));
    assert.equal((await request(proxied, '/deny-loopback', from('10.1.2.3'))).status, 200);
    assertForbidden(await request(proxied, '/deny-loopback', from('::1')));
  });

  test('without trustedProxies X-Forwarded-For is ignored: a spoofed 10.1.2.3 from 127.0.0.1 is refused', async () => {
    const before = backend.requests.length;
    assertForbidden(await request(direct, '/allow', from('10.1.2.3')));
    assertForbidden(await request(direct, '/allow', from('127.0.0.1, 10.1.2.3')));
    assert.equal(backend.requests.length, before);
    // The real peer is what counts.
    assert.equal((await request(direct, '/loopback-only', from('10.1.2.3'))).status, 200);
  });

  test('behind a trusted proxy the rightmost untrusted X-Forwarded-For entry is the client, not the leftmost', async () => {
    // The client prepended 10.1.2.3 itself; the proxy appended the address it really saw.
    assertForbidden(await request(proxied, '/allow', from('10.1.2.3, 11.1.2.3')));
    assert.equal((await request(proxied, '/allow', from('11.1.2.3, 10.1.2.3'))).status, 200);
  });

  test('an unparseable client address from a trusted proxy is refused (fail closed), even by a deny-only filter', async () => {
    assertForbidden(await request(proxied, '/allow', from('unknown')));
    assertForbidden(await request(proxied, '/deny-loopback', from('10.1.2.3:4567')));
  });

  test('ip-filter runs before authentication, wherever it is listed: a refused address gets 403, not 401', async () => {
    assertForbidden(await request(proxied, '/before-auth', from('11.1.2.3')));
    const unauthenticated = await request(proxied, '/before-auth', from('10.1.2.3'));
    assert.equal(unauthenticated.status, 401);
    assert.equal(json(unauthenticated).code, 'TP_UNAUTHENTICATED');
  });

  test('config: needs allow or deny, and every entry must be an IP or CIDR', () => {
    assert.match(configProblems('      - ip-filter: {}').join('\n'), /ip-filter needs allow, deny or both/);
    assert.match(
      configProblems('      - ip-filter: { allow: [10.0.0.0/33] }').join('\n'),
      /allow\[0\].*expected an IP address or CIDR/,
    );
    assert.match(
      configProblems('      - ip-filter: { deny: [example.com] }').join('\n'),
      /deny\[0\].*expected an IP address or CIDR/,
    );
    assert.match(configProblems('      - ip-filter: { allow: [10.0.0.0/8], block: [] }').join('\n'), /block/);
  });
});

describe('security-headers', () => {
  let echo: Backend;
  let opinionated: Backend; // sets its own X-Frame-Options and Referrer-Policy
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let web: number;
  let proxied: number;

  before(async () => {
    echo = await startEchoBackend('app');
    opinionated = await startBackend((_req, res) => {
      res.writeHead(200, {
        'x-frame-options': 'SAMEORIGIN',
        'referrer-policy': 'origin',
        'content-type': 'text/plain',
      });
      res.end('framed');
    });
    gateway = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: proxied, protocol: http, address: 127.0.0.1, port: 0, trustedProxies: [127.0.0.1/32] }
upstreams:
  app: { targets: [{ url: "${echo.url}" }] }
  opinionated: { targets: [{ url: "${opinionated.url}" }] }
routes:
  - match: { path: /default }
    upstream: app
    plugins:
      - security-headers: {}
  - match: { path: /custom }
    upstream: app
    plugins:
      - security-headers:
          frameOptions: SAMEORIGIN
          contentTypeOptions: false
          referrerPolicy: strict-origin-when-cross-origin
          hsts: { maxAge: 1d, includeSubDomains: true }
          contentSecurityPolicy: "default-src 'self'; frame-ancestors 'none'"
          permissionsPolicy: "geolocation=(), camera=()"
  - match: { path: /none }
    upstream: app
    plugins:
      - security-headers: { frameOptions: false, contentTypeOptions: false, referrerPolicy: false, hsts: false }
  - match: { path: /preload }
    upstream: app
    plugins:
      - security-headers: { hsts: { maxAge: 2y, includeSubDomains: true, preload: true } }
  - match: { path: /keep }
    upstream: opinionated
    plugins:
      - security-headers: {}
  - match: { path: /override }
    upstream: opinionated
    plugins:
      - security-headers: { override: true }
  - match: { path: /refused }
    upstream: app
    plugins:
      - security-headers: {}
      - ip-filter: { deny: [127.0.0.0/8] }
  - match: { path: /local }
    respond: { status: 200, body: hello }
    plugins:
      - security-headers: {}
`);
    web = gateway.port('web');
    proxied = gateway.port('proxied');
  });

  after(async () => {
    await gateway.stop();
    await Promise.all([echo.close(), opinionated.close()]);
  });

  const DEFAULTS = { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' };
  const https = { headers: { 'x-forwarded-proto': 'https' } };

  test('defaults on http: nosniff, DENY, no-referrer and no HSTS', async () => {
    const r = await request(web, '/default');
    assert.equal(r.status, 200);
    assert.deepEqual(securityHeaders(r), DEFAULTS);
  });

  test('on https (as a trusted proxy says) HSTS max-age=31536000 is added', async () => {
    const r = await request(proxied, '/default', https);
    assert.deepEqual(securityHeaders(r), { ...DEFAULTS, 'strict-transport-security': 'max-age=31536000' });
    // An untrusted client cannot claim https.
    assert.deepEqual(securityHeaders(await request(web, '/default', https)), DEFAULTS);
  });

  test('each header can be changed, and CSP and Permissions-Policy added', async () => {
    const r = await request(proxied, '/custom', https);
    assert.deepEqual(securityHeaders(r), {
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'strict-origin-when-cross-origin',
      'strict-transport-security': 'max-age=86400; includeSubDomains',
      'content-security-policy': "default-src 'self'; frame-ancestors 'none'",
      'permissions-policy': 'geolocation=(), camera=()',
    });
    const preload = await request(proxied, '/preload', https);
    assert.equal(preload.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains; preload');
  });

  test('each header can be turned off', async () => {
    assert.deepEqual(securityHeaders(await request(proxied, '/none', https)), {});
  });

  test('headers the upstream set are kept, unless override is true', async () => {
    const kept = await request(web, '/keep');
    assert.equal(kept.body, 'framed');
    assert.deepEqual(securityHeaders(kept), {
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'origin',
    });
    assert.deepEqual(securityHeaders(await request(web, '/override')), DEFAULTS);
  });

  test('local answers get the headers too: a later plugin refusing, and a respond route', async () => {
    const refused = await request(web, '/refused');
    assertForbidden(refused);
    assert.deepEqual(securityHeaders(refused), DEFAULTS);
    const local = await request(web, '/local');
    assert.equal(local.body, 'hello');
    assert.deepEqual(securityHeaders(local), DEFAULTS);
  });

  test('config: unknown values and an unqualified preload are refused with a clear message', () => {
    assert.match(
      configProblems('      - security-headers: { frameOptions: ALLOWALL }').join('\n'),
      /expected DENY, SAMEORIGIN or false/,
    );
    assert.match(configProblems('      - security-headers: { referrerPolicy: everywhere }').join('\n'), /no-referrer/);
    assert.match(
      configProblems('      - security-headers: { hsts: { maxAge: 1y, preload: true } }').join('\n'),
      /hsts\.preload.*needs includeSubDomains: true and a maxAge of at least 1y/,
    );
    assert.deepEqual(configProblems('      - security-headers: { hsts: { maxAge: soon } }'), [
      'routes[0].plugins[0].security-headers.hsts.maxAge: expected a duration such as 250ms, 5s, 1m, 1h, 1d or 1y, got "soon"',
    ]);
    assert.match(
      configProblems('      - security-headers: { hsts: true }').join('\n'),
      /hsts: expected false or \{ maxAge, includeSubDomains, preload \}/,
    );
    assert.deepEqual(configProblems('      - security-headers: { hsts: { maxAge: 180d } }'), []);
    assert.match(
      configProblems('      - security-headers: { contentSecurityPolicy: "default-src \'self\'\\r\\nx: y" }').join(
        '\n',
      ),
      /printable ASCII/,
    );
  });
});
