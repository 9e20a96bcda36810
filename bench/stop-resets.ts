// `node bench/stop-resets.ts turnpike|nginx [ROUNDS] [SIGNAL]`: the load of graceful-stop.test.ts's todo test (two
// clients, a new connection per request) against the built Turnpike (SIGTERM) or NGINX (SIGQUIT, its graceful
// stop), stopped after 100 answers, ROUNDS times. Prints the answers, the refused connects and everything else (a
// reset is a client whose handshake completed in the last moment before the listening socket closed): the kernel
// window a stop leaves, measured on Turnpike and on the reference proxy alike.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.ts';

const proxy = process.argv[2] ?? 'turnpike';
if (proxy !== 'turnpike' && proxy !== 'nginx')
  throw new Error('usage: node bench/stop-resets.ts turnpike|nginx [ROUNDS] [SIGNAL]');
const rounds = Number(process.argv[3] ?? 10);
const signal = (process.argv[4] ?? (proxy === 'nginx' ? 'SIGQUIT' : 'SIGTERM')) as NodeJS.Signals;
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const tally = { ok: 0, refused: 0, other: [] as string[] };
const root = mkdtempSync(join(tmpdir(), 'stop-resets-'));
chmodSync(root, 0o755); // NGINX's workers run as nobody

for (let round = 0; round < rounds; round++) {
  const port = await freePort();
  const dir = join(root, String(round));
  mkdirSync(dir);
  writeFileSync(join(dir, 'index.html'), 'hi');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:${port}; root ${dir}; } }`,
  );
  writeFileSync(
    join(dir, 'turnpike.yaml'),
    `listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: ${port} }]
routes: [{ name: page, match: { path: / }, respond: { status: 200, body: "hi" } }]
accessLog: { enabled: false }
`,
  );
  const server =
    proxy === 'nginx'
      ? spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' })
      : spawn(process.execPath, [CLI, 'start', '--config', join(dir, 'turnpike.yaml')], { stdio: 'ignore' });
  const exited = new Promise((resolve) => server.once('exit', resolve));
  let running = true;
  let answered = 0;
  let seq = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: `/index.html?${i}`, agent: false }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) (tally.ok++, answered++);
          else tally.other.push(`status ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e: NodeJS.ErrnoException) => (tally.other.push(`response ${e.code}`), resolve()));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        // Before NGINX listens, and after it stopped: refused, nothing sent.
        if (e.code === 'ECONNREFUSED') {
          if (answered > 0) tally.refused++;
        } else tally.other.push(e.code ?? e.message);
        if (answered > 0) running = false;
        resolve();
      });
      req.end();
    });
  const clients = Array.from({ length: 2 }, async () => {
    while (running) await one(seq++);
  });
  const earlier = tally.other.length;
  while (answered < 100) {
    if (tally.other.length > earlier) throw new Error(`${proxy} did not serve the page: ${tally.other.at(-1)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  server.kill(signal);
  await exited;
  running = false;
  await Promise.all(clients);
}
console.log(
  JSON.stringify({
    proxy,
    rounds,
    signal,
    ok: tally.ok,
    refused: tally.refused,
    other: tally.other.length,
    kinds: [...new Set(tally.other)],
  }),
);
