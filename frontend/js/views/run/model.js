// @ts-check
// The run page's "Exported model" panel (docs/EXPORT.md, "Serving"): for a finished run, the .gxn download (the
// best-validation model or the latest checkpoint's), its size at rest against float32, the integer engine's
// latency per sample at batch 1 and 64 on the serving machine, and the gate events the engine executed on the run's
// probe batch next to the cost model's counts of that epoch.  Closed by default and fetched when first opened: the
// profile runs the engine on the server.
import {api, qs} from '../../api.js';
import {fill, h, toast} from '../../dom.js';
import {fmtInt, fmtNum} from '../../util.js';
/** @import {CostsOut, ModelProfile} from '../../types' */
/** @import {RunContext} from './state.js' */

/** @param {number} bytes */
function fmtBytes(bytes) {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(2)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** @param {number} ms */
function fmtMs(ms) {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`;
}

/**
 * A cell with its exact value in a tooltip and a data attribute (what the browser test reads).
 * @param {string} key
 * @param {string} text
 * @param {number | null} exact
 */
function cell(key, text, exact) {
  return h('td', {dataset: {figure: key}, title: exact === null ? null : String(exact), text});
}

/** @param {RunContext} ctx */
export function modelPanel(ctx) {
  const {id, life} = ctx;
  /** @type {{which: 'best' | 'latest', loaded: string | null, loading: boolean}} */
  const st = {which: 'best', loaded: null, loading: false};

  const which = /** @type {HTMLSelectElement} */ (h('select', {id: 'model-which', title: 'Which checkpoint to export'},
    h('option', {value: 'best'}, 'best-validation model'), h('option', {value: 'latest'}, 'latest checkpoint')));
  const dl = /** @type {HTMLButtonElement} */ (h('button', {type: 'button', id: 'model-download',
    title: 'The model as a .gxn file (gxnor infer, gxnor_core.engine)'}, 'Download .gxn ↓'));
  const body = h('div', {class: 'model-body'}, h('p', {class: 'muted'}, 'Loading…'));
  const el = h('details', {class: 'panel costs-panel', id: 'run-model-panel'},
    h('summary', null, h('strong', null, 'Exported model'),
      h('span', {class: 'muted small'}, ' — the .gxn file, its size, and the integer engine measured on this server')),
    h('div', {class: 'toolbar'}, which, dl), body);

  which.addEventListener('change', () => {
    st.which = /** @type {'best' | 'latest'} */ (which.value);
    if (el.open) load();
  });
  el.addEventListener('toggle', () => { if (el.open && st.loaded !== st.which && !st.loading) load(); });

  dl.addEventListener('click', async () => {
    dl.disabled = true;
    try {
      /** @type {{url: string}} */
      const {url} = await api(`/runs/${id}/model/link${qs({which: st.which})}`, {method: 'POST'});
      const a = h('a', {href: url, download: ''});
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) { toast(err.message, 'error'); } finally { dl.disabled = false; }
  });

  async function load() {
    const asked = st.which;
    st.loading = true;
    fill(body, h('p', {class: 'muted'}, 'Exporting and timing the model on the server…'));
    try {
      /** @type {ModelProfile} */
      const prof = await api(`/runs/${id}/model/profile${qs({which: asked})}`, {signal: life.signal});
      /** @type {CostsOut | null} */
      const costs = prof.epoch === null ? null : await api(`/runs/${id}/costs${qs({epoch: prof.epoch})}`, {signal: life.signal})
        .catch((/** @type {any} */ err) => { if (err.status === 404) return null; throw err; });
      if (!life.alive || asked !== st.which) return;
      st.loaded = asked;
      render(prof, costs);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      if (err.status === 422) {  // the network cannot be exported: say why (the server names the config field)
        dl.disabled = true;
        fill(body, h('p', {class: 'empty', id: 'model-refused', text: `This run's network cannot be exported: ${err.message}`}));
        st.loaded = asked;
        return;
      }
      fill(body, h('div', {class: 'banner error', role: 'alert', text: `Could not load the exported model: ${err.message}`}),
        h('button', {type: 'button', onclick: () => load()}, 'Try again'));
    } finally {
      st.loading = false;
    }
  }

  /**
   * @param {ModelProfile} prof
   * @param {CostsOut | null} costs
   */
  function render(prof, costs) {
    const ratio = prof.size_bytes / prof.fp32_bytes;
    const sizes = h('table', {class: 'data', id: 'model-size'},
      h('thead', null, h('tr', null, h('th', null, '.gxn at rest'), h('th', null, 'float32 weights + BatchNorm'), h('th', null, 'ratio'))),
      h('tbody', null, h('tr', null,
        cell('size_bytes', fmtBytes(prof.size_bytes), prof.size_bytes),
        cell('fp32_bytes', fmtBytes(prof.fp32_bytes), prof.fp32_bytes),
        cell('size_ratio', `1/${fmtNum(1 / ratio, 3)}`, ratio))));
    const latency = h('table', {class: 'data', id: 'model-latency'},
      h('thead', null, h('tr', null, h('th', null, 'batch'), h('th', null, 'per sample'), h('th', null, 'per batch'))),
      h('tbody', null, ...prof.latency.map((r) => h('tr', {dataset: {batch: String(r.batch)}},
        h('td', {text: String(r.batch)}),
        cell('ms_per_sample', fmtMs(r.ms_per_sample), r.ms_per_sample),
        cell('ms_per_batch', fmtMs(r.ms_per_batch), r.ms_per_batch)))));
    const run = costs?.schemes.find((s) => s.name === 'run') ?? null;
    const counted = /** @type {Record<string, number>} */ (Object.fromEntries((run?.layers ?? []).map((l) => [l.layer, l.xnor])));
    const names = Object.keys(prof.events.per_sample);
    const events = names.length ? h('table', {class: 'data', id: 'model-events'},
      h('thead', null, h('tr', null, h('th', null, 'XNOR layer'), h('th', {title: 'Gate events the engine executed per sample'}, 'executed (engine)'),
        h('th', {title: 'Gate events per sample of the cost model (the probes), this epoch'}, 'cost model'), h('th', null, ''))),
      h('tbody', null, ...names.map((name) => {
        const got = prof.events.per_sample[name];
        const want = name in counted ? counted[name] : null;
        const same = want !== null && Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want));
        return h('tr', {dataset: {layer: name}},
          h('td', {text: name}), cell('executed', fmtInt(got), got), cell('counted', want === null ? '—' : fmtInt(want), want),
          h('td', {class: same ? 'ok' : 'muted', text: want === null ? 'not recorded' : same ? 'equal' : 'differ'}));
      }))) : h('p', {class: 'muted'}, 'No XNOR layer: no gate events.');
    const epoch = prof.epoch === null ? '' : ` of epoch ${prof.epoch}`;
    fill(body,
      h('p', {class: 'muted small', id: 'model-basis'},
        `The ${prof.which === 'best' ? 'best-validation model' : 'latest checkpoint'}${epoch}, format version ${prof.format_version}: `
        + `input ${prof.input_shape.join('×')}, ${prof.classes} classes, ${prof.layers.length} layers.`),
      h('h3', null, 'Size at rest'), sizes,
      h('h3', null, 'Latency on this server'),
      h('p', {class: 'muted small'}, `The integer engine on random inputs of the model's shape: median of ${prof.latency.map((r) => r.repeats).join(' and ')} runs, measured ${prof.measured_at}.`),
      latency,
      h('h3', null, 'Gate events per sample'),
      h('p', {class: 'muted small'}, `Executed by the engine on the run's probe batch (${fmtInt(prof.events.samples)} samples of the ${prof.events.split === 'val' ? 'validation' : 'test'} split), `
        + 'next to the cost model\'s count of the same epoch (GET /runs/{id}/costs).'),
      events);
  }

  return {el};
}
