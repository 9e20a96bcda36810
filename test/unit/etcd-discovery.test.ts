// etcd discovery below the runtime: what a key's value becomes, and the watching resolve against a real etcd
// (list, then a round per change; a compacted revision lists again; a stopped etcd rejects).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { targetOf, watchService } from '../../src/discovery/etcd.ts';
import { parseConfigText } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { EtcdClient } from '../../src/stores/etcd-client.ts';
import { startEtcd, type EtcdServer } from '../helpers/etcd.ts';

describe("a key's value as a target", () => {
  test('url, weight and backup; a url without a scheme takes the block scheme; the origin only', () => {
    assert.deepEqual(targetOf('{"url":"http://10.0.0.1:8080/x"}', 'http'), {
      url: 'http://10.0.0.1:8080',
      weight: 1,
      backup: false,
    });
    assert.deepEqual(targetOf('{"url":"10.0.0.2:9000","weight":5,"backup":true}', 'https'), {
      url: 'https://10.0.0.2:9000',
      weight: 5,
      backup: true,
    });
    assert.equal(targetOf('{"url":"https://a.internal"}', 'http')?.url, 'https://a.internal');
  });

  test('what names no target is skipped: not JSON, no url, another scheme', () => {
    for (const v of ['not json', '"http://x"', '{"address":"x"}', '{"url":"ftp://x:21"}', '{"url":"http://"}', 'null'])
      assert.equal(targetOf(v, 'http'), undefined, v);
  });
});

describe('the etcd settings and discover block', () => {
  const load = (text: string) => parseConfigText(text, 'turnpike.yaml', { ...LOAD_OPTIONS, env: {}, readFiles: false });
  const base = `listeners: [{ name: web, protocol: http, port: 8080 }]
routes: [{ name: all, match: { path: / }, upstream: payments }]
`;
  test('defaults: the local etcd and /turnpike/services/', () => {
    const config = load(`${base}upstreams:\n  payments: { discover: { etcd: { service: payments } } }\n`);
    assert.deepEqual(config.discovery.etcd.endpoints, ['http://127.0.0.1:2379']);
    assert.equal(config.discovery.etcd.prefix, '/turnpike/services/');
  });
  test('a bad endpoint and a service with a slash are errors at their key paths', () => {
    assert.throws(
      () =>
        load(
          `${base}discovery: { etcd: { endpoints: ["127.0.0.1:2379"] } }\nupstreams:\n  payments: { discover: { etcd: { service: a/b } } }\n`,
        ),
      (err: Error) =>
        /discovery\.etcd\.endpoints\[0\]/.test(err.message) &&
        /upstreams\.payments\.discover\.etcd\.service/.test(err.message),
    );
  });
});

describe('watching a service in a real etcd', () => {
  let etcd: EtcdServer;
  before(async () => {
    etcd = await startEtcd();
  });
  after(() => etcd.stop());

  test('the first round lists, each later one answers a change; a compacted revision lists again', async () => {
    const prefix = '/t1/services/pay/';
    await etcd.put(`${prefix}a`, '{"url":"http://10.0.0.1:8080"}');
    await etcd.put('/t1/services/payments-other/x', '{"url":"http://10.9.9.9:80"}'); // another service
    const resolve = watchService(etcd.client, prefix, 'http');
    const signal = new AbortController().signal;
    assert.deepEqual(
      (await resolve(signal)).targets.map((t) => t.url),
      ['http://10.0.0.1:8080'],
    );

    const next = resolve(signal);
    await etcd.put(`${prefix}b`, '{"url":"http://10.0.0.2:8080","weight":3}');
    assert.deepEqual((await next).targets, [
      { url: 'http://10.0.0.1:8080', weight: 1, backup: false },
      { url: 'http://10.0.0.2:8080', weight: 3, backup: false },
    ]);

    const deleted = resolve(signal);
    await etcd.del(`${prefix}a`);
    assert.deepEqual(
      (await deleted).targets.map((t) => t.url),
      ['http://10.0.0.2:8080'],
    );

    // Changes, then the history compacted past them before the next watch: the round lists again.
    await etcd.put(`${prefix}c`, '{"url":"http://10.0.0.3:8080"}');
    const { revision } = await etcd.client.range('/', true);
    await fetch(`${etcd.url}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({ revision: String(revision) }),
    });
    assert.deepEqual(
      (await resolve(signal)).targets.map((t) => t.url),
      ['http://10.0.0.2:8080', 'http://10.0.0.3:8080'],
    );
  });

  test('the signal ends a watch; an unreachable etcd rejects with TP_ETCD_FAILED', async () => {
    const resolve = watchService(etcd.client, '/t2/services/x/', 'http');
    const stop = new AbortController();
    await etcd.put('/t2/services/x/1', '{"url":"http://10.0.0.1:8080"}');
    await resolve(stop.signal);
    const watching = resolve(stop.signal);
    stop.abort();
    await assert.rejects(watching, (err: Error) => err.name === 'AbortError');

    const dead = watchService(new EtcdClient({ endpoints: [`http://127.0.0.1:1`], timeoutMs: 1000 }), '/x/', 'http');
    await assert.rejects(dead(new AbortController().signal), (err: { code?: string }) => err.code === 'TP_ETCD_FAILED');
  });
});
