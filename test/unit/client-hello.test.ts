import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import {
  ClientHelloError,
  compileServerNames,
  matchServerName,
  parseClientHello,
  readClientHello,
} from '../../src/l4/client-hello.ts';

/** The first TLS record a real `tls.connect` client sends (its ClientHello), read off a raw TCP server. */
async function captureHello(options: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const captured = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket: Socket) => {
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          socket.destroy();
          resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
        }
      });
    });
  });
  const client = tlsConnect({
    port: (server.address() as AddressInfo).port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
    ...options,
  });
  client.on('error', () => undefined); // the capture server hangs up mid-handshake
  const hello = await captured;
  client.destroy();
  server.close();
  return hello;
}

/** Offset of the extensions length in a ClientHello body. */
function extensionsAt(body: Buffer): number {
  let at = 34;
  at += 1 + body[at]!; // session id
  at += 2 + body.readUInt16BE(at); // cipher suites
  at += 1 + body[at]!; // compression
  return at;
}

/** Adds a padding extension (type 21) of `padding` bytes and frames the hello in records of `recordSize`. */
function reframe(hello: Buffer, padding: number, recordSize: number): Buffer {
  const body = hello.subarray(5 + 4);
  const at = extensionsAt(body);
  const extLen = body.readUInt16BE(at);
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const newBody = Buffer.concat([
    body.subarray(0, at),
    u16(extLen + 4 + padding),
    body.subarray(at + 2),
    u16(21),
    u16(padding),
    Buffer.alloc(padding),
  ]);
  const msg = Buffer.concat([
    Buffer.from([1, newBody.length >> 16, (newBody.length >> 8) & 0xff, newBody.length & 0xff]),
    newBody,
  ]);
  const records: Buffer[] = [];
  for (let i = 0; i < msg.length; i += recordSize) {
    const part = msg.subarray(i, i + recordSize);
    records.push(Buffer.from([22, 3, 1]), u16(part.length), part);
  }
  return Buffer.concat(records);
}

function reason(err: unknown): string {
  assert.ok(err instanceof ClientHelloError, `expected a ClientHelloError, got ${String(err)}`);
  return err.reason;
}

describe('ClientHello parsing', () => {
  let withSni: Buffer;
  before(async () => {
    withSni = await captureHello({ servername: 'a.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
  });

  test('reads server_name and ALPN from a real tls.connect hello', (t) => {
    const info = parseClientHello(withSni);
    assert.ok(info !== null);
    assert.equal(info.serverName, 'a.example.com');
    assert.deepEqual(info.alpn, ['h2', 'http/1.1']);
    assert.equal(info.buffered.length, withSni.length);
    t.diagnostic(`ClientHello size: ${withSni.length} bytes`);
  });

  test('a hello without SNI (client connecting to an IP) gives serverName undefined', async () => {
    const hello = await captureHello({});
    const info = parseClientHello(hello);
    assert.ok(info !== null);
    assert.equal(info.serverName, undefined);
    assert.deepEqual(info.alpn, []);
  });

  test('a long name (243 characters, a 63-character label) comes back whole and lower-cased', async () => {
    const label = 'x'.repeat(54);
    const name = `${'y'.repeat(62)}A.${label}b.${label}c.${label}d.example.com`;
    assert.equal(name.length, 243);
    const info = parseClientHello(await captureHello({ servername: name }));
    assert.equal(info?.serverName, name.toLowerCase());
  });

  test('every proper prefix is incomplete (null), the whole hello parses', () => {
    for (let n = 0; n < withSni.length; n++)
      assert.equal(parseClientHello(withSni.subarray(0, n)), null, `prefix ${n}`);
    assert.equal(parseClientHello(withSni)?.serverName, 'a.example.com');
  });

  test('a hello split over several records parses, as does a 12 KiB one over 4 KiB records', () => {
    const split = reframe(withSni, 0, 64);
    assert.ok(split.length > withSni.length);
    assert.equal(parseClientHello(split)?.serverName, 'a.example.com');
    const big = reframe(withSni, 12 * 1024, 4096);
    const info = parseClientHello(big);
    assert.equal(info?.serverName, 'a.example.com');
    assert.deepEqual(info?.alpn, ['h2', 'http/1.1']);
    assert.equal(parseClientHello(big.subarray(0, big.length - 1)), null);
  });

  test('a hello over 16 KiB is refused as too large', () => {
    assert.throws(
      () => parseClientHello(reframe(withSni, 17 * 1024, 16384)),
      (err) => reason(err) === 'too-large',
    );
  });

  test('plain-text input is refused from its first byte', () => {
    assert.throws(
      () => parseClientHello(Buffer.from('G')),
      (err) => reason(err) === 'not-tls',
    );
    assert.throws(
      () => parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')),
      (err) => reason(err) === 'not-tls',
    );
    assert.throws(
      () => parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')),
      (err) => reason(err) === 'not-tls',
    );
  });

  test('extensions running past the end of the hello are malformed', () => {
    const broken = Buffer.from(withSni);
    const at = 5 + 4 + extensionsAt(withSni.subarray(5 + 4));
    broken.writeUInt16BE(broken.readUInt16BE(at) + 10, at);
    assert.throws(
      () => parseClientHello(broken),
      (err) => reason(err) === 'malformed',
    );
  });
});

describe('readClientHello on a socket', () => {
  let server: Server;
  let port: number;
  let hello: Buffer;
  let next: (socket: Socket) => void = () => undefined;
  const open: Socket[] = []; // server-side sockets: readClientHello leaves them paused and open
  before(async () => {
    hello = await captureHello({ servername: 'split.example.com', ALPNProtocols: ['h2'] });
    server = createServer({ allowHalfOpen: true }, (s) => {
      open.push(s);
      next(s);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    for (const s of open) s.destroy();
    server.close();
  });

  function accepted(): Promise<Socket> {
    return new Promise((resolve) => (next = resolve));
  }

  test('a hello arriving in 1-byte TCP segments is read whole, with the bytes after it kept', async (t) => {
    const serverSide = accepted();
    const client = netConnect({ port, host: '127.0.0.1', noDelay: true });
    await once(client, 'connect');
    const socket = await serverSide;
    let reads = 0;
    socket.on('data', () => reads++);
    const reading = readClientHello(socket);
    const started = performance.now();
    for (const byte of hello) {
      await new Promise<void>((r) => client.write(Buffer.from([byte]), () => setImmediate(r)));
    }
    client.write('after');
    const info = await reading;
    assert.equal(info.serverName, 'split.example.com');
    assert.deepEqual(info.alpn, ['h2']);
    assert.ok(info.buffered.subarray(0, hello.length).equals(hello));
    t.diagnostic(
      `${hello.length} one-byte writes arrived in ${reads} reads, hello complete in ${(performance.now() - started).toFixed(0)} ms`,
    );
    assert.ok(reads > hello.length / 2, `only ${reads} reads: the segments were coalesced`);
    client.destroy();
  });

  test('non-TLS bytes reject at once with not-tls', async () => {
    const serverSide = accepted();
    const client = netConnect({ port, host: '127.0.0.1' });
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await assert.rejects(readClientHello(await serverSide), (err) => reason(err) === 'not-tls');
    client.destroy();
  });

  test('an incomplete hello times out; a client leaving early rejects with closed', async () => {
    let serverSide = accepted();
    let client = netConnect({ port, host: '127.0.0.1' });
    client.write(hello.subarray(0, 40));
    await assert.rejects(readClientHello(await serverSide, 150), (err) => reason(err) === 'timeout');
    client.destroy();

    serverSide = accepted();
    client = netConnect({ port, host: '127.0.0.1' });
    client.end(hello.subarray(0, 40));
    await assert.rejects(readClientHello(await serverSide, 5000), (err) => reason(err) === 'closed');
  });
});

describe('matchServerName', () => {
  const entries = [
    { serverName: 'a.example.com', value: 'A' },
    { serverName: '*.b.example.com', value: 'B' },
    { serverName: 'exact.b.example.com', value: 'E' },
  ];

  test('exact name first, then a one-label wildcard, else refused', () => {
    assert.equal(matchServerName('a.example.com', entries), 'A');
    assert.equal(matchServerName('A.Example.COM.', entries), 'A');
    assert.equal(matchServerName('x.b.example.com', entries), 'B');
    assert.equal(matchServerName('exact.b.example.com', entries), 'E');
    assert.equal(matchServerName('y.x.b.example.com', entries), undefined); // two labels: no wildcard match
    assert.equal(matchServerName('b.example.com', entries), undefined);
    assert.equal(matchServerName('other.example.com', entries), undefined);
    assert.equal(matchServerName(undefined, entries), undefined);
  });

  test('the * entry catches every other name and hellos without SNI', () => {
    const match = compileServerNames([...entries, { serverName: '*', value: 'ANY' }]);
    assert.equal(match('a.example.com'), 'A');
    assert.equal(match('x.b.example.com'), 'B');
    assert.equal(match('unknown.test'), 'ANY');
    assert.equal(match(undefined), 'ANY');
  });
});
