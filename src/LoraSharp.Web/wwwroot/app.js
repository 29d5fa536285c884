// Entry of the web UI: tab switching, the shared lists (models, datasets, formats, adapters) that every tab's
// pickers use, refreshed after anything that changes a folder, and the three tabs' start-up.
import { getJson } from './api.js';
import { $ } from './dom.js';
import { initTraining, updateTrainingLists } from './train.js';
import { initGenerate, updateGenerateLists } from './generate.js';
import { initAdapters, updateAdapterLists } from './adapters.js';

for (const button of document.querySelectorAll('#tabs button')) {
  button.addEventListener('click', () => {
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b === button);
    for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.id === `tab-${button.dataset.tab}`);
  });
}

async function refreshLists() {
  const [models, datasets, formats, adapters] = await Promise.all(
    ['/api/models', '/api/datasets', '/api/formats', '/api/adapters'].map(getJson));
  const lists = { models, datasets, formats, adapters };
  updateTrainingLists(lists);
  updateGenerateLists(lists);
  updateAdapterLists(lists);
  document.body.dataset.adapters = adapters.map(a => a.name).join(' ');
}

async function main() {
  const [settings, info] = await Promise.all([getJson('/api/settings'), getJson('/api/info')]);
  $('#server-note').textContent = `v${info.version}` + (info.token_required ? ' · access token required' : ' · loopback only');
  const refresh = () => refreshLists().catch(e => { $('#server-note').textContent = e.message; });
  initTraining(settings, { onRunEnded: refresh });
  initGenerate(settings);
  initAdapters({ onAdaptersChanged: refresh });
  await refreshLists();
  document.body.dataset.ready = '1';
}

main().catch(e => { $('#server-note').textContent = `could not start: ${e.message}`; });
