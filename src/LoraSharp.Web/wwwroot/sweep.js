// The sweep tab: a sweep config (YAML or JSON, as `lorasharp sweep --config` reads it, with names instead of paths),
// a helper that adds a grid axis from the settings list, Check (the expanded runs or the config's error), Start /
// Stop (after the current step, with a checkpoint) and Start again to resume (finished runs are skipped). While a
// sweep runs the tab polls GET /api/sweep once a second: which run, its live loss chart, the finished rows; at the
// end the results table, the plots the engine wrote, and "Open in Compare" with the sweep's runs.
import { getJson, postJson } from './api.js';
import { $, el, fmt, setMessage } from './dom.js';
import { drawLossChart } from './chart.js';

const ACTIVE = new Set(['preparing', 'training', 'stopping']);

export const EXAMPLE = `# A sweep: every combination of the grid's axes (and/or a list under runs:), each run a normal adapter in
# adapters/sweeps/NAME/. Names, not paths: model is a name in the models folder (or default, the embedded model);
# dataset, eval_dataset, raw_text_file and metric files are names in the datasets folder; format is a format name.
model: default
task: next-number            # the default model's task: its dataset, held-out questions and exact match
settings:
  max_steps: 40
  learning_rate: 3.0e-3
grid:
  lora_rank: [4, 8]
  lora_alpha: ["=1*lora_rank", "=2*lora_rank"]
`;

let sweep = null;          // the last GET /api/sweep answer's sweep
let timer = null;
let onEnded = () => {};

export function initSweep(settings, { onSweepEnded, onCompare }) {
  onEnded = onSweepEnded;
  const config = $('#sweep-config');
  if (!config.value) config.value = EXAMPLE;
  $('#sweep-example').addEventListener('click', () => { config.value = EXAMPLE; });
  const fields = settings.fields.filter(f => f.name !== 'lora_name' && f.name !== 'always_override');
  const axis = $('#sweep-axis');
  axis.replaceChildren(...fields.map(f => el('option', { value: f.name, text: f.name })));
  const suggest = () => {
    const f = fields.find(x => x.name === axis.value);
    $('#sweep-axis-values').value = f?.choices?.length ? f.choices.join(', ') : '';
    $('#sweep-axis-help').textContent = f ? f.help : '';
  };
  axis.addEventListener('change', suggest);
  suggest();
  $('#sweep-add-axis').addEventListener('click', () => {
    const values = $('#sweep-axis-values').value.split(',').map(v => v.trim()).filter(Boolean);
    if (values.length === 0) return setMessage($('#sweep-message'), `Give ${axis.value}'s values, separated by commas.`, true);
    config.value = addAxis(config.value, axis.value, values);
    setMessage($('#sweep-message'), `Added ${axis.value} to grid:.`);
  });
  $('#sweep-check').addEventListener('click', check);
  $('#sweep-form').addEventListener('submit', (e) => { e.preventDefault(); start(); });
  $('#sweep-stop').addEventListener('click', stop);
  $('#sweep-compare').addEventListener('click', () => {
    if (sweep) onCompare(sweep.results.map(r => `sweeps/${sweep.name}/${r.name}`), { updateAddress: true });
  });
  poll();
}

// Adds "  NAME: [values]" under a top-level grid: line (made when missing). Numbers stay numbers; text is quoted.
export function addAxis(text, name, values) {
  const list = '[' + values.map(v => (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(v) || v === 'true' || v === 'false') ? v : JSON.stringify(v)).join(', ') + ']';
  const lines = text.replace(/\s+$/, '').split('\n');
  const at = lines.findIndex(l => /^grid:\s*(#.*)?$/.test(l));
  if (at < 0) return lines.concat(['grid:', `  ${name}: ${list}`]).join('\n') + '\n';
  lines.splice(at + 1, 0, `  ${name}: ${list}`);
  return lines.join('\n') + '\n';
}

function body() {
  return { name: $('#sweep-name').value.trim(), config: $('#sweep-config').value, restart: $('#sweep-restart').checked };
}

async function check() {
  const message = $('#sweep-message');
  setMessage(message, 'checking...');
  try {
    const plan = await postJson('/api/sweep/validate', body());
    showPlan(plan);
    setMessage(message, `${plan.runs.length} runs of ${plan.model} over ${plan.axes.join(', ')}` +
      (plan.resumes ? `; ${plan.resumes} finished before and will be skipped` : '') + '.');
  } catch (e) {
    $('#sweep-plan').hidden = true;
    setMessage(message, e.message, true);
  }
}

function showPlan(plan) {
  const table = $('#sweep-plan');
  table.hidden = false;
  table.tHead.replaceChildren(el('tr', {}, el('th', { text: 'run' }), ...plan.axes.map(a => el('th', { text: a })), el('th', { text: 'settings' })));
  table.tBodies[0].replaceChildren(...plan.runs.map(r => el('tr', {},
    el('td', { text: r.name }), ...plan.axes.map(a => el('td', { text: r.values[a] ?? '-' })),
    el('td', {}, el('details', {}, el('summary', { text: 'all' }), el('pre', { class: 'settings', text: JSON.stringify(r.settings, null, 1) }))))));
}

async function start() {
  const message = $('#sweep-message');
  try {
    const answer = await postJson('/api/sweep', body());
    setMessage(message, 'started.');
    sweep = answer.sweep;
    render();
    schedule();
  } catch (e) {
    setMessage(message, e.message, true);
  }
}

async function stop() {
  try {
    sweep = (await postJson('/api/sweep/interrupt')).sweep;
    render();
  } catch (e) {
    setMessage($('#sweep-message'), e.message, true);
  }
}

async function poll() {
  try {
    const was = sweep && ACTIVE.has(sweep.status);
    sweep = (await getJson('/api/sweep')).sweep;
    if (sweep && !$('#sweep-name').value) { $('#sweep-name').value = sweep.name; $('#sweep-config').value = sweep.config; }
    render();
    if (was && !ACTIVE.has(sweep?.status)) onEnded();
  } catch (e) {
    setMessage($('#sweep-message'), e.message, true);
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(poll, sweep && ACTIVE.has(sweep.status) ? 1000 : 5000);
}

function render() {
  const active = !!sweep && ACTIVE.has(sweep.status);
  $('#sweep-start').disabled = active;
  $('#sweep-stop').disabled = !active;
  const status = $('#sweep-status');
  const view = $('#sweep-view');
  if (!sweep) {
    status.textContent = 'No sweep has run yet.';
    view.dataset.status = '';
    drawLossChart($('#sweep-chart'), []);
    return;
  }
  const run = sweep.current_run > 0 ? sweep.runs[sweep.current_run - 1] : null;
  const last = sweep.history[sweep.history.length - 1];
  let text = `sweep ${sweep.name}: ${sweep.status}, ${sweep.results.length} of ${sweep.runs.length} runs finished`;
  if (active && run) text += ` — run ${run.index}/${sweep.runs.length} ${run.name}` + (sweep.resuming ? ' (resumed)' : '') +
    (last ? `, step ${last.step}/${sweep.total_steps}, loss ${fmt(last.loss)}` : '');
  if (sweep.status === 'interrupted') text += ' — start it again (same name and config) to continue';
  if (sweep.status === 'failed') text += ` — ${sweep.error}`;
  status.textContent = text;
  view.dataset.status = sweep.status;
  view.dataset.finished = sweep.results.length;
  const progress = $('#sweep-progress');
  progress.max = Math.max(1, sweep.runs.length);
  progress.value = sweep.results.length;
  $('#sweep-run-title').textContent = run ? `run ${run.index}: ${run.name}` : '';
  drawLossChart($('#sweep-chart'), sweep.history);
  renderResults();
  $('#sweep-log').textContent = sweep.log.join('\n');
  const plots = sweep.files.filter(f => f.startsWith('plots/') && f.endsWith('.png'));
  $('#sweep-plots').replaceChildren(...plots.map(f => {
    const url = `/api/sweeps/${encodeURIComponent(sweep.name)}/files/${f.split('/').map(encodeURIComponent).join('/')}`;
    return el('figure', {}, el('a', { href: url.replace(/\.png$/, '.svg'), target: '_blank', rel: 'noopener' }, el('img', { src: url, alt: f })), el('figcaption', { text: f }));
  }));
  $('#sweep-compare').disabled = sweep.results.length === 0;
}

function renderResults() {
  const axes = [...new Set(sweep.runs.flatMap(r => Object.keys(r.values)))];
  const cols = [['final loss', r => fmt(r.final_loss)], ['best eval loss', r => fmt(r.best_eval_loss)],
    ['exact match %', r => Number.isFinite(r.exact_match) ? (100 * r.exact_match).toFixed(0) : '–'], ['perplexity', r => fmt(r.perplexity, 3)],
    ['steps', r => String(r.steps)], ['tokens/s', r => Number.isFinite(r.tokens_per_second) ? Math.round(r.tokens_per_second).toString() : '–'],
    ['step ms', r => fmt(1000 * r.step_seconds, 1)], ['trainable params', r => String(r.trainable_parameters)]];
  const table = $('#sweep-results');
  table.tHead.replaceChildren(el('tr', {}, el('th', { text: 'run' }), ...axes.map(a => el('th', { text: a })), ...cols.map(([c]) => el('th', { text: c }))));
  table.tBodies[0].replaceChildren(...sweep.results.map(r => el('tr', {},
    el('td', { text: r.name }), ...axes.map(a => el('td', { text: r.values[a] ?? '-' })), ...cols.map(([, f]) => el('td', { text: f(r) })))));
}
