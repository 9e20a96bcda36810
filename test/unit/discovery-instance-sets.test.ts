// Discovery once per instance: the primary's RecordedSets reports a round's changes as one whole set, and a
// worker's WorkerSets applies what it received to its pools, also when the set came before the pools existed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { RecordedSets, WorkerSets, type DiscoveredSet } from '../../src/discovery/instance-sets.ts';
import { TargetSetApplier, type LivePool } from '../../src/discovery/apply.ts';

function fakePool() {
  const targets = new Map<string, { weight?: number; backup?: boolean; source?: string }>();
  const pool: LivePool & { targets: typeof targets } = {
    targets,
    addTarget: (spec) => void targets.set(spec.url, { weight: spec.weight, backup: spec.backup, source: spec.source }),
    drainTarget: (url) => {
      targets.delete(url);
      return undefined;
    },
  };
  return pool;
}

const t = (url: string, weight = 1, backup = false) => ({ url, weight, backup });
const configWith = (...upstreams: string[]) =>
  ({ upstreams: Object.fromEntries(upstreams.map((u) => [u, {}])) }) as unknown as Config;

test('a round that adds and drains several targets reaches the workers as one whole set', async () => {
  const sent: DiscoveredSet[] = [];
  const sets = new RecordedSets((s) => sent.push(s));
  const applier = new TargetSetApplier();
  applier.apply(sets.pool('orders'), [t('http://10.0.0.1:80'), t('http://10.0.0.2:80', 3, true)], 'dns srv x');
  assert.equal(sent.length, 0, 'sent after the round, not per target');
  await Promise.resolve();
  assert.deepEqual(sent, [
    { upstream: 'orders', targets: [t('http://10.0.0.1:80'), t('http://10.0.0.2:80', 3, true)], source: 'dns srv x' },
  ]);
  applier.apply(sets.pool('orders'), [t('http://10.0.0.2:80', 3, true)], 'dns srv x');
  await Promise.resolve();
  assert.deepEqual(sent[1]!.targets, [t('http://10.0.0.2:80', 3, true)]);
  assert.deepEqual(sets.urls(), new Map([['orders', ['http://10.0.0.2:80']]]));
  assert.deepEqual(sets.all(), [sent[1]]);
  sets.keep(configWith('other'));
  assert.deepEqual(sets.all(), [], 'an upstream the config dropped is forgotten');
});

test('a worker applies sets received before its pools exist once they do, and diffs the next ones', () => {
  const worker = new WorkerSets();
  worker.receive({ upstream: 'orders', targets: [t('http://10.0.0.1:80')], source: 'dns a x' });
  const pool = fakePool();
  worker.attach((u) => (u === 'orders' ? pool : undefined));
  assert.equal(pool.targets.size, 0, 'nothing before the first swap');
  worker.sync(configWith('orders'));
  assert.deepEqual(Object.fromEntries(pool.targets), {
    'http://10.0.0.1:80': { weight: 1, backup: false, source: 'dns a x' },
  });
  worker.receive({ upstream: 'orders', targets: [t('http://10.0.0.2:80')], source: 'dns a x' });
  assert.deepEqual([...pool.targets.keys()], ['http://10.0.0.2:80'], 'the target that left is drained');
  worker.receive({ upstream: 'orders', targets: [] });
  assert.equal(pool.targets.size, 0, 'an emptied set (the upstream went back to targets:) drains them');
});
