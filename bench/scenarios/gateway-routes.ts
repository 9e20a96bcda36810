// Scenario gateway-routes: Turnpike's gateway routes against its own bare route, in the same process and the same
// rounds, so each route's cost reads as a ratio to the bare route (the issue's budget: jwt + Redis limit within
// 15 %). The routes are the plain catalogue's (bench/targets.ts, bench/turnpike.ts); only Turnpike runs here.
import { markdownTable, summarize, type Sample, type Stack, type Summary } from '../report.ts';
import { TARGETS, startTargets } from '../targets.ts';
import { runWrk } from '../wrk.ts';
import { interleave, stopAll, type Contender, type ScenarioContext, type ScenarioOutcome } from './rounds.ts';

export const ROUTES_BASELINE = 'turnpike';
const NAMES = ['turnpike', 'turnpike-gateway', 'turnpike-gateway-redis', 'turnpike-cache'];

export async function runGatewayRoutes(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const { running, skipped, helpers } = await startTargets(
    NAMES,
    { tmp: ctx.tmp, backendPort: ctx.backendPort, backend: ctx.backend },
    new Map(),
  );
  // The case being measured, read by every contender's run.
  let body = '100b';
  let connections = 50;
  const contenders = NAMES.filter((n) => running.has(n)).map((n): Contender => {
    const r = running.get(n)!;
    return {
      name: n,
      child: r.child,
      sidecar: r.sidecar,
      accessLog: r.accessLog,
      run: (seconds) => runWrk({ url: `${r.base}${body}`, seconds, connections, headers: r.headers }),
    };
  });
  const stacks = new Map<string, Stack>(
    TARGETS.filter((t) => NAMES.includes(t.name) && t.stack).map((t) => [
      t.name,
      { stack: t.stack!, expect: t.expect, budget: t.budget },
    ]),
  );
  const cases: { title: string; summary: Summary[]; samples: Sample[] }[] = [];
  for (const c of ctx.plan.connections) {
    for (const b of ctx.plan.bodies) {
      [body, connections] = [b, c];
      const samples = await interleave(`[gateway-routes ${b} · ${c} conns]`, contenders, ctx.plan, ctx.backend);
      cases.push({
        title: `gateway-routes: ${b} body, ${c} connections`,
        summary: summarize(NAMES, samples, skipped, ROUTES_BASELINE),
        samples,
      });
    }
  }
  await stopAll(contenders, [ctx.backend]);
  await Promise.all(helpers.map((h) => h.stop(1000)));
  const info = (n: string) => TARGETS.find((t) => t.name === n)!;
  return {
    markdown: [
      '## Scenario gateway-routes',
      '',
      "Turnpike's routes in one process, measured in the same rounds as its bare route (the baseline of every ratio " +
        'here): wrk keep-alive GETs, the credentials each route needs sent on every request.',
      '',
      ...NAMES.map((n) => `- ${n}: ${info(n).describe}${skipped.has(n) ? ` — SKIPPED: ${skipped.get(n)}` : ''}`),
      '',
      ...cases.map((c) => markdownTable(c.title, c.summary, ROUTES_BASELINE, c.samples, stacks) + '\n'),
    ].join('\n'),
    data: { cases },
    samples: cases.flatMap((c) => c.samples),
    charts: cases.map((c) => ({ title: c.title, rows: c.summary, baseline: ROUTES_BASELINE })),
    failed: skipped.has('turnpike') || cases.some((c) => c.samples.some((s) => s.failure)),
  };
}
