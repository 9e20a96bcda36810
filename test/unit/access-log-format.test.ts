// The access log's formats and its config: NGINX's escaping and time, and what `accessLog` refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileLineFormat, nginxEscape, timeLocal } from '../../src/observability/access-log-format.ts';
import { RequestContext } from '../../src/request-context.ts';
import { parseConfig } from '../../src/runtime/gateway.ts';

test("nginxEscape escapes as NGINX's default log escaping: quote, backslash, control and non-ASCII bytes", () => {
  assert.equal(nginxEscape('GET /a?b=c HTTP/1.1'), 'GET /a?b=c HTTP/1.1');
  assert.equal(nginxEscape('say "hi" \\ now'), 'say \\x22hi\\x22 \\x5C now');
  assert.equal(nginxEscape('tab\there\x7f'), 'tab\\x09here\\x7F');
  assert.equal(nginxEscape('café'), 'caf\\xC3\\xA9');
});

test('timeLocal is $time_local: day/month/year:hh:mm:ss and the zone offset', () => {
  assert.match(timeLocal(Date.UTC(2026, 11, 7, 8, 1, 2)), /^\d{2}\/[A-Z][a-z]{2}\/2026:\d{2}:\d{2}:02 [+-]\d{4}$/);
});

const base = `listeners: [{ name: web, protocol: http, port: 8080 }]
routes: [{ name: health, match: { path: /healthz }, respond: { body: ok } }]
`;

test('accessLog takes fields, format and skip, and refuses what cannot be meant', () => {
  const ok = parseConfig(
    `${base}accessLog: { format: combined, fields: [status, path], skip: { routes: [health], paths: [/healthz] } }`,
  );
  assert.equal(ok.accessLog.format, 'combined');
  assert.deepEqual(ok.accessLog.fields, ['status', 'path']);
  assert.equal(parseConfig(base).accessLog.fields.includes('upstreamConnectMs'), true);
  const refused = (extra: string) => assert.throws(() => parseConfig(`${base}accessLog: ${extra}`));
  refused('{ fields: [status, status] }');
  refused('{ fields: [colour] }');
  refused('{ fields: [] }');
  refused('{ format: common }');
  refused('{ skip: { routes: [helth] } }');
  refused('{ skip: { paths: [healthz] } }');
});

test('a compiled writer leaves out fields without a value and still writes valid JSON, whatever comes first', () => {
  const req = { method: 'GET', url: '/a', httpVersion: '2.0', headers: { 'user-agent': 'ua "1"' } };
  const ctx = new RequestContext(req as never, {} as never, '::1', false, '::1', 'https', 'r1', '/a', '');
  const line = (fields: string[]) =>
    compileLineFormat(parseConfig(`${base}accessLog: { fields: [${fields.join(', ')}] }`).accessLog).request(ctx)!;
  assert.equal(line(['error', 'cache']), '{}\n');
  assert.equal(line(['error', 'userAgent', 'protocol']), '{"userAgent":"ua \\"1\\"","protocol":"HTTP/2.0"}\n');
  ctx.errorCode = 'TP_FORBIDDEN';
  assert.equal(line(['error', 'upstreamConnectMs']), '{"error":"TP_FORBIDDEN","upstreamConnectMs":null}\n');
});
