// Issue 20's discovery example validates verbatim as `turnpike validate` checks it, laid into a config with a
// listener and the routes that use its upstreams (examples/discovery/turnpike.yaml); and an upstream takes one of
// targets or discover, the other case being a config error at the key path.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, formatProblem, loadConfigFile, loadConfigText } from '../../src/config/loader.ts';
import { lintConfig } from '../../src/config/lint.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'discovery', 'turnpike.yaml');

test('the discovery example validates verbatim, with no --strict warning', () => {
  try {
    const loaded = loadConfigFile(EXAMPLE, { ...LOAD_OPTIONS, lint: lintConfig });
    const { orders, users } = loaded.config.upstreams;
    assert.deepEqual(orders!.discover, {
      dns: { srv: '_http._tcp.orders.service.internal' },
      scheme: 'http',
      emptyGrace: 30_000,
    });
    assert.deepEqual(users!.discover?.dns, { a: 'users.internal', port: 8080 });
    assert.deepEqual(loaded.config.upstreams.payments!.discover?.etcd, { service: 'payments' });
    assert.deepEqual(loaded.config.discovery.etcd.endpoints, ['http://127.0.0.1:2379']);
    assert.deepEqual(loaded.config.discovery.dns, { servers: ['127.0.0.1:5353'], minRefresh: 5000, timeout: 5000 });
    const { billing, search } = loaded.config.upstreams;
    assert.deepEqual(billing!.discover?.kubernetes, { namespace: 'shop', service: 'billing', port: 'http' });
    assert.deepEqual(search!.discover?.consul, { service: 'search', tags: ['v2'] });
    // ${CONSUL_TOKEN:-} with the variable unset: an empty token, which sends none.
    assert.deepEqual(loaded.config.discovery.consul, { address: 'http://127.0.0.1:8500', token: '', wait: 300_000 });
    assert.deepEqual(loaded.config.discovery.kubernetes, {});
    assert.deepEqual(loaded.config.upstreams.ledger!.discover?.redis, { service: 'ledger' });
    assert.deepEqual(loaded.config.discovery.redis, { prefix: 'turnpike:services:', refresh: 1000 });
    assert.deepEqual(loaded.warnings.map(formatProblem), []);
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(err.problems.map(formatProblem).join('\n'));
    throw err;
  }
});

/** The problems of a config with this `app` upstream, as "line path: message". */
function problems(upstream: string): string[] {
  const text = `listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app: ${upstream}
routes: [{ name: all, match: { path: / }, upstream: app }]
`;
  try {
    loadConfigText(text, 'turnpike.yaml', LOAD_OPTIONS);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.code} ${p.line} ${p.path}: ${p.message}`);
  }
}

test('an upstream takes targets or discover: both, or neither, is an error at its key path', () => {
  assert.deepEqual(
    problems('{ targets: [{ url: "http://127.0.0.1:1" }], discover: { dns: { a: x.internal, port: 80 } } }'),
    ['TP_CONFIG_INVALID 3 upstreams.app.discover: an upstream takes targets or discover, not both'],
  );
  assert.deepEqual(problems('{ balance: random }'), [
    'TP_CONFIG_INVALID 3 upstreams.app.targets: an upstream needs targets (one at least) or discover',
  ]);
  assert.deepEqual(problems('{ discover: { dns: { a: x.internal } } }'), [
    'TP_CONFIG_INVALID 3 upstreams.app.discover.dns.port: a: needs port (A records carry no port)',
  ]);
  assert.match(
    problems(
      '{ discover: { dns: { a: x.internal, port: 80 } } }\ndiscovery: { dns: { servers: ["999.0.0.1"] } }',
    ).join(),
    /^TP_CONFIG_INVALID 4 discovery\.dns\.servers\[0\]: expected a DNS server address/,
  );
  // The list of providers grows with each one: the message starts with it.
  assert.match(
    problems('{ discover: { scheme: https } }').join('\n'),
    /^TP_CONFIG_INVALID 3 upstreams\.app\.discover: expected one provider: dns, [a-z, ]+$/,
  );
});

test('consul and kubernetes blocks: their mistakes are errors at their key paths', () => {
  assert.deepEqual(problems('{ discover: { consul: { tags: [v2] } } }'), [
    'TP_CONFIG_INVALID 3 upstreams.app.discover.consul.service: missing required key "service" (expected a string)',
  ]);
  assert.match(
    problems('{ discover: { kubernetes: { service: billing, port: "8080" } } }').join(),
    /upstreams\.app\.discover\.kubernetes\.port: .*expected a port name such as http, or a port number such as 8080/,
  );
  assert.match(
    problems('{ discover: { kubernetes: { namespace: Shop, service: billing, port: http } } }').join(),
    /upstreams\.app\.discover\.kubernetes\.namespace: expected a Kubernetes namespace name such as shop/,
  );
  assert.match(
    problems(
      '{ discover: { consul: { service: search } } }\ndiscovery: { consul: { address: "127.0.0.1:8500" } }',
    ).join(),
    /^TP_CONFIG_INVALID 4 discovery\.consul\.address: expected an http:\/\/ or https:\/\/ URL/,
  );
  assert.deepEqual(problems('{ discover: { kubernetes: { service: billing, port: 8080 } } }'), []);
});
