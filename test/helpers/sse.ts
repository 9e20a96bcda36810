// A Server-Sent Events client for tests: collects `event:` / `data:` (JSON) pairs as they arrive.
import { get, type IncomingMessage } from 'node:http';

export interface Sse {
  readonly events: { event: string; data: any }[];
  readonly res: IncomingMessage;
  close(): void;
}

/** Opens an event stream (with `headers`, e.g. an admin token) and collects its events until closed. */
export function openStream(port: number, path: string, headers: Record<string, string> = {}): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, headers }, (res) => {
      const events: { event: string; data: any }[] = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
        }
      });
      res.on('error', () => undefined);
      resolve({ events, res, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}
