// Balancing through the gateway with real backends: distributions are counted where the requests land.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { json, request, startBackend, startEchoBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const backends: Backend[] = [];
after(() => Promise.all(backends.map((b) => b.close())));

async function echo(name: string): Promise<Backend> {
  const b = await startEchoBackend(name);
  backends.push(b);
  return b;
}

/** Sends `n` requests, `concurrency` at a time, and counts the backends that answered. */
async function spread(
  port: number,
  n: number,
  concurrency = 8,
  headers: (i: number) => Record<string, string> = () => ({}),
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await request(port, `/r${i}`, { headers: headers(i) });
        assert.equal(r.status, 200);
        const name = json(r).name as string;
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

const gatewayYaml = (upstream: string) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
${upstream}
routes: [{ name: all, match: { path: / }, upstream: app }]
`;

describe('load balancing', () => {
  test('weights 3:1 give 75% ± 3% over 4,000 requests (weighted-round-robin)', async (t) => {
    const [a, b] = await Promise.all([echo('a'), echo('b')]);
    const gw = await startGatewayYaml(
      gatewayYaml(`    balance: weighted-round-robin
    targets: [{ url: "${a.url}", weight: 3 }, { url: "${b.url}", weight: 1 }]`),
    );
    try {
      const counts = await spread(gw.port(), 4000);
      const share = (counts.get('a') ?? 0) / 4000;
      t.diagnostic(`a (weight 3): ${(share * 100).toFixed(1)}% of 4,000; b: ${counts.get('b')}`);
      assert.ok(Math.abs(share - 0.75) <= 0.03, `share ${share}`);
    } finally {
      await gw.stop();
    }
  });

  test('least-connections avoids a target that holds slow requests', async (t) => {
    const fast = await echo('fast');
    const slow = await startBackend((_req, res) => setTimeout(() => res.end(JSON.stringify({ name: 'slow' })), 200));
    backends.push(slow);
    const gw = await startGatewayYaml(
      gatewayYaml(`    balance: least-connections
    targets: [{ url: "${fast.url}" }, { url: "${slow.url}" }]`),
    );
    try {
      const counts = await spread(gw.port(), 400, 16);
      const slowShare = (counts.get('slow') ?? 0) / 400;
      t.diagnostic(
        `slow target (200 ms per request) got ${(slowShare * 100).toFixed(1)}% of 400 requests at 16 concurrent (round robin: 50%)`,
      );
      assert.ok(slowShare < 0.15, `slow share ${slowShare}`);
    } finally {
      await gw.stop();
    }
  });

  test('consistent hashing on a header keeps ≥ 70% of keys when a fifth target is added to four', async (t) => {
    const five = await Promise.all(['t1', 't2', 't3', 't4', 't5'].map(echo));
    const targets = (n: number) =>
      five
        .slice(0, n)
        .map((b) => `{ url: "${b.url}" }`)
        .join(', ');
    const yaml = (n: number) =>
      gatewayYaml(`    balance: consistent-hash
    hashOn: header:x-user-id
    targets: [${targets(n)}]`);
    const gw = await startGatewayYaml(yaml(4));
    const keys = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const owners = async () => {
      const out = new Map<string, string>();
      for (const k of keys) out.set(k, json(await request(gw.port(), '/', { headers: { 'x-user-id': k } })).name);
      return out;
    };
    try {
      const before = await owners();
      assert.deepEqual(await owners(), before, 'the same key always goes to the same target');
      writeFileSync(gw.file, yaml(5));
      assert.equal((await gw.reloader!.reload('test')).ok, true);
      const afterAdd = await owners();
      const kept = keys.filter((k) => before.get(k) === afterAdd.get(k)).length / keys.length;
      const movedElsewhere = keys.filter((k) => before.get(k) !== afterAdd.get(k) && afterAdd.get(k) !== 't5').length;
      t.diagnostic(
        `kept ${(kept * 100).toFixed(1)}% of 400 keys after adding a fifth target; ${movedElsewhere} moved to an old target`,
      );
      assert.ok(kept >= 0.7, `kept ${kept}`);
      assert.equal(movedElsewhere, 0);
    } finally {
      await gw.stop();
    }
  });

  test('backup targets get traffic only when no primary is healthy', async () => {
    const primary = await echo('primary');
    const backup = await echo('backup');
    const gw = await startGatewayYaml(
      gatewayYaml(`    targets: [{ url: "${primary.url}" }, { url: "${backup.url}", backup: true }]
    healthCheck: { active: { path: /, interval: 50ms, timeout: 200ms, unhealthyThreshold: 1, healthyThreshold: 1 } }`),
    );
    try {
      const before = await spread(gw.port(), 50);
      assert.deepEqual([...before.keys()], ['primary']);
      await primary.close();
      await until(
        async () => {
          const r = await request(gw.port(), '/');
          return r.status === 200 && json(r).name === 'backup';
        },
        'the backup to answer',
        3000,
      );
      const during = await spread(gw.port(), 20);
      assert.deepEqual([...during.keys()], ['backup']);
    } finally {
      await gw.stop();
    }
  });
});

describe('session persistence', () => {
  test('pins a client to one target with a signed HttpOnly cookie that does not name the address', async () => {
    const [a, b, c] = await Promise.all([echo('a'), echo('b'), echo('c')]);
    const gw = await startGatewayYaml(
      gatewayYaml(`    targets: [{ url: "${a.url}" }, { url: "${b.url}" }, { url: "${c.url}" }]
    sticky: { cookie: tp_sticky, ttl: 1h, secret: "a-secret-of-sixteen-chars" }`),
    );
    try {
      const first = await request(gw.port(), '/');
      const setCookie = String(first.headers['set-cookie']);
      assert.match(setCookie, /^tp_sticky=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
      for (const b2 of [a, b, c]) assert.ok(!setCookie.includes(String(b2.port)) && !setCookie.includes('127.0.0.1'));
      const cookie = setCookie.split(';')[0]!;
      const pinned = json(first).name;
      for (let i = 0; i < 20; i++) {
        const r = await request(gw.port(), '/', { headers: { cookie: `other=1; ${cookie}` } });
        assert.equal(json(r).name, pinned);
        assert.equal(r.headers['set-cookie'], undefined, 'a valid cookie is not set again');
      }
      // A forged cookie (its signature does not match) is ignored and replaced.
      const forged = cookie.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
      const r = await request(gw.port(), '/', { headers: { cookie: forged } });
      assert.ok(r.headers['set-cookie'], 'a forged cookie gets a fresh one');
    } finally {
      await gw.stop();
    }
  });

  test('a client pinned to a target that turns unhealthy moves, and its cookie is rewritten', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const gw = await startGatewayYaml(
      gatewayYaml(`    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]
    sticky: { cookie: s }
    healthCheck: { active: { path: /, interval: 50ms, timeout: 200ms, unhealthyThreshold: 1 } }`),
    );
    try {
      const first = await request(gw.port(), '/');
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      const pinned = json(first).name as string;
      await (pinned === 'a' ? a : b).close();
      const moved = await until(
        async () => {
          const r = await request(gw.port(), '/', { headers: { cookie } });
          return r.status === 200 && json(r).name !== pinned ? r : undefined;
        },
        'the client to move to the healthy target',
        3000,
      );
      const rewritten = String(moved.headers['set-cookie']).split(';')[0]!;
      assert.notEqual(rewritten, cookie);
      const again = await request(gw.port(), '/', { headers: { cookie: rewritten } });
      assert.equal(json(again).name, json(moved).name);
    } finally {
      await gw.stop();
    }
  });
});
