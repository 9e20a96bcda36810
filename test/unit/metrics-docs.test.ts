// The Grafana dashboard and the README's metric list name only metrics a gateway exposes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GatewayMetrics } from '../../src/observability/metrics.ts';

const root = new URL('../../', import.meta.url);

async function exposed(): Promise<Set<string>> {
  const m = new GatewayMetrics({ workerId: 0 }, { buckets: [1], inFlight: () => 0 });
  const names = new Set<string>();
  for (const f of await m.snapshot()) {
    names.add(f.name);
    if ((f.type as unknown) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(f.name + s);
  }
  return names;
}

test('every metric the dashboard queries is exposed, and every turnpike_* metric is on the dashboard', async () => {
  const names = await exposed();
  const dashboard = readFileSync(new URL('docs/grafana-dashboard.json', root), 'utf8');
  JSON.parse(dashboard);
  const used = new Set(dashboard.match(/\b(turnpike|process|nodejs)_[a-z0-9_]+/g));
  for (const name of used) assert.ok(names.has(name), `the dashboard queries ${name}, which is not exposed`);
  for (const name of names)
    if (name.startsWith('turnpike_') && !/_(sum|count)$/.test(name) && !name.endsWith('_seconds'))
      assert.ok(used.has(name) || used.has(`${name}_bucket`), `${name} is on no dashboard panel`);
});

test("the README's metric table lists every turnpike_* metric", async () => {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  for (const name of await exposed())
    if (name.startsWith('turnpike_') && !/_(bucket|sum|count)$/.test(name))
      assert.ok(readme.includes(`\`${name}\``), `${name} is missing from the README`);
});
