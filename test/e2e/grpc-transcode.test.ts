// grpcTranscode end to end: JSON clients in front of a real @grpc/grpc-js server (h2c), with the example
// route verbatim (methods from the config), a proto whose google.api.http options give the rules (path, query and
// body mapping), unary JSON, server streaming as NDJSON and SSE, gRPC statuses as HTTP statuses in problem+json,
// the route's deadline as grpc-timeout, and the config errors `validate` reports at their lines.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ConfigError, loadConfigText } from '../../src/config/loader.ts';
import { startGateway, type Gateway } from '../../src/index.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';
import { assertProblem } from '../helpers/problem.ts';
import { json, quietLog, request, requestBytes, tempDir } from '../helpers/servers.ts';
import { until } from '../helpers/wait.ts';

const GREETER_PROTO = `syntax = "proto3";
package helloworld;
service Greeter {
  rpc SayHello (HelloRequest) returns (HelloReply);
  rpc ListHellos (HelloRequest) returns (stream HelloReply);
}
message HelloRequest { string name = 1; int32 times = 2; }
message HelloReply { string message = 1; int32 reply_count = 2; }
`;

const LIBRARY_PROTO = `syntax = "proto3";
package library.v1;
import "google/api/annotations.proto";
service Library {
  rpc GetBook (GetBookRequest) returns (Book) {
    option (google.api.http) = { get: "/v1/shelves/{shelf}/books/{book_id}" };
  }
  rpc UpdateBook (UpdateBookRequest) returns (Book) {
    option (google.api.http) = { patch: "/v1/shelves/{shelf}/books/{book.book_id}" body: "book" };
  }
}
message Book { int64 book_id = 1; string title = 2; bool in_print = 3; repeated string tags = 4; string shelf = 5; }
message GetBookRequest { string shelf = 1; int64 book_id = 2; bool with_tags = 3; repeated string tag = 4; }
message UpdateBookRequest { string shelf = 1; Book book = 2; }
`;

/** What the server saw of the last calls. */
const seen = { requestId: '' as string | undefined, deadline: Infinity as grpc.Deadline, slowCancelled: false };

let dir: string;
let server: grpc.Server;
let gw: Gateway;
let port: number;

before(async () => {
  dir = tempDir();
  mkdirSync(join(dir, 'protos'));
  writeFileSync(join(dir, 'protos/greeter.proto'), GREETER_PROTO);
  writeFileSync(join(dir, 'protos/library.proto'), LIBRARY_PROTO);
  const defs = protoLoader.loadSync([join(dir, 'protos/greeter.proto')], { keepCase: true });
  const libDefs = protoLoader.loadSync('library.proto', {
    keepCase: true,
    longs: String,
    includeDirs: [join(dir, 'protos'), join(import.meta.dirname, '../../src/grpc/protos')],
  });
  const greeter = (grpc.loadPackageDefinition(defs).helloworld as grpc.GrpcObject)
    .Greeter as grpc.ServiceClientConstructor;
  const library = ((grpc.loadPackageDefinition(libDefs).library as grpc.GrpcObject).v1 as grpc.GrpcObject)
    .Library as grpc.ServiceClientConstructor;
  server = new grpc.Server();
  server.addService(greeter.service, {
    SayHello(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) {
      seen.requestId = call.metadata.get('x-request-id')[0] as string | undefined;
      seen.deadline = call.getDeadline();
      const name: string = call.request.name;
      if (name === 'missing') return cb({ code: grpc.status.NOT_FOUND, details: 'nobody called missing' });
      if (name === '') return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'name is required' });
      if (name === 'stranger') return cb({ code: grpc.status.UNAUTHENTICATED, details: 'who are you?' });
      if (name === 'busy') return cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'try later' });
      if (name === 'slow') {
        // Never answers: the gateway's deadline (grpc-timeout) ends the call.
        call.on('cancelled', () => (seen.slowCancelled = true));
        return;
      }
      const head = new grpc.Metadata();
      head.set('x-greeter', 'v1');
      call.sendMetadata(head);
      cb(null, { message: `Hello ${name}`, reply_count: call.request.times });
    },
    ListHellos(call: grpc.ServerWritableStream<any, any>) {
      const { name, times } = call.request as { name: string; times: number };
      if (name === 'denied') return call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'not you' });
      for (let i = 0; i < times; i++) call.write({ message: `Hello ${name} #${i}`, reply_count: i });
      if (name === 'flaky') return call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'went away' });
      call.end();
    },
  });
  server.addService(library.service, {
    GetBook(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) {
      const r = call.request;
      cb(null, {
        book_id: r.book_id,
        title: `book ${r.book_id} on ${r.shelf}`,
        tags: r.with_tags ? r.tag : [],
        shelf: r.shelf,
      });
    },
    UpdateBook(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) {
      cb(null, { ...call.request.book, shelf: call.request.shelf });
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  // The route verbatim, in a config that adds a listener, the upstream and the files it names.
  const config = `
listeners: [{ name: web, protocol: http, port: 0 }]
upstreams:
  greeter: { targets: [{ url: "http://127.0.0.1:${grpcPort}" }] }
routes:
  - name: greeter                              # REST/JSON in front of a gRPC service
    match: { path: /v1/greeter }
    grpcTranscode:
      upstream: greeter                        # h2c or TLS targets; HTTP/2 is implied
      proto: protos/greeter.proto
      service: helloworld.Greeter              # methods from google.api.http options in the proto, else:
      methods:
        - { method: SayHello, http: { post: /v1/greeter/hello, body: "*" } }
        - { method: ListHellos, http: { get: "/v1/greeter/hellos/{name}" } }   # server streaming
  - name: greeter-raw
    match: { path: /v2/greeter }
    limits: { maxBodySize: 64b }
    grpcTranscode:
      upstream: greeter
      proto: protos/greeter.proto
      service: helloworld.Greeter
      preserveProtoFieldNames: true
      alwaysPrintPrimitiveFields: true
      methods:
        - { method: SayHello, http: { post: /v2/greeter/hello, body: "*" } }
  - name: greeter-gzip
    match: { path: /v4/greeter }
    plugins: [{ compress: { minSize: 0b, types: [application/json, application/x-ndjson] } }]
    grpcTranscode:
      upstream: greeter
      proto: protos/greeter.proto
      service: helloworld.Greeter
      methods:
        - { method: SayHello, http: { get: "/v4/greeter/{name}" } }
        - { method: ListHellos, http: { get: "/v4/greeter/{name}/all" } }
  - name: greeter-slow
    match: { path: /v3/greeter }
    timeouts: { total: 300ms }
    grpcTranscode:
      upstream: greeter
      proto: protos/greeter.proto
      service: helloworld.Greeter
      methods:
        - { method: SayHello, http: { get: "/v3/greeter/{name}" } }
  - name: library
    match: { path: /v1/shelves }
    grpcTranscode: { upstream: greeter, proto: protos/library.proto, service: library.v1.Library }
accessLog: { enabled: false }
`;
  const file = join(dir, 'turnpike.yaml');
  writeFileSync(file, config);
  gw = await startGateway({ configFile: file, log: quietLog, watch: false });
  port = gw.port();
});

after(async () => {
  await gw?.stop();
  server?.forceShutdown();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(port, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('unary calls', () => {
  test('a JSON body becomes the request message; the reply is JSON with JSON field names', async () => {
    const r = await post('/v1/greeter/hello', { name: 'Ada', times: 3 }, { 'x-request-id': 'req-transcode-1' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(json(r), { message: 'Hello Ada', replyCount: 3 });
    assert.equal(r.headers['x-greeter'], 'v1', 'initial metadata comes back as headers');
    assert.equal(seen.requestId, 'req-transcode-1', 'the request id goes upstream as metadata');
    assert.ok(Number.isFinite(seen.deadline as number), 'a grpc-timeout was sent');
  });

  test('preserveProtoFieldNames and alwaysPrintPrimitiveFields', async () => {
    const plain = await post('/v1/greeter/hello', { name: 'Bo' });
    assert.deepEqual(json(plain), { message: 'Hello Bo' }, 'a field at its default is left out');
    const raw = await post('/v2/greeter/hello', { name: 'Bo' });
    assert.deepEqual(json(raw), { message: 'Hello Bo', reply_count: 0 });
  });

  test('path variables, query parameters and a body field map onto the message (google.api.http options)', async () => {
    const r = await request(port, '/v1/shelves/fiction/books/42?withTags=true&tag=a&tag=b');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(json(r), { bookId: '42', title: 'book 42 on fiction', tags: ['a', 'b'], shelf: 'fiction' });
    const u = await request(port, '/v1/shelves/poetry/books/7', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Odes', in_print: true }),
    });
    assert.equal(u.status, 200, u.body);
    assert.deepEqual(json(u), { bookId: '7', title: 'Odes', inPrint: true, shelf: 'poetry' });
  });

  test('a request that does not fit the message is 400; an unknown path 404; another method 405', async () => {
    assertProblem(await post('/v1/greeter/hello', { name: 'x', nickname: 'y' }), 400, 'TP_GRPC_BAD_REQUEST');
    assertProblem(await post('/v1/greeter/hello', { times: 'many' }), 400, 'TP_GRPC_BAD_REQUEST');
    assertProblem(await post('/v1/greeter/hello', '{not json'), 400, 'TP_GRPC_BAD_REQUEST');
    assertProblem(await request(port, '/v1/shelves/a/books/1?colour=red'), 400, 'TP_GRPC_BAD_REQUEST');
    assertProblem(await request(port, '/v1/greeter/nothing'), 404, 'TP_ROUTE_NOT_FOUND');
    const wrong = await request(port, '/v1/greeter/hello');
    assertProblem(wrong, 405, 'TP_METHOD_NOT_ALLOWED');
    assert.equal(wrong.headers.allow, 'POST');
    assertProblem(await post('/v2/greeter/hello', { name: 'x'.repeat(100) }), 413, 'TP_BODY_TOO_LARGE');
  });

  test('gRPC statuses become HTTP statuses, the message in problem+json', async () => {
    for (const [name, status, grpcStatus, detail] of [
      ['missing', 404, 'NOT_FOUND', 'nobody called missing'],
      ['', 400, 'INVALID_ARGUMENT', 'name is required'],
      ['stranger', 401, 'UNAUTHENTICATED', 'who are you?'],
      ['busy', 429, 'RESOURCE_EXHAUSTED', 'try later'],
    ] as const) {
      const r = await post('/v1/greeter/hello', { name });
      assertProblem(r, status, 'TP_GRPC_STATUS');
      assert.equal(json(r).grpcStatus, grpcStatus);
      assert.equal(json(r).detail, detail);
    }
  });

  test("the route's timeout is the call's deadline: 504 DEADLINE_EXCEEDED, the call cancelled upstream", async () => {
    const r = await request(port, '/v3/greeter/slow');
    assertProblem(r, 504, 'TP_GRPC_STATUS', ['127.0.0.1']);
    assert.equal(json(r).grpcStatus, 'DEADLINE_EXCEEDED');
    await until(() => seen.slowCancelled, 'the slow call cancelled on the server');
  });
});

test('the answer goes through the response body stages: compress gzips unary JSON and NDJSON', async () => {
  const unary = await requestBytes(port, '/v4/greeter/Gz', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(unary.status, 200);
  assert.equal(unary.headers['content-encoding'], 'gzip');
  assert.equal(unary.headers['content-length'], undefined);
  assert.deepEqual(JSON.parse(gunzipSync(unary.body).toString()), { message: 'Hello Gz' });
  const stream = await requestBytes(port, '/v4/greeter/Gz/all?times=2', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(stream.headers['content-encoding'], 'gzip');
  assert.equal(
    gunzipSync(stream.body).toString(),
    '{"message":"Hello Gz #0"}\n{"message":"Hello Gz #1","replyCount":1}\n',
  );
});

describe('server streaming', () => {
  test('NDJSON by default: one JSON object a line', async () => {
    const r = await request(port, '/v1/greeter/hellos/Cy?times=3');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'application/x-ndjson');
    const lines = r.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      { message: 'Hello Cy #0' },
      { message: 'Hello Cy #1', replyCount: 1 },
      { message: 'Hello Cy #2', replyCount: 2 },
    ]);
  });

  test('SSE when the client accepts text/event-stream', async () => {
    const r = await request(port, '/v1/greeter/hellos/Di?times=2', { headers: { accept: 'text/event-stream' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    assert.equal(r.body, 'data: {"message":"Hello Di #0"}\n\ndata: {"message":"Hello Di #1","replyCount":1}\n\n');
  });

  test('an error before the first message is a problem; after it, a last error line or event', async () => {
    const denied = await request(port, '/v1/greeter/hellos/denied?times=2');
    assertProblem(denied, 403, 'TP_GRPC_STATUS');
    const flaky = await request(port, '/v1/greeter/hellos/flaky?times=1');
    assert.equal(flaky.status, 200);
    assert.deepEqual(
      flaky.body
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
      [{ message: 'Hello flaky #0' }, { error: { code: 14, status: 'UNAVAILABLE', message: 'went away' } }],
    );
    const sse = await request(port, '/v1/greeter/hellos/flaky?times=1', { headers: { accept: 'text/event-stream' } });
    assert.match(sse.body, /event: error\ndata: \{"error":\{"code":14,"status":"UNAVAILABLE"/);
  });
});

describe('config checks', () => {
  const check = (routeYaml: string): string[] => {
    const text = `listeners: [{ name: web, protocol: http, port: 0 }]
upstreams:
  greeter: { targets: [{ url: "http://127.0.0.1:9" }] }
routes:
${routeYaml}`;
    try {
      loadConfigText(text, 'gw.yaml', { ...LOAD_OPTIONS, env: {}, configDir: dir });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
    }
  };

  test('a proto that does not load is an error naming the file and its line, at the proto key', () => {
    writeFileSync(join(dir, 'protos/bad.proto'), 'syntax = "proto3";\nmessage X {\n  strin name = 1\n}\n');
    const problems = check(`  - match: { path: /x }
    grpcTranscode:
      upstream: greeter
      proto: protos/bad.proto
      service: x.Y
`);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /^8 routes\[0\]\.grpcTranscode\.proto: protos\/bad\.proto: .*\(line 4\)/);
    assert.match(
      check(`  - match: { path: /x }\n    grpcTranscode: { upstream: greeter, proto: nope.proto, service: a.B }\n`)[0]!,
      /nope\.proto: no such file/,
    );
  });

  test('unknown services, methods and upstreams, and grpcTranscode with protocol: grpc, are refused', () => {
    const problems = check(`  - match: { path: /x }
    protocol: grpc
    grpcTranscode:
      upstream: nowhere
      proto: protos/greeter.proto
      service: helloworld.Greeter
      methods:
        - { method: SayGoodbye, http: { post: /x/bye, body: "*" } }
  - match: { path: /y }
    grpcTranscode: { upstream: greeter, proto: protos/greeter.proto, service: helloworld.Gretter }
`);
    assert.deepEqual(problems, [
      '6 routes[0].protocol: protocol: grpc is for gRPC clients; grpcTranscode serves JSON clients: a route takes one of them',
      '8 routes[0].grpcTranscode.upstream: names upstream "nowhere", which is not defined under upstreams (defined: greeter)',
      '12 routes[0].grpcTranscode.methods[0].method: helloworld.Greeter has no method "SayGoodbye" (methods: SayHello, ListHellos)',
      '14 routes[1].grpcTranscode.service: protos/greeter.proto has no service "helloworld.Gretter" (services: helloworld.Greeter)',
    ]);
  });

  test('a proto without google.api.http options needs methods', () => {
    const problems = check(
      `  - match: { path: /x }\n    grpcTranscode: { upstream: greeter, proto: protos/greeter.proto, service: helloworld.Greeter }\n`,
    );
    assert.match(
      problems[0]!,
      /service: no method of helloworld\.Greeter has a google\.api\.http option: list them under methods/,
    );
  });
});
