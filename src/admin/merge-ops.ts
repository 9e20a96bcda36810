// One answer from the answers of every worker of an instance: in-flight counts add up, a target is ejected or in
// rotation when it is in any worker, a breaker shows its worst state; purges add up; the rest is the same in every
// worker (one config, one snapshot version after a reload), so the first answer stands.
import type { AdminOp, TargetView, UpstreamView } from './admin-ops.ts';

const BREAKER_RANK: Record<string, number> = { closed: 0, 'half-open': 1, open: 2 };

function mergeUpstreams(answers: { version: number; upstreams: UpstreamView[] }[]): object {
  const first = answers[0]!;
  const upstreams = first.upstreams.map((u) => {
    const same = answers.map((a) => a.upstreams.find((x) => x.name === u.name)).filter((x) => x !== undefined);
    const breakers = same.map((x) => x.breaker);
    const worst = breakers.reduce<string | null>(
      (w, b) => (b !== null && (w === null || BREAKER_RANK[b]! > BREAKER_RANK[w]!) ? b : w),
      null,
    );
    return {
      ...u,
      breaker: worst,
      breakers,
      usable: Math.min(...same.map((x) => x.usable)),
      targets: u.targets.map((t): TargetView => {
        const views = same.map((x) => x.targets.find((y) => y.target === t.target)).filter((x) => x !== undefined);
        return {
          ...t,
          inFlight: views.reduce((n, v) => n + v.inFlight, 0),
          ejected: views.some((v) => v.ejected),
          drained: views.every((v) => v.drained),
          inRotation: views.some((v) => v.inRotation),
        };
      }),
    };
  });
  return { version: first.version, workers: answers.length, upstreams };
}

export function mergeAnswers(op: AdminOp, answers: readonly unknown[]): unknown {
  if (answers.length === 1) return answers[0];
  switch (op.op) {
    case 'upstreams':
      return mergeUpstreams(answers as { version: number; upstreams: UpstreamView[] }[]);
    case 'purge':
      return { purged: (answers as { purged: number }[]).reduce((n, a) => n + a.purged, 0) };
    case 'drain': {
      const views = answers as (TargetView & { upstream: string })[];
      return { ...views[0]!, inFlight: views.reduce((n, v) => n + v.inFlight, 0) };
    }
    default:
      return answers[0];
  }
}
