// A hand-written SVG bar chart of the ratios to the baseline: one panel per case, per target a bar for req/s
// per core (efficiency) and a thinner one for raw req/s, with a line at 1× (the baseline itself).
import type { Summary } from './report.ts';

export interface ChartCase {
  readonly title: string;
  readonly rows: readonly Summary[];
}

const W = 820;
const LABEL_W = 150;
const PLOT_W = 560;
const ROW_H = 28;
const HEAD_H = 34;
const GAP = 18;
const COLOR = {
  perCore: '#2b6cb0',
  reqs: '#90cdf4',
  turnpike: '#c05621',
  turnpikeLight: '#fbd38d',
  ceiling: '#718096',
  ceilingLight: '#cbd5e0',
  axis: '#4a5568',
  grid: '#e2e8f0',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceMax(values: readonly number[]): number {
  const top = Math.max(1.2, ...values) * 1.08;
  const step = top > 4 ? 1 : top > 2 ? 0.5 : 0.25;
  return Math.ceil(top / step) * step;
}

export function ratioChart(title: string, baseline: string, cases: readonly ChartCase[]): string {
  const values = cases.flatMap((c) => c.rows.flatMap((r) => [r.perCoreRatio ?? 0, r.ratio ?? 0]));
  const xMax = niceMax(values);
  const x = (v: number) => LABEL_W + (Math.max(0, v) / xMax) * PLOT_W;
  const step = xMax > 4 ? 1 : xMax > 2 ? 0.5 : 0.25;
  const out: string[] = [];
  let y = 56;
  for (const c of cases) {
    out.push(`<text x="12" y="${y + 18}" font-size="14" font-weight="bold">${esc(c.title)}</text>`);
    y += HEAD_H;
    const plotTop = y;
    const labels: string[] = [];
    for (const r of c.rows) {
      const kind = r.target.startsWith('turnpike') ? 'turnpike' : r.target === 'direct' ? 'ceiling' : 'other';
      out.push(`<text x="${LABEL_W - 8}" y="${y + 17}" font-size="12" text-anchor="end">${esc(r.target)}</text>`);
      if (r.skipped || r.perCoreRatio === undefined) {
        const why = r.skipped ? 'skipped' : 'no data';
        out.push(
          `<text x="${LABEL_W + 6}" y="${y + 17}" font-size="11" fill="#718096" font-style="italic">${why}</text>`,
        );
      } else {
        const w1 = x(r.perCoreRatio) - LABEL_W;
        const w2 = x(r.ratio ?? 0) - LABEL_W;
        const c1 = kind === 'turnpike' ? COLOR.turnpike : kind === 'ceiling' ? COLOR.ceiling : COLOR.perCore;
        const c2 = kind === 'turnpike' ? COLOR.turnpikeLight : kind === 'ceiling' ? COLOR.ceilingLight : COLOR.reqs;
        out.push(
          `<rect x="${LABEL_W}" y="${y + 4}" width="${w1.toFixed(1)}" height="12" fill="${c1}"><title>${esc(r.target)}: req/s per core ${r.perCoreRatio.toFixed(2)}× ${esc(baseline)}</title></rect>`,
        );
        out.push(
          `<rect x="${LABEL_W}" y="${y + 17}" width="${w2.toFixed(1)}" height="6" fill="${c2}"><title>${esc(r.target)}: req/s ${(r.ratio ?? 0).toFixed(2)}× ${esc(baseline)}</title></rect>`,
        );
        // A white halo keeps the value readable where it crosses the 1× line.
        labels.push(
          `<text x="${(LABEL_W + Math.max(w1, w2) + 5).toFixed(1)}" y="${y + 15}" font-size="11" stroke="white" stroke-width="3" paint-order="stroke">${r.perCoreRatio.toFixed(2)}× <tspan fill="#718096">(${(r.ratio ?? 0).toFixed(2)}×)</tspan></text>`,
        );
      }
      y += ROW_H;
    }
    // Grid lines and the 1× reference across the panel's rows, with the scale underneath.
    for (let v = 0; v <= xMax + 1e-9; v += step) {
      const gx = x(v).toFixed(1);
      const one = Math.abs(v - 1) < 1e-9;
      const line = `<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${y}" stroke="${one ? COLOR.axis : COLOR.grid}"${one ? ' stroke-width="1.5" stroke-dasharray="4 3"' : ''}/>`;
      if (one)
        out.push(line); // the baseline on top of the bars, the grid behind them
      else out.unshift(line);
      out.push(
        `<text x="${gx}" y="${y + 13}" font-size="10" text-anchor="middle" fill="#718096">${v.toFixed(v % 1 ? 2 : 0)}×</text>`,
      );
    }
    out.push(...labels);
    y += GAP + 14;
  }
  const height = y + 10;
  const legend =
    `<rect x="12" y="34" width="14" height="10" fill="${COLOR.perCore}"/><text x="30" y="43" font-size="11">req/s per core ÷ ${esc(baseline)} (same round)</text>` +
    `<rect x="270" y="37" width="14" height="5" fill="${COLOR.reqs}"/><text x="288" y="43" font-size="11">req/s ÷ ${esc(baseline)} (in brackets)</text>` +
    `<rect x="470" y="34" width="14" height="10" fill="${COLOR.turnpike}"/><text x="488" y="43" font-size="11">Turnpike targets</text>` +
    `<rect x="600" y="34" width="14" height="10" fill="${COLOR.ceiling}"/><text x="618" y="43" font-size="11">direct: the backend alone</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`,
    legend,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
