// Issue 15 point 2 (and the spirit of B06, HAProxy truncated_response.vtc): a counted run of mixed GETs and POSTs
// with bodies (Content-Length and chunked), some answered 503 once by a backend so that they go through retries,
// some across two config reloads, some to a backend that dies mid-way. Every request is accounted for by id and
// body sha256 on the backends' side: a 2xx arrived with its exact body and was answered by one backend; a POST
// arrived at most once, whatever happened (it may fail with 502 when its backend died holding it, never twice);
// and no request was refused with a "not sent" error (connect failure, no healthy target, breaker open) while a
// healthy target existed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import { scale } from '../helpers/attack-scale.ts';
import { startRecordingBackend, type RecordingBackend, type RecordingHandler } from '../helpers/recording-backend.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

const TOTAL = scale(2000, 20_000);
const NOT_SENT = new Set(['TP_UPSTREAM_UNAVAILABLE', 'TP_NO_HEALTHY_TARGET', 'TP_CIRCUIT_OPEN']);

/** What a backend did with each id: answered it (2xx) or turned it away with 503 before doing anything. */
interface Ledger {
  readonly served: Map<string, { backend: string; sha: string }[]>;
  readonly turnedAway: Map<string, number>;
}
const ledger: Ledger = { served: new Map(), turnedAway: new Map() };

/** Ids whose first arrival anywhere is answered 503 (the backend did nothing): they exercise retries. */
const flaky = (id: number) => id % 5 === 3;

function backendHandler(name: string): RecordingHandler {
  return (_req, res, a) => {
    const id = String(a.headers['x-id']);
    if (flaky(Number(id)) && !ledger.turnedAway.has(id)) {
      ledger.turnedAway.set(id, 1);
      res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '4' });
      return res.end('busy');
    }
    const list = ledger.served.get(id) ?? [];
    list.push({ backend: name, sha: a.sha256 });
    ledger.served.set(id, list);
    const body = JSON.stringify({ id, backend: name, sha256: a.sha256, length: a.body.length });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

let a: RecordingBackend, b: RecordingBackend, c: RecordingBackend;
before(async () => {
  [a, b, c] = await Promise.all([
    startRecordingBackend(backendHandler('a')),
    startRecordingBackend(backendHandler('b')),
    startRecordingBackend(backendHandler('c')),
  ]);
});
after(async () => {
  await Promise.all([a.close(), b.close(), c.close()]);
});

const config = (version: number) => `
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
accessLog: { enabled: false }
upstreams:
  app:
    targets: [{ url: "${a.url}" }, { url: "${b.url}" }, { url: "${c.url}" }]
    balance: ${version === 1 ? 'least-connections' : 'round-robin'}
    retries: { attempts: 2, budget: 100%, backoff: 0ms }
    healthCheck: { passive: { consecutiveFailures: 3, ejectFor: 1m } }
routes:
  - name: app
    match: { path: / }
    upstream: app
    limits: { maxBodySize: 1mb }
    plugins: [{ headers: { response: { set: { x-config: "v${version}" } } } }]
`;

interface Sent {
  readonly id: number;
  readonly method: 'GET' | 'POST';
  readonly sha: string;
  status: number;
  code: string | null;
  answer: { id: string; backend: string; sha256: string } | null;
  error: string | null;
}

test(`${TOTAL} mixed requests across retries, two reloads and a backend dying: every one accounted for`, async () => {
  const gw = await startGatewayYaml(config(0));
  const pool = new Pool(`http://127.0.0.1:${gw.port()}`, { connections: 16, pipelining: 1 });
  const sent: Sent[] = [];
  let next = 0;
  let done = 0;
  const milestones: { at: number; run: () => Promise<void> }[] = [
    { at: Math.floor(TOTAL * 0.25), run: () => reload(1) },
    { at: Math.floor(TOTAL * 0.5), run: () => c.close() }, // dies with requests in flight
    { at: Math.floor(TOTAL * 0.75), run: () => reload(2) },
  ];
  const reload = async (version: number) => {
    writeFileSync(gw.file, config(version));
    const r = await gw.reloader!.reload('test');
    assert.equal(r.ok, true, r.error);
  };
  const pending: Promise<void>[] = [];
  const worker = async () => {
    while (next < TOTAL) {
      const id = next++;
      const post = id % 2 === 1;
      // Bodies from empty to 256 KiB (past the 64 KiB a retry may keep), as one Content-Length or chunked.
      const body = post ? randomBytes(id % 5 === 0 ? 0 : (id * 7919) % (256 * 1024)) : undefined;
      const chunked = post && id % 4 === 1;
      const s: Sent = {
        id,
        method: post ? 'POST' : 'GET',
        sha: createHash('sha256')
          .update(body ?? Buffer.alloc(0))
          .digest('hex'),
        status: 0,
        code: null,
        answer: null,
        error: null,
      };
      sent.push(s);
      try {
        const res = await pool.request({
          path: `/item/${id}`,
          method: s.method,
          headers: { 'x-id': String(id), 'content-type': 'application/octet-stream' },
          body: body === undefined ? undefined : chunked ? streamOf(body) : body,
        });
        s.status = res.statusCode;
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) s.answer = JSON.parse(text);
        else if (String(res.headers['content-type']).startsWith('application/problem+json'))
          s.code = (JSON.parse(text) as { code?: string }).code ?? null;
      } catch (err) {
        s.error = (err as Error).message;
      }
      done++;
      while (milestones.length > 0 && done >= milestones[0]!.at) pending.push(milestones.shift()!.run());
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await Promise.all(pending);
  await pool.close();
  await gw.stop();

  const arrivals = new Map<string, number>();
  for (const be of [a, b, c])
    for (const arr of be.arrivals) {
      const id = String(arr.headers['x-id']);
      arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
    }
  const problems: string[] = [];
  const tally = new Map<string, number>();
  for (const s of sent) {
    const id = String(s.id);
    const served = ledger.served.get(id) ?? [];
    const key = s.error ? `error ${s.error}` : s.code ? `${s.status} ${s.code}` : String(s.status);
    tally.set(key, (tally.get(key) ?? 0) + 1);
    if (s.error !== null) problems.push(`${id}: client error ${s.error}`);
    if (s.code !== null && NOT_SENT.has(s.code)) problems.push(`${id}: refused ${s.code} while a target was up`);
    if (s.status >= 200 && s.status < 300) {
      if (s.answer?.id !== id || s.answer.sha256 !== s.sha) problems.push(`${id}: answer for another body`);
      const match = served.filter((x) => x.backend === s.answer?.backend && x.sha === s.sha);
      if (match.length === 0) problems.push(`${id}: 2xx but no backend served its exact body`);
    }
    if (s.method === 'POST' && (arrivals.get(id) ?? 0) > 1) problems.push(`${id}: POST arrived ${arrivals.get(id)}x`);
    if (s.method === 'POST' && served.length > 1) problems.push(`${id}: POST served ${served.length}x`);
    for (const x of served) if (x.sha !== s.sha) problems.push(`${id}: a backend got a different body`);
  }
  const summary = [...tally].map(([k, v]) => `${k}: ${v}`).join(', ');
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems; outcomes ${summary}`);
  assert.equal(sent.length, TOTAL);
  // The run did exercise what it claims: retries happened, C served before dying, every backend saw traffic.
  assert.ok(ledger.turnedAway.size > TOTAL / 20, summary);
  assert.ok(c.arrivals.length > 0 && a.arrivals.length > 0 && b.arrivals.length > 0);
  // A GET may always be tried again (a 503 turned it away, or its backend died holding it): every one succeeds.
  const failedGets = sent.filter((s) => s.method === 'GET' && !(s.status >= 200 && s.status < 300));
  assert.deepEqual(
    failedGets.map((s) => `${s.id} ${s.status} ${s.code ?? s.error ?? ''}`),
    [],
    summary,
  );
});

/** The body as a stream of 16 KiB pieces: undici sends it chunked. */
function streamOf(body: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < body.length; i += 16 * 1024) yield body.subarray(i, i + 16 * 1024);
    })(),
  );
}
