// The adapters tab: the adapters with their settings and final losses, and the tools that work on the ticked ones:
// merge into the base, export to llama.cpp's GGUF LoRA, combine, and perplexity of base and adapters.
import { postJson } from './api.js';
import { $, el, fillSelect, setMessage, fmt } from './dom.js';

let onChanged = () => {};

export function initAdapters({ onAdaptersChanged, onCompare }) {
  onChanged = onAdaptersChanged;
  $('#adapters-refresh').addEventListener('click', () => onChanged());
  $('#adapters-compare').addEventListener('click', () => {
    const names = [...document.querySelectorAll('#adapters-table tbody tr')].filter(tr => tr.querySelector('input[type=checkbox]').checked).map(tr => tr.dataset.name);
    if (names.length === 0) return setMessage($('#tool-message'), 'Tick the adapters to compare in the list.', true);
    onCompare(names, { updateAddress: true });
  });
  tool('#merge-form', async (picked) => {
    const r = await postJson('/api/merge', {
      model: $('#merge-model').value, adapters: picked, out: $('#merge-out').value, format: $('#merge-format').value,
      dtype: $('#merge-dtype').value || null, overwrite: $('#merge-overwrite').checked,
    });
    return `merged ${r.merged_weights} weights (${r.dtype}) into models/${r.output}` + (r.notes.length ? ` — ${r.notes.join(' ')}` : '');
  });
  tool('#export-form', async (picked) => {
    if (picked.length !== 1) throw new Error('Tick exactly one adapter to export.');
    const r = await postJson('/api/export', {
      adapter: picked[0].name, model: $('#export-model').value, out: $('#export-out').value || null,
      dtype: $('#export-dtype').value, overwrite: $('#export-overwrite').checked,
    });
    return `exported ${r.modules} modules to adapters/${r.output}`;
  });
  $('#combine-method').addEventListener('change', showCombineFields);
  showCombineFields();
  tool('#combine-form', async (picked) => {
    const method = $('#combine-method').value, uses = combineUses(method);
    const body = { adapters: picked, method, out: $('#combine-out').value, overwrite: $('#combine-overwrite').checked };
    // Only the fields the method uses travel (the server refuses a non-default one that the method would ignore).
    if (uses.svd && $('#combine-rank').value) body.rank = integer('#combine-rank', 'Rank', 1);
    if (uses.density) {
      const d = Number($('#combine-density').value);
      if (!($('#combine-density').value !== '' && d > 0 && d <= 1)) throw new Error('Density must be a number in (0, 1]: the share of each task tensor kept (1 keeps everything).');
      body.density = d;
    }
    if (uses.sign) body.majority_sign_method = $('#combine-majority_sign_method').value;
    if (uses.dare) body.seed = integer('#combine-seed', 'Seed', 0);
    const r = await postJson('/api/combine', body);
    return `combined into adapters/${r.output}: ${r.modules} modules, rank ${r.ranks.join('/')}`;
  });
  tool('#perplexity-form', async (picked) => {
    const rows = $('#ppl-results tbody');
    rows.replaceChildren();
    const common = { model: $('#ppl-model').value, file: $('#ppl-file').value };
    for (const name of ['max_length', 'stride', 'max_tokens']) common[name] = Number($(`#ppl-${name}`).value || 0);
    for (const adapter of [null, ...picked.map(p => p.name)]) {
      const r = await postJson('/api/perplexity', { ...common, adapter });
      rows.append(el('tr', {}, el('td', { text: adapter ?? '(base)' }), el('td', { text: `perplexity ${fmt(r.perplexity, 3)}` }),
        el('td', { text: `${r.scored_tokens} tokens, ${r.windows} windows` })));
    }
    return 'perplexity done.';
  }, false);
}

// Which of the combine form's settings a PEFT combination_type uses (AdapterCombiner): rank for the SVD ones, density
// for the pruning ones (ties, dare_*, magnitude_prune), the majority sign for the TIES sign election, the seed for DARE.
export function combineUses(method) {
  const base = method.replace(/_svd$/, '');
  return {
    svd: method === 'svd' || method.endsWith('_svd'),
    density: ['ties', 'dare_linear', 'dare_ties', 'magnitude_prune'].includes(base),
    sign: base === 'ties' || base === 'dare_ties',
    dare: base.startsWith('dare_'),
  };
}

const methodHelp = {
  linear: 'weighted sum of A and of B; equal ranks', cat: 'ranks add; exact sum of the deltas', svd: 'weighted sum of the deltas, truncated SVD',
  ties: 'TIES on A and B: prune to density, elect signs, disjoint mean', dare_linear: 'DARE: random pruning to density, rescaled, weighted sum',
  dare_ties: 'DARE pruning, then TIES sign election', magnitude_prune: 'keep the largest |values| (density), weighted sum',
};

function showCombineFields() {
  const method = $('#combine-method').value, uses = combineUses(method);
  for (const label of document.querySelectorAll('#combine-form label[data-for]')) label.hidden = !uses[label.dataset.for];
  const base = method.replace(/_svd$/, '');
  $('#combine-method-help').textContent = methodHelp[base] + (method.endsWith('_svd') ? ', on the deltas, then truncated SVD' : '');
}

function integer(selector, what, min) {
  const text = $(selector).value, n = Number(text);
  if (text === '' || !Number.isInteger(n) || n < min) throw new Error(`${what} must be a whole number of at least ${min} (is '${text}').`);
  return n;
}

function tool(form, run, needsAdapter = true) {
  $(form).addEventListener('submit', async (e) => {
    e.preventDefault();
    const message = $('#tool-message');
    const picked = [...document.querySelectorAll('#adapters-table tbody tr')].filter(tr => tr.querySelector('input[type=checkbox]').checked)
      .map(tr => ({ name: tr.dataset.name, scale: Number(tr.querySelector('input[type=number]').value || 1) }));
    if (needsAdapter && picked.length === 0) return setMessage(message, 'Tick at least one adapter in the list.', true);
    const button = e.target.querySelector('button');
    button.disabled = true;
    setMessage(message, 'working...');
    try {
      setMessage(message, await run(picked));
      onChanged();
    } catch (err) {
      setMessage(message, err.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

export function updateAdapterLists({ models, datasets, adapters }) {
  for (const select of document.querySelectorAll('.model-select')) fillSelect(select, models.map(m => m.name));
  fillSelect($('#ppl-file'), datasets.filter(d => d.kind === 'text').map(d => d.name));
  const body = $('#adapters-table tbody');
  const ticked = new Set([...body.querySelectorAll('tr')].filter(tr => tr.querySelector('input:checked')).map(tr => tr.dataset.name));
  body.replaceChildren(...adapters.map(a => el('tr', { 'data-name': a.name },
    el('td', {}, el('input', { type: 'checkbox', checked: ticked.has(a.name) })),
    el('td', { text: a.name + (a.kind === 'peft' ? '' : ` (${a.kind})`), title: a.problem ?? undefined }),
    el('td', {}, el('input', { type: 'number', step: 'any', value: '1' })),
    el('td', { text: a.base_model ?? '–' }),
    el('td', { text: a.rank != null ? `${a.rank} / ${a.alpha}` : '–' }),
    el('td', { text: a.target_modules.join(' ') || '–' }),
    el('td', { text: a.steps != null ? `${a.steps} / ${a.total_steps}` : '–' }),
    el('td', { text: a.stop_reason ?? '–' }),
    el('td', { text: fmt(a.final_loss) }),
    el('td', { text: fmt(a.final_eval_loss) }))));
}
