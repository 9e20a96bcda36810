// The gRPC-Web wire format (grpc/grpc doc/PROTOCOL-WEB.md): gRPC's length-prefixed frames, the status as a last
// frame in the body (flag 0x80, an HTTP/1 header block), and a text mode that base64-encodes the body. Browsers
// cannot read HTTP trailers, so this is how a gRPC status reaches them.
import { Transform, type TransformCallback } from 'node:stream';

export type GrpcWebMode = 'binary' | 'text';

/**
 * The mode a gRPC-Web content type asks for and its message format suffix (`+proto`, or '' for the default), or
 * null when the type is not gRPC-Web.
 */
export function grpcWebType(contentType: string | undefined): { mode: GrpcWebMode; suffix: string } | null {
  if (contentType === undefined) return null;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type.startsWith('application/grpc-web-text')) return suffixed('text', type.slice(25));
  if (type.startsWith('application/grpc-web')) return suffixed('binary', type.slice(20));
  return null;
}

function suffixed(mode: GrpcWebMode, rest: string): { mode: GrpcWebMode; suffix: string } | null {
  return rest === '' || rest.startsWith('+') ? { mode, suffix: rest } : null;
}

/** The gRPC-Web content type of an answer in `mode` (suffix: `+proto`, or ''). */
export function grpcWebContentType(mode: GrpcWebMode, suffix: string): string {
  return mode === 'text' ? `application/grpc-web-text${suffix}` : `application/grpc-web${suffix}`;
}

/** The trailer frame: flag 0x80, a 4-byte length, then `name:value\r\n` lines with lowercase names. */
export function trailerFrame(trailers: Readonly<Record<string, string | string[] | undefined>>): Buffer {
  let block = '';
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) block += `${name.toLowerCase()}:${v}\r\n`;
  }
  const body = Buffer.from(block, 'latin1');
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = 0x80;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/**
 * A response body stage: passes the gRPC frames through (base64-encoding each chunk in text mode, padded, as the
 * spec allows a server that flushes) and ends the body with the trailer frame of the trailers it was given.
 */
export class GrpcWebResponseEncoder extends Transform {
  private readonly text: boolean;
  private trailers: Record<string, string> | null = null;

  constructor(mode: GrpcWebMode) {
    super();
    this.text = mode === 'text';
  }

  /** The upstream's trailers (its gRPC status), handed over before the body ends. */
  readonly takeTrailers = (trailers: Record<string, string>): void => {
    this.trailers = trailers;
  };

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, this.text ? Buffer.from(chunk.toString('base64'), 'latin1') : chunk);
  }

  override _flush(done: TransformCallback): void {
    const t = this.trailers;
    if (t === null || Object.keys(t).length === 0) return done();
    const frame = trailerFrame(t);
    done(null, this.text ? Buffer.from(frame.toString('base64'), 'latin1') : frame);
  }
}

const B64_SEGMENT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const WHITESPACE = /[\r\n\t ]/g;

/**
 * A request body stage for text mode: base64 in, frames out. Chunks may split a quad anywhere, and padding may
 * end a segment in the middle of the stream (a client that flushes per message); anything else is an error with
 * the code TP_BAD_REQUEST.
 */
export class GrpcWebTextDecoder extends Transform {
  private carry = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const s = this.carry + chunk.toString('latin1').replace(WHITESPACE, '');
    const whole = s.length - (s.length % 4);
    this.carry = s.slice(whole);
    try {
      done(null, decodeSegments(s.slice(0, whole)));
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.carry !== '') return done(badBase64());
    done();
  }
}

/** Decodes 4-aligned base64 that may hold padding between segments. */
function decodeSegments(s: string): Buffer {
  if (s === '') return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 3; i < s.length; i += 4) {
    if (s.charCodeAt(i) !== 61 /* = */ && i !== s.length - 1) continue;
    const segment = s.slice(start, i + 1);
    if (!B64_SEGMENT.test(segment)) throw badBase64();
    parts.push(Buffer.from(segment, 'base64'));
    start = i + 1;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function badBase64(): Error {
  return Object.assign(new Error('the gRPC-Web text body is not base64'), { code: 'TP_BAD_REQUEST' });
}
