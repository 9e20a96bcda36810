// gRPC-Web (`protocol: grpc-web`) through a plain HTTP/1.1 listener to a real @grpc/grpc-js server over h2c:
// binary and text modes, server streaming that streams, the status in the body's trailer frame (upstream errors
// and the gateway's own), CORS for browsers, and the config checks.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, loadConfigFile } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { closedPort } from '../helpers/ports.ts';
import { startGatewayYaml, tempDir } from '../helpers/servers.ts';

type Msg = { n?: number; text?: string };
const ser = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;

/** A service without .proto files: JSON messages in Buffers (the gateway never looks inside them). */
function serviceOf(name: string): grpc.ServiceDefinition {
  const method = (m: string, responseStream: boolean) => ({
    path: `/${name}/${m}`,
    requestStream: false,
    responseStream,
    requestSerialize: ser,
    requestDeserialize: de,
    responseSerialize: ser,
    responseDeserialize: de,
    originalName: m,
  });
  return {
    Unary: method('Unary', false),
    ServerStream: method('ServerStream', true),
    Fail: method('Fail', false),
  } as grpc.ServiceDefinition;
}

/** Resolved by the test once it has read the first messages of a stream: the server then ends it. */
let releaseStream: () => void = () => {};
let seenTimeout: grpc.Deadline = Infinity;

const handlers: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    seenTimeout = call.getDeadline();
    const trailer = new grpc.Metadata();
    trailer.set('x-trailer', 'tail-value');
    cb(null, { text: `hello ${call.request.text}` }, trailer);
  },
  ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
    for (let i = 0; i < call.request.n!; i++) call.write({ n: i });
    // The end waits for the client to have read every message: a gateway that buffered would never show them.
    new Promise<void>((resolve) => (releaseStream = resolve)).then(() => call.end());
  },
  Fail(_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    cb({ code: grpc.status.NOT_FOUND, details: 'no such greeting: ünïcode %' });
  },
};

/** One gRPC frame: flag 0, a 4-byte length, the message. */
function frame(msg: Msg): Buffer {
  const body = ser(msg);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface Parsed {
  messages: Msg[];
  trailers: Record<string, string> | null;
}

/** Reads gRPC-Web frames: data frames as messages, the 0x80 frame as trailers (the last frame). */
function parseFrames(bytes: Buffer): Parsed {
  const out: Parsed = { messages: [], trailers: null };
  let at = 0;
  while (at < bytes.length) {
    assert.equal(out.trailers, null, 'nothing may follow the trailer frame');
    const flag = bytes[at]!;
    const length = bytes.readUInt32BE(at + 1);
    const payload = bytes.subarray(at + 5, at + 5 + length);
    assert.equal(payload.length, length, 'a whole frame');
    at += 5 + length;
    if (flag === 0x80) {
      out.trailers = {};
      for (const line of payload.toString('latin1').split('\r\n')) {
        if (line === '') continue;
        const colon = line.indexOf(':');
        out.trailers[line.slice(0, colon)] = line.slice(colon + 1).trim();
      }
    } else {
      assert.equal(flag, 0);
      out.messages.push(de(payload));
    }
  }
  return out;
}

/** Base64 where each flushed piece may carry its own padding (the spec lets a server pad per chunk). */
function decodeText(text: string): Buffer {
  const segments = text.match(/[^=]+=*/g) ?? [];
  return Buffer.concat(segments.map((s) => Buffer.from(s, 'base64')));
}

let server: grpc.Server;
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
let base: string;

before(async () => {
  server = new grpc.Server();
  server.addService(serviceOf('test.Greeter'), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const dead = await closedPort();
  gw = await startGatewayYaml(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  greeter: { http2: true, targets: [{ url: "http://127.0.0.1:${port}" }] }
  dead: { http2: true, targets: [{ url: "http://127.0.0.1:${dead}" }] }
routes:
  - match: { path: /test.Greeter }
    upstream: greeter
    protocol: grpc-web
    plugins:
      - cors: { origins: ["https://app.example.com"], headers: [authorization] }
  - match: { path: /test.Dead }
    upstream: dead
    protocol: grpc-web
    plugins: [{ cors: { origins: ["https://app.example.com"] } }]
`);
  base = `http://127.0.0.1:${gw.port()}`;
});

after(async () => {
  await gw?.stop();
  server?.forceShutdown();
});

const BROWSER = { origin: 'https://app.example.com', 'x-grpc-web': '1', 'x-user-agent': 'grpc-web-javascript/0.1' };

describe('gRPC-Web in front of a gRPC upstream', () => {
  test('binary mode: a unary call answers its message and the status as a trailer frame in the body', async () => {
    const res = await fetch(`${base}/test.Greeter/Unary`, {
      method: 'POST',
      headers: { ...BROWSER, 'content-type': 'application/grpc-web+proto', 'grpc-timeout': '5S' },
      body: frame({ text: 'world' }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/grpc-web+proto');
    // CORS: a browser script may read the status, wherever the server put it.
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const exposed = res.headers.get('access-control-expose-headers')?.split(/,\s*/) ?? [];
    assert.ok(exposed.includes('grpc-status') && exposed.includes('grpc-message'), String(exposed));
    const parsed = parseFrames(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(parsed.messages, [{ text: 'hello world' }]);
    assert.equal(parsed.trailers?.['grpc-status'], '0');
    assert.equal(parsed.trailers?.['x-trailer'], 'tail-value');
    // grpc-timeout reached the server as the call's deadline.
    assert.ok(seenTimeout instanceof Date || typeof seenTimeout === 'number');
    assert.notEqual(seenTimeout, Infinity);
  });

  test('text mode: a base64 body (padded per chunk) is decoded, and the answer comes back as base64', async () => {
    const f = frame({ text: 'text-world' });
    // Two separately padded pieces, as a client that flushes mid-message sends them.
    const body = f.subarray(0, 7).toString('base64') + f.subarray(7).toString('base64');
    assert.match(body, /=.+/, 'padding in the middle of the stream');
    const res = await fetch(`${base}/test.Greeter/Unary`, {
      method: 'POST',
      headers: { ...BROWSER, 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text' },
      body,
    });
    assert.equal(res.status, 200);
    // The message format is the server's (grpc-js says +proto).
    assert.match(res.headers.get('content-type') ?? '', /^application\/grpc-web-text(\+proto)?$/);
    const text = await res.text();
    assert.match(text, /^[A-Za-z0-9+/=]+$/);
    const parsed = parseFrames(decodeText(text));
    assert.deepEqual(parsed.messages, [{ text: 'hello text-world' }]);
    assert.equal(parsed.trailers?.['grpc-status'], '0');
  });

  // The timeout only ends a hung run (a gateway that buffers the stream never shows the messages).
  test(
    'server streaming: messages reach the client while the call is still open, then the status',
    { timeout: 20_000 },
    async () => {
      const res = await fetch(`${base}/test.Greeter/ServerStream`, {
        method: 'POST',
        headers: { ...BROWSER, 'content-type': 'application/grpc-web+proto' },
        body: frame({ n: 3 }),
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const chunks: Buffer[] = [];
      // The server holds the end of the stream until the three messages were read here.
      while (parseFrames(Buffer.concat(chunks)).messages.length < 3) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the stream ended before its messages');
        chunks.push(Buffer.from(value));
        try {
          parseFrames(Buffer.concat(chunks));
        } catch {
          // a frame split across chunks: read on
        }
      }
      releaseStream();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(Buffer.from(value));
      }
      const parsed = parseFrames(Buffer.concat(chunks));
      assert.deepEqual(parsed.messages, [{ n: 0 }, { n: 1 }, { n: 2 }]);
      assert.equal(parsed.trailers?.['grpc-status'], '0');
    },
  );

  test('an upstream error status arrives in the trailer frame with its message', async () => {
    const res = await fetch(`${base}/test.Greeter/Fail`, {
      method: 'POST',
      headers: { ...BROWSER, 'content-type': 'application/grpc-web+proto' },
      body: frame({}),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('grpc-status'), null, 'the status is in the body, not in the head');
    const parsed = parseFrames(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(parsed.messages, []);
    assert.equal(parsed.trailers?.['grpc-status'], String(grpc.status.NOT_FOUND));
    assert.equal(decodeURIComponent(parsed.trailers!['grpc-message']!), 'no such greeting: ünïcode %');
  });

  test("the gateway's own error (no reachable target) is a gRPC-Web status a browser can read", async () => {
    const res = await fetch(`${base}/test.Dead/Unary`, {
      method: 'POST',
      headers: { ...BROWSER, 'content-type': 'application/grpc-web-text' },
      body: frame({}).toString('base64'),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/grpc-web-text');
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const parsed = parseFrames(decodeText(await res.text()));
    assert.equal(parsed.trailers?.['grpc-status'], String(grpc.status.UNAVAILABLE));
    assert.match(decodeURIComponent(parsed.trailers!['grpc-message']!), /could not be reached/);
  });

  test('a text body that is not base64 is refused as the client\'s fault (INTERNAL, "Malformed request")', async () => {
    const res = await fetch(`${base}/test.Greeter/Unary`, {
      method: 'POST',
      headers: { ...BROWSER, 'content-type': 'application/grpc-web-text' },
      body: 'AAAA!!!!',
    });
    assert.equal(res.status, 200);
    const parsed = parseFrames(decodeText(await res.text()));
    assert.equal(parsed.trailers?.['grpc-status'], String(grpc.status.INTERNAL));
    assert.match(decodeURIComponent(parsed.trailers!['grpc-message']!), /Malformed request/);
  });

  test('CORS preflight allows the gRPC-Web request headers besides the configured ones', async () => {
    const res = await fetch(`${base}/test.Greeter/Unary`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-grpc-web,x-user-agent,grpc-timeout',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
    const allowed = res.headers.get('access-control-allow-headers')?.split(/,\s*/) ?? [];
    for (const h of ['authorization', 'content-type', 'x-grpc-web', 'x-user-agent', 'grpc-timeout'])
      assert.ok(allowed.includes(h), `${h} in ${String(allowed)}`);
  });

  test('a request that is not gRPC-Web gets 415 TP_GRPC_WEB_UNSUPPORTED', async () => {
    const res = await fetch(`${base}/test.Greeter/Unary`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { code: string }).code, 'TP_GRPC_WEB_UNSUPPORTED');
  });
});

describe('gRPC-Web config checks', () => {
  function problems(yaml: string): string[] {
    const file = join(tempDir(), 'grpc-web.yaml');
    writeFileSync(file, yaml);
    try {
      loadConfigFile(file, LOAD_OPTIONS);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.line} ${p.path}: ${p.message} [${p.code}]`);
    }
  }

  test('an upstream without http2 and a route without upstream are refused with their lines', () => {
    const found = problems(`listeners: [{ name: web, protocol: http, port: 0 }]
upstreams:
  plain: { targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - match: { path: /a }
    upstream: plain
    protocol: grpc-web
  - match: { path: /b }
    respond: { status: 200 }
    protocol: grpc-web
`);
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found.join('\n'), /6 routes\[0\]\.upstream: protocol grpc-web needs a gRPC upstream.*http2: true/);
    assert.match(found.join('\n'), /10 routes\[1\]\.protocol: .*needs upstream/);
  });
});
