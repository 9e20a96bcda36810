// One HTTP/2 request on an open session, its status, x-route header and body as text.
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';

export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: string,
): Promise<{ status: number; route: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let status = 0;
    let route = '';
    let text = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      route = String(h['x-route']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => resolve({ status, route, body: text }));
    req.on('error', reject);
    req.end(body);
  });
}
