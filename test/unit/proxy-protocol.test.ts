import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  encodeProxyHeader,
  parseProxyHeader,
  ProxyHeaderError,
  proxyTlvs,
  readProxyHeader,
  type ProxyHeaderResult,
} from '../../src/l4/proxy-protocol.ts';
import { watchServerReads, type ServerReads } from '../helpers/raw.ts';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function parsed(buf: Buffer) {
  const r = parseProxyHeader(buf);
  assert.ok(r !== null && r !== 'invalid', `expected a header, got ${String(r)}`);
  return r;
}

describe('PROXY header vectors from the spec', () => {
  test('v1 TCP4 line encodes and parses as written in the spec', () => {
    const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
    const info = {
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
    };
    assert.equal(encodeProxyHeader('v1', info).toString('latin1'), line);
    const r = parsed(Buffer.from(line + 'GET / HTTP/1.1\r\n'));
    assert.equal(r.length, line.length);
    assert.deepEqual({ ...r.header, tlvs: undefined }, { version: 1, command: 'proxy', ...info, tlvs: undefined });
  });

  test('v2 IPv4 header has the exact bytes of the spec layout', () => {
    // signature, ver 2 / PROXY, AF_INET / STREAM, len 12, src 192.168.0.1, dst 192.168.0.11, 56324, 443
    const bytes = hex(`${SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb`);
    const info = {
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
    };
    assert.deepEqual(encodeProxyHeader('v2', info), bytes);
    const r = parsed(Buffer.concat([bytes, Buffer.from('payload')]));
    assert.equal(r.length, 28);
    assert.deepEqual(r.header.source, info.source);
    assert.deepEqual(r.header.destination, info.destination);
    assert.equal(r.header.tlvs.length, 0);
  });

  test('v2 LOCAL and v1 UNKNOWN are what a null address encodes to', () => {
    assert.deepEqual(encodeProxyHeader('v2', null), hex(`${SIG} 20 00 0000`));
    assert.equal(encodeProxyHeader('v1', null).toString(), 'PROXY UNKNOWN\r\n');
  });
});

describe('PROXY header encode → parse round trips', () => {
  const cases = [
    { name: 'IPv4', source: { address: '10.1.2.3', port: 40000 }, destination: { address: '10.9.8.7', port: 8443 } },
    {
      name: 'IPv6',
      source: { address: '2001:db8::1', port: 0 },
      destination: { address: 'fe80::1:0:0:2', port: 65535 },
    },
    {
      name: 'full IPv6',
      source: { address: '2001:db8:1:2:3:4:5:6', port: 1 },
      destination: { address: '::1', port: 2 },
    },
  ];
  for (const version of ['v1', 'v2'] as const) {
    for (const { name, ...info } of cases) {
      test(`${version} ${name} addresses survive a round trip`, () => {
        const wire = encodeProxyHeader(version, info);
        const r = parsed(wire);
        assert.equal(r.length, wire.length);
        assert.equal(r.header.version, version === 'v1' ? 1 : 2);
        assert.equal(r.header.command, 'proxy');
        assert.deepEqual(r.header.source, info.source);
        assert.deepEqual(r.header.destination, info.destination);
      });
    }
    test(`${version} null round-trips to a header without addresses (use the real endpoints)`, () => {
      const r = parsed(encodeProxyHeader(version, null));
      assert.equal(r.header.command, 'local');
      assert.equal(r.header.source, undefined);
      assert.equal(r.header.destination, undefined);
    });
    test(`${version} IPv4-mapped IPv6 addresses are sent as IPv4`, () => {
      const info = {
        source: { address: '::ffff:192.0.2.7', port: 5000 },
        destination: { address: '::FFFF:198.51.100.1', port: 80 },
      };
      const wire = encodeProxyHeader(version, info);
      const ipv4 = {
        v1: Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 5000 80\r\n'),
        v2: hex(`${SIG} 21 11 000c c0000207 c6336401 1388 0050`), // AF_INET / STREAM, 12 address bytes
      };
      assert.deepEqual(wire, ipv4[version]);
      assert.equal(parsed(wire).header.source?.address, '192.0.2.7');
    });
    test(`${version} mixed address families widen the IPv4 end to IPv4-mapped IPv6`, () => {
      const info = { source: { address: '192.0.2.7', port: 5000 }, destination: { address: '2001:db8::5', port: 80 } };
      const r = parsed(encodeProxyHeader(version, info));
      assert.equal(r.header.source?.address, '::ffff:192.0.2.7');
      assert.equal(r.header.destination?.address, '2001:db8::5');
    });
  }

  test('encoding refuses bad addresses and ports', () => {
    assert.throws(
      () =>
        encodeProxyHeader('v1', { source: { address: 'nope', port: 1 }, destination: { address: '1.2.3.4', port: 1 } }),
      TypeError,
    );
    assert.throws(
      () =>
        encodeProxyHeader('v2', {
          source: { address: '1.2.3.4', port: 65536 },
          destination: { address: '1.2.3.4', port: 1 },
        }),
      RangeError,
    );
  });
});

describe('parseProxyHeader on partial and invalid input', () => {
  test('every strict prefix of a valid header needs more bytes', () => {
    const info = { source: { address: '2001:db8::1', port: 1234 }, destination: { address: '2001:db8::2', port: 443 } };
    for (const wire of [encodeProxyHeader('v1', info), encodeProxyHeader('v2', info)]) {
      for (let n = 0; n < wire.length; n++)
        assert.equal(parseProxyHeader(wire.subarray(0, n)), null, `prefix of ${n} bytes`);
    }
  });

  test('v1 UNKNOWN ignores whatever follows it on the line', () => {
    const r = parsed(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\nrest'));
    assert.equal(r.header.command, 'local');
    assert.equal(r.length, 'PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\n'.length);
  });

  const invalid: [string, Buffer][] = [
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n')],
    ['an HTTP/2 preface (shares "PR")', Buffer.from('PRI * HTTP/2.0\r\n')],
    ['a bare LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['CR without LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX')],
    ['IPv6 in TCP4', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n')],
    ['a port over 65535', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
    ['a port with a leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
    ['two spaces', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
    ['an unknown protocol', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['107 bytes without CRLF', Buffer.from('PROXY TCP6 ' + 'a'.repeat(96))],
    ['v2 with version nibble 1', hex(`${SIG} 11`)],
    ['v2 with command 2', hex(`${SIG} 22`)],
    ['v2 with family 4', hex(`${SIG} 21 41`)],
    ['v2 with transport 3', hex(`${SIG} 21 13`)],
    ['v2 PROXY shorter than its IPv4 block', hex(`${SIG} 21 11 0008 01020304 05060708`)],
    ['a broken signature', hex('0d0a0d0a000d0a5155495420')],
  ];
  for (const [name, buf] of invalid) test(`${name} is invalid`, () => assert.equal(parseProxyHeader(buf), 'invalid'));
});

/** A server that runs readProxyHeader on each connection and then collects the bytes that follow it. */
class HeaderServer {
  server: Server = createServer();
  /** The server's reads, for lock-step segment writes (counted without a 'data' listener, which would read). */
  reads?: ServerReads;
  outcome!: Promise<{ result?: ProxyHeaderResult; error?: unknown; after: Buffer; ms: number }>;

  async start(timeoutMs = 5000): Promise<number> {
    this.outcome = new Promise((resolve) => {
      this.server.once('connection', (socket: Socket) => {
        const started = performance.now();
        readProxyHeader(socket, timeoutMs).then(
          async (result) => {
            const ms = performance.now() - started;
            const chunks: Buffer[] = [];
            socket.on('data', (c: Buffer) => chunks.push(c));
            await once(socket, 'end');
            socket.end();
            resolve({ result, after: Buffer.concat(chunks), ms });
          },
          (error: unknown) => {
            socket.destroy();
            resolve({ error, after: Buffer.alloc(0), ms: performance.now() - started });
          },
        );
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const port = (this.server.address() as AddressInfo).port;
    this.reads = watchServerReads(port);
    return port;
  }

  /** Waits until the server has read `n` bytes in total. */
  waitSeen(n: number): Promise<void> {
    return this.reads!.until(n);
  }

  close(): void {
    this.reads?.stop();
    this.server.close();
  }
}

async function client(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => undefined); // refused clients see resets
  await once(socket, 'connect');
  return socket;
}

function reason(err: unknown): string {
  assert.ok(err instanceof ProxyHeaderError, `expected a ProxyHeaderError, got ${String(err)}`);
  return err.reason;
}

describe('readProxyHeader over real sockets', () => {
  let srv: HeaderServer;
  after(() => srv?.close());

  for (const version of ['v1', 'v2'] as const) {
    test(`${version} header and payload sent in 1-byte segments arrive intact`, async (t) => {
      srv = new HeaderServer();
      const port = await srv.start();
      const header = encodeProxyHeader(version, {
        source: { address: '2001:db8::7', port: 51000 },
        destination: { address: '2001:db8::1', port: 443 },
      });
      const payload = Buffer.from('hello after the header\r\n\0\x0d\x0a binary too');
      const all = Buffer.concat([header, payload]);
      const sock = await client(port);
      // Lock-step: each byte is read by the server before the next is written, so each is its own segment.
      for (let i = 0; i < all.length; i++) {
        sock.write(all.subarray(i, i + 1));
        await srv.waitSeen(i + 1);
      }
      sock.end();
      const out = await srv.outcome;
      srv.close();
      assert.equal(out.error, undefined);
      assert.equal(out.result?.source?.address, '2001:db8::7');
      assert.equal(out.result?.destination?.port, 443);
      assert.equal(out.result?.rest.length, 0);
      assert.deepEqual(out.after, payload);
      t.diagnostic(
        `${version}: ${header.length}-byte header read from ${header.length} segments in ${out.ms.toFixed(1)} ms`,
      );
    });
  }

  test('bytes that arrive with the header are handed back and replayed ahead of later data', async () => {
    srv = new HeaderServer();
    const port = await srv.start();
    const header = encodeProxyHeader('v1', {
      source: { address: '198.51.100.9', port: 1111 },
      destination: { address: '10.0.0.1', port: 80 },
    });
    const sock = await client(port);
    sock.write(Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n')]));
    await srv.waitSeen(header.length + 16);
    sock.end('Host: x\r\n\r\n');
    const out = await srv.outcome;
    srv.close();
    assert.equal(out.result?.source?.address, '198.51.100.9');
    assert.equal(out.result?.rest.toString(), 'GET / HTTP/1.1\r\n');
    assert.equal(out.after.toString(), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });

  test('a client without a PROXY header is refused with not-proxy at its first bytes', async (t) => {
    srv = new HeaderServer();
    const port = await srv.start(5000);
    const sock = await client(port);
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const out = await srv.outcome;
    srv.close();
    assert.equal(reason(out.error), 'not-proxy');
    assert.ok(out.ms < 1000, `refused after ${out.ms} ms`);
    await once(sock, 'close');
    t.diagnostic(`refused in ${out.ms.toFixed(1)} ms`);
  });

  test('a truncated header times out', async (t) => {
    srv = new HeaderServer();
    const port = await srv.start(100);
    const sock = await client(port);
    sock.write('PROXY TCP4 192.168.0.1 192.');
    const out = await srv.outcome;
    srv.close();
    assert.equal(reason(out.error), 'timeout');
    assert.ok(out.ms >= 90, `timed out after ${out.ms} ms`);
    sock.destroy();
    t.diagnostic(`timed out after ${out.ms.toFixed(1)} ms (limit 100)`);
  });

  test('a peer that leaves mid-header is reported as closed', async () => {
    srv = new HeaderServer();
    const port = await srv.start();
    const sock = await client(port);
    sock.end(hex(`${SIG} 21 11 000c c0a8`));
    const out = await srv.outcome;
    srv.close();
    assert.equal(reason(out.error), 'closed');
  });

  test('a header that starts right but breaks the grammar is malformed', async () => {
    srv = new HeaderServer();
    const port = await srv.start();
    const sock = await client(port);
    sock.write('PROXY TCP4 1.2.3.4\r\npayload');
    const out = await srv.outcome;
    srv.close();
    assert.equal(reason(out.error), 'malformed');
  });

  test('a v2 header with TLVs is parsed and the payload starts right after them', async () => {
    srv = new HeaderServer();
    const port = await srv.start();
    const tlv = (type: number, value: Buffer) =>
      Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);
    const tlvs = Buffer.concat([
      tlv(0x01, Buffer.from('h2')),
      tlv(0x02, Buffer.from('api.example.com')),
      tlv(0x04, Buffer.alloc(5)),
    ]);
    const base = encodeProxyHeader('v2', {
      source: { address: '203.0.113.5', port: 40404 },
      destination: { address: '192.0.2.1', port: 443 },
    });
    const header = Buffer.concat([base, tlvs]);
    header.writeUInt16BE(12 + tlvs.length, 14);
    const payload = Buffer.from('\x16\x03\x01 a TLS record, say');
    const all = Buffer.concat([header, payload]);
    assert.equal(parsed(all).length, 16 + 12 + tlvs.length);
    const sock = await client(port);
    // Split inside the signature, inside the address block, inside a TLV, and at the header/payload seam.
    let at = 0;
    for (const cut of [5, 20, 33, header.length, all.length]) {
      sock.write(all.subarray(at, cut));
      await srv.waitSeen(cut);
      at = cut;
    }
    sock.end();
    const out = await srv.outcome;
    srv.close();
    assert.equal(out.result?.version, 2);
    assert.deepEqual(out.result?.source, { address: '203.0.113.5', port: 40404 });
    assert.deepEqual(out.result?.tlvs, tlvs);
    assert.deepEqual(
      proxyTlvs(out.result!.tlvs)?.map((e) => [e.type, e.value.toString()]),
      [
        [1, 'h2'],
        [2, 'api.example.com'],
        [4, '\0\0\0\0\0'],
      ],
    );
    assert.deepEqual(out.after, payload);
  });

  test('a maximum-size v2 header (16 + 65535 bytes) is read in small segments', async (t) => {
    srv = new HeaderServer();
    const port = await srv.start();
    const header = Buffer.concat([hex(`${SIG} 20 00 ffff`), Buffer.from([0x04, 0xff, 0xfc]), Buffer.alloc(0xfffc)]);
    const all = Buffer.concat([header, Buffer.from('tail')]);
    const sock = await client(port);
    for (let at = 0; at < all.length; at += 1000) {
      sock.write(all.subarray(at, at + 1000));
      await srv.waitSeen(Math.min(at + 1000, all.length));
    }
    sock.end();
    const out = await srv.outcome;
    srv.close();
    assert.equal(out.result?.command, 'local');
    assert.equal(out.result?.tlvs.length, 65535);
    assert.equal(out.after.toString(), 'tail');
    t.diagnostic(`65551-byte header in ${Math.ceil(all.length / 1000)} segments read in ${out.ms.toFixed(1)} ms`);
  });
});
