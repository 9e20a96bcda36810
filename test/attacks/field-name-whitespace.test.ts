// S08 (http-garden aiohttp/Node bug 3; RFC 9112 §5.1: a server MUST reject whitespace between a field name and the
// colon): whitespace, non-token bytes and empty names in header field names. Every one is refused by Node's parser
// with 400 + close; none is forwarded, so no backend reads `Content-Length :` as Content-Length.
import { after, before, test } from 'node:test';
import { startAttackGateway } from '../helpers/attack-gateway.ts';
import { assertRefused } from '../helpers/h1-verdict.ts';
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

test('whitespace between a field name and its colon is refused with 400 + close', async () => {
  for (const line of ['Content-Length : 5', 'Content-Length\t: 5', 'X-A : 1', 'Host : a']) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\nhello`,
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('a first header line starting with whitespace is refused with 400 + close', async () => {
  for (const line of ['\tContent-Length: 1', ' Content-Length: 1', ' Host: b']) {
    await assertRefused(
      gw.http,
      backend,
      `POST /public/ HTTP/1.1\r\n${line}\r\nHost: a\r\n\r\nx`,
      400,
      'TP_BAD_REQUEST',
    );
  }
});

test('a name with a non-token byte, or an empty name, is refused with 400 + close', async () => {
  for (const line of [
    'X\x80Y: 1',
    'X\xffY: 1',
    ': x',
    ':',
    'Xyz',
    'X(A): 1',
    'X/A: 1',
    'X"A": 1',
    'X@A: 1',
    'X[A]: 1',
    'X{A}: 1',
    'X=A: 1',
    'X,A: 1',
    'X;A: 1',
    'X\\A: 1',
    'X?A: 1',
    'Content-Length\x00: 5',
  ]) {
    await assertRefused(
      gw.http,
      backend,
      Buffer.from(`GET /public/ HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\n`, 'latin1'),
      400,
      'TP_BAD_REQUEST',
    );
  }
});
