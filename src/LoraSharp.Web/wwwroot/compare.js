// The compare tab: several runs' curves overlaid on one chart (a metric picked from their step records; train lines
// solid, evaluations dashed with dots) and their settings side by side with the differing rows highlighted.
// openCompare(names) is the entry other views use (the adapters tab's "Compare ticked", a sweep's runs); so is the
// address fragment #compare=NAME,NAME (names URI-encoded; nested names such as sweep/run-1 work).
import { getJson } from './api.js';
import { $, el, fmt, duration, setMessage, showTab } from './dom.js';
import { drawLines, seriesOf, PALETTE } from './chart.js';

const SVG = 'http://www.w3.org/2000/svg';

// The metrics of a step record the chart offers: [label, train key, eval key].
const METRICS = {
  loss: ['loss (train, eval)', 'loss', 'eval_loss'],
  learning_rate: ['learning rate', 'learning_rate', null],
  grad_norm: ['gradient norm', 'grad_norm', null],
  tokens_per_second: ['tokens/s', 'tokens_per_second', null],
  margins: ['reward margin (dpo, orpo)', 'rewards/margins', 'eval_rewards/margins'],
  accuracies: ['reward accuracy (dpo, orpo)', 'rewards/accuracies', 'eval_rewards/accuracies'],
  chosen: ['reward of chosen (dpo, orpo)', 'rewards/chosen', null],
  rejected: ['reward of rejected (dpo, orpo)', 'rewards/rejected', null],
};

let current = null;   // the last answer of /api/compare

export function initCompare() {
  $('#compare-metric').replaceChildren(...Object.entries(METRICS).map(([value, [label]]) => el('option', { value, text: label })));
  $('#compare-metric').addEventListener('change', draw);
  $('#compare-eval').addEventListener('change', draw);
  $('#compare-only-diff').addEventListener('change', () => $('#compare-settings').classList.toggle('only-diff', $('#compare-only-diff').checked));
  $('#compare-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const names = [...document.querySelectorAll('#compare-list input:checked')].map(i => i.value);
    openCompare(names, { updateAddress: true });
  });
  window.addEventListener('hashchange', fromAddress);
}

// Called once the lists are loaded: a #compare=... address opens the view.
export function fromAddress() {
  const m = /^#compare=(.*)$/.exec(location.hash);
  if (m) openCompare(m[1].split(',').filter(Boolean).map(decodeURIComponent));
}

export function updateCompareLists({ adapters }) {
  const list = $('#compare-list');
  const ticked = new Set([...list.querySelectorAll('input:checked')].map(i => i.value));
  list.replaceChildren(...adapters.filter(a => a.kind !== 'gguf').map(a => el('label', { class: 'check' },
    el('input', { type: 'checkbox', value: a.name, checked: ticked.has(a.name) }), a.name + (a.kind === 'peft' ? '' : ` (${a.kind})`))));
}

// Shows the compare tab with the runs named (adapter names inside the adapters folder) and loads them.
export async function openCompare(names, { updateAddress = false } = {}) {
  showTab('compare');
  const message = $('#compare-message');
  for (const input of document.querySelectorAll('#compare-list input')) input.checked = names.includes(input.value);
  if (names.length === 0) return setMessage(message, 'Tick at least one adapter to compare.', true);
  if (updateAddress) history.replaceState(null, '', '#compare=' + names.map(encodeURIComponent).join(','));
  setMessage(message, 'loading...');
  try {
    current = await getJson('/api/compare?' + names.map(n => 'adapter=' + encodeURIComponent(n)).join('&'));
    setMessage(message, current.runs.filter(r => r.problem).map(r => `${r.name}: ${r.problem}`).join(' '),
      current.runs.some(r => r.problem));
  } catch (err) {
    current = null;
    setMessage(message, err.message, true);
  }
  render();
}

function render() {
  const runs = current?.runs ?? [];
  $('#compare-view').dataset.runs = runs.length;
  draw();
  $('#compare-legend').replaceChildren(...runs.map((r, i) => el('li', {}, swatch(PALETTE[i % PALETTE.length]), r.name)));
  summary(runs);
  settings(runs, current?.settings ?? []);
}

function draw() {
  const runs = current?.runs ?? [];
  const [label, trainKey, evalKey] = METRICS[$('#compare-metric').value] ?? METRICS.loss;
  const withEval = $('#compare-eval').checked && evalKey;
  const series = runs.flatMap((r, i) => {
    const color = PALETTE[i % PALETTE.length];
    const out = [{ label: r.name, color, points: seriesOf(r.history, trainKey) }];
    if (withEval) out.push({ label: `${r.name} (eval)`, color, points: seriesOf(r.history, evalKey), dashed: true, dots: true });
    return out;
  });
  drawLines($('#compare-chart'), series, {
    yLabel: label, empty: runs.length === 0 ? 'Tick adapters and press Compare.' : `No ${label} in these runs' records.`,
    ...(trainKey === 'rewards/accuracies' ? { yMin: 0, yMax: 1 } : {}),
  });
}

function summary(runs) {
  $('#compare-summary tbody').replaceChildren(...runs.map((r, i) => {
    const o = r.outcome;
    return el('tr', { 'data-name': r.name },
      el('td', {}, swatch(PALETTE[i % PALETTE.length]), r.name),
      el('td', { text: r.base_model ?? '–' }),
      el('td', { text: r.rank != null ? `${r.rank} / ${r.alpha}` : '–' }),
      el('td', { text: o ? `${o.steps} / ${o.total_steps}` : r.logged_steps ? `${r.logged_steps} logged` : '–' }),
      el('td', { text: o?.stop_reason ?? (r.kind === 'checkpoint' ? 'not finished' : '–') }),
      el('td', { text: fmt(o?.final_loss ?? r.history.at(-1)?.loss) }),
      el('td', { text: fmt(o?.best_eval_loss) }),
      el('td', { text: o ? String(o.train_tokens) : '–' }),
      el('td', { text: duration(o?.elapsed_seconds) }));
  }));
}

function settings(runs, rows) {
  const table = $('#compare-settings');
  table.querySelector('thead').replaceChildren(el('tr', {}, el('th', { text: 'setting' }), ...runs.map((r, i) => el('th', {}, swatch(PALETTE[i % PALETTE.length]), r.name))));
  table.querySelector('tbody').replaceChildren(...rows.map(row => el('tr', { class: row.differs ? 'differs' : undefined, 'data-setting': row.name },
    el('th', { text: row.name }), ...row.values.map(v => el('td', { text: show(v) })))));
  table.dataset.differing = rows.filter(r => r.differs).length;
}

function show(v) {
  if (v === null || v === undefined) return '–';
  if (Array.isArray(v)) return v.map(show).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function swatch(color) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'swatch');
  svg.setAttribute('viewBox', '0 0 16 8');
  const line = document.createElementNS(SVG, 'line');
  for (const [k, v] of Object.entries({ x1: 0, x2: 16, y1: 4, y2: 4, stroke: color, 'stroke-width': 3 })) line.setAttribute(k, v);
  svg.append(line);
  return svg;
}
