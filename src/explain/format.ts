// An explanation as text for a terminal: the same facts as the JSON, one line each, in the order they happen.
import type { Explanation, PluginStep } from './explain.ts';

const DECISION: Record<PluginStep['decision'], string> = {
  continue: 'pass',
  answer: 'ANSWER',
  refused: 'refused',
  'not-reached': '-',
  unexplained: '?',
  error: 'ERROR',
};

function pad(s: string, n: number): string {
  return s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length);
}

export function formatExplanation(e: Explanation): string {
  const out: string[] = [];
  const r = e.request;
  out.push(`${r.method} ${r.url}`);
  out.push(`  client ${r.clientIp} (${r.scheme}), host ${r.host}, path ${r.path}${r.query}`);
  const l = e.listener;
  out.push(`listener  ${l.name} (${l.protocol} :${l.port}), chosen by ${l.chosenBy}`);

  if (e.route !== null) {
    const params = Object.entries(e.route.params).map(([k, v]) => `${k}=${v}`);
    out.push(`route     ${e.route.name}${params.length > 0 ? `  (${params.join(', ')})` : ''}`);
  } else if (e.routes.length > 0 || e.outcome.by === 'router') {
    out.push('route     none');
  }
  for (const v of e.routes) {
    if (v.matched) continue;
    const why =
      v.outranked !== undefined
        ? `matches too, but "${v.outranked}" comes first in the router's order`
        : v.misses.map((m) => m.detail).join('; ');
    out.push(`  not ${v.name}: ${why}`);
  }

  if (e.plugins.length > 0) {
    out.push('plugins (in phase order)');
    const width = Math.max(...e.plugins.map((p) => p.name.length + (p.global ? 9 : 0)));
    for (const p of e.plugins) {
      const name = p.global ? `${p.name} (global)` : p.name;
      out.push(`  ${pad(p.phase, 18)}${pad(name, width + 2)}${pad(DECISION[p.decision], 8)}${p.summary}`);
    }
  }

  const t = e.terminal;
  if (t !== null) {
    const what =
      t.kind === 'upstream'
        ? `upstream ${t.upstream}`
        : t.kind === 'redirect'
          ? `redirect ${t.status} to ${t.location}`
          : `${t.kind}${t.status !== undefined ? ` ${t.status}` : ''}`;
    out.push(`terminal  ${what}${t.reached ? '' : ' (not reached)'}`);
    for (const c of t.calls ?? []) {
      const when = c.after.length > 0 ? `after ${c.after.join(', ')}` : 'at once';
      out.push(`  call ${c.name}: ${c.method} ${c.upstream} ${c.path} (${when}${c.optional ? ', optional' : ''})`);
    }
    if (t.fallback !== undefined) {
      const also = t.fallback.onStatus.length > 0 ? ` and its ${t.fallback.onStatus.join(', ')}` : '';
      out.push(`  fallback ${t.fallback.status} when the upstream cannot answer${also}`);
    }
  }

  const u = e.upstream;
  if (u !== null) {
    const extras = [
      u.balance,
      u.breaker === null ? 'no breaker' : `breaker ${u.breaker}`,
      ...(u.sticky ? [`sticky cookie ${u.sticky}`] : []),
    ];
    out.push(`upstream  ${u.name} (${extras.join(', ')})`);
    const width = Math.max(...u.targets.map((x) => x.url.length));
    for (const x of u.targets) {
      const state = [
        `weight ${x.weight}`,
        x.healthy ? 'healthy' : 'UNHEALTHY',
        ...(x.ejected ? ['ejected'] : []),
        ...(x.drained ? ['drained'] : []),
        ...(x.backup ? ['backup'] : []),
        `${x.inFlight} in flight`,
        ...(x.inRotation ? [] : ['out of rotation']),
        ...(x.chance !== undefined ? [`${Math.round(x.chance * 100)} % chance`] : []),
      ];
      out.push(`  ${x.picked ? '->' : '  '} ${pad(x.url, width + 1)}${state.join(', ')}`);
    }
    const hash =
      u.pick.hash === null
        ? ''
        : ` [hash on ${u.pick.hash.on}${u.pick.hash.key !== undefined ? ` = ${u.pick.hash.key}` : ''}]`;
    out.push(`  pick: ${u.pick.target ?? 'none'}: ${u.pick.reason}${hash}`);
  }

  const o = e.outcome;
  out.push(`result    ${o.summary}`);
  for (const note of e.notes) out.push(`note: ${note}`);
  return out.join('\n') + '\n';
}
