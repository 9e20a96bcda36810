// The load-balancing algorithms on plain targets: distributions measured over many picks (seeded random
// sources and a simulated clock, so the figures are the same on every run and nothing sleeps).
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

/** Targets named a, b, c... with these weights; keys look like the real ones (url + settings). */
function targets(weights: readonly number[], from = 0): T[] {
  return weights.map((weight, i) => {
    const name = String.fromCharCode(97 + from + i);
    return { name, key: `http://10.0.0.${from + i + 1}:8080|{"connect":5000}|${weight}`, weight, active: 0 };
  });
}

/** mulberry32: a small seeded PRNG, so random balancers give the same figures on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function counts(b: Balancer<T>, picks: number, hash: (i: number) => string = () => ''): Record<string, number> {
  const c: Record<string, number> = {};
  for (let i = 0; i < picks; i++) {
    const t = b.pick(hash(i))!;
    c[t.name] = (c[t.name] ?? 0) + 1;
  }
  return c;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ips = (n: number) => Array.from({ length: n }, (_, i) => `203.0.${(i >> 8) & 255}.${i & 255}`);

/** A simulated load: `perMs` requests arrive each simulated ms, each held `latency(target, now)` ms. */
class Simulation {
  now = 0;
  private pending: { target: T; start: number; done: number }[] = [];
  private readonly balancer: Balancer<T>;
  private readonly latency: (t: T, now: number) => number;
  private readonly perMs: number;

  constructor(balancer: Balancer<T>, latency: (t: T, now: number) => number, perMs = 1) {
    this.balancer = balancer;
    this.latency = latency;
    this.perMs = perMs;
  }

  /** Runs until `until`; returns the picks per target name in that stretch. */
  run(until: number): Record<string, number> {
    const c: Record<string, number> = {};
    for (; this.now < until; this.now++) {
      this.pending = this.pending.filter((p) => {
        if (p.done > this.now) return true;
        p.target.active--;
        this.balancer.observe?.(p.target, this.now - p.start, false);
        return false;
      });
      for (let k = 0; k < this.perMs; k++) {
        const t = this.balancer.pick('')!;
        t.active++;
        c[t.name] = (c[t.name] ?? 0) + 1;
        this.pending.push({ target: t, start: this.now, done: this.now + this.latency(t, this.now) });
      }
    }
    return c;
  }
}

test('every algorithm returns undefined for no targets and the only target of a set of one, even when avoided', () => {
  for (const name of BALANCE_ALGORITHMS) {
    const b = createBalancer<T>(name);
    assert.equal(b.pick('198.51.100.7'), undefined, name);
    b.update([]);
    assert.equal(b.pick(''), undefined, name);
    const [only] = targets([2]);
    b.update([only!]);
    assert.equal(b.pick('198.51.100.7'), only, name);
    assert.equal(b.pick('', only), only, name);
    b.update([]);
    assert.equal(b.pick('198.51.100.7'), undefined, `${name} after the set emptied`);
  }
});

test('avoid: a retry goes to another target whenever one exists, for every algorithm', (t) => {
  for (const name of BALANCE_ALGORITHMS) {
    for (const weights of [
      [1, 1],
      [5, 1, 1],
      [1, 3, 2, 1],
    ]) {
      const b = createBalancer<T>(name);
      const set = targets(weights);
      b.update(set);
      for (let i = 0; i < 500; i++) {
        const hash = i % 5 === 0 ? '' : `198.51.100.${i % 256}`;
        const first = b.pick(hash)!;
        const retry = b.pick(hash, first)!;
        assert.notEqual(retry, first, `${name} ${weights.join(':')} hash '${hash}'`);
        assert.ok(set.includes(retry));
      }
    }
  }
  t.diagnostic(`checked ${BALANCE_ALGORITHMS.length} algorithms x 3 target sets x 500 retries`);
});

test('round-robin rotates through the targets in order and ignores weights', () => {
  const b = new RoundRobinBalancer<T>();
  b.update(targets([5, 1, 1]));
  const seq = Array.from({ length: 7 }, () => b.pick('')!.name).join('');
  assert.equal(seq, 'abcabca');
  b.update(targets([1, 1])); // a shrunk set: the position wraps instead of running off the end
  assert.ok(['a', 'b'].includes(b.pick('')!.name));
});

test('weighted-round-robin: weights 3:1 give 75% ± 3% over 4,000 picks', (t) => {
  const b = new WeightedRoundRobinBalancer<T>();
  b.update(targets([3, 1]));
  const c = counts(b, 4000);
  const share = c.a! / 4000;
  t.diagnostic(`weighted-round-robin 3:1 -> a ${pct(share)} (${c.a}/4000)`);
  assert.ok(Math.abs(share - 0.75) <= 0.03);
});

test('weighted-round-robin is smooth: 5:1:1 never gives 5 in a row and each cycle of 7 is exactly 5:1:1', (t) => {
  const b = new WeightedRoundRobinBalancer<T>();
  b.update(targets([5, 1, 1]));
  const seq = Array.from({ length: 7000 }, () => b.pick('')!.name);
  let run = 1;
  let longest = 1;
  for (let i = 1; i < seq.length; i++) longest = Math.max(longest, (run = seq[i] === seq[i - 1] ? run + 1 : 1));
  for (let i = 0; i < seq.length; i += 7) {
    const cycle = seq
      .slice(i, i + 7)
      .sort()
      .join('');
    assert.equal(cycle, 'aaaaabc', `cycle at pick ${i}`);
  }
  t.diagnostic(`first cycle ${seq.slice(0, 7).join(' ')}; longest run over 7,000 picks: ${longest}`);
  assert.equal(seq.slice(0, 7).join(''), 'aabacaa'); // NGINX's sequence for 5:1:1
  assert.ok(longest < 5);
});

test('weighted-round-robin keeps exact proportions when its cycle is too large to precompute', (t) => {
  // 40 targets of weights 1000..961: a cycle of 39,220 picks x 40 targets, over the precompute bound.
  const weights = Array.from({ length: 40 }, (_, i) => 1000 - i);
  const set = weights.map((weight, i) => ({ name: `t${i}`, key: `k${i}`, weight, active: 0 }));
  const b = new WeightedRoundRobinBalancer<T>();
  b.update(set);
  const cycle = weights.reduce((a, w) => a + w, 0);
  const c = counts(b, cycle);
  set.forEach((s) => assert.equal(c[s.name], s.weight, s.name));
  const first = b.pick('')!;
  assert.notEqual(b.pick('', first), first);
  t.diagnostic(`one cycle of ${cycle} picks gave every target exactly its weight`);
});

test('random: weights 3:1 give 75% ± 3% over 4,000 picks', (t) => {
  const b = new RandomBalancer<T>({ random: seeded(1) });
  b.update(targets([3, 1]));
  const c = counts(b, 4000);
  const share = c.a! / 4000;
  t.diagnostic(`random 3:1 -> a ${pct(share)} (${c.a}/4000)`);
  assert.ok(Math.abs(share - 0.75) <= 0.03);
});

test('random: a retry avoiding the heavy target spreads over the others by weight', (t) => {
  const b = new RandomBalancer<T>({ random: seeded(2) });
  const set = targets([6, 3, 1]);
  b.update(set);
  const c: Record<string, number> = {};
  for (let i = 0; i < 4000; i++) {
    const x = b.pick('', set[0])!;
    c[x.name] = (c[x.name] ?? 0) + 1;
  }
  t.diagnostic(`avoiding a (6): b ${c.b}, c ${c.c} of 4000 (3:1 expected)`);
  assert.equal(c.a, undefined);
  assert.ok(Math.abs(c.b! / 4000 - 0.75) <= 0.03);
});

test('least-connections avoids a target that holds many active requests and rotates among equal ones', (t) => {
  const b = new LeastConnectionsBalancer<T>();
  const set = targets([1, 1, 1]);
  set[0]!.active = 10;
  b.update(set);
  const c = counts(b, 1000);
  t.diagnostic(`a (10 active) ${c.a ?? 0}, b ${c.b}, c ${c.c} of 1000`);
  assert.equal(c.a, undefined);
  assert.equal(c.b, 500);
  assert.equal(c.c, 500);
});

test('least-connections compares active per unit of weight', (t) => {
  const b = new LeastConnectionsBalancer<T>();
  const set = targets([4, 1]);
  b.update(set);
  // Requests that never finish: the in-flight counts settle at the weights' ratio.
  for (let i = 0; i < 1000; i++) b.pick('')!.active++;
  t.diagnostic(`weights 4:1 -> in flight a ${set[0]!.active}, b ${set[1]!.active}`);
  assert.equal(set[0]!.active, 800);
  assert.equal(set[1]!.active, 200);
});

test('least-connections and least-request send less to a target that holds requests 10x longer', (t) => {
  for (const [name, b] of [
    ['least-connections', new LeastConnectionsBalancer<T>()],
    ['least-request', new LeastRequestBalancer<T>({ random: seeded(3) })],
  ] as const) {
    const set = targets([1, 1, 1, 1]);
    b.update(set);
    const sim: Simulation = new Simulation(b, (target) => (target.name === 'd' ? 50 : 5));
    const c = sim.run(10_000);
    const share = c.d! / 10_000;
    t.diagnostic(`${name}: slow target d got ${pct(share)} (round robin would give 25%)`);
    assert.ok(share < 0.1, name);
  }
});

test('least-request prefers the less busy of its two choices', (t) => {
  const b = new LeastRequestBalancer<T>({ random: seeded(4) });
  const two = targets([1, 1]);
  two[0]!.active = 5;
  two[1]!.active = 1;
  b.update(two);
  const c2 = counts(b, 1000);
  t.diagnostic(`two targets, 5 and 1 active: the less busy got ${c2.b}/1000`);
  assert.equal(c2.b, 1000);

  // Five targets with 0, 2, 4, 6, 8 active: a target wins when drawn with a busier one, so shares are
  // 4:3:2:1:0 tenths, and the two least busy get 70% of the picks.
  const five = targets([1, 1, 1, 1, 1]);
  five.forEach((x, i) => (x.active = 2 * i));
  b.update(five);
  const c5 = counts(b, 10_000);
  const shares = five.map((x) => (c5[x.name] ?? 0) / 10_000);
  t.diagnostic(`five targets, 0/2/4/6/8 active: ${shares.map(pct).join(' / ')}`);
  assert.equal(c5.e, undefined);
  assert.ok(shares[0]! + shares[1]! > 0.65);
  [0.4, 0.3, 0.2, 0.1].forEach((expected, i) => assert.ok(Math.abs(shares[i]! - expected) < 0.03));

  // Weighted: 4 active on weight 4 (1 per unit) beats 2 active on weight 1.
  const weighted = targets([4, 1]);
  weighted[0]!.active = 4;
  weighted[1]!.active = 2;
  b.update(weighted);
  assert.equal(counts(b, 100).a, 100);
});

test('ip-hash gives the same target for the same IP, whatever the order of the set', () => {
  const set = targets([1, 1, 1]);
  const b = new IpHashBalancer<T>();
  b.update(set);
  const reordered = new IpHashBalancer<T>();
  reordered.update(set.slice().reverse());
  for (const ip of ips(200)) {
    const first = b.pick(ip);
    for (let k = 0; k < 5; k++) assert.equal(b.pick(ip), first, ip);
    assert.equal(reordered.pick(ip), first, ip);
  }
});

test('ip-hash spreads 1,000 IPs across the targets, by weight', (t) => {
  const b = new IpHashBalancer<T>();
  b.update(targets([1, 1, 1]));
  const list = ips(1000);
  const c = counts(b, 1000, (i) => list[i]!);
  t.diagnostic(`1,000 IPs over 3 targets: a ${c.a}, b ${c.b}, c ${c.c}`);
  for (const n of [c.a, c.b, c.c]) assert.ok(n! > 250 && n! < 420);

  b.update(targets([3, 1]));
  const many = ips(4000);
  const w = counts(b, 4000, (i) => many[i]!);
  t.diagnostic(`4,000 IPs, weights 3:1: a ${pct(w.a! / 4000)}`);
  assert.ok(Math.abs(w.a! / 4000 - 0.75) <= 0.03);
});

test('ip-hash without an IP falls back to round robin', () => {
  const b = new IpHashBalancer<T>();
  b.update(targets([1, 1, 1]));
  assert.deepEqual(counts(b, 300), { a: 100, b: 100, c: 100 });
});

test('consistent-hash keeps >= 70% of 10,000 keys in place when a fifth target joins four', (t) => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  const four = targets([1, 1, 1, 1]);
  const b = new ConsistentHashBalancer<T>();
  b.update(four);
  const before = keys.map((k) => b.pick(k)!);
  const spread = counts(b, keys.length, (i) => keys[i]!);
  b.update([...four, ...targets([1], 4)]);
  const now = keys.map((k) => b.pick(k)!);
  const kept = now.filter((t, i) => t === before[i]).length;
  assert.deepEqual(
    new Set(now.filter((t, i) => t !== before[i]).map((t) => t.name)),
    new Set(['e']),
    'a key that moves goes to the new target only',
  );
  t.diagnostic(
    `spread over 4: ${Object.values(spread).join(' / ')}; kept after adding a fifth: ${pct(kept / keys.length)} (ideal 80%)`,
  );
  assert.ok(kept / keys.length >= 0.7);
  for (const n of Object.values(spread)) assert.ok(n > 1800 && n < 3200);
});

test('consistent-hash moves only the keys of a removed target (about 1/N), the others stay', (t) => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `session-${i}`);
  const four = targets([1, 1, 1, 1]);
  const b = new ConsistentHashBalancer<T>();
  b.update(four);
  const before = keys.map((k) => b.pick(k)!);
  b.update(four.filter((x) => x.name !== 'b').reverse()); // order of the set does not matter
  const now = keys.map((k) => b.pick(k)!);
  const moved = before.filter((t) => t.name === 'b').length;
  assert.ok(now.every((t) => t.name !== 'b'));
  assert.equal(now.filter((t, i) => t === before[i]).length, keys.length - moved, 'keys of the remaining targets stay');
  t.diagnostic(`removing 1 of 4 moved ${pct(moved / keys.length)} of keys (1/N = 25%); all others stayed`);
  assert.ok(Math.abs(moved / keys.length - 0.25) < 0.07);
});

test('consistent-hash follows weights and falls back to round robin without a hash key', (t) => {
  const b = new ConsistentHashBalancer<T>();
  b.update(targets([3, 1]));
  const c = counts(b, 10_000, (i) => `k${i}`);
  t.diagnostic(`weights 3:1 over 10,000 keys: a ${pct(c.a! / 10_000)}`);
  assert.ok(Math.abs(c.a! / 10_000 - 0.75) < 0.05);
  assert.deepEqual(counts(b, 10), { a: 5, b: 5 });
});

test('ewma shifts traffic away from a target whose latency rises from 5 ms to 200 ms within 5 s', (t) => {
  const b: EwmaBalancer<T> = new EwmaBalancer<T>({ now: () => sim.now, random: seeded(5) });
  b.update(targets([1, 1, 1]));
  // 2 requests per simulated ms; c turns slow at t = 5 s.
  const sim: Simulation = new Simulation(b, (x, now) => (x.name === 'c' && now >= 5000 ? 200 : 5), 2);
  const share = (c: Record<string, number>) => (c.c ?? 0) / Object.values(c).reduce((a, n) => a + n, 0);
  const before = share(sim.run(5000));
  const firstSecond = share(sim.run(6000));
  const nextFour = share(sim.run(10_000));
  t.diagnostic(
    `share of c: before ${pct(before)}; first second after slowing ${pct(firstSecond)}; seconds 1-5 after ${pct(nextFour)}`,
  );
  assert.ok(before > 0.25 && before < 0.42, 'equal targets share the load (no herding)');
  assert.ok(firstSecond < before / 2);
  assert.ok(nextFour < 0.05);
});

test('ewma tries a target that has no samples yet', (t) => {
  const set = targets([1, 1]);
  const b: EwmaBalancer<T> = new EwmaBalancer<T>({ now: () => sim.now, random: seeded(6) });
  b.update(set);
  const sim: Simulation = new Simulation(b, () => 20);
  sim.run(2000);
  b.update([...set, ...targets([1], 2)]); // a new target joins a warm pool
  const c = sim.run(3000);
  const share = (c.c ?? 0) / 1000;
  t.diagnostic(`new target's share in its first second: ${pct(share)} (fair: 33%)`);
  assert.ok(share > 0.2 && share < 0.5);
});

test('ewma counts a failure as slow, so a target that fails fast does not attract traffic', (t) => {
  const set = targets([1, 1]);
  let clock = 0;
  const b = new EwmaBalancer<T>({ now: () => clock, random: seeded(7) });
  b.update(set);
  let toA = 0;
  for (; clock < 2000; clock++) {
    const x = b.pick('')!;
    if (x.name === 'a') toA++;
    b.observe(x, x.name === 'a' ? 1 : 10, x.name === 'a'); // a refuses at once, b answers in 10 ms
  }
  t.diagnostic(`failing target a got ${toA}/2000 picks`);
  assert.ok(toA < 100);
});
