// The adapters tab: the adapters with their settings and final losses, and the tools that work on the ticked ones:
// merge into the base, export to llama.cpp's GGUF LoRA, combine, and perplexity of base and adapters.
import { postJson } from './api.js';
import { $, el, fillSelect, setMessage, fmt } from './dom.js';

let onChanged = () => {};

export function initAdapters({ onAdaptersChanged }) {
  onChanged = onAdaptersChanged;
  $('#adapters-refresh').addEventListener('click', () => onChanged());
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
  tool('#combine-form', async (picked) => {
    const rank = $('#combine-rank').value;
    const r = await postJson('/api/combine', {
      adapters: picked, method: $('#combine-method').value, rank: rank ? Number(rank) : null, out: $('#combine-out').value,
      overwrite: $('#combine-overwrite').checked,
    });
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
