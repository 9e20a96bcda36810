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

/**
 * Each field as JavaScript source: the JSON text of its value, and for a field that a request may not have, the
 * condition under which it is written (upstream timings are `null` instead). `c` is the context, `h` the helpers.
 * The sources are fixed here (field names come from the schema's enum, never from the config's text).
 */
const FIELDS: Record<AccessLogField, { readonly when?: string; readonly value: string }> = {
  level: { value: `'"info"'` },
  time: { value: `'"' + h.isoNow() + '"'` },
  // Values that come from the client go through JSON.stringify; the rest are known to need no escaping.
  requestId: { value: 'JSON.stringify(c.requestId)' },
  traceId: { when: "c.traceId !== undefined && c.traceId !== ''", value: 'JSON.stringify(c.traceId)' },
  clientIp: { value: `'"' + c.clientIp + '"'` },
  protocol: { value: `'"HTTP/' + c.req.httpVersion + '"'` },
  method: { value: 'JSON.stringify(c.req.method)' },
  host: { value: 'JSON.stringify(c.host)' },
  path: { value: 'JSON.stringify(c.logUrl ?? c.req.url)' },
  route: { value: 'JSON.stringify(c.routeName)' },
  // The API version (versioning:); a header's value as sent, so through JSON.stringify.
  version: { when: "c.apiVersion !== ''", value: 'JSON.stringify(c.apiVersion)' },
  consumer: {
    when: 'c.identity !== null && c.identity.consumer !== null',
    value: 'JSON.stringify(c.identity.consumer.name)',
  },
  upstream: { when: "c.upstreamName !== ''", value: 'JSON.stringify(c.upstreamName)' },
  target: { when: "c.target !== ''", value: `'"' + c.target + '"'` },
  attempts: { value: 'c.attempts' },
  status: { value: 'c.status' },
  bytesIn: { value: 'c.bytesIn' },
  bytesOut: { value: 'c.bytesOut' },
  durationMs: { value: 'h.ms(performance.now() - c.startTime)' },
  upstreamConnectMs: { value: "(c.upstreamConnectMs < 0 ? 'null' : h.ms(c.upstreamConnectMs))" },
  upstreamHeadersMs: { value: "(c.upstreamHeadersMs < 0 ? 'null' : h.ms(c.upstreamHeadersMs))" },
  error: { when: "c.errorCode !== ''", value: `'"' + c.errorCode + '"'` },
  cache: { when: "c.cacheStatus !== ''", value: `'"' + c.cacheStatus + '"'` },
  userAgent: { when: "h.header(c, 'user-agent') !== ''", value: "JSON.stringify(h.header(c, 'user-agent'))" },
  referer: { when: "h.header(c, 'referer') !== ''", value: "JSON.stringify(h.header(c, 'referer'))" },
};

const HELPERS = {
  isoNow,
  ms,
  header: (ctx: RequestContext, name: string): string => {
    const v = ctx.req.headers[name];
    return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
  },
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

/**
 * Compiles the field list into one function (as the old fixed writer was written by hand), so a line costs
 * what it did before fields became configurable: no loop, no per-field call, no slicing of a leading comma.
 */
function jsonWriter(fields: readonly AccessLogField[]): (ctx: RequestContext) => string {
  let body = "let s = '{';\n";
  let someBefore = false; // a field is always written before this one: it takes a leading comma
  for (const name of fields) {
    const { when, value } = FIELDS[name];
    const key = someBefore ? `',"${name}":'` : `(s.length > 1 ? ',"${name}":' : '"${name}":')`;
    body += when === undefined ? `s += ${key} + ${value};\n` : `if (${when}) s += ${key} + ${value};\n`;
    if (when === undefined) someBefore = true;
  }
  body += "return s + '}\\n';";
  const make = new Function('h', `return function accessLogLine(c) {\n${body}\n};`) as (
    h: typeof HELPERS,
  ) => (ctx: RequestContext) => string;
  return make(HELPERS);
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
