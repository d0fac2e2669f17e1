// @ts-check
// Compare 2–20 runs, picked by search: overlaid metric curves against the epoch or the wall time (log axis,
// smoothing), optionally grouped by a config field or sweep point with mean ± sd bands; any run metric against any
// other; config diff; per-layer figures; accuracy vs gate-event rate with the Pareto front; operation costs; CSV and
// JSON export.  One colour per run (per group when grouped) everywhere.  The modules under compare/ draw each part;
// every label, unit and better-direction comes from the metric catalog (GET /catalog).
import {endpoints} from '../api.js';
import {fill, h} from '../dom.js';
import {chartCard, colorFor, throttled} from '../charts.js';
import {compareCosts} from './compare/costs.js';
import {drawCurves} from './compare/curves.js';
import {groupChoices, groupOf, groupRuns} from './compare/groups.js';
import {drawLayers} from './compare/layers.js';
import {drawPareto} from './compare/pareto.js';
import {runPicker} from './compare/picker.js';
import {drawScatter} from './compare/scatter.js';
import {renderDiff, renderRuns} from './compare/tables.js';
import {metricCatalog, metricTitle} from '../metrics.js';
import {download, setRoute, toCSV} from '../util.js';
/** @import {Life} from '../dom.js' */
/** @import {MetricCatalog} from '../metrics.js' */
/** @import {CompareOut, CompareRun, Metric} from '../types' */
/** @import {XAxis} from './compare/curves.js' */

const POINTS = 500;
const MAX_RUNS = 20;

/**
 * @param {unknown} text
 * @returns {number[]}
 */
function parseIds(text) {
  return [...new Set(String(text || '').split(/[\s,;]+/).map((s) => parseInt(s, 10)).filter((n) => Number.isInteger(n) && n > 0))];
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 */
export function mount(root, args, life) {
  document.title = 'Compare — GXNOR Lab';
  metricCatalog().then((mc) => { if (life.alive) build(root, args, life, mc); }, (err) => {
    if (life.alive) root.append(h('div', {class: 'banner error', role: 'alert', text: `Could not load the catalog: ${err.message}`}));
  });
}

/**
 * A select of metrics (name shown, the catalog's description as its tooltip).
 * @param {string} id
 * @param {string} label
 * @param {Metric[]} metrics
 * @param {string} value
 */
function metricSelect(id, label, metrics, value) {
  return h('select', {id, 'aria-label': label}, metrics.map((m) => h('option',
    {value: m.name, selected: m.name === value, title: metricTitle(m)}, m.name)));
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 * @param {MetricCatalog} mc
 */
function build(root, {params}, life, mc) {
  const runMetric = (/** @type {string | null} */ name, /** @type {string} */ fallback) => (name && mc.runBy[name] ? name : fallback);
  /** @type {{ids: number[], metric: string, log: boolean, smooth: number, x: XAxis, group: string, sx: string, sy: string,
   *   data: CompareOut | null}} group: '' (each run its own) or what groups.js groups by; sx, sy: the scatter's run metrics */
  const st = {
    ids: parseIds(params.get('ids')),
    metric: mc.epoch.find((m) => m.name === params.get('metric'))?.name ?? 'val_error',
    log: params.get('log') === '1',
    smooth: Math.min(0.99, Math.max(0, Number(params.get('smooth')) || 0)),
    x: params.get('x') === 'wall' ? 'wall' : 'epoch',
    group: params.get('group') ?? '',
    sx: runMetric(params.get('sx'), mc.pareto.x),
    sy: runMetric(params.get('sy'), mc.pareto.y),
    data: null,
  };

  const metricSel = metricSelect('compare-metric', 'Metric', mc.epoch, st.metric);
  const xSel = h('select', {id: 'compare-x', 'aria-label': 'x axis'},
    h('option', {value: 'epoch', selected: st.x === 'epoch'}, 'epoch'),
    h('option', {value: 'wall', selected: st.x === 'wall', title: 'Seconds of training since the run started'}, 'wall time'));
  const groupSel = h('select', {id: 'compare-group', 'aria-label': 'Group runs by'});
  const logBox = h('input', {type: 'checkbox', id: 'compare-log', checked: st.log});
  const smooth = h('input', {type: 'range', id: 'compare-smooth', min: 0, max: 0.99, step: 0.01, value: st.smooth, 'aria-label': 'Smoothing'});
  const smoothOut = h('output', {for: 'compare-smooth', class: 'mono small'});
  const csvBtn = h('button', {type: 'button', id: 'export-compare-csv', disabled: true}, 'CSV');
  const jsonBtn = h('button', {type: 'button', id: 'export-compare-json', disabled: true}, 'JSON');
  const message = h('div');
  const body = h('div', {id: 'compare-body'});
  const picker = runPicker(life, {max: MAX_RUNS, onChange: (ids) => { st.ids = ids; load(); }});

  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Compare runs'),
      h('div', {class: 'actions'}, h('span', {class: 'muted small', style: {alignSelf: 'center'}}, 'Export:'), csvBtn, jsonBtn)),
    picker.el,
    h('div', {class: 'toolbar'},
      h('label', {class: 'inline', for: 'compare-metric'}, 'Metric'), metricSel,
      h('label', {class: 'inline', for: 'compare-x'}, 'x axis'), xSel,
      h('label', {class: 'inline', for: 'compare-group'}, 'Group by'), groupSel,
      h('label', {class: 'inline'}, logBox, 'log axis'),
      h('label', {class: 'inline', for: 'compare-smooth'}, 'Smoothing'), smooth, smoothOut),
    message, body);

  const costM = mc.runBy[mc.pareto.x];
  const errorM = mc.runBy[mc.pareto.y];
  const sxSel = metricSelect('compare-scatter-x', 'Scatter x metric', mc.run, st.sx);
  const sySel = metricSelect('compare-scatter-y', 'Scatter y metric', mc.run, st.sy);
  const curves = chartCard({id: 'compare-metric-chart', title: 'Metric', cls: 'wide', chartCls: 'tall'});
  const scatter = chartCard({id: 'compare-scatter', title: 'Metric vs metric', chartCls: 'tall',
    note: 'one point per run; grouped: the group mean ± sd',
    tools: [h('label', {class: 'inline small', for: 'compare-scatter-x'}, 'x', sxSel), h('label', {class: 'inline small', for: 'compare-scatter-y'}, 'y', sySel)]});
  const scatterNote = h('p', {class: 'muted small', id: 'compare-scatter-note'});
  const pareto = chartCard({id: 'compare-pareto', title: `Accuracy vs ${costM.label}`, chartCls: 'tall',
    note: `accuracy = 1 − ${errorM.label.toLowerCase()}; ringed: Pareto front (higher accuracy, lower ${costM.short.toLowerCase()})`});
  const gate = chartCard({id: 'compare-layer-gate', title: `${mc.layerBy.gate_event_rate.label} per layer`, chartCls: 'tall',
    note: 'last epoch; on a layer that is not an XNOR layer (real-valued input or float weights) these are non-zero multiplies, not gate events'});
  const sparsity = chartCard({id: 'compare-layer-sparsity', title: `${mc.layerBy.activation_sparsity.label} per layer`, note: 'last epoch', chartCls: 'tall'});
  const runsTable = h('div', {class: 'panel table-wrap', id: 'compare-runs', style: {marginBottom: '.8rem'}});
  const diffBox = h('div', {class: 'panel table-wrap', id: 'config-diff'});
  const paretoNote = h('p', {class: 'muted small', id: 'compare-pareto-note'});
  const costTable = compareCosts(life, {open: params.get('costs') === '1', measure: params.get('cost'), onChange: () => syncUrl()});

  function syncUrl() {
    setRoute('/compare', {ids: st.ids.join(','), metric: st.metric, log: st.log ? 1 : '', smooth: st.smooth ? st.smooth : '',
      x: st.x === 'wall' ? 'wall' : '', group: st.group, sx: st.sx !== mc.pareto.x ? st.sx : '', sy: st.sy !== mc.pareto.y ? st.sy : '',
      ...costTable.params()});
  }

  /** The runs' groups under the grouping chosen (none: null). */
  const groups = () => (st.group && st.data ? groupRuns(st.data.runs, st.group) : null);

  /** @param {number} runId */
  function colorOf(runId) {
    const gs = groups();
    if (gs) return colorFor(Math.max(0, gs.findIndex((g) => g.runs.some((r) => r.id === runId))));
    const i = st.data ? st.data.runs.findIndex((r) => r.id === runId) : st.ids.indexOf(runId);
    return colorFor(Math.max(0, i));
  }

  /** @param {CompareRun} r */
  function runLabel(r) { return `#${r.id} ${r.name}`; }

  async function load() {
    syncUrl();
    picker.update(st.ids, st.data?.runs ?? []);
    csvBtn.disabled = jsonBtn.disabled = true;
    if (st.ids.length < 2 || st.ids.length > MAX_RUNS) {
      body.replaceChildren();
      fill(message, h('div', {class: 'banner info', text: st.ids.length > MAX_RUNS
        ? `Compare takes at most ${MAX_RUNS} runs; you gave ${st.ids.length}.`
        : 'Choose 2–20 runs: search for them above, or select them in the runs table.'}));
      return;
    }
    fill(message, h('p', {class: 'muted'}, 'Loading…'));
    const asked = st.ids.join(',');
    let data;
    try {
      // A saved link whose run was deleted still opens: the others are compared and the gone ids named.
      data = await endpoints.compare({ids: asked, metric: st.metric, points: POINTS, skip_missing: true}, life.signal);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      fill(message, h('div', {class: 'banner error', text: `Could not compare: ${err.message}`}));
      body.replaceChildren();
      return;
    }
    if (!life.alive || asked !== st.ids.join(',')) return;  // the runs changed while this was loading
    st.data = data;
    picker.update(st.ids, data.runs);
    const gone = (data.missing || []).map((i) => `#${i}`);
    fill(message, gone.length ? h('div', {class: 'banner warn', role: 'alert', id: 'compare-missing',
      text: `${gone.length === 1 ? `Run ${gone[0]} is` : `Runs ${gone.join(', ')} are`} not there any more (deleted, or not `
        + `visible to you)${data.runs.length ? '; comparing the others' : ''}.`}) : null);
    if (!data.runs.length) { body.replaceChildren(); return; }
    csvBtn.disabled = jsonBtn.disabled = false;
    if (!body.childElementCount) {
      fill(body,
        runsTable,
        h('div', {class: 'chart-grid'}, curves.card),
        h('div', {class: 'chart-grid', style: {marginTop: '.8rem'}}, scatter.card),
        scatterNote,
        h('h2', null, 'Config differences'), diffBox,
        h('h2', null, 'Accuracy and hardware cost'),
        h('div', {class: 'chart-grid'}, pareto.card, gate.card, sparsity.card),
        paretoNote,
        h('h2', null, 'Operation costs'), costTable.el);
    }
    renderGroupSelect();
    renderAll();
  }

  function renderGroupSelect() {
    const choices = groupChoices(/** @type {CompareOut} */ (st.data));
    if (st.group && !choices.some((c) => c.key === st.group)) choices.push({key: st.group, label: st.group});
    fill(groupSel, h('option', {value: ''}, 'nothing (each run)'),
      choices.map((c) => h('option', {value: c.key, selected: c.key === st.group}, c.label)));
  }

  /** Everything drawn from the data: after a load, or a new grouping (its colours are everywhere). */
  function renderAll() {
    const d = /** @type {CompareOut} */ (st.data);
    const by = st.group;
    renderRuns(runsTable, {d, mc, colorOf, groupOf: by ? (r) => groupOf(r, by).label : null});
    renderDiff(diffBox, {d, colorOf, runLabel});
    redrawCurves();
    redrawScatter();
    drawLayers({gate: gate.graph, sparsity: sparsity.graph}, {d, colorOf, runLabel});
    drawPareto(pareto.graph, paretoNote, {d, mc, colorOf, runLabel});
    costTable.update(d.runs.map((r) => r.id), d.runs, colorOf);
  }

  const redrawCurves = throttled(() => {
    if (!st.data) return;
    smoothOut.textContent = st.smooth ? st.smooth.toFixed(2) : 'off';
    drawCurves(curves.graph, /** @type {HTMLElement} */ (curves.card.querySelector('h3')),
      {d: st.data, mc, log: st.log, smooth: st.smooth, x: st.x, group: st.group, colorOf, runLabel});
  }, 100);
  life.onCleanup(() => redrawCurves.dispose());

  function redrawScatter() {
    if (!st.data) return;
    /** @type {HTMLElement} */ (scatter.card.querySelector('h3')).textContent = `${mc.runBy[st.sy].label} vs ${mc.runBy[st.sx].label}`;
    const left = drawScatter(scatter.graph, {d: st.data, mc, xm: st.sx, ym: st.sy, group: st.group, colorOf, runLabel});
    scatterNote.textContent = left.length ? `Not on the metric scatter (no ${st.sx} or ${st.sy} yet): ${left.join(', ')}.` : '';
  }

  // ---- events
  metricSel.addEventListener('change', () => { st.metric = metricSel.value; load(); });
  xSel.addEventListener('change', () => { st.x = xSel.value === 'wall' ? 'wall' : 'epoch'; syncUrl(); redrawCurves(); });
  groupSel.addEventListener('change', () => { st.group = groupSel.value; syncUrl(); if (st.data) renderAll(); });
  sxSel.addEventListener('change', () => { st.sx = sxSel.value; syncUrl(); redrawScatter(); });
  sySel.addEventListener('change', () => { st.sy = sySel.value; syncUrl(); redrawScatter(); });
  logBox.addEventListener('change', () => { st.log = logBox.checked; syncUrl(); redrawCurves(); });
  smooth.addEventListener('input', () => { st.smooth = Number(smooth.value); syncUrl(); redrawCurves(); });
  smoothOut.textContent = st.smooth ? st.smooth.toFixed(2) : 'off';
  csvBtn.addEventListener('click', () => {
    const d = st.data;
    if (!d) return;
    // One column per run, headed by its id and name (ids alone say nothing in a spreadsheet).
    const header = ['epoch', ...d.runs.map(runLabel)];
    const rows = d.epochs.map((e, i) => [e, ...d.runs.map((r) => d.series[String(r.id)]?.[i] ?? null)]);
    download(`gxnor-compare-${d.metric}-${st.ids.join('_')}.csv`, toCSV(header, rows));
  });
  jsonBtn.addEventListener('click', () => {
    if (st.data) download(`gxnor-compare-${st.ids.join('_')}.json`, JSON.stringify(st.data, null, 2), 'application/json');
  });

  load();
}
