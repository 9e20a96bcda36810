// Each balancer's `peek` (turnpike explain): it names the target the next `pick` takes (or, for a random draw, the
// odds) and changes nothing: a run of picks with peeks between them is the run without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BalancedTarget, Balancer } from '../../src/upstream/balancers/balancer.ts';
import { BALANCE_ALGORITHMS, createBalancer } from '../../src/upstream/balancers/create-balancer.ts';
import { ConsistentHashBalancer } from '../../src/upstream/balancers/consistent-hash.ts';
import { EwmaBalancer } from '../../src/upstream/balancers/ewma.ts';
import { IpHashBalancer } from '../../src/upstream/balancers/ip-hash.ts';
import { LeastConnectionsBalancer } from '../../src/upstream/balancers/least-connections.ts';
import { LeastRequestBalancer } from '../../src/upstream/balancers/least-request.ts';
import { RandomBalancer } from '../../src/upstream/balancers/random.ts';
import { RoundRobinBalancer } from '../../src/upstream/balancers/round-robin.ts';
import { WeightedRoundRobinBalancer } from '../../src/upstream/balancers/weighted-round-robin.ts';

interface T extends BalancedTarget {
  readonly name: string;
}

function targets(weights: readonly number[]): T[] {
  return weights.map((weight, i) => ({
    name: String.fromCharCode(97 + i),
    key: `http://10.0.0.${i + 1}:80`,
    weight,
    active: 0,
  }));
}

/** Counts a random source's draws, so a test sees that peek spends none. */
function counted(values: readonly number[]): { random: () => number; draws: () => number } {
  let n = 0;
  return { random: () => values[n++ % values.length]!, draws: () => n };
}

const names = (b: Balancer<T>, n: number, hash = ''): string[] => Array.from({ length: n }, () => b.pick(hash)!.name);

test('round robin: peek names the next pick, and peeking does not advance the rotation', () => {
  const b = new RoundRobinBalancer<T>();
  b.update(targets([1, 1, 1]));
  const order: string[] = [];
  for (let i = 0; i < 6; i++) {
    const said = b.peek('').target!.name;
    assert.equal(b.peek('').target!.name, said, 'a second peek says the same');
    const picked = b.pick('')!.name;
    assert.equal(picked, said);
    order.push(picked);
  }
  assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c']);
  assert.match(b.peek('').reason, /next in rotation \(1 of 3/);
});

test('weighted round robin: peek follows the smooth cycle (scheduled and live), and leaves it where it was', () => {
  // The second set's cycle is too long to schedule: pick runs NGINX's step live.
  for (const weights of [[5, 1, 1], Array.from({ length: 40 }, (_, k) => 1000 - k)]) {
    const b = new WeightedRoundRobinBalancer<T>();
    const plain = new WeightedRoundRobinBalancer<T>();
    b.update(targets(weights));
    plain.update(targets(weights));
    for (let i = 0; i < 40; i++) {
      const said = b.peek('').target!.name;
      b.peek('');
      assert.equal(b.pick('')!.name, said, `pick ${i} with weights ${weights}`);
    }
    assert.deepEqual(names(b, 20), names(plain, 60).slice(40), 'the peeked run is the plain run');
  }
  const b = new WeightedRoundRobinBalancer<T>();
  b.update(targets([3, 1]));
  assert.match(b.peek('').reason, /weights 3:1: pick 1 of a 4-pick cycle/);
});

test('least connections: peek names the least loaded per weight without moving the scan start', () => {
  const ts = targets([1, 2, 1]);
  const b = new LeastConnectionsBalancer<T>();
  b.update(ts);
  ts[0]!.active = 2;
  ts[1]!.active = 2; // 1 per unit of weight
  ts[2]!.active = 3;
  assert.equal(b.peek('').target!.name, 'b');
  assert.match(b.peek('').reason, /2 in flight, weight 2/);
  ts.forEach((t) => (t.active = 0));
  const plain = new LeastConnectionsBalancer<T>();
  plain.update(ts);
  for (let i = 0; i < 6; i++) {
    const said = b.peek('').target!.name;
    assert.equal(b.pick('')!.name, said);
    assert.equal(plain.pick('')!.name, said, 'equal loads take turns as without peeks');
  }
});

test('power of two choices and peak EWMA: peek names the least loaded now and draws no random number', () => {
  const ts = targets([1, 1, 1]);
  ts[0]!.active = 4;
  ts[1]!.active = 1;
  ts[2]!.active = 2;
  const source = counted([0.1, 0.9]);
  const p2c = new LeastRequestBalancer<T>({ random: source.random });
  p2c.update(ts);
  assert.equal(p2c.peek('').target!.name, 'b');
  assert.equal(source.draws(), 0);

  let now = 0;
  const ewma = new EwmaBalancer<T>({ random: source.random, now: () => now });
  ewma.update(ts);
  ts.forEach((t) => (t.active = 0));
  ewma.observe(ts[0]!, 50, false);
  ewma.observe(ts[1]!, 5, false);
  ewma.observe(ts[2]!, 20, false);
  now = 1;
  assert.equal(ewma.peek('').target!.name, 'b');
  assert.match(ewma.peek('').reason, /5\.0 ms peak EWMA/);
  assert.equal(source.draws(), 0);
});

test('random: peek gives the odds by weight, not a target, and draws nothing', () => {
  const source = counted([0.5]);
  const b = new RandomBalancer<T>({ random: source.random });
  b.update(targets([3, 1]));
  const peek = b.peek('');
  assert.equal(peek.target, undefined);
  assert.deepEqual(
    peek.chances!.map((c) => [c.target.name, c.share]),
    [
      ['a', 0.75],
      ['b', 0.25],
    ],
  );
  assert.equal(source.draws(), 0);
});

test('ip-hash and consistent hash: peek says the hash and names the target pick takes for that key', () => {
  for (const b of [new IpHashBalancer<T>(), new ConsistentHashBalancer<T>()]) {
    b.update(targets([1, 2, 3]));
    for (const key of ['10.1.2.3', '10.9.9.9', 'user-42', '::1']) {
      const peek = b.peek(key);
      assert.equal(peek.target, b.pick(key), key);
      assert.match(peek.reason, /^hash 0x[0-9a-f]{8} -> /);
    }
    // Without a key they rotate: peek says so and still names the next pick.
    const said = b.peek('');
    assert.match(said.reason, /no hash key: round robin/);
    assert.equal(said.target, b.pick(''));
  }
});

test('every algorithm has a peek, and an empty set says there is no target', () => {
  for (const name of BALANCE_ALGORITHMS) {
    const b = createBalancer<T>(name);
    b.update([]);
    assert.equal(b.peek('x').target, undefined, name);
    assert.equal(b.peek('x').reason, 'no usable target', name);
  }
});
