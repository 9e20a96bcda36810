// One answer from the answers of every worker of an instance: in-flight counts add up, a target is unhealthy when
// it is in any worker, ejected or in rotation when it is in any worker, a breaker shows its worst state; purges
// add up; the dashboard's counts add up (dashboard-summary.ts); the rest is the same in every worker (one config,
// one snapshot version after a reload), so the first answer stands.
import { mergeDashboardRaw, summarizeDashboard } from '../observability/dashboard-summary.ts';
import type { AdminOp, DashboardAnswer, TargetView, UpstreamView } from './admin-ops.ts';

const BREAKER_RANK: Record<string, number> = { closed: 0, 'half-open': 1, open: 2 };

/** The upstreams as each worker sees them, as one list (the first worker's order). */
function mergeUpstreamLists(lists: readonly UpstreamView[][]): UpstreamView[] {
  if (lists.length === 1) return lists[0]!;
  return lists[0]!.map((u) => {
    const same = lists.map((l) => l.find((x) => x.name === u.name)).filter((x) => x !== undefined);
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
          healthy: views.every((v) => v.healthy),
          inFlight: views.reduce((n, v) => n + v.inFlight, 0),
          ejected: views.some((v) => v.ejected),
          drained: views.every((v) => v.drained),
          inRotation: views.some((v) => v.inRotation),
        };
      }),
    };
  });
}

/** How many workers the primary asked for a dashboard tick, and how many answered in time. */
export interface WorkersAnswered {
  readonly asked: number;
  readonly answered: number;
}

/**
 * The dashboard summary from one process's answer or several workers' (`workers` says how many were asked and
 * answered; null in a single process): the same merge and summary either way.
 */
export function mergeDashboard(answers: readonly DashboardAnswer[], workers: WorkersAnswered | null) {
  return {
    version: Math.max(...answers.map((a) => a.version)),
    workers,
    ...summarizeDashboard(mergeDashboardRaw(answers.map((a) => a.stats))),
    upstreams: mergeUpstreamLists(answers.map((a) => a.upstreams)),
  };
}

export function mergeAnswers(op: AdminOp, answers: readonly unknown[]): unknown {
  if (op.op === 'dashboard')
    return mergeDashboard(answers as DashboardAnswer[], { asked: answers.length, answered: answers.length });
  if (answers.length === 1) return answers[0];
  switch (op.op) {
    case 'upstreams': {
      const all = answers as { version: number; upstreams: UpstreamView[] }[];
      return {
        version: all[0]!.version,
        workers: all.length,
        upstreams: mergeUpstreamLists(all.map((a) => a.upstreams)),
      };
    }
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
