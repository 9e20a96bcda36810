// B06 (HAProxy `truncated_response.vtc` spirit): nothing lost. Many POSTs with random bodies of random sizes, sent
// with Content-Length and chunked (cut at random places), over HTTP/1.1 keep-alive and HTTP/2, several at a time;
// each carries `X-Id` and `X-Sha256`, the backend records what arrived, and the sets are compared: every id
// arrives exactly once, complete, with the body the client sent, and the client gets the backend's verdict back.
// Bounded: 500 requests of 0-32 KiB; full (`npm run attacks -- --full`): the catalogue's 20,000 of 0-1 MiB.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { scale } from '../helpers/attack-scale.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

const REQUESTS = scale(500, 20_000);
const MAX_BODY = scale(32, 1024) * 1024;
const PARALLEL = 8;
// Bodies are windows of one random pool (fresh random bytes for 10 GB would dominate the full run), each with its
// id in front so that no two bodies are alike.
const POOL = randomBytes(MAX_BODY * 2);

let backend: RecordingBackend;
let gw: Awaited<ReturnType<typeof startAttackGateway>>;

before(async () => {
  backend = await startRecordingBackend();
  gw = await startAttackGateway({ upstream: backend.url });
});
after(async () => {
  await gw.stop();
  await backend.close();
});

interface Sent {
  readonly id: string;
  readonly sha256: string;
  readonly length: number;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function body(id: string): Buffer {
  const size = randomInt(0, MAX_BODY + 1);
  const start = randomInt(0, POOL.length - size + 1);
  const b = Buffer.from(POOL.subarray(start, start + size));
  b.write(id.slice(0, size)); // the id in front, as far as the body is long
  return b;
}

/** One POST over HTTP/1.1 keep-alive, with Content-Length or chunked at random cut points. */
function postH1(agent: Agent, id: string, data: Buffer, chunked: boolean): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'x-id': id, 'x-sha256': sha(data) };
    if (!chunked) headers['content-length'] = data.length;
    const req = httpRequest(
      { host: '127.0.0.1', port: gw.http, method: 'POST', path: `/public/upload/${id}`, agent, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (!chunked) return void req.end(data);
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, randomInt(1, 65_536));
      req.write(data.subarray(at, at + n));
      at += n;
    }
    req.end();
  });
}

function postH2(session: ClientHttp2Session, id: string, data: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': `/public/upload/${id}`,
      'x-id': id,
      'x-sha256': sha(data),
      // Half of them without a content-length: the body is then framed by DATA frames alone.
      ...(data.length % 2 === 0 ? { 'content-length': String(data.length) } : {}),
    });
    let status = 0;
    let text = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => resolve({ status, text }));
    req.on('error', reject);
    req.end(data);
  });
}

test(`${REQUESTS} POSTs with random bodies (CL, chunked, HTTP/2): 0 mismatches, 0 missing, 0 duplicates`, async () => {
  const sent: Sent[] = [];
  const answers: { id: string; status: number; sha256: string; length: number }[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
  const session = h2connect(`http://127.0.0.1:${gw.http}`);
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      const n = next++;
      const id = `id-${n.toString().padStart(6, '0')}`;
      const data = body(id);
      sent.push({ id, sha256: sha(data), length: data.length });
      const kind = n % 3;
      const r = kind === 2 ? await postH2(session, id, data) : await postH1(agent, id, data, kind === 1);
      assert.equal(r.status, 200, `${id}: ${r.text}`);
      const echo = JSON.parse(r.text) as { sha256: string; length: number };
      answers.push({ id, status: r.status, sha256: echo.sha256, length: echo.length });
    }
  };
  try {
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  } finally {
    agent.destroy();
    session.close();
  }
  await backend.untilArrivals(REQUESTS);
  const arrived = new Map<string, number>();
  let mismatches = 0;
  let incomplete = 0;
  for (const a of backend.arrivals) {
    const id = String(a.headers['x-id']);
    arrived.set(id, (arrived.get(id) ?? 0) + 1);
    if (!a.complete) incomplete++;
    if (a.sha256 !== a.headers['x-sha256']) mismatches++;
  }
  const missing = sent.filter((s) => !arrived.has(s.id)).length;
  const duplicates = [...arrived.values()].filter((n) => n > 1).length;
  assert.deepEqual(
    { mismatches, missing, duplicates, incomplete },
    { mismatches: 0, missing: 0, duplicates: 0, incomplete: 0 },
  );
  assert.equal(arrived.size, REQUESTS);
  // The client side agrees: each answer carries the sha256 and length of what the client sent.
  const byId = new Map(sent.map((s) => [s.id, s]));
  for (const a of answers) {
    assert.equal(a.sha256, byId.get(a.id)!.sha256, a.id);
    assert.equal(a.length, byId.get(a.id)!.length, a.id);
  }
});
