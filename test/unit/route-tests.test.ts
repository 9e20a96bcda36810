// `turnpike test`'s parts that need no gateway: the cases format as the README documents it, the diff, the XML.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { casesSchema } from '../../src/route-tests/cases.ts';
import { compare } from '../../src/route-tests/compare.ts';
import { junitReport } from '../../src/route-tests/report.ts';
import type { CaseResult } from '../../src/route-tests/runner.ts';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('route test cases', () => {
  it("the README's format block is a valid cases file, with every key it documents", () => {
    const block = /## Route tests\n[\s\S]*?```yaml(?: not-config)?\n([\s\S]*?)```/.exec(README)?.[1];
    assert.ok(block, 'no yaml block under ## Route tests');
    const parsed = casesSchema.safeParse(parse(block));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    const c = parsed.data.cases[0]!;
    assert.equal(c.request.jwt?.key, 'keys/signer.pem');
    assert.deepEqual(c.expect.upstreamRequest?.headers, { 'x-gateway': 'turnpike', cookie: null });
  });

  it("the issue's example keys are accepted as written", () => {
    const parsed = casesSchema.safeParse(
      parse(`cases:
  - name: users by host
    request: { method: GET, url: "http://api.example.com/users/7", headers: { x-api-key: "..." } }
    upstreamAnswer: { status: 200, headers: { content-type: application/json }, body: '{"id":7}' }
    expect:
      route: users
      status: 200
      upstream: users
      upstreamRequest: { path: /users/7, headers: { x-gateway: turnpike } }
      response: { headers: { cache-control: no-store } }
`),
    );
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  });
});

describe('route test comparison', () => {
  const answer = { status: 200, headers: { 'cache-control': 'no-store', vary: 'Origin' }, body: 'ok', localPort: 1 };
  const received = [
    { target: 'http://a:1', method: 'GET', path: '/v2/x', query: 'q=1', headers: { 'x-gateway': 'tp' }, body: '' },
  ];
  const observed = { route: 'r', upstream: 'u', target: 'http://a:1' };

  it('passes when everything given matches, and checks only what is given', () => {
    const diffs = compare(
      {
        route: 'r',
        status: 200,
        upstream: 'u',
        target: 'http://a:1/',
        upstreamRequest: { path: '/v2/x', query: 'q=1', headers: { 'x-gateway': { regex: '^t' }, cookie: null } },
        response: { headers: { vary: 'Origin', 'set-cookie': null }, body: 'ok' },
      },
      answer,
      observed,
      received,
    );
    assert.deepEqual(diffs, []);
    assert.deepEqual(compare({}, answer, null, []), []);
  });

  it('names each difference by its key path', () => {
    const diffs = compare(
      {
        route: null,
        status: 404,
        upstream: null,
        upstreamRequest: { path: '/x', headers: { 'x-gateway': 'turnpike' } },
        response: { headers: { 'cache-control': null, etag: { regex: '^W/' } } },
      },
      answer,
      observed,
      received,
    );
    assert.deepEqual(diffs, [
      'route: expected no route, got "r"',
      'status: expected 404, got 200',
      'upstream: expected no upstream, got "u"',
      'upstreamRequest.path: expected "/x", got "/v2/x"',
      'upstreamRequest.headers.x-gateway: expected "turnpike", got "tp"',
      'response.headers.cache-control: expected absent, got "no-store"',
      'response.headers.etag: expected to match /^W\\//, got (absent)',
    ]);
    assert.deepEqual(compare({ upstreamRequest: null }, answer, observed, received), [
      'upstreamRequest: expected none (nothing sent upstream), got GET /v2/x sent to http://a:1',
    ]);
  });
});

describe('route test JUnit XML', () => {
  it('escapes what XML cannot carry as text or attribute', () => {
    const result: CaseResult = {
      case: { name: 'a "quoted" <case> & more\u0001' } as CaseResult['case'],
      failures: ['status: expected 200, got 401'],
      answer: null,
      durationMs: 1,
    };
    const xml = junitReport({ casesFile: 'c.yaml', results: [result], durationMs: 2 });
    assert.match(xml, /name="a &quot;quoted&quot; &lt;case&gt; &amp; more"/);
    assert.match(xml, /tests="1" failures="1"/);
    assert.doesNotMatch(xml, /\u0001/);
  });
});
