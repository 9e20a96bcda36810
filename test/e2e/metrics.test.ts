// GET /metrics: the Prometheus series a gateway's traffic produces (requests, durations, bytes, upstream tries,
// retries, cache and rate-limit decisions, connections, build and config info), Prometheus text by default and
// OpenMetrics when Accept asks, one registry per runtime, and `promtool check metrics` finding nothing to say.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { parseConfig } from '../../src/runtime/gateway.ts';
import { Runtime } from '../../src/runtime/runtime.ts';
import { parseConfigText } from '../../src/config/loader.ts';
import { findOnPath } from '../provision.ts';
import { makeTestPki } from '../helpers/certs.ts';
import { closedPort } from '../helpers/ports.ts';
import { request, startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

interface MetricsGateway {
  readonly runtime: Runtime;
  /** The port of the gateway's first listener. */
  readonly port: number;
  /** The port GET /metrics is served on. */
  readonly adminPort: number;
  stop(): Promise<void>;
}

/** A gateway with an admin listener on loopback (port 0) serving GET /metrics. */
async function startMetricsGateway(yaml: string): Promise<MetricsGateway> {
  const gw = await startGatewayYaml(`${yaml}\nadmin: { address: 127.0.0.1, port: 0 }\n`);
  return {
    runtime: gw.runtime,
    port: gw.port(),
    adminPort: gw.admin!.port,
    stop: () => gw.stop(),
  };
}

/** The value of one sample (name and exact label text), or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('metrics', () => {
  let backend: Backend;
  let gw: MetricsGateway;
  let dead: number;

  before(async () => {
    backend = await startBackend((req, res) => {
      if (req.url === '/api/fail') res.writeHead(503).end('no');
      else res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end('hello');
    });
    dead = await closedPort();
    gw = await startMetricsGateway(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: { targets: [{ url: "${backend.url}" }] }
  flaky:
    targets: [{ url: "http://127.0.0.1:${dead}" }, { url: "${backend.url}" }]
    balance: round-robin
    retries: { attempts: 2, on: [connect-failure] }
routes:
  - { name: api, match: { path: /api }, upstream: app }
  - { name: flaky, match: { path: /flaky }, upstream: flaky }
  - name: cached
    match: { path: /cached }
    upstream: app
    plugins: [{ cache: {} }]
  - name: limited
    match: { path: /limited }
    upstream: app
    plugins: [{ rate-limit: { limits: [{ requests: 1, per: 1m }] } }]
metrics:
  enabled: true
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
`);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
  });

  test('requests, durations and bytes by route, method and status class; unmatched under route="(no route)"', async () => {
    await request(gw.port, '/api/a');
    await request(gw.port, '/api/b', { method: 'POST', body: 'abcd' });
    await request(gw.port, '/api/fail');
    await request(gw.port, '/nowhere');
    const r = await until(async () => {
      const r = await request(gw.adminPort, '/metrics');
      return sample(r.body, 'turnpike_requests_in_flight') === 0 && r;
    }, 'the requests to end');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const m = r.body;
    assert.equal(sample(m, 'turnpike_requests_total{route="api",method="GET",status="2xx"}'), 1);
    assert.equal(sample(m, 'turnpike_requests_total{route="api",method="POST",status="2xx"}'), 1);
    assert.equal(sample(m, 'turnpike_requests_total{route="api",method="GET",status="5xx"}'), 1);
    assert.equal(sample(m, 'turnpike_requests_total{route="(no route)",method="GET",status="4xx"}'), 1);
    assert.equal(sample(m, 'turnpike_request_duration_seconds_count{route="api"}'), 3);
    assert.equal(sample(m, 'turnpike_request_duration_seconds_bucket{route="api",le="+Inf"}'), 3);
    assert.ok(m.includes('turnpike_request_duration_seconds_bucket{route="api",le="0.001"}'));
    assert.equal(sample(m, 'turnpike_bytes_received_total{route="api"}'), 4);
    assert.equal(sample(m, 'turnpike_bytes_sent_total{route="api"}'), 5 + 5 + 2);
    assert.equal(
      sample(m, `turnpike_upstream_requests_total{upstream="app",target="${backend.url}",outcome="2xx"}`),
      2,
    );
    assert.equal(
      sample(m, `turnpike_upstream_requests_total{upstream="app",target="${backend.url}",outcome="5xx"}`),
      1,
    );
    assert.equal(sample(m, 'turnpike_upstream_duration_seconds_count{upstream="app"}'), 3);
    assert.ok((sample(m, 'turnpike_connections{listener="web",protocol="http"}') ?? -1) >= 0);
    assert.match(m, /^turnpike_build_info\{version="[^"]+",node="24\.[^"]+"\} 1$/m);
    // Where the config came from (the file here) and a hash of its text, to compare instances.
    assert.match(m, /^turnpike_config_info\{version="[0-9a-f]{12}",source="\/[^"]+",hash="[0-9a-f]{12}"\} 1$/m);
    assert.match(m, /^process_cpu_seconds_total /m);
    assert.match(m, /^nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(m, /\/api\/a|\/nowhere/, 'no raw path is a label value');
  });

  test('upstream outcomes: a refused connect is connect_error, and the retry is counted', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await request(gw.port, '/flaky')).status, 200);
    const m = (await request(gw.adminPort, '/metrics')).body;
    const refused = sample(
      m,
      `turnpike_upstream_requests_total{upstream="flaky",target="http://127.0.0.1:${dead}",outcome="connect_error"}`,
    );
    assert.ok(refused !== undefined && refused >= 1, 'round robin sent at least one try to the closed port');
    assert.equal(
      sample(m, `turnpike_upstream_requests_total{upstream="flaky",target="${backend.url}",outcome="2xx"}`),
      2,
    );
    assert.equal(sample(m, 'turnpike_retries_total{upstream="flaky"}'), refused, 'each refused try was retried');
  });

  test('cache and rate-limit decisions by route', async () => {
    await request(gw.port, '/cached');
    await request(gw.port, '/cached');
    assert.equal((await request(gw.port, '/limited')).status, 200);
    assert.equal((await request(gw.port, '/limited')).status, 429);
    const m = (await request(gw.adminPort, '/metrics')).body;
    assert.equal(sample(m, 'turnpike_cache_requests_total{route="cached",status="MISS"}'), 1);
    assert.equal(sample(m, 'turnpike_cache_requests_total{route="cached",status="HIT"}'), 1);
    assert.equal(sample(m, 'turnpike_rate_limit_decisions_total{route="limited",decision="allowed"}'), 1);
    assert.equal(sample(m, 'turnpike_rate_limit_decisions_total{route="limited",decision="denied"}'), 1);
  });

  test('OpenMetrics when Accept asks for it; counter names stay the same in the next Prometheus scrape', async () => {
    const om = await request(gw.adminPort, '/metrics', {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    assert.match(String(om.headers['content-type']), /^application\/openmetrics-text; version=1\.0\.0/);
    assert.match(om.body, /^# TYPE turnpike_requests counter$/m);
    assert.match(om.body, /^turnpike_requests_total\{route="api",method="GET",status="2xx"\} \d+$/m);
    assert.ok(om.body.endsWith('# EOF\n'));
    const text = (await request(gw.adminPort, '/metrics')).body;
    assert.match(text, /^# TYPE turnpike_requests_total counter$/m);
    assert.match(text, /^turnpike_requests_total\{route="api",method="GET",status="2xx"\} \d+$/m);
    assert.ok(!text.includes('# EOF'));
  });

  test('promtool check metrics finds no problem', (t) => {
    const promtool = findOnPath('promtool', process.env.PATH ?? '');
    if (promtool === undefined) {
      assert.notEqual(
        process.getuid?.(),
        0,
        'promtool is missing although the tests run as root (npm test installs it)',
      );
      t.skip('promtool (Debian package prometheus) is not installed');
      return;
    }
    return request(gw.adminPort, '/metrics').then((r) => {
      const run = spawnSync(promtool, ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
      assert.equal(run.status, 0, `promtool: ${run.stdout}${run.stderr}`);
      assert.equal(`${run.stdout}${run.stderr}`.trim(), '', 'promtool says nothing');
    });
  });
});

describe('metrics of listeners', () => {
  test('certificate expiry by listener and name, L4 sessions, open connections by listener and protocol', async () => {
    const { pki, serverCa } = makeTestPki();
    const cert = pki.server(serverCa, { names: ['m.example.com'] });
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const gw = await startMetricsGateway(`
listeners:
  - { name: s, protocol: https, address: 127.0.0.1, port: 0, tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] } }
  - { name: plain, protocol: http, address: 127.0.0.1, port: 0 }
  - { name: tcp-in, protocol: tcp, address: 127.0.0.1, port: 0, upstream: echo }
upstreams:
  echo: { targets: [{ url: "tcp://127.0.0.1:${(echo.address() as AddressInfo).port}" }] }
routes: [{ name: hello, match: { path: / }, respond: { body: hi } }]
metrics: {}
`);
    try {
      const byName = new Map(gw.runtime.addresses().map((a) => [a.name, a.port]));
      const notAfter = new X509Certificate(readFileSync(cert.certPath)).validTo;
      // An idle keep-alive connection to the http listener, and one TCP session through the L4 listener.
      const held = connect(byName.get('plain')!, '127.0.0.1');
      await once(held, 'connect');
      const tcp = connect(byName.get('tcp-in')!, '127.0.0.1');
      tcp.write('ping');
      await once(tcp, 'data');
      const m = await until(async () => {
        const body = (await request(gw.adminPort, '/metrics')).body;
        return sample(body, 'turnpike_connections{listener="plain",protocol="http"}') === 1 && body;
      }, 'the held connection to be counted');
      assert.equal(
        sample(m, 'turnpike_certificate_expiry_seconds{listener="s",name="m.example.com"}'),
        Date.parse(notAfter) / 1000,
      );
      assert.equal(sample(m, 'turnpike_l4_sessions_total{listener="tcp-in"}'), 1);
      assert.equal(sample(m, 'turnpike_connections{listener="tcp-in",protocol="tcp"}'), 1);
      held.destroy();
      tcp.destroy();
      await until(async () => {
        const body = (await request(gw.adminPort, '/metrics')).body;
        return (
          sample(body, 'turnpike_connections{listener="plain",protocol="http"}') === 0 &&
          sample(body, 'turnpike_connections{listener="tcp-in",protocol="tcp"}') === 0
        );
      }, 'closed connections to leave the gauge');
    } finally {
      await gw.stop();
      echo.close();
    }
  });
});

describe('metrics configuration', () => {
  test('the contract example validates verbatim; metrics without an admin listener is a config error', () => {
    const yaml = `
listeners: [{ name: web, protocol: http, port: 8080 }]
metrics:
  enabled: true                   # GET /metrics on the admin listener (a config error without admin:)
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]   # seconds
`;
    assert.deepEqual(
      parseConfig(yaml).metrics?.buckets,
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    assert.throws(
      () => parseConfigText(yaml, 'turnpike.yaml', LOAD_OPTIONS),
      (err: Error & { code?: string }) => err.code === 'TP_CONFIG_INVALID' && /admin/.test(err.message),
    );
    assert.doesNotThrow(() =>
      parseConfigText(`${yaml.replace('enabled: true', 'enabled: false')}`, 'turnpike.yaml', LOAD_OPTIONS),
    );
  });

  test('buckets must increase', () => {
    assert.throws(
      () => parseConfig('listeners: [{ name: web, protocol: http, port: 8080 }]\nmetrics: { buckets: [1, 0.5] }\n'),
      /increasing/,
    );
  });

  test('metrics off: GET /metrics is 404 problem+json', async () => {
    const gw = await startMetricsGateway('listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]');
    try {
      const r = await request(gw.adminPort, '/metrics');
      assert.equal(r.status, 404);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    } finally {
      await gw.stop();
    }
  });

  test('target health: 1 before any verdict, 0 after a failing one, gone once a reload drops the target', async () => {
    const other = await closedPort();
    const yaml = (targets: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [${targets}] } }
routes: [{ name: hello, match: { path: / }, respond: { body: hi } }]
admin: { address: 127.0.0.1, port: 0 }
metrics: {}
`;
    const a = 'http://127.0.0.1:1';
    const b = `http://127.0.0.1:${other}`;
    const gw = await startGatewayYaml(yaml(`{ url: "${a}" }, { url: "${b}" }`));
    const healthy = async (target: string) =>
      sample(
        (await request(gw.admin!.port, '/metrics')).body,
        `turnpike_target_healthy{upstream="app",target="${target}"}`,
      );
    try {
      assert.equal(await healthy(a), 1);
      assert.equal(await healthy(b), 1);
      gw.runtime.setTargetHealth(`app|${b}`, false);
      assert.equal(await healthy(b), 0);
      writeFileSync(gw.file, yaml(`{ url: "${a}" }`));
      assert.deepEqual(await gw.reloader!.reload('test'), { ok: true });
      assert.equal(await healthy(a), 1);
      assert.equal(await healthy(b), undefined, 'a removed target leaves the scrape (no stale 0 to alert on)');
    } finally {
      await gw.stop();
    }
  });

  test('each runtime counts only its own requests', async () => {
    const yaml = `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
routes: [{ name: hello, match: { path: / }, respond: { body: hi } }]
metrics: {}
`;
    const a = await startMetricsGateway(yaml);
    const b = await startMetricsGateway(yaml);
    try {
      await request(a.port, '/');
      await request(a.port, '/');
      await request(b.port, '/');
      const count = async (g: MetricsGateway) =>
        sample(
          (await request(g.adminPort, '/metrics')).body,
          'turnpike_requests_total{route="hello",method="GET",status="2xx"}',
        );
      await until(async () => (await count(a)) === 2, 'a to count 2');
      assert.equal(await count(b), 1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
