// The generate tab: one prompt and the sampling settings (defaults from the server), answered by the base model
// and by base + adapter side by side, each streamed into its pane as the server produces it.
import { readEvents } from './api.js';
import { $, el, fillSelect, setMessage } from './dom.js';

const SAMPLING = [
  ['max_new_tokens', 'max new tokens', '1'], ['temperature', 'temperature (0 = greedy)', 'any'], ['top_k', 'top k (0 = off)', '1'],
  ['top_p', 'top p (1 = off)', 'any'], ['min_p', 'min p (0 = off)', 'any'], ['repetition_penalty', 'repetition penalty (1 = off)', 'any'],
  ['seed', 'seed', '1'],
];

let running = null;

export function initGenerate(settings) {
  const row = $('#gen-sampling');
  for (const [name, label, step] of SAMPLING)
    row.append(el('label', {}, label, el('input', { id: `gen-${name}`, type: 'number', step, value: settings.generation[name] })));
  $('#generate-form').addEventListener('submit', (e) => { e.preventDefault(); generate(); });
  $('#gen-stop-button').addEventListener('click', () => running?.abort());
}

export function updateGenerateLists({ models, adapters }) {
  fillSelect($('#gen-model'), models.map(m => m.name));
  fillSelect($('#gen-adapter'), adapters.filter(a => a.kind === 'peft' || a.kind === 'gguf').map(a => a.name), { keepFirst: true });
}

async function generate() {
  const message = $('#gen-message');
  const body = { model: $('#gen-model').value, adapter: $('#gen-adapter').value || null, adapter_scale: Number($('#gen-adapter_scale').value || 1), prompt: $('#gen-prompt').value };
  for (const [name] of SAMPLING) body[name] = Number($(`#gen-${name}`).value);
  body.stop = $('#gen-stop').value.split('\n').filter(s => s.length > 0);
  body.chat = $('#gen-chat').checked;
  body.chat_template = $('#gen-chat_template').value || null;
  body.system = $('#gen-system').value || null;
  for (const side of ['base', 'adapter']) { $(`#out-${side}`).textContent = ''; $(`#stat-${side}`).textContent = ''; }
  if (!body.adapter) $('#stat-adapter').textContent = 'no adapter selected';
  running?.abort();
  running = new AbortController();
  $('#generate').disabled = true;
  setMessage(message, 'generating...');
  try {
    const response = await fetch('/api/generate', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: running.signal,
    });
    await readEvents(response, (name, data) => {
      if (name === 'start') $(`#out-${data.side}`).textContent = body.prompt;
      else if (name === 'text') $(`#out-${data.side}`).append(data.text);
      else if (name === 'done') $(`#stat-${data.side}`).textContent = `${data.tokens} tokens, ${data.tokens_per_second.toFixed(1)} tokens/s, stopped by ${data.stop_reason}`;
      else if (name === 'error') setMessage(message, data.error, true);
      else if (name === 'end') setMessage(message, 'done.');
    });
  } catch (e) {
    setMessage(message, e.name === 'AbortError' ? 'stopped.' : e.message, e.name !== 'AbortError');
  } finally {
    $('#generate').disabled = false;
    running = null;
  }
}
