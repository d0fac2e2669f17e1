// @ts-check
// The run page's "Records" section: every epoch's metrics and every layer record as CSV or JSON Lines files
// (GET /runs/{id}/metrics.csv, …; docs/API.md, "Record files").  Each button asks for a short-lived link made for
// that download (POST /runs/{id}/records/link), so no token goes into an address, the history or the download list.
import {api, qs} from '../../api.js';
import {h, toast} from '../../dom.js';
/** @import {RunContext} from './state.js' */

const FILES = /** @type {const} */ ([
  ['metrics.csv', 'Metrics CSV', 'Every epoch: epoch, then the catalog\'s epoch metrics (one column each)'],
  ['metrics.jsonl', 'Metrics JSONL', 'Every epoch as one JSON object per line'],
  ['layers.csv', 'Layer records CSV', 'Every layer of every epoch: epoch, layer, kind, input_is_real, the catalog\'s layer metrics, then the lists as JSON'],
  ['layers.jsonl', 'Layer records JSONL', 'Every layer record as one JSON object per line'],
]);

/**
 * The section, hidden while the run has recorded no epoch (nothing to download yet).
 * @param {RunContext} ctx
 */
export function runArtifacts(ctx) {
  const buttons = FILES.map(([file, label, title]) => {
    const b = /** @type {HTMLButtonElement} */ (h('button', {type: 'button', dataset: {file}, title}, `${label} ↓`));
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        /** @type {{url: string}} */
        const {url} = await api(`/runs/${ctx.id}/records/link${qs({file})}`, {method: 'POST'});
        const a = h('a', {href: url, download: ''});
        document.body.append(a);
        a.click();
        a.remove();
      } catch (err) { toast(err.message, 'error'); } finally { b.disabled = false; }
    });
    return b;
  });
  const el = h('div', {id: 'run-artifacts', class: 'hidden'}, h('h2', null, 'Records'),
    h('p', {class: 'muted small'}, 'All epochs, never thinned — for a spreadsheet, pandas or a notebook (docs/CLIENT.md).'),
    h('div', {class: 'toolbar'}, ...buttons));

  function render() {
    el.classList.toggle('hidden', !ctx.st.run || ctx.st.run.progress.epochs_done === 0);
  }
  return {el, render};
}
