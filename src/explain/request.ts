// The request `turnpike explain` is asked about, made into what the listener would have made of it: the listener
// (by the URL's scheme and port, or by name), the client address (through the listener's trusted proxies), the
// normalised path, and a RequestContext no socket stands behind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TurnpikeError } from '../errors.ts';
import { RequestContext } from '../request-context.ts';
import type { CompiledListener, Snapshot } from '../runtime/snapshot.ts';
import { parseRequestTarget } from '../runtime/url-path.ts';

export interface ExplainInput {
  readonly method: string;
  /** An absolute http:// or https:// URL. */
  readonly url: string;
  /** Request headers; names in any case. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** A listener by name, instead of the one the URL's scheme and port select. */
  readonly listener?: string;
  /** The address the request comes from (default 127.0.0.1). */
  readonly clientIp?: string;
}

export interface ChosenListener {
  readonly listener: CompiledListener;
  /** How it was chosen, for people. */
  readonly chosenBy: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function invalid(message: string): TurnpikeError {
  return new TurnpikeError('TP_EXPLAIN_INVALID', message);
}

export function parseUrl(url: string): URL {
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url))
    throw invalid(`expected an absolute http:// or https:// URL, got ${JSON.stringify(url)}`);
  return new URL(url);
}

function describe(l: CompiledListener, port: number | undefined): string {
  return `${l.config.name} (${l.scheme} :${port ?? l.config.port})`;
}

/**
 * The listener the request would arrive at: `name`, or the one of the URL's scheme on its port (its configured
 * port, or the port it is bound to, `boundPort`); failing that, for a URL that names no port, the only listener of
 * that scheme.
 */
export function chooseListener(
  snapshot: Snapshot,
  url: URL,
  name: string | undefined,
  boundPort: (listener: string) => number | undefined = () => undefined,
): ChosenListener {
  const all = [...snapshot.listeners.values()];
  const list = () => all.map((l) => describe(l, boundPort(l.config.name))).join(', ') || 'none';
  if (name !== undefined) {
    const listener = all.find((l) => l.config.name === name);
    if (listener === undefined) throw invalid(`no HTTP listener named "${name}" (HTTP listeners: ${list()})`);
    return { listener, chosenBy: '--listener' };
  }
  const scheme = url.protocol.slice(0, -1);
  const port = Number(url.port || (scheme === 'https' ? 443 : 80));
  const same = all.filter((l) => l.scheme === scheme);
  const onPort = same.filter((l) => l.config.port === port || boundPort(l.config.name) === port);
  if (onPort.length >= 1) return { listener: onPort[0]!, chosenBy: `scheme ${scheme} and port ${port}` };
  // A URL without a port names no port in particular: the only listener of its scheme is meant.
  if (same.length === 1 && url.port === '')
    return { listener: same[0]!, chosenBy: `the only ${scheme} listener (none is on port ${port})` };
  throw invalid(`no ${scheme} listener on port ${port}; name one with --listener (HTTP listeners: ${list()})`);
}

/** Header names lowercased; repeated fields joined as Node joins them (cookie with `; `, others with `, `). */
function headersOf(input: ExplainInput, url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [raw, value] of Object.entries(input.headers ?? {})) {
    const name = raw.toLowerCase();
    if (!TOKEN.test(name)) throw invalid(`${JSON.stringify(raw)} is not a header name`);
    const values = typeof value === 'string' ? [value] : [...value];
    const joined = values.join(name === 'cookie' ? '; ' : ', ');
    out[name] = out[name] === undefined ? joined : `${out[name]}${name === 'cookie' ? '; ' : ', '}${joined}`;
  }
  out.host ??= url.host;
  return out;
}

export type ExplainedContext =
  | { readonly ctx: RequestContext; readonly refused: null }
  /** The listener answers before routing (a path it refuses, a redirect to https): status, code, why. */
  | { readonly ctx: RequestContext; readonly refused: { status: number; code?: string; summary: string } };

/** The context the listener would build for this request (see handleRequest in runtime/http-listener.ts). */
export function explainedContext(input: ExplainInput, url: URL, listener: CompiledListener): ExplainedContext {
  const method = input.method.toUpperCase();
  if (!TOKEN.test(method)) throw invalid(`${JSON.stringify(input.method)} is not a method`);
  const headers = headersOf(input, url);
  // The target as sent (the URL parser would already have removed dot segments the listener must see).
  const start = input.url.indexOf('/', input.url.indexOf('//') + 2);
  const target = start === -1 ? `/${url.search}` : input.url.slice(start).split('#')[0]!;
  const req = { method, url: target, headers, httpVersion: '1.1', httpVersionMajor: 1, httpVersionMinor: 1 };
  const peer = input.clientIp ?? '127.0.0.1';
  const trust = listener.trust;
  const trustedPeer = !trust.empty && trust.trusts(peer);
  const clientIp = trustedPeer ? trust.clientIp(peer, headers['x-forwarded-for']) : peer;
  const scheme = (trustedPeer ? headers['x-forwarded-proto'] : undefined) ?? listener.scheme;
  const parsed = parseRequestTarget(target, listener.pathPolicy);
  const ctx = new RequestContext(
    req as unknown as IncomingMessage,
    {} as ServerResponse, // never written: explaining sends nothing
    peer,
    trustedPeer,
    clientIp,
    scheme,
    'explain',
    typeof parsed === 'string' ? '/' : parsed.path,
    typeof parsed === 'string' ? '' : parsed.query,
    url.host,
  );
  if (typeof parsed === 'string')
    return { ctx, refused: { status: 400, code: 'TP_BAD_PATH', summary: `the listener refuses the path: ${parsed}` } };
  if (method === 'TRACE' || method === 'CONNECT')
    return { ctx, refused: { status: 405, code: 'TP_METHOD_NOT_ALLOWED', summary: `${method} is not served` } };
  if (listener.redirectToHttps !== 0) {
    const port = listener.redirectToHttps === 443 ? '' : `:${listener.redirectToHttps}`;
    return {
      ctx,
      refused: { status: 308, summary: `redirected to https://${url.hostname}${port}${target} (redirectToHttps)` },
    };
  }
  return { ctx, refused: null };
}
