// Z01 (throughput / latency baseline): h2load over TLS with ALPN h2 and wrk over HTTP/1.1 through a real gateway
// process, and the same wrk run straight at the backend. The verdict is the error count — 0 — and the backend
// having received every request the tools counted; throughput, latency, CPU and RSS are printed for the report,
// never asserted (a shared machine). Bounded here (h2load -n 2000 -c 10 -m 10; wrk -t2 -c50 -d2s); under
// `npm run attacks -- --full` the catalogue's sizes (h2load -n 1000000 -c 100 -m 10; wrk -t4 -c256 -d60s).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { parseWrk } from '../../bench/wrk.ts';
import { FULL, scale } from '../helpers/attack-scale.ts';
import { makeTestPki, type TestPki } from '../helpers/certs.ts';
import { procStatusBytes, spawnGateway, type GatewayProcess } from '../helpers/process.ts';

let backend: Server;
let backendPort: number;
let received = 0;
let gw: GatewayProcess;
let pki: TestPki;
const BODY = Buffer.alloc(100, 'z');

before(async () => {
  backend = createServer((req, res) => {
    received++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
    res.end(BODY);
  });
  backend.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as AddressInfo).port;
  const made = makeTestPki();
  pki = made.pki;
  const cert = pki.server(made.serverCa, { names: ['localhost'] });
  gw = await spawnGateway(
    `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
  - name: secure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
upstreams: { app: { targets: [{ url: "http://127.0.0.1:${backendPort}" }] } }
routes: [{ name: public, match: { path: /public }, upstream: app }]
`,
    { listeners: 2 },
  );
});
after(async () => {
  await gw.stop();
  backend.closeAllConnections();
  backend.close();
  pki.remove();
});

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout),
    ),
  );
}

/** CPU seconds (user + system) the gateway process has used so far. */
function cpuSeconds(): number {
  const stat = readFileSync(`/proc/${gw.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz on Linux)
}

async function measured<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const result = await fn();
  const wall = (performance.now() - t0) / 1000;
  const rss = await procStatusBytes(gw.pid, 'VmRSS');
  console.log(
    `# Z01 ${what}: gateway CPU ${(((cpuSeconds() - cpu0) / wall) * 100).toFixed(0)} %, RSS ${(rss / 1048576).toFixed(0)} MB`,
  );
  return result;
}

test('h2load over TLS (ALPN h2) through the gateway: every request succeeds and reaches the backend', async () => {
  const n = scale(2000, 1_000_000);
  const c = scale(10, 100);
  const before = received;
  const out = await measured('h2load', () =>
    run(
      'h2load',
      ['-n', String(n), '-c', String(c), '-m', '10', `https://127.0.0.1:${gw.port('secure')}/public`],
      scale(60_000, 900_000),
    ),
  );
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    out,
  );
  assert.ok(reqs, out);
  assert.deepEqual(reqs.slice(1).map(Number), [n, n, n, n, 0, 0], out);
  assert.match(out, /status codes: (\d+) 2xx, 0 3xx, 0 4xx, 0 5xx/);
  assert.match(out, /Application protocol: h2/);
  assert.equal(received - before, n);
  const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(out)?.[1];
  const latency = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  console.log(
    `# Z01 h2load${FULL ? ' (full)' : ''}: ${n} requests, ${rps} req/s, request time min/max/mean ${latency?.slice(1).join(' ')}`,
  );
});

async function wrk(url: string): Promise<ReturnType<typeof parseWrk>> {
  const seconds = scale(2, 60);
  const out = await run(
    'wrk',
    [`-t${scale(2, 4)}`, `-c${scale(50, 256)}`, `-d${seconds}s`, '--latency', url],
    (seconds + 30) * 1000,
  );
  return parseWrk(out);
}

test('wrk over HTTP/1.1 through the gateway and straight to the backend: 0 errors, nothing lost', async () => {
  const before = received;
  const through = await measured('wrk', () => wrk(`http://127.0.0.1:${gw.port('web')}/public`));
  const reached = received - before;
  assert.equal(through.errors, 0, JSON.stringify(through));
  assert.ok(through.requests > 0);
  // wrk stops counting with requests still in flight: those reach the backend uncounted, at most one per connection.
  assert.ok(
    reached >= through.requests && reached <= through.requests + scale(50, 256),
    `${reached} vs ${through.requests}`,
  );
  const direct = await wrk(`http://127.0.0.1:${backendPort}/public`);
  assert.equal(direct.errors, 0);
  console.log(
    `# Z01 wrk${FULL ? ' (full)' : ''}: gateway ${through.reqPerSec.toFixed(0)} req/s p50 ${through.p50Ms} ms p99 ${through.p99Ms} ms; ` +
      `direct ${direct.reqPerSec.toFixed(0)} req/s p50 ${direct.p50Ms} ms p99 ${direct.p99Ms} ms`,
  );
});
