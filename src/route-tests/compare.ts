// What a case expected against what happened: one line per difference, named by the expectation's key path.
import type { ExpectedHeaders, Expectations } from './cases.ts';
import type { ClientAnswer } from './client.ts';
import type { Received } from './stubs.ts';

/** What the gateway did with the request, read from its request context when the exchange ended. */
export interface Observed {
  /** '' when no route matched. */
  readonly route: string;
  /** '' when the route sent nothing upstream. */
  readonly upstream: string;
  /** The configured target URL that served it, '' for none. */
  readonly target: string;
}

const MAX_SHOWN = 200;

/** A value as JSON, cut short past MAX_SHOWN characters (a whole echoed body would bury the diff). */
function show(v: unknown): string {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
}

export function compare(
  expect: Expectations,
  answer: ClientAnswer,
  observed: Observed | null,
  received: readonly Received[],
): string[] {
  const diffs: string[] = [];
  const differ = (key: string, expected: string, got: string) => diffs.push(`${key}: expected ${expected}, got ${got}`);
  const named = (key: 'route' | 'upstream', want: string | null | undefined, none: string) => {
    if (want === undefined) return;
    if (observed === null) return diffs.push(`${key}: the gateway's record of the request was not seen`);
    const got = observed[key];
    if ((want ?? '') !== got) differ(key, want === null ? none : show(want), got === '' ? none : show(got));
  };
  named('route', expect.route, 'no route');
  if (expect.status !== undefined && expect.status !== answer.status)
    differ('status', String(expect.status), String(answer.status));
  named('upstream', expect.upstream, 'no upstream');
  if (expect.target !== undefined) {
    const got = observed?.target ?? '';
    if (new URL(expect.target).origin !== got)
      differ('target', show(expect.target), got === '' ? 'no target' : show(got));
  }
  const last = received.at(-1);
  const wantUp = expect.upstreamRequest;
  if (wantUp === null && last !== undefined)
    differ('upstreamRequest', 'none (nothing sent upstream)', `${last.method} ${last.path} sent to ${last.target}`);
  if (wantUp !== null && wantUp !== undefined) {
    if (last === undefined) {
      differ('upstreamRequest', 'a request upstream', 'none (the upstream received nothing)');
    } else {
      const field = (key: 'method' | 'path' | 'query' | 'body') => {
        const want = wantUp[key];
        if (want !== undefined && want !== last[key]) differ(`upstreamRequest.${key}`, show(want), show(last[key]));
      };
      field('method');
      field('path');
      field('query');
      compareHeaders('upstreamRequest.headers', wantUp.headers, last.headers, diffs);
      field('body');
    }
  }
  compareHeaders('response.headers', expect.response?.headers, answer.headers, diffs);
  const body = expect.response?.body;
  if (body !== undefined && body !== answer.body) differ('response.body', show(body), show(answer.body));
  return diffs;
}

function compareHeaders(
  key: string,
  want: ExpectedHeaders | undefined,
  got: Readonly<Record<string, string>>,
  diffs: string[],
): void {
  for (const [name, matcher] of Object.entries(want ?? {})) {
    const value = got[name];
    if (matcher === null) {
      if (value !== undefined) diffs.push(`${key}.${name}: expected absent, got ${show(value)}`);
    } else if (typeof matcher === 'string') {
      if (value !== matcher) diffs.push(`${key}.${name}: expected ${show(matcher)}, got ${show(value)}`);
    } else if (value === undefined || !new RegExp(matcher.regex).test(value)) {
      diffs.push(`${key}.${name}: expected to match ${String(new RegExp(matcher.regex))}, got ${show(value)}`);
    }
  }
}
