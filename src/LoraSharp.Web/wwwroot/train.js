// The training tab: the form (built from /api/settings: every setting with its default and the CLI's help text),
// Start / Interrupt, and the live view of the run (status, step, losses, speed, times, chart, log) fed by the
// server's event stream. The stream starts with the run's whole state, so a reload shows a running job as it is.
import { getJson, postJson, upload } from './api.js';
import { $, el, fillSelect, setMessage, fmt, duration } from './dom.js';
import { drawLossChart, drawPreferenceCharts } from './chart.js';

const GROUPS = [
  ['adapter', 'Adapter'], ['data', 'Data'], ['raw_text', 'Raw text'], ['lora', 'LoRA'],
  ['schedule', 'Batches and schedule'], ['control', 'Evaluation, saving and stopping'],
];
const DATA_KINDS = [['formatted', 'formatted dataset + format'], ['chat', 'chat dataset'], ['raw', 'raw text']];
const ACTIVE = new Set(['preparing', 'training', 'stopping']);

let fields = [], defaults = {}, run = null, onEnded = () => {}, redrawQueued = false;

export function initTraining(settings, { onRunEnded }) {
  fields = settings.fields;
  defaults = settings.defaults;
  onEnded = onRunEnded;
  buildForm();
  $('#train-form').addEventListener('submit', (e) => { e.preventDefault(); start(); });
  $('#interrupt').addEventListener('click', interrupt);
  $('#copy-button').addEventListener('click', copyParameters);
  $('#upload-file').addEventListener('change', uploadDataset);
  subscribe();
}

export function updateTrainingLists({ models, datasets, formats, adapters }) {
  fillSelect($('#train-model'), models.map(m => m.name));
  const json = datasets.filter(d => d.kind === 'json').map(d => d.name);
  const text = datasets.filter(d => d.kind !== 'json').map(d => d.name);
  for (const name of ['dataset', 'eval_dataset']) fillSelect($(`#f-${name}`), json, { keepFirst: true });
  fillSelect($('#f-raw_text_file'), text, { keepFirst: true });
  fillSelect($('#f-format'), formats);
  fillSelect($('#copy-from'), adapters.filter(a => a.has_parameters).map(a => a.name), { keepFirst: true });
}

// ---- the form

function buildForm() {
  const root = $('#train-fields');
  for (const [group, title] of GROUPS) {
    const own = fields.filter(f => f.group === group);
    const set = el('fieldset', { id: `group-${group}` }, el('legend', { text: title }));
    if (group === 'data') set.append(dataKindChooser());
    set.append(el('div', { class: 'fields' }, ...own.filter(f => !f.advanced).map(fieldView)));
    const advanced = own.filter(f => f.advanced);
    if (advanced.length) set.append(el('details', {}, el('summary', { text: 'Advanced' }), el('div', { class: 'fields' }, ...advanced.map(fieldView))));
    root.append(set);
  }
  const rank = $('#f-lora_rank'), alpha = $('#f-lora_alpha');
  alpha.addEventListener('input', () => { alpha.dataset.touched = '1'; });
  rank.addEventListener('input', () => { if (!alpha.dataset.touched && rank.value) alpha.value = 2 * Number(rank.value); });
  showDataKind('formatted');
}

function dataKindChooser() {
  return el('div', { class: 'row', id: 'data-kind' }, ...DATA_KINDS.map(([value, text]) => {
    const input = el('input', { type: 'radio', name: 'data-kind', value, checked: value === 'formatted' });
    input.addEventListener('change', () => showDataKind(value));
    return el('label', { class: 'check' }, input, text);
  }));
}

function showDataKind(kind) {
  document.querySelector(`input[name=data-kind][value=${kind}]`).checked = true;
  const visible = { dataset: kind !== 'raw', format: kind === 'formatted', raw_text_file: kind === 'raw' };
  for (const [name, show] of Object.entries(visible)) $(`#f-${name}`).closest('.field').hidden = !show;
  $('#group-raw_text').hidden = kind !== 'raw';
}

function dataKind() { return document.querySelector('input[name=data-kind]:checked').value; }

function fieldView(f) {
  const id = `f-${f.name}`, def = defaults[f.name];
  let input;
  switch (f.kind) {
    case 'boolean': input = el('input', { id, type: 'checkbox', checked: !!def }); break;
    case 'choice': input = el('select', { id }, ...f.choices.map(c => el('option', { value: c, text: c }))); input.value = def ?? f.choices[0]; break;
    case 'list': input = el('div', { id, class: 'modules' }, ...f.choices.map(c =>
      el('label', { class: 'check' }, el('input', { type: 'checkbox', value: c, checked: (def ?? []).includes(c) }), c))); break;
    case 'dataset': input = el('select', { id }, el('option', { value: '', text: '(none)' })); break;
    case 'format': input = el('select', { id }); break;
    case 'integer': input = el('input', { id, type: 'number', step: '1', value: def, ...bounds(f) }); break;
    case 'number': input = el('input', { id, type: 'number', step: 'any', value: def, ...bounds(f) }); break;
    default: input = el('input', { id, type: 'text' }); writeField(f, input, def);
  }
  // the default as the CLI's help shows it: the schema's words where it depends on other settings (lora_alpha: 2 x rank)
  const quiet = f.kind === 'dataset' || f.kind === 'format' || ((def === null || def === undefined) && !f.default_text);
  const shown = quiet ? '' : ` (default ${f.default_text ?? display(f, def)})`;
  const label = f.kind === 'boolean'
    ? el('label', { class: 'check' }, input, f.name)
    : el('label', { for: id }, f.name, input);
  return el('div', { class: 'field' }, label, el('p', { class: 'help', text: `${f.help} ${f.cli}${shown}` }));
}

// "[0, 1)" -> {min: "0", max: "1"}: the browser's own hints; the server checks the open ends (it names the setting).
function bounds(f) {
  if (!f.range) return {};
  const [lo, hi] = f.range.slice(1, -1).split(',').map(s => s.trim());
  return hi === 'inf' ? { min: lo } : { min: lo, max: hi };
}

function display(f, value) {
  if (f.kind === 'pattern') return JSON.stringify(value);
  if (Array.isArray(value)) return value.join(' ');
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function writeField(f, input, value) {
  switch (f.kind) {
    case 'boolean': input.checked = !!value; break;
    case 'list': for (const box of input.querySelectorAll('input')) box.checked = (value ?? []).includes(box.value); break;
    case 'integer_list': input.value = (value ?? []).join(' '); break;
    case 'pattern': input.value = Object.entries(value ?? {}).map(([k, v]) => `${k}=${v}`).join(','); break;
    case 'text': input.value = (value ?? '').replaceAll('\n', '\\n'); break;
    default: input.value = value ?? '';
  }
}

function readField(f) {
  const input = $(`#f-${f.name}`), def = defaults[f.name], raw = input.value?.trim?.() ?? '';
  switch (f.kind) {
    case 'boolean': return input.checked;
    case 'list': { const on = [...input.querySelectorAll('input:checked')].map(b => b.value); return on.length ? on : def; }
    case 'integer': if (raw === '') return def; if (!/^-?\d+$/.test(raw)) throw new Error(`${f.name}: '${raw}' is not a whole number.`); return Number(raw);
    case 'number': { if (raw === '') return def; const v = Number(raw); if (!Number.isFinite(v)) throw new Error(`${f.name}: '${raw}' is not a number.`); return v; }
    case 'integer_list': return raw === '' ? null : raw.split(/[\s,]+/).map(x => { if (!/^\d+$/.test(x)) throw new Error(`${f.name}: '${x}' is not a layer number.`); return Number(x); });
    case 'pattern': return Object.fromEntries(raw === '' ? [] : raw.split(',').map(item => {
      const [k, v] = item.split('=').map(s => s.trim());
      if (!k || v === undefined || !Number.isFinite(Number(v))) throw new Error(`${f.name}: '${item}' is not module=number (for example q_proj=4).`);
      return [k, Number(v)];
    }));
    case 'dataset': case 'format': return raw === '' ? null : raw;
    case 'text': return f.name === 'hard_cut_string' ? input.value : raw === '' ? (def ?? null) : raw;
    default: return raw;
  }
}

function collect() {
  const s = { ...defaults };
  for (const f of fields) s[f.name] = readField(f);
  const kind = dataKind();
  if (kind === 'raw') { s.dataset = null; s.format = null; } else s.raw_text_file = null;
  if (kind === 'chat') s.format = 'chat';
  return s;
}

function fill(settings) {
  for (const f of fields) if (f.name in settings) writeField(f, $(`#f-${f.name}`), settings[f.name]);
  $('#f-lora_alpha').dataset.touched = '1';
  showDataKind(settings.raw_text_file ? 'raw' : settings.format === 'chat' ? 'chat' : 'formatted');
}

// ---- actions

async function start() {
  const message = $('#train-message');
  try {
    const body = { model: $('#train-model').value, settings: collect(), resume: $('#train-resume').checked };
    setMessage(message, 'starting...');
    await postJson('/api/train', body);
    setMessage(message, 'started.');
  } catch (e) {
    setMessage(message, e.message, true);
  }
}

async function interrupt() {
  try {
    await postJson('/api/train/interrupt', {});
    setMessage($('#train-message'), 'stopping after the current step; a checkpoint is saved.');
  } catch (e) {
    setMessage($('#train-message'), e.message, true);
  }
}

async function copyParameters() {
  const name = $('#copy-from').value;
  if (!name) return setMessage($('#train-message'), 'Pick an adapter to copy its parameters from.', true);
  try {
    fill((await getJson(`/api/adapters/${encodeURIComponent(name)}/parameters`)).settings);
    setMessage($('#train-message'), `parameters copied from ${name}; datasets outside the datasets folder are left empty.`);
  } catch (e) {
    setMessage($('#train-message'), e.message, true);
  }
}

async function uploadDataset(e) {
  const file = e.target.files[0];
  if (!file) return;
  try {
    await upload(`/api/datasets?name=${encodeURIComponent(file.name)}`, file);
    setMessage($('#train-message'), `uploaded ${file.name}.`);
    onEnded();
  } catch (err) {
    setMessage($('#train-message'), err.message, true);
  }
  e.target.value = '';
}

// ---- the live view

function subscribe() {
  const events = new EventSource('/api/train/events');
  events.addEventListener('snapshot', (e) => {
    const was = run;
    run = JSON.parse(e.data).run;
    render();
    if (was && ACTIVE.has(was.status) && run && !ACTIVE.has(run.status)) onEnded();
  });
  events.addEventListener('step', (e) => {
    const { run_id, step } = JSON.parse(e.data);
    if (!run || run.run_id !== run_id) return;
    run.history.push(step);
    queueRedraw();
  });
  events.addEventListener('info', (e) => {
    const { run_id, line } = JSON.parse(e.data);
    if (!run || run.run_id !== run_id) return;
    run.log.push(line);
    $('#train-log').append(line + '\n');
  });
}

function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => { redrawQueued = false; renderProgress(); });
}

function render() {
  const active = !!run && ACTIVE.has(run.status);
  $('#start').disabled = active;
  $('#interrupt').disabled = !active;
  $('#train-log').textContent = run ? run.log.join('\n') + (run.log.length ? '\n' : '') : '';
  renderProgress();
}

function renderProgress() {
  const status = $('#status-line');
  if (!run) {
    status.textContent = 'No training has run yet.';
    drawLossChart($('#loss-chart'), []);
    $('#pref-charts').hidden = !drawPreferenceCharts($('#rewards-chart'), $('#accuracy-chart'), []);
    return;
  }
  const last = run.history[run.history.length - 1];
  const lastEval = [...run.history].reverse().find(h => Number.isFinite(h.eval_loss));
  const step = last?.step ?? run.resumed_at_step;
  let text = `${run.name} on ${run.model}: ${run.status}`;
  if (run.status === 'finished' || run.status === 'interrupted') text += ` (${run.outcome?.stop_reason ?? run.status}) — adapter ${run.adapter ?? run.name}`;
  if (run.status === 'failed') text += ` — ${run.error}`;
  status.textContent = text;
  status.dataset.status = run.status;
  const progress = $('#progress');
  progress.max = Math.max(1, run.total_steps);
  progress.value = step;
  $('#m-step').textContent = run.total_steps ? `${step} / ${run.total_steps}` : '–';
  $('#m-loss').textContent = fmt(last?.loss);
  $('#m-eval').textContent = fmt(lastEval?.eval_loss ?? run.outcome?.final_eval_loss);
  // dpo / orpo runs: the preference metrics (TRL's names), training and last evaluation
  const lastPrefEval = [...run.history].reverse().find(h => Number.isFinite(h['eval_rewards/margins']));
  $('#m-margin').textContent = Number.isFinite(last?.['rewards/margins'])
    ? fmt(last['rewards/margins']) + (lastPrefEval ? ` (eval ${fmt(lastPrefEval['eval_rewards/margins'])})` : '') : '–';
  $('#m-accuracy').textContent = Number.isFinite(last?.['rewards/accuracies'])
    ? fmt(last['rewards/accuracies']) + (lastPrefEval ? ` (eval ${fmt(lastPrefEval['eval_rewards/accuracies'])})` : '') : '–';
  $('#m-speed').textContent = last ? Math.round(last.tokens_per_second).toString() : '–';
  $('#m-elapsed').textContent = duration(last?.elapsed_seconds);
  $('#m-remaining').textContent = ACTIVE.has(run.status) ? duration(last?.remaining_seconds) : duration(0);
  drawLossChart($('#loss-chart'), run.history);
  $('#m-rewards').textContent = Number.isFinite(last?.['rewards/chosen']) ? `${fmt(last['rewards/chosen'], 3)} / ${fmt(last['rewards/rejected'], 3)}` : '–';
  $('#pref-charts').hidden = !drawPreferenceCharts($('#rewards-chart'), $('#accuracy-chart'), run.history);
}
