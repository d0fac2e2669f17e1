// @ts-check
// The run page's cost-model panel (GET /runs/{id}/costs; docs/METHOD.md §6): per layer and for the run, the
// operations one inference of one sample executes and their energy, as this run measured them and as the same
// network would run in full precision, as a BWN, a TWN and a BNN — each scheme's assumption beside its numbers.
// Closed by default and fetched when first opened (`?costs=1` opens it), so the run page loads no faster or
// slower for it.
import {endpoints} from '../../api.js';
import {COUNT_COLUMNS, costCatalog, countCell, countHead, energySource, fmtEnergy, restingShare, schemeCell, vsFullPrecision} from '../../costs.js';
import {fill, h} from '../../dom.js';
import {download, fmtCompact, fmtInt, toCSV} from '../../util.js';
/** @import {CostCatalog, CostLayer, CostsOut} from '../../types' */
/** @import {RunContext} from './state.js' */

/** How the panel names a layer's type (CostLayer.type). */
const TYPES = /** @type {Record<string, {text: string, title: string}>} */ ({
  xnor: {text: 'XNOR', title: 'Discrete weights and discrete input: a MAC with both operands non-zero is a gated XNOR (a gate event); the others rest.'},
  real_input: {text: 'real input', title: 'Its input is real-valued (the data, or ReLU outputs): never gated, so it runs dense, skipping only zero weights. Its non-zero multiplies are not gate events.'},
  float_weights: {text: 'float weights', title: 'Discrete input, full-precision weights: zero inputs are skipped; the others are float adds/subtracts or multiply-adds.'},
});

/** Whether the page's address asks for the panel open (`#/runs/7?costs=1`). */
function askedOpen() {
  return new URLSearchParams(location.hash.split('?')[1] || '').get('costs') === '1';
}

/**
 * Keep `costs=1` in the address while the panel is open (other parameters stay as they are).
 * @param {boolean} open
 */
function rememberOpen(open) {
  const [path, query] = location.hash.split('?');
  const q = new URLSearchParams(query || '');
  if (open) q.set('costs', '1'); else q.delete('costs');
  const s = q.toString();
  const hash = `${path}${s ? `?${s}` : ''}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

/** @param {RunContext} ctx */
export function costsPanel(ctx) {
  const {id, life} = ctx;
  /** @type {{data: CostsOut | null, cc: CostCatalog | null, epoch: number | null, scheme: string, loading: boolean}} */
  const st = {data: null, cc: null, epoch: null, scheme: 'run', loading: false};

  const body = h('div', {class: 'costs-body'}, h('p', {class: 'muted'}, 'Loading…'));
  const el = h('details', {class: 'panel costs-panel', id: 'run-costs', open: askedOpen()},
    h('summary', null, h('strong', null, 'Operation counts and energy'),
      h('span', {class: 'muted small'}, ' — this run next to the same network as full precision, BWN, TWN and BNN (cost model)')),
    body);

  el.addEventListener('toggle', () => {
    rememberOpen(el.open);
    // first opening, or reopened after the run recorded more epochs (when showing the last one)
    const done = ctx.st.run?.progress?.epochs_done ?? 0;
    if (el.open && !st.loading && (!st.data || (st.epoch === null && st.data.epoch !== null && done > st.data.epoch))) load();
  });

  async function load() {
    st.loading = true;
    try {
      const [cc, data] = await Promise.all([costCatalog(), endpoints.costs(id, {epoch: st.epoch}, life.signal)]);
      if (!life.alive) return;
      st.cc = cc;
      st.data = data;
      render();
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      fill(body, h('div', {class: 'banner error', role: 'alert', text: `Could not count the run's operations: ${err.message}`}),
        h('button', {type: 'button', onclick: () => { fill(body, h('p', {class: 'muted'}, 'Loading…')); load(); }}, 'Try again'));
    } finally {
      st.loading = false;
    }
  }

  function render() {
    const d = /** @type {CostsOut} */ (st.data);
    const cc = /** @type {CostCatalog} */ (st.cc);
    if (d.epoch === null || !d.schemes.length) {
      fill(body, h('p', {class: 'empty', id: 'costs-none'}, 'No epoch recorded yet: the counts come from the layer records of a finished epoch.'),
        h('button', {type: 'button', onclick: () => load()}, 'Count again'));
      return;
    }
    const macs = d.schemes[0].total.macs;
    const padded = d.layers.reduce((a, l) => a + (l.padded_macs ?? 0), 0);
    const xnorLayers = d.layers.filter((l) => l.type === 'xnor').length;

    // ---- which epoch, and the denominators
    const epochSel = h('select', {id: 'costs-epoch', 'aria-label': 'Epoch counted'},
      h('option', {value: '', selected: st.epoch === null}, `last recorded (${d.epochs_done})`),
      d.best_epoch && d.best_epoch !== d.epochs_done
        ? h('option', {value: String(d.best_epoch), selected: st.epoch === d.best_epoch}, `best validation (${d.best_epoch})`) : null);
    epochSel.addEventListener('change', () => { st.epoch = epochSel.value ? Number(epochSel.value) : null; load(); });
    const which = d.epoch === d.epochs_done ? 'the last recorded epoch, as the summary\'s hardware figures'
      : d.epoch === d.best_epoch ? 'the epoch of the best validation error' : 'the epoch asked for';
    const basis = h('p', {class: 'small costs-basis', id: 'costs-basis'},
      h('strong', null, `Epoch ${d.epoch}`), ` (${which}). `,
      'Every count is per sample: the mean over the probe batch (the first 500 validation images, or test images) of one inference. ',
      `Dense MACs: ${fmtInt(macs)} per sample, the same in every scheme${padded ? `, of which ${fmtInt(padded)} on convolution padding (zeros of the input)` : ''}. `,
      'Resting % is resting MACs (not executed) / dense MACs; "vs full precision" is energy / the full-precision scheme\'s energy on this network. ',
      xnorLayers ? `${xnorLayers} of ${d.layers.length} weight layers are XNOR layers.`
        : 'This network has no XNOR layer (no discrete weights with discrete input): it has no gates, and its non-zero multiplies are counted as the float operations they are.');

    // ---- the run's totals, scheme by scheme
    const totals = h('table', {class: 'data costs', id: 'costs-schemes'},
      h('thead', null, h('tr', null, h('th', null, 'Scheme and its assumption'),
        COUNT_COLUMNS.map((c) => countHead(cc, c)),
        h('th', {class: 'num', title: 'resting / dense MACs: how often the scheme\'s gates rest'}, 'Resting %'),
        h('th', {class: 'num', title: 'energy / the full-precision energy of this network'}, 'vs full precision'))),
      h('tbody', null, d.schemes.map((s) => h('tr', {'data-scheme': s.name, class: s.name === 'run' ? 'this-run' : null},
        schemeCell(s), COUNT_COLUMNS.map((c) => countCell(s.total, c)),
        h('td', {class: 'num', 'data-count': 'resting_fraction', text: restingShare(s.total)}),
        h('td', {class: 'num', 'data-count': 'energy_vs_full_precision', text: vsFullPrecision(s.total)})))));

    // ---- per layer: one scheme's counts, and every scheme's energy
    const scheme = d.schemes.find((s) => s.name === st.scheme) || d.schemes[0];
    const schemeSel = h('select', {id: 'costs-layer-scheme', 'aria-label': 'Scheme per layer'},
      d.schemes.map((s) => h('option', {value: s.name, selected: s.name === scheme.name}, s.label)));
    schemeSel.addEventListener('change', () => { st.scheme = schemeSel.value; render(); });
    const layerHead = (/** @type {CostLayer} */ l) => h('th', {scope: 'row'}, h('span', {class: 'mono', text: l.layer}), ' ',
      h('span', {class: `badge ${l.type === 'xnor' ? 'note' : 'real'}`, title: TYPES[l.type]?.title ?? null, text: TYPES[l.type]?.text ?? l.type}));
    const byLayer = h('table', {class: 'data costs', id: 'costs-layers'},
      h('thead', null, h('tr', null, h('th', null, 'Layer'),
        h('th', {class: 'num', title: cc.counts.macs || null}, 'Dense MACs'),
        h('th', {class: 'num', title: 'Taps on a convolution\'s padding (zeros of the input), included in the dense MACs'}, 'Padded'),
        COUNT_COLUMNS.map((c) => countHead(cc, c)))),
      h('tbody', null, d.layers.map((l, i) => h('tr', {'data-layer': l.layer}, layerHead(l),
        h('td', {class: 'num', text: fmtCompact(l.macs), title: fmtInt(l.macs)}),
        h('td', {class: 'num', text: fmtCompact(l.padded_macs)}),
        COUNT_COLUMNS.map((c) => countCell(scheme.layers[i], c))))),
      h('tfoot', null, h('tr', {'data-layer': ''}, h('th', {scope: 'row'}, 'Network'),
        h('td', {class: 'num', text: fmtCompact(macs), title: fmtInt(macs)}), h('td', {class: 'num', text: fmtCompact(padded)}),
        COUNT_COLUMNS.map((c) => countCell(scheme.total, c)))));
    const energy = h('table', {class: 'data costs', id: 'costs-layer-energy'},
      h('thead', null, h('tr', null, h('th', null, 'Layer'),
        d.schemes.map((s) => h('th', {class: 'num', title: s.assumption, 'data-scheme': s.name}, s.label)))),
      h('tbody', null, d.layers.map((l, i) => h('tr', {'data-layer': l.layer}, layerHead(l),
        d.schemes.map((s) => h('td', {class: 'num', 'data-scheme': s.name, text: fmtEnergy(s.layers[i].energy_pj)}))))),
      h('tfoot', null, h('tr', null, h('th', {scope: 'row'}, 'Network'),
        d.schemes.map((s) => h('td', {class: 'num', 'data-scheme': s.name, text: fmtEnergy(s.total.energy_pj)})))));

    const csv = h('button', {type: 'button', class: 'small', id: 'costs-csv'}, 'CSV');
    csv.addEventListener('click', () => exportCSV(d));
    const json = h('button', {type: 'button', class: 'small', id: 'costs-json'}, 'JSON');
    json.addEventListener('click', () => download(`gxnor-run-${id}-costs-epoch-${d.epoch}.json`, JSON.stringify(d, null, 2), 'application/json'));
    const recount = h('button', {type: 'button', class: 'small', title: 'Fetch the counts again (a running run records more epochs)'}, 'Recount');
    recount.addEventListener('click', () => load());

    fill(body,
      h('div', {class: 'toolbar'}, h('label', {class: 'inline', for: 'costs-epoch'}, 'Epoch'), epochSel, recount,
        h('span', {class: 'muted small', style: {marginLeft: 'auto'}}, 'Export:'), csv, json),
      basis,
      h('div', {class: 'table-wrap'}, totals),
      d.schemes[0].total.energy_pj === null
        ? h('p', {class: 'muted small'}, 'Bytes and energy are unknown: the run\'s stored config no longer describes its recorded network; the operation counts stand.') : null,
      h('h3', null, 'Per layer'),
      h('div', {class: 'toolbar'}, h('label', {class: 'inline', for: 'costs-layer-scheme'}, 'Counts of'), schemeSel,
        h('span', {class: 'muted small assumption', id: 'costs-layer-assumption', text: scheme.assumption})),
      h('div', {class: 'table-wrap'}, byLayer),
      h('h3', null, 'Energy per layer, every scheme'),
      h('div', {class: 'table-wrap'}, energy),
      energySource(d.energy_table));
  }

  /** @param {CostsOut} d */
  function exportCSV(d) {
    const keys = /** @type {string[]} */ (['macs', 'executed', 'resting', 'xnor', 'int_add', 'float_mult', 'float_add', 'weight_bytes',
      'activation_bytes', 'compute_pj', 'memory_pj', 'energy_pj']);
    const rows = d.schemes.flatMap((s) => [
      ...s.layers.map((r, i) => [s.name, r.layer, d.layers[i].type, ...keys.map((k) => /** @type {any} */ (r)[k] ?? null)]),
      [s.name, '', 'network', ...keys.map((k) => /** @type {any} */ (s.total)[k] ?? null)],
    ]);
    download(`gxnor-run-${id}-costs-epoch-${d.epoch}.csv`, toCSV(['scheme', 'layer', 'type', ...keys], rows));
  }

  if (el.open) load();
  return {el};
}
