// Scenarios https-h1 (wrk over TLS, http/1.1 keep-alive) and https-h2 (h2load, 10 connections × 100 streams):
// Turnpike, nginx and HAProxy terminating TLS with the same certificate and suite (bench/scenarios/tls.ts) in front
// of the same plain HTTP backend, in interleaved rounds; ratios to nginx-tls.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { markdownTable, summarize, type Sample, type Summary } from '../report.ts';
import { runWrk } from '../wrk.ts';
import { runH2load, type H2loadResult } from './h2load.ts';
import { interleave, startAll, stopAll, type Contender, type ScenarioContext, type ScenarioOutcome } from './rounds.ts';
import {
  makeCert,
  negotiated,
  startHAProxyTls,
  startNginxTls,
  startTurnpikeTls,
  TLS_SUITE,
  TLS_VERSION,
  type TlsTarget,
} from './tls.ts';

export const HTTPS_BASELINE = 'nginx-tls';
const NAMES = ['nginx-tls', 'haproxy-tls', 'turnpike-tls'];
/** The issue's target: Turnpike's per-core ratio to nginx over TLS within 10 % of its plain-HTTP one. */
const TLS_TARGET = 0.9;

/** Turnpike's per-core ratio to nginx here against the plain case's, in the same run. */
function versusPlain(summary: readonly Summary[], plain: number | undefined, what: string): string {
  const tls = summary.find((r) => r.target === 'turnpike-tls')?.perCoreRatio;
  if (tls === undefined || plain === undefined)
    return `- turnpike-tls vs the plain case (${what}): no ratio to compare`;
  const rel = tls / plain;
  return (
    `- turnpike-tls per core × ${HTTPS_BASELINE} ${tls.toFixed(2)}× vs plain turnpike per core × nginx-1w ${plain.toFixed(2)}× ` +
    `(${what}): ${rel.toFixed(2)} of it — ${rel >= TLS_TARGET ? 'within' : 'OUTSIDE'} the target (≥ ${TLS_TARGET})`
  );
}
/** The issue's h2 case: 100 streams over 10 connections. */
export const H2_CLIENTS = 10;
export const H2_STREAMS = 100;

/** Runs whichever of https-h1 and https-h2 are asked for, on one set of TLS targets started once. */
export async function runHttps(
  ctx: ScenarioContext,
  which: { h1: boolean; h2: boolean },
): Promise<Record<string, ScenarioOutcome>> {
  const dir = (name: string) => join(ctx.tmp, name);
  for (const n of NAMES) mkdirSync(dir(n), { recursive: true });
  const cert = makeCert(ctx.tmp);
  const starters = {
    'nginx-tls': () => startNginxTls(dir('nginx-tls'), ctx.backendPort, cert),
    'haproxy-tls': () => startHAProxyTls(dir('haproxy-tls'), ctx.backendPort, cert),
    'turnpike-tls': () => startTurnpikeTls(dir('turnpike-tls'), ctx.backendPort, cert),
  };
  const targets = new Map<string, TlsTarget>();
  const { skipped } = await startAll(
    Object.fromEntries(
      Object.entries(starters).map(([name, start]) => [
        name,
        async () => {
          const t = await start();
          targets.set(name, t);
          return { name, child: t.child, run: async () => ({ raw: '' }) } satisfies Contender;
        },
      ]),
    ),
  );
  const ordered = NAMES.filter((n) => targets.has(n)).map((n) => targets.get(n)!);
  const tlsLines: string[] = [];
  for (const t of ordered) {
    try {
      const n = await negotiated(t.port);
      tlsLines.push(`${t.name}: ${n.protocol} ${n.cipher}, ${n.group}, ALPN ${n.alpn}`);
      if (n.cipher !== TLS_SUITE || n.protocol !== TLS_VERSION)
        skipped.set(t.name, `negotiated ${n.protocol} ${n.cipher}, not ${TLS_VERSION} ${TLS_SUITE}`);
    } catch (err) {
      skipped.set(t.name, `TLS check failed: ${(err as Error).message}`);
    }
  }
  const live = ordered.filter((t) => !skipped.has(t.name));
  const header = (title: string, what: string) =>
    [
      `## Scenario ${title}`,
      '',
      what,
      '',
      `- certificate: ECDSA P-256, self-signed, made with openssl at bench start; ${TLS_VERSION} with ${TLS_SUITE} only on every target`,
      `- negotiated with an OpenSSL 3.0 client (as wrk and h2load are): ${tlsLines.join('; ') || 'none'}`,
      ...ordered.map((t) => `- ${t.name}: ${t.describe}`),
      ...[...skipped].map(([n, why]) => `- ${n}: SKIPPED — ${why}`),
      '',
    ].join('\n');
  const outcomes: Record<string, ScenarioOutcome> = {};
  const failedRow = (samples: readonly Sample[]) =>
    samples.some((s) => s.failure && (s.target === 'turnpike-tls' || s.target === HTTPS_BASELINE)) ||
    skipped.has('turnpike-tls') ||
    skipped.has(HTTPS_BASELINE);

  if (which.h1) {
    const cases: { title: string; key: string; summary: Summary[]; samples: Sample[] }[] = [];
    for (const connections of ctx.plan.connections) {
      for (const body of ctx.plan.bodies) {
        const contenders = live.map((t): Contender => ({
          name: t.name,
          child: t.child,
          accessLog: t.accessLog,
          run: (seconds) => runWrk({ url: `https://127.0.0.1:${t.port}/${body}`, seconds, connections }),
        }));
        const samples = await interleave(
          `[https-h1 ${body} · ${connections} conns]`,
          contenders,
          ctx.plan,
          ctx.backend,
        );
        const summary = summarize(NAMES, samples, skipped, HTTPS_BASELINE);
        const key = `${body}·${connections}`;
        cases.push({ title: `https-h1: ${body} body, ${connections} connections`, key, summary, samples });
      }
    }
    outcomes['https-h1'] = {
      markdown: [
        header(
          'https-h1',
          'wrk over TLS (http/1.1, keep-alive: one handshake per connection), the same GETs as the plain case.',
        ),
        ...cases.map(
          (c) =>
            markdownTable(c.title, c.summary, HTTPS_BASELINE, c.samples, new Map()) +
            `\n\n${versusPlain(c.summary, ctx.plainPerCore?.get(c.key), `same body and connections`)}\n`,
        ),
      ].join('\n'),
      data: { tls: tlsLines, cases },
      samples: cases.flatMap((c) => c.samples),
      charts: cases.map((c) => ({ title: c.title, rows: c.summary, baseline: HTTPS_BASELINE })),
      failed: cases.some((c) => failedRow(c.samples)),
    };
  }

  if (which.h2) {
    const cases: {
      title: string;
      body: string;
      summary: Summary[];
      samples: Sample[];
      h2: Record<string, H2loadResult[]>;
    }[] = [];
    for (const body of ctx.plan.bodies) {
      const h2: Record<string, H2loadResult[]> = {};
      const contenders = live.map((t): Contender => ({
        name: t.name,
        child: t.child,
        accessLog: t.accessLog,
        run: async (seconds) => {
          const r = await runH2load({
            url: `https://127.0.0.1:${t.port}/${body}`,
            seconds,
            clients: H2_CLIENTS,
            streams: H2_STREAMS,
            logFile: join(ctx.tmp, `h2load-${t.name}.log`),
          });
          if (r.h2) (h2[t.name] ??= []).push(r.h2);
          return r;
        },
      }));
      // --quick: after https-h1, the same processes are warm; the h2 window goes without its warm-up.
      const plan = ctx.quick && which.h1 ? { ...ctx.plan, warmupSeconds: 0 } : ctx.plan;
      const samples = await interleave(`[https-h2 ${body}]`, contenders, plan, ctx.backend);
      const summary = summarize(NAMES, samples, skipped, HTTPS_BASELINE);
      cases.push({
        title: `https-h2: ${body} body, ${H2_CLIENTS} connections × ${H2_STREAMS} streams`,
        body,
        summary,
        samples,
        h2,
      });
    }
    const seen = Object.entries(cases[0]?.h2 ?? {}).map(
      ([n, rs]) =>
        `${n}: ${rs[0]?.protocol ?? '?'} ${rs[0]?.cipher ?? '?'}, ${rs[0]?.serverTempKey ?? '?'}, ${rs[0]?.alpn ?? '?'}`,
    );
    outcomes['https-h2'] = {
      markdown: [
        header(
          'https-h2',
          `h2load -c ${H2_CLIENTS} -m ${H2_STREAMS} -t 2 -D <seconds> over TLS with ALPN h2; p50/p99 from its per-request log (--log-file). ` +
            'errors = failed + errored + timeout requests + 4xx/5xx answers.',
        ),
        `- h2load saw: ${seen.join('; ') || 'nothing'}`,
        '',
        ...cases.map((c) => {
          // h2 multiplexes 1000 streams on 10 connections: held against plain keep-alive at the first connection count.
          const conns = ctx.plan.connections[0];
          const plain = ctx.plainPerCore?.get(`${c.body}·${conns}`);
          return (
            markdownTable(c.title, c.summary, HTTPS_BASELINE, c.samples, new Map()) +
            `\n\n${versusPlain(c.summary, plain, `same body; plain at ${conns} keep-alive connections`)}\n`
          );
        }),
      ].join('\n'),
      data: { tls: tlsLines, cases },
      samples: cases.flatMap((c) => c.samples),
      charts: cases.map((c) => ({ title: c.title, rows: c.summary, baseline: HTTPS_BASELINE })),
      failed: cases.some((c) => failedRow(c.samples)),
    };
  }
  // Every started target, those skipped for their handshake too.
  await stopAll(ordered.map((t) => ({ name: t.name, child: t.child, run: async () => ({ raw: '' }) })));
  return outcomes;
}
