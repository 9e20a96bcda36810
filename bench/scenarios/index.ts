// The bench's scenarios: `plain` and `conn-close` are run by bench/run.ts itself (wrk against its catalogue of
// targets, bench/targets.ts); the others bring their own targets that do the same job, run one after the other
// with the plain case's processes stopped, and hand back their tables.
import type { ToolName } from '../system.ts';
import { runGatewayRoutes } from './gateway-routes.ts';
import { runHttps } from './https.ts';
import type { ScenarioContext, ScenarioOutcome } from './rounds.ts';
import { runTcpStream } from './tcp-stream.ts';

export const SCENARIOS = ['plain', 'conn-close', 'https-h1', 'https-h2', 'tcp-stream', 'gateway-routes'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const SCENARIO_HELP: Readonly<Record<ScenarioName, string>> = {
  plain: 'HTTP/1.1 keep-alive GETs with wrk against every target (--targets); ratios to nginx-1w',
  'conn-close': 'the plain case with `Connection: close` on every request (a new connection per request)',
  'https-h1': 'wrk over TLS 1.3 (TLS_AES_128_GCM_SHA256, one ECDSA P-256 certificate) to Turnpike, nginx, HAProxy',
  'https-h2': `h2load -c 10 -m 100 over TLS (ALPN h2) to the same three`,
  'tcp-stream':
    'a 1 GiB upload and a 1 GiB download (128 MiB with --quick) through Turnpike (protocol: tcp), HAProxy mode tcp, nginx stream',
  'gateway-routes':
    "Turnpike's gateway routes (key-auth + memory limit, jwt + Redis limit, cache hit) against its bare route",
};

/** System programs each scenario needs besides wrk. */
export const SCENARIO_TOOLS: Readonly<Record<ScenarioName, readonly ToolName[]>> = {
  plain: [],
  'conn-close': [],
  'https-h1': ['openssl', 'nginx', 'haproxy'],
  'https-h2': ['openssl', 'h2load', 'nginx', 'haproxy'],
  'tcp-stream': ['nginx', 'nginx-stream', 'haproxy'],
  'gateway-routes': ['redis-server'],
};

/** `a,b,c` → the scenarios in their canonical order; throws on an unknown name. */
export function parseScenarios(list: string): ScenarioName[] {
  const asked = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of asked) {
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`unknown scenario "${s}", expected some of: ${SCENARIOS.join(', ')}`);
  }
  return SCENARIOS.filter((s) => asked.includes(s));
}

/** Runs the scenarios that bring their own targets, one after the other. */
export async function runOwnScenarios(
  names: readonly ScenarioName[],
  ctx: ScenarioContext,
): Promise<Map<ScenarioName, ScenarioOutcome>> {
  const out = new Map<ScenarioName, ScenarioOutcome>();
  // Each outcome's markdown ends with how long the scenario took, start-up included (the --quick budget).
  // A scenario that throws (a certificate openssl would not make, say) is reported as failed; the others still run.
  const timed = async (run: () => Promise<Record<string, ScenarioOutcome>>, covers: readonly ScenarioName[]) => {
    const t0 = performance.now();
    let got: [string, ScenarioOutcome][];
    try {
      got = Object.entries(await run());
    } catch (err) {
      const why = (err as Error).message.split('\n')[0]!.slice(0, 400);
      console.error(`${covers.join(', ')}: ${why}`);
      got = covers.map((n) => [
        n,
        { markdown: `## Scenario ${n}\n\nNOT RUN: ${why}\n`, data: { error: why }, samples: [], failed: true },
      ]);
    }
    const took = (performance.now() - t0) / 1000 / got.length;
    for (const [n, o] of got) {
      const share = got.length > 1 ? ` (${got.map(([m]) => m).join(' and ')} share their targets: half each)` : '';
      out.set(n as ScenarioName, { ...o, markdown: `${o.markdown}\n${n} took ${took.toFixed(1)} s${share}.\n` });
    }
  };
  const h1 = names.includes('https-h1');
  const h2 = names.includes('https-h2');
  if (h1 || h2)
    await timed(
      () => runHttps(ctx, { h1, h2 }),
      names.filter((n) => n.startsWith('https-')),
    );
  if (names.includes('tcp-stream'))
    await timed(async () => ({ 'tcp-stream': await runTcpStream(ctx) }), ['tcp-stream']);
  if (names.includes('gateway-routes'))
    await timed(async () => ({ 'gateway-routes': await runGatewayRoutes(ctx) }), ['gateway-routes']);
  return out;
}
