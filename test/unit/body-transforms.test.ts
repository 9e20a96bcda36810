// The JSONPath subset and its edits, the xml conversions, the config refusals, and the response order of the
// body-transform plugins (list order, before compress) without a network.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileChain } from '../../src/pipeline/chain.ts';
import { getAt, parsePath, removeAt, renameAt, setAt } from '../../src/plugins/json-path.ts';
import { definePlugin, type PluginEnv } from '../../src/plugins/types.ts';
import { compileXml } from '../../src/plugins/xml.ts';
import { ResponseBody, type ResponseHead } from '../../src/request-context.ts';
import { pluginConfigProblems } from '../helpers/config.ts';
import { z } from 'zod';

describe('JSONPath subset', () => {
  test('parses names, indexes, wildcards and quoted names; refuses the rest', () => {
    assert.deepEqual(parsePath("$.a[0].b[*]['c d']"), [
      { name: 'a' },
      { index: 0 },
      { name: 'b' },
      { all: true },
      { name: 'c d' },
    ]);
    for (const bad of ['a.b', '$', '$..a', '$.a[-1]', '$.__proto__.x', '$.a[?(@.x)]'])
      assert.throws(() => parsePath(bad), bad);
  });

  test('remove, rename, set and get act on every match; [*] on an object counts it as one', () => {
    const doc = { a: 1, items: [{ cost: 1, sku: 'x' }, { cost: 2 }], one: { cost: 3 }, list: [1, 2, 3] };
    removeAt(doc, parsePath('$.items[*].cost'));
    removeAt(doc, parsePath('$.one[*].cost'));
    removeAt(doc, parsePath('$.list[1]'));
    renameAt(doc, parsePath('$.a'), 'b');
    setAt(doc, parsePath('$.meta.source'), { by: 'gw' });
    setAt(doc, parsePath('$.items[*].seen'), true);
    assert.deepEqual(doc, {
      items: [{ sku: 'x', seen: true }, { seen: true }],
      one: {},
      list: [1, 3],
      b: 1,
      meta: { source: { by: 'gw' } },
    });
    assert.equal(getAt(doc, parsePath('$.items[0].sku')), 'x');
    assert.equal(getAt(doc, parsePath('$.nothing.here')), undefined);
  });
});

describe('xml conversions', () => {
  const { toJson, toXml } = compileXml({ root: 'order', arrays: ['$.items'] }, 100_000);

  test('arrays kept: an element named in arrays is a list even when alone', () => {
    const out = JSON.parse(toJson(Buffer.from('<order><items><sku>a</sku></items><n>007</n></order>')).toString());
    assert.deepEqual(out, { items: [{ sku: 'a' }], n: '007' });
  });

  test('JSON to XML escapes text and attribute values', () => {
    const xml = toXml(Buffer.from(JSON.stringify({ '@_id': '"<&', note: '</order><x>' }))).toString();
    assert.equal(
      xml,
      '<?xml version="1.0" encoding="UTF-8"?>\n<order id="&quot;&lt;&amp;"><note>&lt;/order&gt;&lt;x&gt;</note></order>',
    );
  });

  test('refuses a DOCTYPE, another root element, and names that are not XML names', () => {
    assert.throws(() => toJson(Buffer.from('<!DOCTYPE order><order/>')), /DOCTYPE/);
    assert.throws(() => toJson(Buffer.from('<other/>')), /root element <order>/);
    assert.throws(() => toXml(Buffer.from('{"a b": 1}')), /not an XML element name/);
    assert.throws(() => toXml(Buffer.from('{"@_x": {"y": 1}}')), /attribute takes/);
  });
});

describe('config', () => {
  test('bad paths, renames to another parent and moves with [*] are refused at their key', () => {
    const problems = pluginConfigProblems(
      `      - json-transform: { response: { remove: ["a.b"], rename: { "$.a.b": "$.c" }, move: { "$.x[*]": "$.y" } } }`,
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems.join('\n'), /remove.*must start with \$/);
    assert.match(problems.join('\n'), /last name only/);
    assert.match(problems.join('\n'), /move takes paths without \[\*\]/);
    assert.equal(pluginConfigProblems('      - xml: { root: "1bad" }').length, 2); // no side, and a bad name
  });
});

describe('response order', () => {
  test('a request-phase plugin with responsePhase runs in list order among transform-response hooks, before compress', () => {
    const seen: string[] = [];
    const plugin = (
      name: string,
      phase: 'transform-request' | 'transform-response' | 'compress',
      responsePhase?: 'transform-response',
    ) =>
      definePlugin({
        name,
        phase,
        ...(responsePhase ? { responsePhase } : {}),
        schema: z.object({}),
        description: name,
        create: () => ({ response: () => void seen.push(name) }),
      });
    const plugins = new Map(
      [
        plugin('zip', 'compress'),
        plugin('first', 'transform-request', 'transform-response'),
        plugin('plain', 'transform-response'),
        plugin('second', 'transform-request', 'transform-response'),
        plugin('encoder', 'transform-request'),
      ].map((p) => [p.name, p]),
    );
    const entries = ['zip', 'first', 'plain', 'second', 'encoder'].map((name) => ({ name, config: {} }));
    const chain = compileChain(plugins, [], entries, {} as PluginEnv, null);
    for (const hook of chain.responsePhase)
      hook({} as never, { status: 200, headers: {}, body: new ResponseBody() } as ResponseHead);
    assert.deepEqual(seen, ['first', 'plain', 'second', 'zip']);
    assert.equal(chain.response.length, 1); // encoder: among the reverse-order hooks
  });
});
