// Reads a request body whole, up to a bound: for terminals that must see all of it before they can act (a JSON
// body turned into a protobuf message). Past the bound it stops reading and says so, for a 413.
import type { IncomingMessage } from 'node:http';

export type BodyRead = { readonly body: Buffer } | { readonly tooLarge: true } | { readonly failed: Error };

export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        done();
        resolve({ tooLarge: true });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length) });
    };
    const onError = (err: Error) => {
      done();
      resolve({ failed: err });
    };
    const onClose = () => {
      if (!req.complete) onError(new Error('the client closed the connection before its body ended'));
    };
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
