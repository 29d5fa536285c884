// Small DOM helpers. Everything from the server is inserted as text (textContent, option values), never as HTML.

export const $ = (selector) => document.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// Replaces the options of <select> (keeping a first "(none)" option when asked), keeping the selection if it still exists.
export function fillSelect(select, values, { keepFirst = false } = {}) {
  const selected = select.value;
  const first = keepFirst ? select.options[0] : null;
  select.replaceChildren(...(first ? [first] : []), ...values.map(v => el('option', { value: v, text: v })));
  if (values.includes(selected)) select.value = selected;
}

export function setMessage(node, text, isError = false) {
  node.textContent = text ?? '';
  node.classList.toggle('error', !!isError);
}

export function fmt(x, digits = 4) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return (h > 0 ? `${h}:${pad(m)}` : `${m}`) + `:${pad(s % 60)}`;
}

// Shows one tab (train, generate, adapters, compare) and marks its button.
export function showTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.id === `tab-${name}`);
}
