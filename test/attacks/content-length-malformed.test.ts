// S04 (http-garden HAProxy bug 1 / CVE-2023-40225, Mongoose and OpenLiteSpeed bugs): duplicate and malformed
// Content-Length. Every one is refused by Node's parser with 400 + close and never forwarded. The row lets an
// identical list (`5, 5`) be collapsed or refused: Turnpike refuses it (Node does), so a backend never gets a list.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused, exchange } from '../helpers/h1-verdict.ts';
import { startRecordingBackend, type RecordingBackend } from '../helpers/recording-backend.ts';

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

const post = (cl: string, body = 'hello') => `POST /public/ HTTP/1.1\r\nHost: a\r\n${cl}\r\n\r\n${body}`;

test('two different Content-Lengths, or an empty one before a real one, are refused with 400 + close', async () => {
  for (const cl of [
    'Content-Length: 1\r\nContent-Length: 0',
    'Content-Length: 0\r\nContent-Length: 5',
    'Content-Length: \r\nContent-Length: 59',
    'Content-Length: 5\r\nContent-Length: ',
    'Content-Length: 5, 6',
    'Content-Length: 5,',
    'Content-Length: ,5',
  ]) {
    await assertRefused(gw.http, backend, post(cl), 400, 'TP_BAD_REQUEST');
  }
});

test('an identical list or repeat (5, 5) is refused, never forwarded as a list', async () => {
  for (const cl of ['Content-Length: 5, 5', 'Content-Length: 5\r\nContent-Length: 5', 'Content-Length: 5,5']) {
    await assertRefused(gw.http, backend, post(cl), 400, 'TP_BAD_REQUEST');
  }
});

test('a Content-Length that is not a plain decimal number is refused with 400 + close', async () => {
  for (const value of [
    '+5',
    '-1',
    '0x10',
    '1_0',
    '5 5',
    '1abc',
    '5.0',
    '5e0',
    '99999999999999999999',
    '18446744073709551616',
    '',
    '\x0b5',
    '5\x00',
    '٥',
  ]) {
    await assertRefused(gw.http, backend, post(`Content-Length: ${value}`), 400, 'TP_BAD_REQUEST');
  }
});

test('Content-Length with leading zeros or OWS is read as its number and forwarded as a single plain value', async () => {
  for (const [i, value] of ['05', ' 5 ', '\t5\t', '00000000000000000000005'].entries()) {
    const url = `/public/cl-${i}`;
    const r = await exchange(
      gw.http,
      `POST ${url} HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length:${value}\r\n\r\nhello`,
    );
    assert.equal(r.responses.length, 1, r.text);
    assert.equal(r.responses[0]!.status, 200, JSON.stringify(value));
    const got = backend.arrivals.find((a) => a.url === url)!;
    assert.equal(got.body.toString(), 'hello');
    assert.equal(got.headers['content-length'], '5');
  }
});
