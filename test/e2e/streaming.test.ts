import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { procStatusBytes, spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startBackend, startGatewayYaml, type Backend } from '../helpers/servers.ts';

const MB = 1024 * 1024;
const GIB = 1024 * MB;

/** Rejects with `message` when `promise` has not settled within `ms` (so a buffering proxy fails instead of hanging). */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    res.on('error', reject);
  });
}

describe('streaming without buffering', () => {
  let backend: Backend;
  let gateway: Awaited<ReturnType<typeof startGatewayYaml>>;
  let port: number;
  let clientGotFirst = deferred();
  let backendGotFirst = deferred();

  before(async () => {
    backend = await startBackend((req, res) => {
      if (req.url === '/download') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        clientGotFirst.promise.then(() => res.end('last'));
        return;
      }
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        if (body === '') backendGotFirst.resolve();
        body += c;
      });
      req.on('end', () => res.end(body));
    });
    gateway = await startGatewayYaml(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
upstreams: { app: { targets: [{ url: "${backend.url}" }] } }
routes: [{ name: app, match: { path: / }, upstream: app }]
`);
    port = gateway.port('web');
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
  });

  test('the first chunk of a response reaches the client before the backend sends the last', async () => {
    clientGotFirst = deferred();
    const body = await within(
      new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/download', agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
            if (text.includes('first;')) clientGotFirst.resolve();
          });
          res.on('end', () => resolve(text));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
      5000,
      'the first chunk never arrived on its own: the gateway buffers responses',
    );
    assert.equal(body, 'first;last');
  });

  test('the backend sees the first chunk of an upload before the client sends the rest', async () => {
    backendGotFirst = deferred();
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: '/upload',
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'text/plain' },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => readBody(res).then((body) => resolve({ status: res.statusCode!, body }), reject));
      req.on('error', reject);
    });
    req.flushHeaders();
    req.write('first;');
    await within(
      backendGotFirst.promise,
      5000,
      'the backend never saw the first chunk on its own: the gateway buffers request bodies',
    );
    req.end('rest');
    const r = await within(response, 5000, 'no response to the upload');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'first;rest');
  });
});

/** Checks a stream of bytes against `pattern` repeated, without keeping any of it. */
class PatternCheck {
  bytes = 0;
  mismatchAt = -1;
  private readonly pattern: Buffer;
  constructor(pattern: Buffer) {
    this.pattern = pattern;
  }
  push(chunk: Buffer): void {
    const size = this.pattern.length;
    for (let i = 0; i < chunk.length;) {
      const p = this.bytes % size;
      const n = Math.min(size - p, chunk.length - i);
      if (this.mismatchAt === -1 && chunk.compare(this.pattern, p, p + n, i, i + n) !== 0) this.mismatchAt = this.bytes;
      i += n;
      this.bytes += n;
    }
  }
}

/** Writes `total` bytes of `pattern` repeated to `out`, waiting for 'drain' whenever it is full. */
async function writePattern(
  out: NodeJS.WritableStream & { destroyed: boolean },
  pattern: Buffer,
  total: number,
): Promise<void> {
  let sent = 0;
  while (sent < total) {
    const n = Math.min(pattern.length, total - sent);
    const chunk = n === pattern.length ? pattern : pattern.subarray(0, n);
    sent += n;
    if (!out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          out.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          out.off('drain', onDrain);
          reject(new Error(`stream closed after ${sent} bytes`));
        };
        out.once('drain', onDrain);
        out.once('close', onClose);
      });
    }
  }
}

describe('1 GiB through a gateway process', () => {
  const pattern = randomBytes(64 * 1024);
  let backend: Backend;
  let gateway: GatewayProcess;

  before(async () => {
    backend = await startBackend((req, res) => {
      if (req.url === '/download') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': GIB });
        writePattern(res, pattern, GIB).then(
          () => res.end(),
          () => res.destroy(),
        );
        return;
      }
      const check = new PatternCheck(pattern);
      req.on('data', (c: Buffer) => check.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes: check.bytes, mismatchAt: check.mismatchAt }));
      });
    });
    gateway = await spawnGateway(`
listeners: [{ name: web, protocol: http, address: 127.0.0.1, port: 0 }]
limits: { maxBodySize: 2gb, requestTimeout: 2m }
upstreams: { big: { targets: [{ url: "${backend.url}" }], timeouts: { response: 2m, idle: 30s } } }
routes: [{ name: big, match: { path: / }, upstream: big }]
`);
  });

  after(async () => {
    await gateway?.stop();
    await backend?.close();
  });

  test(
    "a 1 GiB upload and download pass with the gateway's RSS staying under 200 MB",
    { timeout: 120_000 },
    async () => {
      const port = gateway.port('web');
      const baseline = await procStatusBytes(gateway.pid, 'VmRSS');

      const downloadStart = performance.now();
      const download = await new Promise<{ status: number; check: PatternCheck }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/download', agent: false }, (res) => {
          const check = new PatternCheck(pattern);
          res.on('data', (c: Buffer) => check.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, check }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      const downloadMs = performance.now() - downloadStart;
      assert.equal(download.status, 200);
      assert.equal(download.check.bytes, GIB);
      assert.equal(download.check.mismatchAt, -1, 'downloaded bytes differ from what the backend sent');

      const uploadStart = performance.now();
      const upload = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          path: '/upload',
          method: 'PUT',
          agent: false,
          headers: { 'content-type': 'application/octet-stream', 'content-length': GIB },
        });
        req.on('response', (res) => readBody(res).then((body) => resolve({ status: res.statusCode!, body }), reject));
        req.on('error', reject);
        writePattern(req, pattern, GIB).then(() => req.end(), reject);
      });
      const uploadMs = performance.now() - uploadStart;
      assert.equal(upload.status, 200, upload.body);
      assert.deepEqual(JSON.parse(upload.body), { bytes: GIB, mismatchAt: -1 });

      const peak = await procStatusBytes(gateway.pid, 'VmHWM');
      const rate = (ms: number) => `${(ms / 1000).toFixed(1)} s, ${(GIB / MB / (ms / 1000)).toFixed(0)} MB/s`;
      console.log(
        `peak RSS 1 GiB streaming: ${(peak / MB).toFixed(0)} MB (baseline ${(baseline / MB).toFixed(0)} MB); ` +
          `download ${rate(downloadMs)}; upload ${rate(uploadMs)}`,
      );
      assert.ok(peak < 200 * MB, `the gateway's peak RSS was ${(peak / MB).toFixed(0)} MB`);
      assert.equal(await gateway.stop(), 0);
    },
  );
});
