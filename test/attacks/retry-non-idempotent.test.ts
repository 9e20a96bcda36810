// U09 (nginx non_idempotent, HAProxy retry-on conn-failure): backend A reads the whole request, commits it (counts
// its X-Id), then closes without answering (FIN, or RST); B is healthy. A POST that reached A is never sent again,
// whatever the retry policy: 502, and every id counted exactly once. A GET (and a PUT whose small body was kept)
// goes once more to B when the policy covers `reset` (`retries:` does by default); without `retries:` only connect
// failures are retried (README), so the GET is a 502 too. With `retries: { idempotencyKey: true }` a POST carrying
// an Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header) is retried: the backend deduplicates.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startRecordingBackend, type RecordingBackend, type ScriptedBackend } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';
import { problemCode, rawRequest, startRequestScriptedBackend } from '../helpers/upstream-faults.ts';

/** How many times A committed each X-Id. */
const committed = new Map<string, number>();
let a: ScriptedBackend;
let b: RecordingBackend;

before(async () => {
  a = await startRequestScriptedBackend((socket, { text }) => {
    const id = /\r\nx-id: *(\S+)/i.exec(text)?.[1] ?? '?';
    committed.set(id, (committed.get(id) ?? 0) + 1);
    if (id.startsWith('rst')) socket.resetAndDestroy();
    else socket.end();
  });
  b = await startRecordingBackend();
});
after(async () => {
  await a.close();
  await b.close();
});

/** A gateway with A as the target and B as its backup (where a retry that avoids A goes). */
function gateway(extra: string) {
  return startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams:
  app:
    targets: [{ url: "${a.url}" }, { url: "${b.url}", backup: true }]
    ${extra}
routes: [{ match: { path: / }, upstream: app }]
`);
}

const send = (port: number, method: string, id: string, body = '', extra = '') =>
  rawRequest(
    port,
    `${method} /orders HTTP/1.1\r\nHost: a\r\nX-Id: ${id}\r\nContent-Length: ${body.length}\r\n${extra}` +
      `Connection: close\r\n\r\n${body}`,
  );

const atB = (id: string) => b.arrivals.filter((x) => x.headers['x-id'] === id);

for (const [policy, extra] of [
  ['no retries: setting', ''],
  ['retries on reset and 502', 'retries: { attempts: 2, on: [reset, connect-failure, 502, 503, 504], backoff: 0ms }'],
] as const) {
  describe(`with ${policy}`, () => {
    let gw: Awaited<ReturnType<typeof gateway>>;
    before(async () => (gw = await gateway(extra)));
    after(() => gw.stop());

    test('a POST that reached a backend which then closed is a 502, committed exactly once, never sent to B', async () => {
      for (let i = 0; i < 6; i++) {
        const id = `${i % 2 === 0 ? 'fin' : 'rst'}-${policy.length}-${i}`;
        const r = await send(gw.port('web'), 'POST', id, `amount=${i}`);
        assert.equal(r.status, 502, r.text);
        assert.equal(problemCode(r), 'TP_UPSTREAM_RESET');
        assert.equal(committed.get(id), 1, id);
        assert.equal(atB(id).length, 0, `${id} went to B too`);
      }
    });
  });
}

describe('GET and PUT in the same scenario', () => {
  test('with retries, a GET is tried once more, on B, and gets its 200', async () => {
    const gw = await gateway('retries: { attempts: 2 }');
    try {
      const r = await send(gw.port('web'), 'GET', 'fin-get');
      assert.equal(r.status, 200, r.text);
      assert.equal(committed.get('fin-get'), 1);
      assert.equal(atB('fin-get').length, 1);
    } finally {
      await gw.stop();
    }
  });

  test('with retries, a PUT whose small body was kept is resent to B byte for byte', async () => {
    const gw = await gateway('retries: { attempts: 2 }');
    try {
      const body = 'k'.repeat(10_000);
      const r = await send(gw.port('web'), 'PUT', 'rst-put', body);
      assert.equal(r.status, 200, r.text);
      assert.equal(committed.get('rst-put'), 1);
      assert.equal(atB('rst-put')[0]!.sha256, createHash('sha256').update(body).digest('hex'));
    } finally {
      await gw.stop();
    }
  });

  test('without retries: a GET is not retried after it reached A (only connect failures are, by default)', async () => {
    const gw = await gateway('');
    try {
      const r = await send(gw.port('web'), 'GET', 'fin-get-default');
      assert.equal(r.status, 502, r.text);
      assert.equal(atB('fin-get-default').length, 0);
    } finally {
      await gw.stop();
    }
  });
});

describe('retries: { idempotencyKey: true }', () => {
  test('a POST carrying an Idempotency-Key is retried on B with its body; one without is still a 502', async () => {
    const gw = await gateway('retries: { attempts: 2, idempotencyKey: true }');
    try {
      const keyed = await send(gw.port('web'), 'POST', 'rst-keyed', 'amount=7', 'Idempotency-Key: "8e03978e"\r\n');
      assert.equal(keyed.status, 200, keyed.text);
      assert.equal(committed.get('rst-keyed'), 1);
      const [atB0] = atB('rst-keyed');
      assert.equal(atB0!.body.toString(), 'amount=7');
      assert.equal(atB0!.headers['idempotency-key'], '"8e03978e"');
      const bare = await send(gw.port('web'), 'POST', 'rst-bare', 'amount=8');
      assert.equal(bare.status, 502, bare.text);
      assert.equal(atB('rst-bare').length, 0);
    } finally {
      await gw.stop();
    }
  });

  test('without the opt-in, an Idempotency-Key does not make a POST retryable', async () => {
    const gw = await gateway('retries: { attempts: 2 }');
    try {
      const r = await send(gw.port('web'), 'POST', 'fin-keyed', 'amount=9', 'Idempotency-Key: "1"\r\n');
      assert.equal(r.status, 502, r.text);
      assert.equal(atB('fin-keyed').length, 0);
    } finally {
      await gw.stop();
    }
  });
});
