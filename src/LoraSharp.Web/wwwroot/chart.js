// The live loss chart: training loss (line) and evaluation loss (line with dots) by step, drawn as SVG by hand, and
// drawPreferenceCharts for dpo / orpo runs (rewards and accuracies, below it).
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

// Step ticks at whole, round numbers (1, 2, 5 × 10^k apart), at most about `count` of them: 0..6 gives 0 1 2 3 4 5 6,
// 0..40 gives 0 10 20 30 40 (evenly split ticks labelled with rounded steps put "2" where 2.4 is).
function stepTicks(hi, count) {
  const raw = Math.max(1, hi / count), p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
  return Array.from({ length: Math.floor(hi / step) + 1 }, (_, i) => i * step);
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
  for (const x of stepTicks(x1, 6)) svg.append(node('text', { x: px(x), y: H - B + 16, 'text-anchor': 'middle' }, String(x)));
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

// A line chart of several series on one scale, shared by the compare view and the preference charts.
// series: [{ label, color, points: [[x, y], ...], dashed, dots }]; options: { xLabel, yLabel, yMin, yMax, digits, empty }.
// data-series / data-points on the svg say how many series (with points) and points it shows (the tests read them).
export const PALETTE = ['#2f62d8', '#e07a1f', '#2a9d5b', '#c0392b', '#8a5cc2', '#7a5b3a', '#d35fa8', '#5f6878', '#a3a51f', '#18a3b8'];

export function drawLines(svg, series, options = {}) {
  const shown = series.filter(s => s.points.length > 0);
  svg.replaceChildren();
  svg.dataset.series = shown.length;
  svg.dataset.points = shown.reduce((n, s) => n + s.points.length, 0);
  const all = shown.flatMap(s => s.points);
  if (all.length === 0) {
    svg.append(node('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, options.empty ?? 'Nothing to draw yet.'));
    return;
  }
  const x1 = Math.max(1, ...all.map(p => p[0]));
  let y0 = options.yMin ?? Math.min(...all.map(p => p[1])), y1 = options.yMax ?? Math.max(...all.map(p => p[1]));
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  if (options.yMin === undefined && options.yMax === undefined) { const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad; }
  const px = (x) => L + (x / x1) * (W - L - R);
  const py = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const digits = options.digits ?? (y1 - y0 < 0.05 ? 4 : y1 - y0 < 0.5 ? 3 : 2);
  for (const y of ticks(y0, y1, 4)) {
    svg.append(node('line', { class: 'grid', x1: L, x2: W - R, y1: py(y), y2: py(y) }));
    svg.append(node('text', { x: L - 6, y: py(y) + 4, 'text-anchor': 'end' }, Math.abs(y) >= 1e4 || (Math.abs(y) < 1e-3 && y !== 0) ? y.toExponential(1) : y.toFixed(digits)));
  }
  for (const x of stepTicks(x1, 6)) svg.append(node('text', { x: px(x), y: H - B + 16, 'text-anchor': 'middle' }, String(x)));
  svg.append(node('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(node('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(node('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, options.xLabel ?? 'step'));
  if (options.yLabel) svg.append(node('text', { x: L + 4, y: T - 4 }, options.yLabel));
  if (y0 < 0 && y1 > 0) svg.append(node('line', { class: 'axis', x1: L, x2: W - R, y1: py(0), y2: py(0), 'stroke-dasharray': '2 3' }));
  for (const s of shown) {
    // Presentation attributes, not style="": the page's Content-Security-Policy (style-src 'self') refuses inline styles.
    const attrs = { fill: 'none', stroke: s.color, 'stroke-width': 1.6, 'data-label': s.label, points: s.points.map(p => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ') };
    if (s.dashed) attrs['stroke-dasharray'] = '5 3';
    const line = node('polyline', attrs);
    line.append(node('title', {}, s.label));
    svg.append(line);
    if (s.dots) for (const p of s.points) svg.append(node('circle', { cx: px(p[0]), cy: py(p[1]), r: 2.6, fill: s.color }));
  }
  if (options.legend) {
    let x = L + 10;
    for (const s of shown) {
      const key = { x1: x, x2: x + 18, y1: T + 6, y2: T + 6, stroke: s.color, 'stroke-width': 2 };
      if (s.dashed) key['stroke-dasharray'] = '4 2';
      svg.append(node('line', key));
      svg.append(node('text', { x: x + 22, y: T + 10 }, s.label));
      x += 30 + 6.2 * s.label.length;
    }
  }
}

// Points [step, value] of one key of a history, finite values only.
export function seriesOf(history, key) {
  return history.filter(h => Number.isFinite(h[key])).map(h => [h.step, h[key]]);
}

// Preference runs (dpo, orpo): the implicit rewards of the chosen and rejected answers and their margin by step
// (evaluated margin dashed with dots), and the reward accuracy (share of pairs with chosen above rejected) on 0..1,
// training and evaluated. TRL's names: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies and
// their eval_ twins. Returns false (drawing nothing) for a history without them.
export function drawPreferenceCharts(rewardsSvg, accuracySvg, history) {
  const has = history.some(h => Number.isFinite(h['rewards/margins']) || Number.isFinite(h['eval_rewards/margins']));
  if (!has) {
    for (const svg of [rewardsSvg, accuracySvg]) { svg.replaceChildren(); svg.dataset.series = 0; svg.dataset.points = 0; }
    return false;
  }
  drawLines(rewardsSvg, [
    { label: 'chosen', color: '#2a9d5b', points: seriesOf(history, 'rewards/chosen') },
    { label: 'rejected', color: '#c0392b', points: seriesOf(history, 'rewards/rejected') },
    { label: 'margin', color: '#8a5cc2', points: seriesOf(history, 'rewards/margins') },
    { label: 'eval margin', color: '#8a5cc2', points: seriesOf(history, 'eval_rewards/margins'), dashed: true, dots: true },
  ], { yLabel: 'rewards', legend: true });
  drawLines(accuracySvg, [
    { label: 'accuracy', color: '#2f62d8', points: seriesOf(history, 'rewards/accuracies') },
    { label: 'eval accuracy', color: '#e07a1f', points: seriesOf(history, 'eval_rewards/accuracies'), dashed: true, dots: true },
  ], { yLabel: 'reward accuracy', yMin: 0, yMax: 1, legend: true });
  return true;
}
