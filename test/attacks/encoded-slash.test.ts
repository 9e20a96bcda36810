// P02 (Envoy path_with_escaped_slashes_action): `%2F` in a path. Turnpike's default (limits.escapedSlashes: reject)
// answers 400 TP_BAD_PATH, the first of the row's allowed behaviours: with an open catch-all route, a backend that
// decodes `%2F` after routing would otherwise read `/api/users/../admin`. `keep` routes and forwards the escaped
// form as sent; `unescape` decodes it to `/`, normalises, and routes and forwards the result. Never "decode for
// routing, forward encoded".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfigText, ConfigError } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { rawExchange } from '../helpers/raw.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

let backend: RecordingBackend;
before(async () => {
  backend = await startRecordingBackend();
});
after(() => backend.close());

async function probe(port: number, target: string, headers = '') {
  const before = backend.arrivals.length;
  const { text } = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: a\r\n${headers}Connection: close\r\n\r\n`);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    text,
    arrived: backend.arrivals.slice(before).map((a) => a.url),
  };
}

describe('escapedSlashes: reject (the default)', () => {
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => (gw = await startAttackGateway({ upstream: backend.url })));
  after(() => gw.stop());

  test('/api/users%2F..%2Fadmin and /api/a%2Fb are refused 400 TP_BAD_PATH and nothing is forwarded', async () => {
    for (const target of ['/api/users%2F..%2Fadmin', '/api/a%2Fb', '/public/a%2fb', '/public/a%5cb', '/public/a%5Cb']) {
      const r = await probe(gw.http, target);
      assert.equal(r.status, 400, `${target}: ${r.text}`);
      assert.match(r.text, /"code":"TP_BAD_PATH"/);
      assert.deepEqual(r.arrived, []);
    }
  });
});

describe('escapedSlashes: keep', () => {
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => (gw = await startAttackGateway({ upstream: backend.url, limits: 'escapedSlashes: keep' })));
  after(() => gw.stop());

  test('the escaped form is routed and forwarded as sent: %2F never separates segments', async () => {
    const r = await probe(gw.http, '/public/a%2Fb');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.arrived, ['/public/a%2Fb']);
    // One segment "public%2F..%2Fadmin" is not /public nor /admin: the open route, forwarded escaped.
    const s = await probe(gw.http, '/public%2F..%2Fadmin');
    assert.deepEqual(s.arrived, ['/public%2F..%2Fadmin']);
  });

  test('/api/users%2F..%2Fadmin stays under /api, so it needs the JWT', async () => {
    const r = await probe(gw.http, '/api/users%2F..%2Fadmin');
    assert.equal(r.status, 401, r.text);
    assert.deepEqual(r.arrived, []);
  });
});

describe('escapedSlashes: unescape', () => {
  let gw: Awaited<ReturnType<typeof startAttackGateway>>;
  before(async () => (gw = await startAttackGateway({ upstream: backend.url, limits: 'escapedSlashes: unescape' })));
  after(() => gw.stop());

  test('%2F is decoded and normalised before routing: /public/..%2Fadmin meets the admin ACL', async () => {
    for (const target of ['/public/..%2Fadmin', '/api/x/..%2f..%2fadmin', '/public%5c..%5cadmin']) {
      const r = await probe(gw.http, target);
      assert.equal(r.status, 401, `${target}: ${r.text}`);
      assert.match(r.text, /"code":"TP_UNAUTHENTICATED"/);
      assert.deepEqual(r.arrived, []);
    }
  });

  test('what is forwarded is the decoded path the router saw', async () => {
    const r = await probe(gw.http, '/public/a%2Fb');
    assert.deepEqual(r.arrived, ['/public/a/b']);
    const k = await probe(gw.http, '/public/..%2Fadmin/x', 'x-api-key: admin-key-0123456789\r\n');
    assert.equal(k.status, 200);
    assert.deepEqual(k.arrived, ['/admin/x']);
  });
});

describe('configuration', () => {
  const problems = (limits: string, listenerLimits = ''): string[] => {
    const listener = `{ name: web, protocol: http, port: 8080${listenerLimits ? `, limits: ${listenerLimits}` : ''} }`;
    try {
      parseConfigText(`listeners: [${listener}]\nlimits: ${limits}\n`, 'g.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
      throw err;
    }
  };

  test('escapedSlashes takes reject, keep or unescape; mergeSlashes a boolean; pathParameters reject or allow', () => {
    assert.deepEqual(problems('{ escapedSlashes: keep, mergeSlashes: false, pathParameters: allow }'), []);
    assert.match(problems('{ escapedSlashes: decode }').join('\n'), /limits\.escapedSlashes: .*reject.*keep.*unescape/);
    assert.match(problems('{ mergeSlashes: yes please }').join('\n'), /limits\.mergeSlashes: expected true or false/);
    assert.match(problems('{ pathParameters: strip }').join('\n'), /limits\.pathParameters: .*reject.*allow/);
    assert.deepEqual(problems('{}', '{ escapedSlashes: unescape, mergeSlashes: false, pathParameters: allow }'), []);
    assert.match(problems('{}', '{ escapedSlashes: 1 }').join('\n'), /listeners\[0\]\.limits\.escapedSlashes: /);
  });
});
