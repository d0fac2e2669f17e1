// @ts-check
// Compare's cost table (GET /compare?costs=true; docs/METHOD.md §6): for each selected run, the operations one
// inference of one sample executes and their energy, as the run measured them and as its network would run in
// full precision, as a BWN, a TWN and a BNN — one row per scheme, its assumption beside its numbers (the labels
// of the run page's cost panel), one column per run.  Closed by default and fetched when opened (`costs=1` in
// the address opens it; `cost=` names the figure shown).
import {endpoints} from '../../api.js';
import {COUNT_COLUMNS, costCatalog, energySource, exactCount, restingShare, schemeCell, vsFullPrecision} from '../../costs.js';
import {fill, h} from '../../dom.js';
import {fmtCompact, fmtInt} from '../../util.js';
/** @import {Life} from '../../dom.js' */
/** @import {CompareRun, CostCatalog, CostTotals, RunCostTotals} from '../../types' */

/**
 * The figures the table can show: the count columns, the resting share and the energy against full precision;
 * `exact` is a cell's tooltip.
 * @type {{key: string, head: string, cell: (t: CostTotals) => string, exact: (t: CostTotals) => string | null}[]}
 */
const MEASURES = [
  ...COUNT_COLUMNS.map((c) => ({key: String(c.key), head: c.head, cell: (/** @type {CostTotals} */ t) => c.fmt(t[c.key]),
    exact: (/** @type {CostTotals} */ t) => exactCount(t[c.key], String(c.key))})),
  {key: 'resting_fraction', head: 'Resting % of dense MACs', cell: restingShare, exact: () => null},
  {key: 'energy_vs_full_precision', head: 'Energy vs full precision', cell: vsFullPrecision, exact: () => null},
];

/**
 * @param {Life} life
 * @param {{open: boolean, measure: string | null, onChange: () => void}} options onChange: the address should
 *   say the new state (compare's syncUrl)
 */
export function compareCosts(life, {open, measure, onChange}) {
  /** @type {{ids: number[], runs: CompareRun[], colorOf: (id: number) => string, costs: Record<string, RunCostTotals | null> | null,
   *   cc: CostCatalog | null, measure: string, fetched: string, loading: string}} fetched, loading: which runs (ids/statuses) */
  const st = {ids: [], runs: [], colorOf: () => '', costs: null, cc: null,
    measure: MEASURES.some((m) => m.key === measure) ? /** @type {string} */ (measure) : 'energy_pj', fetched: '', loading: ''};
  const body = h('div', {class: 'costs-body'});
  const el = h('details', {class: 'panel costs-panel', id: 'compare-costs', open},
    h('summary', null, h('strong', null, 'Operation counts and energy'),
      h('span', {class: 'muted small'}, ' — each run next to its network as full precision, BWN, TWN and BNN (cost model)')),
    body);
  el.addEventListener('toggle', () => { onChange(); if (el.open) load(); });

  async function load() {
    const ids = st.ids.join(',');
    const key = `${ids}/${st.runs.map((r) => r.status).join(',')}`;  // fetched again once a run finished
    if (!el.open || !ids || st.fetched === key || st.loading === key) return;
    st.loading = key;
    if (!st.costs) fill(body, h('p', {class: 'muted'}, 'Loading…'));
    try {
      const [cc, d] = await Promise.all([costCatalog(), endpoints.compare({ids, costs: true, points: 4}, life.signal)]);
      if (!life.alive || st.loading !== key) return;
      st.cc = cc;
      st.costs = d.costs || {};
      st.fetched = key;
      render();
    } catch (err) {
      if (!life.alive || err.name === 'AbortError' || st.loading !== key) return;
      fill(body, h('div', {class: 'banner error', role: 'alert', text: `Could not count the runs' operations: ${err.message}`}));
    } finally {
      if (st.loading === key) st.loading = '';
    }
  }

  function render() {
    const cc = /** @type {CostCatalog} */ (st.cc);
    const costs = st.costs || {};
    const m = MEASURES.find((x) => x.key === st.measure) || MEASURES[0];
    const select = h('select', {id: 'compare-cost-measure', 'aria-label': 'Figure'}, MEASURES.map((x) => h('option',
      {value: x.key, selected: x.key === m.key, title: cc.counts[x.key] || null}, x.head)));
    select.addEventListener('change', () => { st.measure = select.value; onChange(); render(); });
    const of = (/** @type {CompareRun} */ r) => costs[String(r.id)];
    const none = st.runs.filter((r) => !of(r)).map((r) => `#${r.id}`);
    const table = h('table', {class: 'data costs', id: 'compare-costs-table', 'data-measure': m.key},
      h('thead', null, h('tr', null, h('th', null, 'Scheme and its assumption'), st.runs.map((r) => h('th', {class: 'num', 'data-run': r.id},
        h('span', {class: 'swatch', style: {background: st.colorOf(r.id)}}), h('a', {href: `#/runs/${r.id}?costs=1`, text: `#${r.id}`}),
        ' ', h('span', {text: r.name}), h('div', {class: 'muted small', text: of(r) ? `epoch ${of(r)?.epoch}` : 'no epoch yet'}))))),
      h('tbody', null,
        h('tr', {class: 'basis'}, h('th', {scope: 'row', title: cc.counts.macs || null}, 'Dense MACs per sample (every scheme)'),
          st.runs.map((r) => h('td', {class: 'num', 'data-run': r.id, text: fmtCompact(of(r)?.totals.run?.macs),
            title: fmtInt(of(r)?.totals.run?.macs)}))),
        cc.schemes.map((s) => h('tr', {'data-scheme': s.name, class: s.name === 'run' ? 'this-run' : null}, schemeCell(s),
          st.runs.map((r) => {
            const t = of(r)?.totals[s.name];
            return h('td', {class: 'num', 'data-run': r.id, text: t ? m.cell(t) : '—', title: t ? m.exact(t) : null});
          })))));
    fill(body,
      h('div', {class: 'toolbar'}, h('label', {class: 'inline', for: 'compare-cost-measure'}, 'Figure'), select,
        h('span', {class: 'muted small', text: cc.counts[m.key] || (m.key === 'resting_fraction'
          ? 'resting / dense MACs: how often the scheme\'s gates rest' : 'energy / the full-precision energy of the same network')})),
      h('p', {class: 'small', id: 'compare-costs-basis'},
        'Each run is counted at its last recorded epoch (under its id), per sample: the mean over the probe batch of one inference. ',
        'Every scheme counts that run\'s own network; per layer, and at other epochs, on the run\'s page (its "Operation costs").'),
      h('div', {class: 'table-wrap'}, table),
      none.length ? h('p', {class: 'muted small', text: `No counts for ${none.join(', ')}: no epoch recorded yet.`}) : null,
      energySource(cc.energy_table));
  }

  return {
    el,
    /** The address's part of this table: open or not, and the figure shown. */
    params: () => ({costs: el.open ? 1 : '', cost: el.open && st.measure !== 'energy_pj' ? st.measure : ''}),
    /**
     * The runs compare shows now (after each load): fetched again only when they changed.
     * @param {number[]} ids
     * @param {CompareRun[]} runs
     * @param {(id: number) => string} colorOf
     */
    update(ids, runs, colorOf) {
      st.ids = ids;
      st.runs = runs;
      st.colorOf = colorOf;
      load();
    },
  };
}
