// What a route's API version adds to its answers: the 404 that names the versions a path exists in, and a
// deprecated route's headers (RFC 9745 Deprecation, RFC 8594 Sunset, Link rel="deprecation"), precomputed at
// load, and its 410 once the sunset has passed (read on the runtime's clock, so tests move time).
import type { Clock } from '../clock.ts';
import type { DeprecatedConfig } from '../config/versioning-schema.ts';
import { ERRORS } from '../errors.ts';
import { PROBLEM_TYPE } from '../pipeline/problem.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import type { VersionNotFound } from '../routing/router.ts';

const VERSION = /^[A-Za-z0-9._-]{1,64}$/;

export interface CompiledDeprecation {
  /** [name, value] pairs set on every answer of the route. */
  readonly headers: readonly (readonly [string, string])[];
  /** Epoch ms from which the route answers 410, or Infinity. */
  readonly sunset: number;
}

export function compileDeprecation(d: DeprecatedConfig | undefined): CompiledDeprecation | null {
  if (d === undefined) return null;
  // RFC 9745: a Structured Field Date, `@` and the Unix time in seconds.
  const headers: [string, string][] = [['deprecation', `@${Math.floor(d.since / 1000)}`]];
  if (d.sunset !== undefined) headers.push(['sunset', new Date(d.sunset).toUTCString()]);
  if (d.link !== undefined) headers.push(['link', `<${d.link}>; rel="deprecation"; type="text/html"`]);
  return { headers, sunset: d.sunset ?? Infinity };
}

/**
 * Sets the route's deprecation headers (they stay on whatever answers: upstream, plugin, error). Returns true
 * when the sunset has passed: the caller answers 410.
 */
export function deprecate(ctx: RequestContext, d: CompiledDeprecation, clock: Clock): boolean {
  const res = ctx.res;
  for (const [name, value] of d.headers) res.setHeader(name, value);
  return clock.now() >= d.sunset;
}

/** 404 problem+json with `versions`: those in which a route takes this path. */
export function versionNotFoundReply(miss: VersionNotFound, requestId: string): Reply {
  const code = 'TP_VERSION_NOT_FOUND';
  const spec = ERRORS[code];
  // Echoed only when it reads as a version (a header may carry anything).
  const v = miss.version;
  const asked = v === undefined ? 'a request without a version' : VERSION.test(v) ? `version ${v}` : 'this version';
  const body = JSON.stringify({
    type: `urn:turnpike:error:${code}`,
    title: spec.title,
    status: spec.status,
    code,
    detail: `no route takes this path for ${asked}; versions: ${miss.versions.join(', ')}`,
    versions: miss.versions,
    requestId,
  });
  return {
    status: spec.status,
    headers: { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' },
    body,
    code,
  };
}
