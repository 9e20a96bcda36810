// Compare mode (`--compare BASE`): which config the base build runs, and the verdict — for each case and each
// Turnpike route measured from both builds, the median ratio to the baseline of base and head, and whether they
// differ by at most the bound (issue 14's guard for a restructuring: "the bench shows no loss").
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCommand } from './children.ts';
import { median, type ForeignLoad, type Sample, type Summary } from './report.ts';
import { BASE_SUFFIX, TWINNED } from './targets.ts';
import { configYaml, type Build, type ConfigYaml, type GatewayKind } from './turnpike.ts';
import type { Revision } from './worktree.ts';

/** Why `build` refuses the config `write` makes (its `validate` command's first line), or undefined if it takes it. */
async function refusal(
  build: Build,
  write: ConfigYaml,
  gateways: readonly GatewayKind[],
  file: string,
): Promise<string | undefined> {
  // validate neither binds the port nor connects to Redis: placeholders are enough.
  writeFileSync(file, write(18080, 18081, `${file}.log`, { gateways, redisUrl: 'redis://127.0.0.1:6379' }));
  const res = await runCommand(process.execPath, [...build.nodeFlags, build.cli, 'validate', '--config', file], 30_000);
  if (res.code === 0) return undefined;
  const lines = res.output
    .trim()
    .split('\n')
    .filter((l) => l.trim());
  return (lines.find((l) => /TP_|invalid|unknown|expected/i.test(l)) ?? lines[0] ?? `exit ${res.code}`)
    .trim()
    .slice(0, 300);
}

export interface BaseConfig {
  readonly build: Build;
  /** `shared`: the same config as the head build; `own`: the base revision's bench/turnpike.ts wrote it. */
  readonly config: 'shared' | 'own';
  /** Why the shared config was not used (the base's refusal). */
  readonly refused?: string;
}

/**
 * Both builds run this bench's config when the revision accepts it, so they do the same work. An older base that
 * refuses it (a key it predates) runs the config its own bench/turnpike.ts writes instead; if it refuses that too,
 * the shared one is kept and the launch drops the gateway routes it refuses (reported as skipped targets).
 */
export async function chooseConfig(rev: Revision, gateways: readonly GatewayKind[], tmp: string): Promise<BaseConfig> {
  const refused = await refusal(rev, configYaml, gateways, join(tmp, 'validate-shared.yaml'));
  if (!refused) return { build: rev, config: 'shared' };
  try {
    const own = (
      (await import(pathToFileURL(join(rev.dir, 'bench', 'turnpike.ts')).href)) as { configYaml?: ConfigYaml }
    ).configYaml;
    if (typeof own === 'function' && !(await refusal(rev, own, gateways, join(tmp, 'validate-own.yaml')))) {
      return { build: { ...rev, configYaml: own }, config: 'own', refused };
    }
  } catch {
    // no usable bench/turnpike.ts in that revision
  }
  return { build: rev, config: 'shared', refused };
}

export interface Verdict {
  /** `100b · 50 conns`. */
  readonly case: string;
  /** The head target (`turnpike`, `turnpike-gateway`); the base one is the same name with `@base`. */
  readonly target: string;
  /** Median over rounds of req/s ÷ the baseline's in the same round. */
  readonly base?: number;
  readonly head?: number;
  /** head ÷ base − 1 of those medians. */
  readonly delta?: number;
  /** head ÷ base req/s within each round: how much the pair moves from round to round (the noise). */
  readonly perRound: { readonly median?: number; readonly min?: number; readonly max?: number };
  readonly pass: boolean;
}

/** The verdicts of one case: every twinned target measured from both builds. `bound` is a fraction (0.05). */
export function compareCase(
  title: string,
  rows: readonly Summary[],
  samples: readonly Sample[],
  bound: number,
): Verdict[] {
  const out: Verdict[] = [];
  for (const target of TWINNED) {
    const head = rows.find((r) => r.target === target);
    const base = rows.find((r) => r.target === `${target}${BASE_SUFFIX}`);
    if (!head || !base) continue;
    const ok = samples.filter((s) => !s.failure && s.reqPerSec);
    const byRound = new Map(ok.filter((s) => s.target === base.target).map((s) => [s.round, s.reqPerSec!]));
    const pairs = ok
      .filter((s) => s.target === target && byRound.has(s.round))
      .map((s) => s.reqPerSec! / byRound.get(s.round)!);
    const delta = head.ratio !== undefined && base.ratio ? head.ratio / base.ratio - 1 : undefined;
    out.push({
      case: title,
      target,
      base: base.ratio,
      head: head.ratio,
      delta,
      perRound: {
        median: median(pairs),
        min: pairs.length ? Math.min(...pairs) : undefined,
        max: pairs.length ? Math.max(...pairs) : undefined,
      },
      // No figure (a skipped or failed target) is no evidence of no loss.
      pass: delta !== undefined && Math.abs(delta) <= bound + 1e-12,
    });
  }
  return out;
}

const x3 = (n?: number) => (n === undefined ? '–' : `${n.toFixed(3)}×`);
const signedPct = (n?: number) => (n === undefined ? '–' : `${n >= 0 ? '+' : '−'}${Math.abs(n * 100).toFixed(1)} %`);

export interface CompareHeading {
  readonly base: string;
  readonly head: string;
  readonly baseline: string;
  readonly rounds: number;
  /** Percent (5). */
  readonly bound: number;
  /** What each head target measures (`bare route`, `gateway route: key-auth + rate-limit…`). */
  readonly routes: ReadonlyMap<string, string>;
  /** Other processes' CPU during the run: a verdict taken on a busy machine says so. */
  readonly foreign?: ForeignLoad;
}

/** The markdown section: one row per case and route, then the overall verdict line. */
export function compareSection(h: CompareHeading, verdicts: readonly Verdict[]): string {
  const lines = [
    `### Compare: head ${h.head} vs base ${h.base}`,
    '',
    `Median over ${h.rounds} rounds of each build's req/s ÷ ${h.baseline} in the same round; PASS when head and base differ by at most ${h.bound} %.`,
    '',
    `| case | route | base × ${h.baseline} | head × ${h.baseline} | head vs base | head ÷ base per round: median (min–max) | verdict |`,
    '|---|---|---:|---:|---:|---:|---|',
  ];
  for (const v of verdicts) {
    const pr = v.perRound;
    const spread =
      pr.median === undefined ? '–' : `${pr.median.toFixed(3)} (${pr.min!.toFixed(3)}–${pr.max!.toFixed(3)})`;
    const route = `${v.target} — ${h.routes.get(v.target) ?? ''}`.replace(/ — $/, '');
    lines.push(
      `| ${v.case} | ${route} | ${x3(v.base)} | ${x3(v.head)} | ${signedPct(v.delta)} | ${spread} | ${v.pass ? 'PASS' : v.delta === undefined ? 'FAIL (no figure)' : 'FAIL'} |`,
    );
  }
  lines.push('', compareVerdict(h, verdicts));
  return lines.join('\n');
}

/** One line: PASS, or FAIL naming the rows outside the bound (and which way they moved). */
export function compareVerdict(h: Pick<CompareHeading, 'bound' | 'foreign'>, verdicts: readonly Verdict[]): string {
  const failed = verdicts.filter((v) => !v.pass);
  const busy = h.foreign?.busy
    ? ` (measured while other processes took a median ${Math.round(h.foreign.median!)}% CPU: noisy, repeat on a quiet machine)`
    : '';
  if (verdicts.length === 0) return 'compare: FAIL — no route was measured from both builds';
  if (failed.length === 0)
    return `compare: PASS — head within ±${h.bound} % of base on all ${verdicts.length} case × route rows${busy}`;
  const what = failed.map(
    (v) =>
      `${v.target} at ${v.case} ${v.delta === undefined ? 'has no figure' : `${signedPct(v.delta)} (head ${v.delta < 0 ? 'slower' : 'faster'})`}`,
  );
  return `compare: FAIL — ${failed.length} of ${verdicts.length} rows outside ±${h.bound} %: ${what.join('; ')}${busy}`;
}
