// The bridge terminal's config: its upstream is checked like a route's (file and line), its keys validated.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfigText, type ConfigProblem } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { sseEvent } from '../../src/proxy/bridge-sse.ts';
import { messageType } from '../../src/proxy/bridge-http.ts';

const config = (bridge: string, upstreams = 'orders: { targets: [{ url: "http://127.0.0.1:9000" }] }') => `
listeners: [{ name: web, protocol: http, port: 8080 }]
upstreams:
  ${upstreams}
routes:
  - name: orders-ws
    match: { path: /orders-ws }
    bridge: ${bridge}
`;

function problems(text: string): ConfigProblem[] {
  try {
    loadConfigText(text, 'cfg.yaml', { ...LOAD_OPTIONS, readFiles: false });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  return [];
}

test('the issue routes validate', () => {
  assert.deepEqual(problems(config('{ upstream: orders, to: http, path: /orders }')), []);
});

test('an upstream that is not defined is named with its line and key path', () => {
  const [p, ...rest] = problems(config('{ upstream: ticker-ws, to: sse, path: /ws }'));
  assert.equal(rest.length, 0);
  assert.equal(p!.code, 'TP_CONFIG_BAD_REFERENCE');
  assert.equal(p!.line, 8);
  assert.equal(p!.path, 'routes[0].bridge.upstream');
  assert.match(p!.message, /route "orders-ws" names upstream "ticker-ws"/);
});

test('an upstream of tcp targets, a wrong `to`, a path without / and an unknown key are refused', () => {
  const tcp = problems(
    config('{ upstream: orders, to: http, path: /o }', 'orders: { targets: [{ url: "tcp://127.0.0.1:9" }] }'),
  );
  assert.ok(tcp.some((p) => p.code === 'TP_CONFIG_BAD_REFERENCE' && /http:\/\/ or https:\/\//.test(p.message)));
  assert.ok(problems(config('{ upstream: orders, to: grpc, path: /o }')).some((p) => p.path === 'routes[0].bridge.to'));
  assert.ok(
    problems(config('{ upstream: orders, to: http, path: o }')).some((p) => p.path === 'routes[0].bridge.path'),
  );
  assert.ok(
    problems(config('{ upstream: orders, to: http, path: /o, pth: 1 }')).some(
      (p) => p.code === 'TP_CONFIG_UNKNOWN_KEY',
    ),
  );
});

test('an SSE event carries every line of a message as its own data field', () => {
  assert.equal(sseEvent(Buffer.from('a\r\nb\rc\nd'), false), 'data: a\ndata: b\ndata: c\ndata: d\n\n');
  assert.equal(sseEvent(Buffer.from(''), false), 'data: \n\n');
  assert.equal(sseEvent(Buffer.from([255]), true), 'event: binary\ndata: /w==\n\n');
});

test('a message is POSTed as JSON only when it is JSON text', () => {
  assert.equal(messageType(Buffer.from(' {"a":1}'), false), 'application/json');
  assert.equal(messageType(Buffer.from('[1,'), false), 'text/plain; charset=utf-8');
  assert.equal(messageType(Buffer.from('{"a":1}'), true), 'application/octet-stream');
});
