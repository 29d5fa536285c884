// The live loss chart: training loss (line) and evaluation loss (line with dots) by step, drawn as SVG by hand.
// The svg element's data-train-points / data-eval-points say how many points it shows (the browser test reads them).
// Preference runs (dpo, orpo) add the reward margin by step on its own scale (right axis; data-margin-points).

const NS = 'http://www.w3.org/2000/svg';
const W = 640, H = 300, L = 52, R = 14, T = 16, B = 34;

function node(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

function ticks(lo, hi, count) {
  const step = (hi - lo) / count;
  return Array.from({ length: count + 1 }, (_, i) => lo + i * step);
}

export function drawLossChart(svg, history) {
  const train = history.filter(h => Number.isFinite(h.loss)).map(h => [h.step, h.loss]);
  const evals = history.filter(h => Number.isFinite(h.eval_loss)).map(h => [h.step, h.eval_loss]);
  const all = train.concat(evals);
  svg.replaceChildren();
  svg.dataset.trainPoints = train.length;
  svg.dataset.evalPoints = evals.length;
  if (all.length === 0) {
    svg.append(node('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'The loss chart fills in as training runs.'));
    return;
  }
  const x1 = Math.max(1, ...all.map(p => p[0]));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const px = (x) => L + (x / x1) * (W - L - R);
  const py = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);

  for (const y of ticks(y0, y1, 4)) {
    svg.append(node('line', { class: 'grid', x1: L, x2: W - R, y1: py(y), y2: py(y) }));
    svg.append(node('text', { x: L - 6, y: py(y) + 4, 'text-anchor': 'end' }, y.toFixed(y1 - y0 < 0.5 ? 3 : 2)));
  }
  for (const x of ticks(0, x1, 5)) svg.append(node('text', { x: px(x), y: H - B + 16, 'text-anchor': 'middle' }, String(Math.round(x))));
  svg.append(node('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(node('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(node('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, 'step'));

  const line = (points, cls) => node('polyline', { class: cls, points: points.map(p => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ') });
  svg.append(line(train, 'train'));
  if (evals.length > 0) {
    svg.append(line(evals, 'eval'));
    for (const p of evals) svg.append(node('circle', { class: 'eval-point', cx: px(p[0]), cy: py(p[1]), r: 3 }));
  }
  const margins = history.filter(h => Number.isFinite(h['rewards/margins'])).map(h => [h.step, h['rewards/margins']]);
  svg.dataset.marginPoints = margins.length;
  if (margins.length > 0) {
    let m0 = Math.min(0, ...margins.map(p => p[1])), m1 = Math.max(...margins.map(p => p[1]));
    if (m1 - m0 < 1e-9) m1 = m0 + 1;
    const pm = (y) => H - B - ((y - m0) / (m1 - m0)) * (H - T - B);
    svg.append(node('polyline', { class: 'margin', points: margins.map(p => `${px(p[0]).toFixed(1)},${pm(p[1]).toFixed(1)}`).join(' ') }));
    for (const y of [m0, m1]) svg.append(node('text', { class: 'margin-axis', x: W - R + 2, y: pm(y) + 4, 'text-anchor': 'end' }, y.toFixed(2)));
    svg.append(node('line', { class: 'margin', x1: W - R - 290, x2: W - R - 270, y1: T + 6, y2: T + 6 }));
    svg.append(node('text', { x: W - R - 266, y: T + 10 }, 'reward margin'));
  }
  svg.append(node('line', { class: 'train', x1: W - R - 150, x2: W - R - 130, y1: T + 6, y2: T + 6 }));
  svg.append(node('text', { x: W - R - 126, y: T + 10 }, 'train'));
  svg.append(node('line', { class: 'eval', x1: W - R - 80, x2: W - R - 60, y1: T + 6, y2: T + 6 }));
  svg.append(node('text', { x: W - R - 56, y: T + 10 }, 'eval'));
}
