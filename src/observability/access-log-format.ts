// The access log's line formats, compiled once per config: a JSON writer for the chosen fields (one small
// function per field, concatenated in order; no generic serialiser per request) and NGINX's combined line.
import type { AccessLogField, AccessLogSettings } from '../config/access-log-schema.ts';
import { ERRORS, type ErrorCode } from '../errors.ts';
import type { RequestContext } from '../request-context.ts';
import type { RefusalEvent } from './events.ts';

/** The ISO time of the current millisecond, computed at most once per millisecond. */
let lastMs = 0;
let lastIso = '';
export function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => (n < 10 ? `0${n}` : String(n));

/** NGINX's $time_local (`07/Dec/2026:08:01:02 +0000`, local time), computed at most once per second. */
let lastSecond = 0;
let lastLocal = '';
export function timeLocal(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second === lastSecond) return lastLocal;
  const d = new Date(second * 1000);
  const offset = -d.getTimezoneOffset();
  const abs = Math.abs(offset);
  lastSecond = second;
  lastLocal =
    `${two(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:` +
    `${two(d.getSeconds())} ${offset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  return lastLocal;
}

const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** NGINX's default log escaping: `"`, `\`, control bytes and bytes above 126 become `\xHH`. */
export function nginxEscape(value: string): string {
  if (PLAIN.test(value)) return value;
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c
        ? `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b);
  }
  return out;
}

const ms = (v: number) => Math.round(v * 1000) / 1000;
const header = (ctx: RequestContext, name: string): string | undefined => {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};
const optional = (key: string, v: string | undefined | null) =>
  v === undefined || v === null || v === '' ? '' : `,"${key}":${JSON.stringify(v)}`;

type Part = (ctx: RequestContext) => string;

/** Each field's `,"key":value`, or '' when the request has no such value (null for the upstream timings). */
const PARTS: Record<AccessLogField, Part> = {
  level: () => ',"level":"info"',
  time: () => `,"time":"${isoNow()}"`,
  // Values that come from the client go through JSON.stringify; the rest are known to need no escaping.
  requestId: (c) => `,"requestId":${JSON.stringify(c.requestId)}`,
  traceId: (c) => optional('traceId', c.traceId),
  clientIp: (c) => `,"clientIp":"${c.clientIp}"`,
  protocol: (c) => `,"protocol":"HTTP/${c.req.httpVersion}"`,
  method: (c) => `,"method":${JSON.stringify(c.req.method)}`,
  host: (c) => `,"host":${JSON.stringify(c.host)}`,
  path: (c) => `,"path":${JSON.stringify(c.logUrl ?? c.req.url)}`,
  route: (c) => `,"route":${JSON.stringify(c.routeName)}`,
  consumer: (c) => optional('consumer', c.identity?.consumer?.name),
  upstream: (c) => optional('upstream', c.upstreamName),
  target: (c) => (c.target === '' ? '' : `,"target":"${c.target}"`),
  attempts: (c) => `,"attempts":${c.attempts}`,
  status: (c) => `,"status":${c.status}`,
  bytesIn: (c) => `,"bytesIn":${c.bytesIn}`,
  bytesOut: (c) => `,"bytesOut":${c.bytesOut}`,
  durationMs: (c) => `,"durationMs":${ms(performance.now() - c.startTime)}`,
  upstreamConnectMs: (c) => `,"upstreamConnectMs":${c.upstreamConnectMs < 0 ? 'null' : ms(c.upstreamConnectMs)}`,
  upstreamHeadersMs: (c) => `,"upstreamHeadersMs":${c.upstreamHeadersMs < 0 ? 'null' : ms(c.upstreamHeadersMs)}`,
  error: (c) => (c.errorCode === '' ? '' : `,"error":"${c.errorCode}"`),
  cache: (c) => (c.cacheStatus === '' ? '' : `,"cache":"${c.cacheStatus}"`),
  userAgent: (c) => optional('userAgent', header(c, 'user-agent')),
  referer: (c) => optional('referer', header(c, 'referer')),
};

/** The line of one request, or null when `skip` drops it. */
export type RequestLine = (ctx: RequestContext) => string | null;

export interface LineFormat {
  readonly request: RequestLine;
  /** A refused client's line; L4 sessions are written in the json format only (null: not written). */
  readonly refusal: (e: RefusalEvent) => string;
  readonly json: boolean;
}

export function compileLineFormat(settings: AccessLogSettings): LineFormat {
  const line = settings.format === 'combined' ? combinedLine : jsonWriter(settings.fields);
  const skipped = skipFilter(settings.skip);
  return {
    request: skipped === null ? line : (ctx) => (skipped(ctx) ? null : line(ctx)),
    refusal: settings.format === 'combined' ? combinedRefusal : jsonRefusal,
    json: settings.format === 'json',
  };
}

function jsonWriter(fields: readonly AccessLogField[]): (ctx: RequestContext) => string {
  const parts = fields.map((f) => PARTS[f]);
  const n = parts.length;
  return (ctx) => {
    let body = '';
    for (let i = 0; i < n; i++) body += parts[i]!(ctx);
    return `{${body.slice(1)}}\n`;
  };
}

/** `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` */
function combinedLine(ctx: RequestContext): string {
  const req = ctx.req;
  const user = ctx.identity?.consumer?.name;
  const referer = header(ctx, 'referer');
  const agent = header(ctx, 'user-agent');
  return (
    `${ctx.clientIp} - ${user ? nginxEscape(user) : '-'} [${timeLocal()}] ` +
    `"${nginxEscape(`${req.method} ${ctx.logUrl ?? req.url} HTTP/${req.httpVersion}`)}" ${ctx.status} ${ctx.bytesOut} ` +
    `"${referer ? nginxEscape(referer) : '-'}" "${agent ? nginxEscape(agent) : '-'}"\n`
  );
}

function jsonRefusal(e: RefusalEvent): string {
  return (
    `{"level":"info","time":"${isoNow()}","listener":${JSON.stringify(e.listener)},"protocol":"${e.protocol}",` +
    `"clientIp":${JSON.stringify(e.clientIp)},"refused":"${e.code}"}\n`
  );
}

/** A refused client as NGINX logs a request it could not read: no request line, the status it answered. */
function combinedRefusal(e: RefusalEvent): string {
  const status = ERRORS[e.code as ErrorCode]?.status ?? 400;
  return `${nginxEscape(e.clientIp)} - - [${timeLocal()}] "-" ${status} 0 "-" "-"\n`;
}

function skipFilter(skip: AccessLogSettings['skip']): ((ctx: RequestContext) => boolean) | null {
  if (skip.routes.length === 0 && skip.paths.length === 0) return null;
  const routes = new Set(skip.routes);
  const paths = skip.paths.map((p) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p));
  return (ctx) => {
    if (routes.has(ctx.routeName)) return true;
    if (paths.length === 0) return false;
    const url = ctx.req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    for (const p of paths) {
      if (path === p || p === '/') return true;
      if (path.startsWith(p) && path.charCodeAt(p.length) === 47 /* / */) return true;
    }
    return false;
  };
}
