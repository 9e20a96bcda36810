// `turnpike schema` documents every key: a description of its own (not only the generic words of its unit) and
// an example; durations, sizes, URLs and CIDRs carry patterns that accept what the loader accepts and flag junk.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { configJsonSchema } from '../../src/config/json-schema.ts';
import { duration, size } from '../../src/config/primitives.ts';
import { targetUrlProblem } from '../../src/config/upstream-schema.ts';
import { isCidr } from '../../src/http/cidr.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';
import { parseDuration, parseSize } from '../../src/units.ts';

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const schema = configJsonSchema(PLUGIN_SCHEMAS);

/** Every key of the schema with its path (`routes[].plugins[].jwt.keys`), through lists, unions and maps. */
function keys(node: unknown, path = '', out: [string, Json][] = []): [string, Json][] {
  if (!isJson(node)) return out;
  if (isJson(node.properties))
    for (const [k, child] of Object.entries(node.properties)) {
      if (!isJson(child)) continue;
      out.push([`${path}.${k}`, child]);
      keys(child, `${path}.${k}`, out);
    }
  if (isJson(node.items)) keys(node.items, `${path}[]`, out);
  if (isJson(node.additionalProperties)) keys(node.additionalProperties, `${path}.*`, out);
  for (const k of ['anyOf', 'oneOf', 'allOf'])
    if (Array.isArray(node[k])) for (const option of node[k]) keys(option, path, out);
  return out;
}

/** The words a unit type says about itself: a key that says only this is not described. */
const GENERIC = new Set(
  [duration, size].map((s) => (z.globalRegistry.get(s) as { description?: string } | undefined)?.description),
);

test('every key of `turnpike schema` has its own description and an example', () => {
  const all = keys(schema);
  assert.ok(all.length > 400, `only ${all.length} keys found: the walk is broken`);
  const undescribed = new Set<string>();
  const noExample = new Set<string>();
  for (const [path, node] of all) {
    const d = node.description;
    if (typeof d !== 'string' || d.trim() === '' || GENERIC.has(d)) undescribed.add(path);
    if (!Array.isArray(node.examples) || node.examples.length === 0) noExample.add(path);
  }
  assert.deepEqual([...undescribed], [], `keys without a description of their own:\n${[...undescribed].join('\n')}`);
  assert.deepEqual([...noExample], [], `keys without an example:\n${[...noExample].join('\n')}`);
});

test('every example is accepted by the JSON Schema of its own key', () => {
  const refused: string[] = [];
  for (const [path, node] of keys(schema)) {
    const validator = z.fromJSONSchema(node as never);
    for (const example of node.examples as unknown[]) {
      const r = validator.safeParse(example);
      if (!r.success) refused.push(`${path}: ${JSON.stringify(example)}: ${r.error.issues[0]?.message}`);
    }
  }
  assert.deepEqual(refused, []);
});

/** The node at a dotted path of keys (`[]` steps into a list, a union's options are searched). */
function at(path: string): Json {
  const found = keys(schema).filter(([p]) => p === path);
  assert.ok(found.length > 0, `no key ${path}`);
  return found[0]![1];
}

/** The patterns a node accepts strings by (its own, its items', its union options'). */
function patterns(node: Json): RegExp[] {
  const out: RegExp[] = [];
  const visit = (n: unknown) => {
    if (!isJson(n)) return;
    if (typeof n.pattern === 'string') out.push(new RegExp(n.pattern));
    if (isJson(n.items)) visit(n.items);
    for (const k of ['anyOf', 'oneOf']) if (Array.isArray(n[k])) n[k].forEach(visit);
  };
  visit(node);
  return out;
}

/** Whether an editor would take `value`: a pattern matches it, or a `const` of the node is it (`"0"`). */
function accepts(node: Json, value: string): boolean {
  const consts: unknown[] = [];
  const visit = (n: unknown) => {
    if (!isJson(n)) return;
    if ('const' in n) consts.push(n.const);
    for (const k of ['anyOf', 'oneOf']) if (Array.isArray(n[k])) n[k].forEach(visit);
  };
  visit(node);
  return consts.includes(value) || patterns(node).some((p) => p.test(value));
}

function checkPattern(
  path: string,
  loader: (v: string) => boolean,
  good: readonly string[],
  junk: readonly string[],
): void {
  const node = at(path);
  assert.ok(patterns(node).length > 0, `${path} has no pattern`);
  for (const v of good) {
    assert.ok(loader(v), `the loader refuses ${v}: a bad sample`);
    assert.ok(accepts(node, v), `${path}: the pattern refuses ${JSON.stringify(v)}, which the loader accepts`);
  }
  for (const v of junk) {
    assert.ok(!loader(v), `the loader accepts ${v}: a bad sample`);
    assert.ok(!accepts(node, v), `${path}: the pattern accepts ${JSON.stringify(v)}, which the loader refuses`);
  }
}

test('durations carry a pattern that accepts the loader forms and flags junk', () => {
  const good = ['250ms', '5s', '1.5m', '1h', '1d', '1y', '0', ' 10s '];
  const junk = ['30', '10 seconds', 'banana', '5S', '-1s', '1w', ''];
  for (const path of ['.limits.headerTimeout', '.upstreams.*.timeouts.connect', '.routes[].plugins[].jwt.clockSkew'])
    checkPattern(path, (v) => parseDuration(v) !== undefined, good, junk);
});

test('sizes carry a pattern that accepts the loader forms and flags junk', () => {
  const good = ['512b', '16kb', '16KB', '10mb', '2gb', '1tb', '64k', '1.5m', '1kib', '2GiB', '3 mb', '100'];
  const junk = ['16 kilobytes', 'kb', '-1kb', '1e3', '1tib', '10mbs', ''];
  for (const path of ['.limits.maxBodySize', '.listeners[].limits.maxHeaderSize', '.upstreams.*.retries.bufferBody'])
    checkPattern(path, (v) => parseSize(v) !== undefined, good, junk);
});

test('CIDRs carry a pattern that accepts the loader forms and flags junk', () => {
  const good = ['10.0.0.0/8', '127.0.0.1', '192.168.1.0/24', '2001:db8::/32', '::1', 'fe80::1', '::ffff:10.0.0.1'];
  const junk = ['localhost', '10.0.0.0/', '10.0.0/8x', 'example.com/24', 'any', ''];
  for (const path of [
    '.listeners[].trustedProxies',
    '.plugins[].ip-filter.allow',
    '.routes[].plugins[].cache.purge.allow',
  ])
    checkPattern(path, isCidr, good, junk);
});

test('URLs carry a pattern that accepts the loader forms and flags junk', () => {
  checkPattern(
    '.upstreams.*.targets[].url',
    (v) => targetUrlProblem(v) === undefined,
    ['http://127.0.0.1:9001', 'https://api.internal', 'tcp://10.0.0.5:5432', 'udp://10.0.0.53:53', 'http://[::1]:80/'],
    ['127.0.0.1:9001', 'ftp://files.internal', 'http://api.internal/v1', 'http://', 'api'],
  );
  const http = (v: string) => /^https?:\/\//.test(v) && URL.canParse(v);
  const good = ['https://idp.example.com/.well-known/jwks.json', 'http://127.0.0.1:4318/v1/traces', 'https://a.b?x=1'];
  const junk = ['idp.example.com/jwks', 'ftp://idp.example.com', 'https://', 'http:/x'];
  for (const path of [
    '.plugins[].jwt.jwksUri',
    '.routes[].plugins[].oauth2-introspection.url',
    '.tracing.otlp.endpoint',
  ])
    checkPattern(path, http, good, junk);
  checkPattern(
    '.stores.redis.url',
    (v) => /^rediss?:\/\//.test(v) && URL.canParse(v),
    ['redis://127.0.0.1:6379', 'rediss://:pw@redis.internal:6380/2', 'redis://redis'],
    ['127.0.0.1:6379', 'http://redis:6379', 'redis:/x'],
  );
});

test('every key that takes a URL carries a pattern', () => {
  const urls = keys(schema).filter(([p]) => /\.(url|\w*Uri|endpoint)$/.test(p));
  assert.ok(urls.length >= 5, urls.map(([p]) => p).join(' '));
  for (const [path, node] of urls) assert.ok(patterns(node).length > 0, `${path} has no pattern`);
});
