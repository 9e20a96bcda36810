// A discover block's allowNetworks/denyNetworks (src/discovery/guard.ts): which discovered origins pass, for every
// provider's target shapes (IPv4, [IPv6], IPv4-mapped, a hostname), and how the config states them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NetworkGuard } from '../../src/discovery/guard.ts';
import { parseConfig } from '../../src/index.ts';

const t = (url: string) => ({ url, weight: 1, backup: false });

test('deny wins over allow; outside allow is refused; no list: no guard', () => {
  const guard = NetworkGuard.of({ allowNetworks: ['10.0.0.0/8', 'fd00::/8'], denyNetworks: ['10.9.0.0/16'] })!;
  assert.equal(guard.allows('http://10.1.2.3:80'), true);
  assert.equal(guard.allows('http://10.9.0.1:80'), false, 'denied inside the allowed network');
  assert.equal(guard.allows('https://[fd00::5]:8443'), true);
  assert.equal(guard.allows('http://[::1]:80'), false);
  assert.equal(guard.allows('http://127.0.0.1:80'), false);
  assert.equal(guard.allows('http://169.254.169.254:80'), false);
  assert.equal(NetworkGuard.of({}), undefined);
});

test('an IPv4-mapped IPv6 address is judged as the IPv4 address it carries', () => {
  const deny = NetworkGuard.of({ denyNetworks: ['127.0.0.0/8'] })!;
  assert.equal(deny.allows('http://[::ffff:127.0.0.1]:80'), false);
  assert.equal(deny.allows('http://[::ffff:10.0.0.1]:80'), true);
});

test('a hostname target is refused while either list is set (its address is known only at connect time)', () => {
  for (const guard of [
    NetworkGuard.of({ denyNetworks: ['127.0.0.0/8'] })!,
    NetworkGuard.of({ allowNetworks: ['0.0.0.0/0'] })!,
  ])
    assert.deepEqual(guard.split([t('http://10.0.0.1:80'), t('http://search.internal:8080')]), {
      kept: [t('http://10.0.0.1:80')],
      refused: ['http://search.internal:8080'],
    });
});

test('the config takes them in any discover block; a bad entry names its key path', () => {
  const base = (block: string) => `
listeners: [{ name: web, protocol: http, port: 0 }]
upstreams: { app: { discover: ${block} } }
routes: [{ match: { path: / }, upstream: app }]
`;
  const config = parseConfig(
    base('{ consul: { service: search }, allowNetworks: ["10.0.0.0/8"], denyNetworks: ["10.9.0.0/16", "::1"] }'),
  );
  assert.deepEqual(config.upstreams.app!.discover!.allowNetworks, ['10.0.0.0/8']);
  assert.throws(
    () => parseConfig(base('{ dns: { a: app.internal, port: 80 }, denyNetworks: ["10.0.0.0/33"] }')),
    /upstreams\.app\.discover\.denyNetworks\[0\]/,
  );
  assert.throws(() => parseConfig(base('{ dns: { a: app.internal, port: 80 }, allowNetworks: [] }')), /allowNetworks/);
});
