// Entry of the web UI: tab switching, the shared lists (models, datasets, formats, adapters) that every tab's
// pickers use, refreshed after anything that changes a folder, and the tabs' start-up.
import { getJson } from './api.js';
import { $, showTab } from './dom.js';
import { initTraining, updateTrainingLists } from './train.js';
import { initGenerate, updateGenerateLists } from './generate.js';
import { initAdapters, updateAdapterLists } from './adapters.js';
import { initCompare, updateCompareLists, fromAddress, openCompare } from './compare.js';

for (const button of document.querySelectorAll('#tabs button')) {
  button.addEventListener('click', () => showTab(button.dataset.tab));
}

async function refreshLists() {
  const [models, datasets, formats, adapters] = await Promise.all(
    ['/api/models', '/api/datasets', '/api/formats', '/api/adapters'].map(getJson));
  const lists = { models, datasets, formats, adapters };
  updateTrainingLists(lists);
  updateGenerateLists(lists);
  updateAdapterLists(lists);
  updateCompareLists(lists);
  document.body.dataset.adapters = adapters.map(a => a.name).join(' ');
}

async function main() {
  const [settings, info] = await Promise.all([getJson('/api/settings'), getJson('/api/info')]);
  $('#server-note').textContent = `v${info.version}` + (info.token_required ? ' · access token required' : ' · loopback only');
  const refresh = () => refreshLists().catch(e => { $('#server-note').textContent = e.message; });
  initTraining(settings, { onRunEnded: refresh });
  initGenerate(settings);
  initAdapters({ onAdaptersChanged: refresh, onCompare: openCompare });
  initCompare();
  await refreshLists();
  fromAddress();
  document.body.dataset.ready = '1';
}

main().catch(e => { $('#server-note').textContent = `could not start: ${e.message}`; });
