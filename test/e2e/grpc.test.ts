// gRPC end to end through an HTTPS (HTTP/2) listener to an h2c upstream, with real @grpc/grpc-js server and
// client: the four call kinds, metadata both ways, upstream statuses and deadlines passing through, and the
// gateway's own errors (no target, auth, rate limit, no route) answered as gRPC statuses.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeTestPki, type Ca, type TestPki } from '../helpers/certs.ts';
import { closedPort } from '../helpers/ports.ts';
import { startGatewayYaml } from '../helpers/servers.ts';

type Msg = { n?: number; text?: string };
const ser = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const de = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;

/** A service definition without .proto files: JSON messages in Buffers. */
function serviceOf(name: string): grpc.ServiceDefinition {
  const method = (m: string, requestStream: boolean, responseStream: boolean) => ({
    path: `/${name}/${m}`,
    requestStream,
    responseStream,
    requestSerialize: ser,
    requestDeserialize: de,
    responseSerialize: ser,
    responseDeserialize: de,
    originalName: m,
  });
  return {
    Unary: method('Unary', false, false),
    ServerStream: method('ServerStream', false, true),
    ClientStream: method('ClientStream', true, false),
    Bidi: method('Bidi', true, true),
    Fail: method('Fail', false, false),
    Slow: method('Slow', false, false),
  } as grpc.ServiceDefinition;
}

/** What the server saw, for the assertions on metadata and deadlines. */
const seen = {
  metadata: null as grpc.Metadata | null,
  slowCancelled: null as Promise<boolean> | null,
  slowDeadline: Infinity as grpc.Deadline,
};

const handlers: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    seen.metadata = call.metadata;
    const head = new grpc.Metadata();
    head.set('x-head', 'from-server');
    call.sendMetadata(head);
    const trailer = new grpc.Metadata();
    trailer.set('x-trailer', 'tail-value');
    cb(null, { text: `hello ${call.request.text}` }, trailer);
  },
  ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
    for (let i = 0; i < call.request.n!; i++) call.write({ n: i });
    call.end();
  },
  ClientStream(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    let count = 0;
    let sum = 0;
    call.on('data', (m: Msg) => {
      count++;
      sum += m.n!;
    });
    call.on('end', () => cb(null, { n: sum, text: String(count) }));
  },
  Bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
    call.on('data', (m: Msg) => call.write({ n: m.n, text: `echo ${m.n}` }));
    call.on('end', () => call.end());
  },
  Fail(_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    cb({ code: grpc.status.NOT_FOUND, details: 'no such greeting: ünïcode %' });
  },
  Slow(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
    // grpc-js turns the grpc-timeout header into the call's deadline (Infinity without it).
    seen.slowDeadline = call.getDeadline();
    seen.slowCancelled = new Promise((resolve) => {
      const timer = setTimeout(() => {
        resolve(false);
        cb(null, { text: 'too late' });
      }, 5000);
      call.once('cancelled', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  },
};

let pki: TestPki;
let ca: Ca;
let server: grpc.Server;
let gw: Awaited<ReturnType<typeof startGatewayYaml>>;
const clients: grpc.Client[] = [];

before(async () => {
  ({ pki, serverCa: ca } = makeTestPki());
  const cert = pki.server(ca, { names: ['grpc.example.com'] });
  server = new grpc.Server();
  for (const name of ['test.Greeter', 'test.Guarded', 'test.Limited']) server.addService(serviceOf(name), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const dead = await closedPort();
  gw = await startGatewayYaml(`
listeners:
  - name: websecure
    protocol: https
    address: 127.0.0.1
    port: 0
    tls: { certificates: [{ cert: "${cert.certPath}", key: "${cert.keyPath}" }] }
consumers: [{ name: c, credentials: { apiKeys: ["0123456789abcdef0123"] } }]
upstreams:
  greeter: { http2: true, targets: [{ url: "http://127.0.0.1:${port}" }] }
  dead: { http2: true, targets: [{ url: "http://127.0.0.1:${dead}" }] }
routes:
  - { match: { path: /test.Greeter }, upstream: greeter, protocol: grpc }
  - { match: { path: /test.Dead }, upstream: dead, protocol: grpc }
  - match: { path: /test.Guarded }
    upstream: greeter
    protocol: grpc
    plugins: [{ key-auth: { header: x-api-key } }]
  - match: { path: /test.Limited }
    upstream: greeter
    protocol: grpc
    plugins: [{ rate-limit: { limits: [{ requests: 1, per: 1m }], key: ip } }]
`);
});

after(async () => {
  for (const c of clients) c.close();
  await gw?.stop();
  server?.forceShutdown();
  pki?.remove();
});

type AnyClient = grpc.Client & Record<string, (...args: any[]) => any>;

function client(service: string): AnyClient {
  const Ctor = grpc.makeGenericClientConstructor(serviceOf(service), service);
  const c = new Ctor(`127.0.0.1:${gw.port()}`, grpc.credentials.createSsl(Buffer.from(ca.cert)), {
    'grpc.ssl_target_name_override': 'grpc.example.com',
    'grpc.default_authority': 'grpc.example.com',
  }) as AnyClient;
  clients.push(c);
  return c;
}

interface UnaryResult {
  err: grpc.ServiceError | null;
  res: Msg | undefined;
  head: grpc.Metadata | null;
  status: grpc.StatusObject | null;
}

function unary(
  c: AnyClient,
  method: string,
  req: Msg,
  md = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const out: UnaryResult = { err: null, res: undefined, head: null, status: null };
    let pending = 2; // the callback and the 'status' event, in either order
    const done = () => --pending === 0 && resolve(out);
    const call = c[method]!(req, md, options, (err: grpc.ServiceError | null, res?: Msg) => {
      out.err = err;
      out.res = res;
      done();
    }) as grpc.ClientUnaryCall;
    call.on('metadata', (m: grpc.Metadata) => (out.head = m));
    call.on('status', (s: grpc.StatusObject) => {
      out.status = s;
      done();
    });
  });
}

describe('gRPC through an HTTPS listener to an h2c upstream', () => {
  test('a unary call returns the answer; metadata reaches the server; response metadata and trailers reach the client', async () => {
    const md = new grpc.Metadata();
    md.set('x-client', 'hello-meta');
    md.set('x-bin-bin', Buffer.from([0, 1, 2, 255]));
    const r = await unary(client('test.Greeter'), 'Unary', { text: 'world' }, md);
    assert.equal(r.err, null, r.err?.message);
    assert.deepEqual(r.res, { text: 'hello world' });
    assert.equal(seen.metadata?.get('x-client')[0], 'hello-meta');
    assert.deepEqual(seen.metadata?.get('x-bin-bin')[0], Buffer.from([0, 1, 2, 255]));
    assert.equal(r.head?.get('x-head')[0], 'from-server');
    assert.equal(r.status?.code, grpc.status.OK);
    assert.equal(r.status?.metadata.get('x-trailer')[0], 'tail-value');
  });

  test('server, client and bidi streaming complete with OK and every message', async (t) => {
    const c = client('test.Greeter');
    const N = 50;
    const got: number[] = [];
    const ssStatus = await new Promise<grpc.StatusObject>((resolve) => {
      const call = c.ServerStream!({ n: N }) as grpc.ClientReadableStream<Msg>;
      call.on('data', (m: Msg) => got.push(m.n!));
      call.on('error', () => undefined);
      call.on('status', resolve);
    });
    assert.equal(ssStatus.code, grpc.status.OK, ssStatus.details);
    assert.deepEqual(
      got,
      Array.from({ length: N }, (_, i) => i),
    );

    const cs = await new Promise<{ err: grpc.ServiceError | null; res?: Msg }>((resolve) => {
      const call = c.ClientStream!((err: grpc.ServiceError | null, res?: Msg) =>
        resolve({ err, res }),
      ) as grpc.ClientWritableStream<Msg>;
      for (let i = 1; i <= N; i++) call.write({ n: i });
      call.end();
    });
    assert.equal(cs.err, null, cs.err?.message);
    assert.deepEqual(cs.res, { n: (N * (N + 1)) / 2, text: String(N) });

    const echoed: Msg[] = [];
    const biStatus = await new Promise<grpc.StatusObject>((resolve) => {
      const call = c.Bidi!() as grpc.ClientDuplexStream<Msg, Msg>;
      let sent = 0;
      // Ping-pong: each message is written only after the previous echo came back through the gateway.
      call.on('data', (m: Msg) => {
        echoed.push(m);
        if (++sent < N) call.write({ n: sent });
        else call.end();
      });
      call.on('error', () => undefined);
      call.on('status', resolve);
      call.write({ n: 0 });
    });
    assert.equal(biStatus.code, grpc.status.OK, biStatus.details);
    assert.equal(echoed.length, N);
    assert.deepEqual(echoed.at(-1), { n: N - 1, text: `echo ${N - 1}` });
    t.diagnostic(
      `server-stream ${got.length} msgs, client-stream ${N} msgs (sum ${cs.res?.n}), bidi ${echoed.length} round trips`,
    );
  });

  test('an upstream error status and its message pass through unchanged', async () => {
    const r = await unary(client('test.Greeter'), 'Fail', {});
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(r.err?.details, 'no such greeting: ünïcode %');
  });

  test('a client deadline shorter than the handler ends in DEADLINE_EXCEEDED and the server sees the deadline', async (t) => {
    const started = performance.now();
    const deadline = Date.now() + 300;
    const r = await unary(client('test.Greeter'), 'Slow', {}, new grpc.Metadata(), { deadline });
    const elapsed = performance.now() - started;
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, r.err?.message);
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
    assert.equal(await seen.slowCancelled, true, 'the server call was cancelled');
    // grpc-js hides grpc-timeout from the handler's metadata; the deadline it derived from it shows it arrived.
    const skew = Number(seen.slowDeadline instanceof Date ? seen.slowDeadline.getTime() : seen.slowDeadline) - deadline;
    assert.ok(Math.abs(skew) < 100, `server deadline ${skew} ms from the client's`);
    t.diagnostic(
      `DEADLINE_EXCEEDED after ${elapsed.toFixed(0)} ms (deadline 300 ms); server deadline ${skew.toFixed(0)} ms from the client's`,
    );
  });

  test('errors the gateway makes are gRPC statuses: UNAVAILABLE, UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNIMPLEMENTED', async () => {
    const dead = await unary(client('test.Dead'), 'Unary', {});
    assert.equal(dead.err?.code, grpc.status.UNAVAILABLE, dead.err?.message);

    const guarded = client('test.Guarded');
    const anon = await unary(guarded, 'Unary', { text: 'x' });
    assert.equal(anon.err?.code, grpc.status.UNAUTHENTICATED, anon.err?.message);
    const md = new grpc.Metadata();
    md.set('x-api-key', '0123456789abcdef0123');
    const keyed = await unary(guarded, 'Unary', { text: 'key' }, md);
    assert.equal(keyed.err, null, keyed.err?.message);
    assert.deepEqual(keyed.res, { text: 'hello key' });

    const limited = client('test.Limited');
    const first = await unary(limited, 'Unary', { text: 'one' });
    assert.equal(first.err, null, first.err?.message);
    const second = await unary(limited, 'Unary', { text: 'two' });
    assert.equal(second.err?.code, grpc.status.RESOURCE_EXHAUSTED, second.err?.message);

    const none = await unary(client('test.Nowhere'), 'Unary', {});
    assert.equal(none.err?.code, grpc.status.UNIMPLEMENTED, none.err?.message);
  });
});
