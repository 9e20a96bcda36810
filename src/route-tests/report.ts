// The results of a `turnpike test` run: a readable report (a diff per failed case) and JUnit XML for CI.
import { basename } from 'node:path';
import type { CaseResult, RunReport } from './runner.ts';

const MAX_BODY_SHOWN = 300;

export function textReport(run: RunReport): string {
  const lines: string[] = [];
  for (const r of run.results) {
    if (r.failures.length === 0) {
      lines.push(`ok   ${r.case.name}`);
      continue;
    }
    lines.push(`FAIL ${r.case.name} (${run.casesFile}:${r.case.line})`);
    for (const f of r.failures) lines.push(`       ${f}`);
    if (r.answer !== null) lines.push(`       the answer: ${answerSummary(r)}`);
  }
  const failed = run.results.filter((r) => r.failures.length > 0).length;
  lines.push('');
  lines.push(
    `${run.results.length} cases, ${run.results.length - failed} passed, ${failed} failed (${Math.round(run.durationMs)} ms)`,
  );
  return lines.join('\n') + '\n';
}

function answerSummary(r: CaseResult): string {
  const a = r.answer!;
  const body = a.body.length > MAX_BODY_SHOWN ? `${a.body.slice(0, MAX_BODY_SHOWN)}…` : a.body;
  const type = a.headers['content-type'];
  return `${a.status}${type ? ` ${type}` : ''}${body ? ` ${JSON.stringify(body)}` : ''}`;
}

const escapeXml = (s: string): string =>
  // Characters XML 1.0 cannot carry at all are dropped; the rest are escaped.
  s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** JUnit XML (the Ant/Surefire form GitHub, GitLab and Jenkins read): one testsuite, one testcase per case. */
export function junitReport(run: RunReport): string {
  const failed = run.results.filter((r) => r.failures.length > 0).length;
  const suite = escapeXml(basename(run.casesFile));
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="turnpike test" tests="${run.results.length}" failures="${failed}" errors="0" time="${seconds(run.durationMs)}">`,
    `  <testsuite name="${suite}" tests="${run.results.length}" failures="${failed}" errors="0" skipped="0" time="${seconds(run.durationMs)}">`,
  ];
  for (const r of run.results) {
    const open = `    <testcase classname="${suite}" name="${escapeXml(r.case.name)}" file="${escapeXml(run.casesFile)}" line="${r.case.line}" time="${seconds(r.durationMs)}"`;
    if (r.failures.length === 0) {
      out.push(`${open}/>`);
      continue;
    }
    const detail = [...r.failures, ...(r.answer ? [`the answer: ${answerSummary(r)}`] : [])].join('\n');
    out.push(`${open}>`);
    out.push(`      <failure message="${escapeXml(r.failures[0]!)}" type="mismatch">${escapeXml(detail)}</failure>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>', '</testsuites>');
  return out.join('\n') + '\n';
}
