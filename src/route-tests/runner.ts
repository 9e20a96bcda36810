// `turnpike test`: the config's real runtime on loopback (routing and every plugin as configured), its upstream
// targets replaced by stubs, and each case's request sent to it over a real socket, in file order. State carries
// from one case to the next (rate-limit counters, cache entries), as it would between requests.
import type { Logger } from 'pino';
import { loadConfigFile } from '../config/loader.ts';
import type { Config } from '../config/schema.ts';
import { CHANNELS, type RequestEvent } from '../observability/events.ts';
import { LOAD_OPTIONS } from '../runtime/config-checks.ts';
import { Runtime } from '../runtime/runtime.ts';
import { serveJwks, signCaseToken, type SigningKey } from './case-jwt.ts';
import { loadCasesFile, type LoadedCases, type TestCase } from './cases.ts';
import { sendCaseRequest, type ClientAnswer } from './client.ts';
import { compare, type Observed } from './compare.ts';
import { UpstreamStubs } from './stubs.ts';
import { testRunConfig } from './test-config.ts';
import { resolve } from 'node:path';

export interface CaseResult {
  readonly case: TestCase;
  /** One line per difference; empty when the case passed. */
  readonly failures: readonly string[];
  /** What the client got, for the report of a failed case. */
  readonly answer: ClientAnswer | null;
  readonly durationMs: number;
}

export interface RunReport {
  readonly casesFile: string;
  readonly results: readonly CaseResult[];
  readonly durationMs: number;
}

/** How long one request may take before its case fails (a stub answers at once; this bounds a hung gateway). */
const REQUEST_TIMEOUT_MS = 10_000;

export async function runRouteTests(configFile: string, casesFile: string, log: Logger): Promise<RunReport> {
  const started = performance.now();
  const { config, file } = loadConfigFile(configFile, LOAD_OPTIONS);
  const cases = loadCasesFile(casesFile, config);
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const stubs = await UpstreamStubs.start(config);
    closers.push(() => stubs.close());
    const jwks = usesJwksUri(config) ? await serveJwks(caseKeys(cases)) : null;
    if (jwks) closers.push(jwks.close);
    const runtime = await Runtime.start(testRunConfig(config, { stubs, jwksUrl: jwks?.url ?? null }), log, {
      configFile: file,
      activeChecks: false,
      acmeOrders: false, // acme listeners serve their placeholder: a test run orders nothing
    });
    closers.unshift(() => runtime.stop(1000));
    const ends = new ExchangeEnds(runtime, stubs);
    closers.unshift(async () => ends.close());
    const ports = new Map(runtime.addresses().map((a) => [a.name, a.port]));
    const results: CaseResult[] = [];
    for (const c of cases.cases) results.push(await runCase(c, cases, config, ports, stubs, ends));
    return { casesFile, results, durationMs: performance.now() - started };
  } finally {
    for (const close of closers) await close();
  }
}

async function runCase(
  c: TestCase,
  cases: LoadedCases,
  config: Config,
  ports: ReadonlyMap<string, number>,
  stubs: UpstreamStubs,
  ends: ExchangeEnds,
): Promise<CaseResult> {
  const started = performance.now();
  const url = new URL(c.request.url);
  const listener = pickListener(config, url, c.request.listener);
  const headers: Record<string, string> = { ...c.request.headers };
  let answer: ClientAnswer | null = null;
  let observed: Observed | null = null;
  const failed = (message: string): CaseResult => ({
    case: c,
    failures: [message],
    answer,
    durationMs: performance.now() - started,
  });
  const jwt = c.request.jwt;
  if (jwt !== undefined) {
    try {
      const token = await signCaseToken(
        jwt,
        jwt.key === undefined ? undefined : cases.keys.get(resolve(cases.dir, jwt.key)),
      );
      headers[jwt.header] = jwt.scheme === '' ? token : `${jwt.scheme} ${token}`;
    } catch (err) {
      return failed((err as Error).message);
    }
  }
  stubs.answer = c.upstreamAnswer ?? null;
  try {
    for (let n = 0; n < c.repeat; n++) {
      stubs.received = [];
      answer = await sendCaseRequest({
        protocol: url.protocol === 'https:' ? 'https' : 'http',
        port: ports.get(listener)!,
        url,
        method: c.request.method,
        headers,
        body: c.request.body,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      observed = await ends.of(answer.localPort);
    }
  } catch (err) {
    return failed(`request: ${(err as Error).message}`);
  }
  const failures = compare(c.expect, answer!, observed, stubs.received);
  return { case: c, failures, answer, durationMs: performance.now() - started };
}

/** The listener a case's URL reaches (in the config as written): named by the case, else by the URL's scheme and
 *  port, else the first of its scheme. */
function pickListener(config: Config, url: URL, name: string | undefined): string {
  if (name !== undefined) return name;
  const scheme = url.protocol.slice(0, -1);
  const port = Number(url.port || (scheme === 'https' ? 443 : 80));
  const candidates = config.listeners.filter((l) => l.protocol === scheme);
  return (candidates.find((l) => l.port === port) ?? candidates[0]!).name;
}

/**
 * The gateway's record of each exchange (route, upstream, target), taken from its request context when the
 * exchange ends (turnpike:request:end), by the client's port.
 */
class ExchangeEnds {
  private readonly seen = new Map<number, Observed>();
  private readonly waiting = new Map<number, (o: Observed | null) => void>();
  private readonly runtime: Runtime;
  private readonly stubs: UpstreamStubs;
  private readonly onEnd = (message: unknown): void => {
    const { gateway, ctx } = message as RequestEvent;
    if (gateway !== this.runtime.gateway) return;
    const observed: Observed = {
      route: ctx.routeName,
      upstream: ctx.upstreamName,
      target: ctx.target === '' ? '' : this.stubs.targetOf(ctx.target),
    };
    const port = ctx.req.socket?.remotePort ?? 0;
    const waiter = this.waiting.get(port);
    if (waiter) {
      this.waiting.delete(port);
      waiter(observed);
    } else this.seen.set(port, observed);
  };

  constructor(runtime: Runtime, stubs: UpstreamStubs) {
    this.runtime = runtime;
    this.stubs = stubs;
    CHANNELS.requestEnd.subscribe(this.onEnd);
  }

  /** The record of the exchange from client port `port` (null if the gateway did not end it within 5 s). */
  of(port: number): Promise<Observed | null> {
    const seen = this.seen.get(port);
    if (seen !== undefined) {
      this.seen.delete(port);
      return Promise.resolve(seen);
    }
    return new Promise((resolveSeen) => {
      const timer = setTimeout(() => {
        this.waiting.delete(port);
        resolveSeen(null);
      }, 5000);
      this.waiting.set(port, (o) => {
        clearTimeout(timer);
        resolveSeen(o);
      });
    });
  }

  close(): void {
    CHANNELS.requestEnd.unsubscribe(this.onEnd);
  }
}

function usesJwksUri(config: Config): boolean {
  const entries = [...config.plugins, ...config.routes.flatMap((r) => r.plugins)];
  return entries.some((e) => e.name === 'jwt' && typeof (e.config as { jwksUri?: unknown }).jwksUri === 'string');
}

/** Each key the cases sign with, with the kid the cases give it (a key used under two kids appears twice). */
function caseKeys(cases: LoadedCases): { signing: SigningKey; kid: string | undefined }[] {
  const out = new Map<string, { signing: SigningKey; kid: string | undefined }>();
  for (const c of cases.cases) {
    const jwt = c.request.jwt;
    if (jwt?.key === undefined) continue;
    const signing = cases.keys.get(resolve(cases.dir, jwt.key))!;
    const kid = jwt.kid ?? signing.kid;
    out.set(`${resolve(cases.dir, jwt.key)}|${kid ?? ''}`, { signing, kid });
  }
  return [...out.values()];
}
