// @ts-check
// Compare 2–20 runs: overlaid metric curves (log axis, smoothing), config diff, per-layer figures,
// accuracy vs gate-event rate with the Pareto front; CSV and JSON export.  One colour per run everywhere.
import {endpoints} from '../api.js';
import {fill, h} from '../dom.js';
import {chartCard, colorFor, draw, logTicks, plotText, theme, throttled} from '../charts.js';
import {compareCosts} from './compare/costs.js';
import {archOf, byDataset, datasetOf, layerColumns} from './compare/groups.js';
import {fmtMetric, hoverFormat, metricAxis, metricCatalog, metricTitle} from '../metrics.js';
import {download, ema, fmtPct, isNum, paretoFront, setRoute, showValue, toCSV} from '../util.js';
/** @import {Life} from '../dom.js' */
/** @import {MetricCatalog} from '../metrics.js' */
/** @import {CompareOut, CompareRun} from '../types' */

const POINTS = 500;
const MAX_RUNS = 20;
// The Pareto scatter's marker per dataset, and each dataset's front line.
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up'];
const SYMBOL_NAMES = ['circles', 'squares', 'diamonds', 'triangles'];
const FRONT_DASHES = ['dot', 'dash', 'dashdot', 'longdash'];

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
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 * @param {MetricCatalog} mc
 */
function build(root, {params}, life, mc) {
  // The curves: every epoch metric of the catalog; the table: its `compare` view; the scatter: its Pareto pair.
  const METRICS = mc.epoch.map((m) => m.name);
  const costM = mc.runBy[mc.pareto.x];
  const errorM = mc.runBy[mc.pareto.y];
  /** @type {{ids: number[], metric: string, log: boolean, smooth: number, data: CompareOut | null}} */
  const st = {
    ids: parseIds(params.get('ids')),
    metric: METRICS.find((m) => m === params.get('metric')) ?? 'val_error',
    log: params.get('log') === '1',
    smooth: Math.min(0.99, Math.max(0, Number(params.get('smooth')) || 0)),
    data: null,
  };

  const idsInput = h('input', {type: 'text', id: 'compare-ids', value: st.ids.join(','), placeholder: 'run ids, e.g. 3,7',
    'aria-label': 'Run ids', style: {width: '14rem'}});
  const apply = h('button', {type: 'button', class: 'primary'}, 'Compare');
  const metricSel = h('select', {id: 'compare-metric', 'aria-label': 'Metric'}, mc.epoch.map((m) => h('option',
    {value: m.name, selected: m.name === st.metric, title: metricTitle(m)}, m.name)));
  const logBox = h('input', {type: 'checkbox', id: 'compare-log', checked: st.log});
  const smooth = h('input', {type: 'range', id: 'compare-smooth', min: 0, max: 0.99, step: 0.01, value: st.smooth, 'aria-label': 'Smoothing'});
  const smoothOut = h('output', {for: 'compare-smooth', class: 'mono small'});
  const csvBtn = h('button', {type: 'button', id: 'export-compare-csv', disabled: true}, 'CSV');
  const jsonBtn = h('button', {type: 'button', id: 'export-compare-json', disabled: true}, 'JSON');
  const message = h('div');
  const body = h('div', {id: 'compare-body'});
  const picker = h('details', {class: 'panel', style: {padding: '.6rem .8rem', marginBottom: '1rem'}, open: st.ids.length < 2},
    h('summary', null, 'Pick runs'), h('div', {class: 'muted small'}, 'Loading runs…'));

  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Compare runs'),
      h('div', {class: 'actions'}, h('span', {class: 'muted small', style: {alignSelf: 'center'}}, 'Export:'), csvBtn, jsonBtn)),
    h('div', {class: 'toolbar'},
      h('label', {class: 'inline', for: 'compare-ids'}, 'Runs'), idsInput, apply,
      h('label', {class: 'inline', for: 'compare-metric'}, 'Metric'), metricSel,
      h('label', {class: 'inline'}, logBox, 'log axis'),
      h('label', {class: 'inline', for: 'compare-smooth'}, 'Smoothing'), smooth, smoothOut),
    picker, message, body);

  const curves = chartCard({id: 'compare-metric-chart', title: 'Metric', cls: 'wide', chartCls: 'tall'});
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
    setRoute('/compare', {ids: st.ids.join(','), metric: st.metric, log: st.log ? 1 : '', smooth: st.smooth ? st.smooth : '', ...costTable.params()});
  }

  /** @param {number} runId */
  function colorOf(runId) {
    const i = st.data ? st.data.runs.findIndex((r) => r.id === runId) : st.ids.indexOf(runId);
    return colorFor(Math.max(0, i));
  }

  /** @param {CompareRun} r */
  function runLabel(r) { return `#${r.id} ${r.name}`; }

  async function load() {
    syncUrl();
    csvBtn.disabled = jsonBtn.disabled = true;
    if (st.ids.length < 2 || st.ids.length > MAX_RUNS) {
      body.replaceChildren();
      fill(message, h('div', {class: 'banner info', text: st.ids.length > MAX_RUNS
        ? `Compare takes at most ${MAX_RUNS} runs; you gave ${st.ids.length}.`
        : 'Choose 2–20 runs: type their ids above, pick them below, or select them in the runs table.'}));
      return;
    }
    fill(message, h('p', {class: 'muted'}, 'Loading…'));
    try {
      // A saved link whose run was deleted still opens: the others are compared and the gone ids named.
      st.data = await endpoints.compare({ids: st.ids.join(','), metric: st.metric, points: POINTS, skip_missing: true}, life.signal);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      fill(message, h('div', {class: 'banner error', text: `Could not compare: ${err.message}`}));
      body.replaceChildren();
      return;
    }
    if (!life.alive) return;
    const gone = (st.data.missing || []).map((i) => `#${i}`);
    fill(message, gone.length ? h('div', {class: 'banner warn', role: 'alert', id: 'compare-missing',
      text: `${gone.length === 1 ? `Run ${gone[0]} is` : `Runs ${gone.join(', ')} are`} not there any more (deleted, or not `
        + `visible to you)${st.data.runs.length ? '; comparing the others' : ''}.`}) : null);
    if (!st.data.runs.length) { body.replaceChildren(); return; }
    csvBtn.disabled = jsonBtn.disabled = false;
    if (!body.childElementCount) {
      fill(body,
        runsTable,
        h('div', {class: 'chart-grid'}, curves.card),
        h('h2', null, 'Config differences'), diffBox,
        h('h2', null, 'Accuracy and hardware cost'),
        h('div', {class: 'chart-grid'}, pareto.card, gate.card, sparsity.card),
        paretoNote,
        h('h2', null, 'Operation costs'), costTable.el);
    }
    renderRuns();
    renderDiff();
    redrawCurves();
    drawLayers();
    drawPareto();
    costTable.update(st.data.runs.map((r) => r.id), st.data.runs, colorOf);
  }

  function renderRuns() {
    const d = /** @type {CompareOut} */ (st.data);  // (after a load)
    // the catalog's `compare` view, with accuracy (1 − the Pareto error) after that error
    const shown = mc.view('compare');
    const heads = shown.flatMap((m) => [h('th', {class: 'num', title: metricTitle(m)}, m.short),
      m.name === errorM.name ? h('th', {class: 'num', title: `1 − ${errorM.label.toLowerCase()}`}, 'Accuracy') : []]);
    const cells = (/** @type {CompareRun} */ r) => shown.flatMap((m) => {
      const v = r.summary[m.name];
      return [h('td', {class: 'num', 'data-metric': m.name, text: fmtMetric(m, v)}),
        m.name === errorM.name ? h('td', {class: 'num', text: isNum(v) ? fmtPct(1 - v, m.digits) : '—'}) : []];
    });
    fill(runsTable, h('table', {class: 'data'},
      h('thead', null, h('tr', null, ['Run', 'Name', 'Status'].map((t) => h('th', null, t)), heads)),
      h('tbody', null, d.runs.map((r) => h('tr', {'data-run': r.id},
        h('td', null, h('span', {class: 'swatch', style: {background: colorOf(r.id)}}), h('a', {href: `#/runs/${r.id}`}, `#${r.id}`)),
        h('td', {class: 'name', text: r.name}),
        h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
        cells(r))))));
  }

  function renderDiff() {
    const d = /** @type {CompareOut} */ (st.data);  // (after a load)
    const keys = Object.keys(d.config_diff).sort();
    if (!keys.length) {
      fill(diffBox, h('p', {class: 'empty'}, 'The configs are identical.'));
      return;
    }
    fill(diffBox, h('table', {class: 'data diff', id: 'config-diff-table'},
      h('thead', null, h('tr', null, h('th', null, 'key'), d.runs.map((r) => h('th', null,
        h('span', {class: 'swatch', style: {background: colorOf(r.id)}}), h('span', {text: runLabel(r)}))))),
      h('tbody', null, keys.map((k) => h('tr', {'data-key': k}, h('td', {class: 'key', text: k}),
        d.config_diff[k].map((v) => h('td', {class: 'value', text: showValue(v)})))))));
  }

  const redrawCurves = throttled(() => {
    const d = st.data;
    if (!d) return;
    smoothOut.textContent = st.smooth ? st.smooth.toFixed(2) : 'off';
    const m = mc.epochBy[d.metric];
    const fmt = hoverFormat(m);  // percentages on a percent axis
    const traces = [];
    for (const r of d.runs) {
      const y = d.series[String(r.id)] || [];
      const color = colorOf(r.id);
      const name = plotText(runLabel(r));
      const mode = d.epochs.length > 1 ? 'lines' : 'markers';
      traces.push({type: 'scatter', mode, x: d.epochs, y, name, legendgroup: String(r.id), meta: {run: r.id, kind: 'raw'},
        showlegend: !st.smooth, opacity: st.smooth ? 0.25 : 1, line: {color, width: st.smooth ? 1 : 2}, marker: {color},
        hovertemplate: `${name}: %{y${fmt}}<extra>epoch %{x}</extra>`});
      if (st.smooth) {
        traces.push({type: 'scatter', mode, x: d.epochs, y: ema(y, st.smooth), name, legendgroup: String(r.id), meta: {run: r.id, kind: 'smoothed'},
          line: {color, width: 2}, marker: {color}, hovertemplate: `${name} (smoothed): %{y${fmt}}<extra>epoch %{x}</extra>`});
      }
    }
    const title = /** @type {HTMLElement} */ (curves.card.querySelector('h3'));
    title.textContent = m ? m.label : d.metric;
    draw(curves.graph, traces, {xaxis: {title: {text: 'epoch'}},
      yaxis: {title: {text: d.metric}, type: st.log ? 'log' : 'linear', ...metricAxis(m),
        ...(st.log ? logTicks(traces.flatMap((t) => t.y)) : {})}},
      'No epochs recorded yet');
  }, 100);
  life.onCleanup(() => redrawCurves.dispose());

  function drawLayers() {
    const d = /** @type {CompareOut} */ (st.data);  // (after a load)
    // One column per layer of each architecture (an MLP's fc1 is not a CNN's); two architectures: a two-level axis.
    // Plotly orders a two-level axis's layers by where a name first appears in any group (a CNN's fc1 before its
    // conv1 after an MLP's fc1): zero-width spaces, one per group, keep each group's names its own.
    const cols = layerColumns(d);
    const archs = [...new Set(cols.map((c) => c.arch))];
    const mixed = archs.length > 1;
    const x = mixed ? [cols.map((c) => plotText(c.arch)), cols.map((c) => c.layer + '\u200b'.repeat(archs.indexOf(c.arch)))]
      : cols.map((c) => c.layer);
    const bars = (/** @type {string} */ key) => d.runs.map((r) => ({type: 'bar', name: plotText(runLabel(r)), meta: {run: r.id}, x,
      y: cols.map((c) => (c.arch === archOf(r) ? d.layers[String(r.id)]?.[c.layer]?.[key] ?? null : null)), marker: {color: colorOf(r.id)},
      hovertemplate: `${plotText(runLabel(r))}<br>%{x}: %{y:.2%}<extra></extra>`}));
    const layout = {barmode: 'group', xaxis: {type: mixed ? 'multicategory' : 'category', title: {text: mixed ? 'architecture, layer' : 'layer'}},
      yaxis: {tickformat: '.2~%', rangemode: 'tozero'}};
    draw(gate.graph, cols.length ? bars('gate_event_rate') : [], layout, 'No layer records yet');
    draw(sparsity.graph, cols.length ? bars('activation_sparsity') : [], layout, 'No layer records yet');
  }

  function drawPareto() {
    const d = /** @type {CompareOut} */ (st.data);  // (after a load)
    const pts = d.runs.map((r) => {
      const err = r.summary[errorM.name];
      return {r, x: r.summary[costM.name], y: isNum(err) ? 1 - err : null};
    });
    // Accuracies on different datasets do not compare: one front per dataset, each dataset its own marker.
    const datasets = [...byDataset(d.runs).keys()];
    const multi = datasets.length > 1;
    const front = new Set(datasets.flatMap((ds) => {
      const idx = pts.map((p, i) => i).filter((i) => datasetOf(pts[i].r) === ds);
      return paretoFront(idx.map((i) => pts[i])).map((k) => idx[k]);
    }));
    const fg = theme().fg;
    const symbol = (/** @type {CompareRun} */ r) => SYMBOLS[datasets.indexOf(datasetOf(r)) % SYMBOLS.length];
    /** @type {Record<string, any>[]} */
    const traces = pts.map((p, i) => ({type: 'scatter', mode: 'markers+text', name: plotText(runLabel(p.r)), meta: {run: p.r.id, pareto: front.has(i)},
      x: isNum(p.x) && isNum(p.y) ? [p.x] : [], y: isNum(p.x) && isNum(p.y) ? [p.y] : [], text: [plotText(`#${p.r.id}`)], textposition: i % 2 ? 'bottom center' : 'top center',
      showlegend: false, marker: {color: colorOf(p.r.id), symbol: symbol(p.r), size: front.has(i) ? 14 : 10, line: {width: front.has(i) ? 2.5 : 0, color: fg}},
      hovertemplate: `${plotText(runLabel(p.r))}${multi ? `<br>dataset ${plotText(datasetOf(p.r))}` : ''}<br>accuracy %{y:.2%}<br>`
        + `${plotText(costM.short.toLowerCase())} %{x${hoverFormat(costM)}}<extra></extra>`}));
    datasets.forEach((ds, k) => {
      const fp = [...front].map((i) => pts[i]).filter((p) => datasetOf(p.r) === ds).sort((a, b) => Number(a.x) - Number(b.x));
      if (!fp.length) return;
      traces.push({type: 'scatter', mode: 'lines', name: plotText(multi ? `Pareto front: ${ds}` : 'Pareto front'), meta: {pareto: 'front', dataset: ds},
        x: fp.map((p) => p.x), y: fp.map((p) => p.y), showlegend: multi,
        line: {shape: 'hv', dash: FRONT_DASHES[k % FRONT_DASHES.length], color: fg, width: 1.5}, hoverinfo: 'skip'});
    });
    const fp = [...front];
    const missing = pts.filter((p) => !(isNum(p.x) && isNum(p.y))).map((p) => `#${p.r.id}`);
    paretoNote.textContent = [
      multi ? `These runs are on ${datasets.length} datasets (${datasets.map((ds, k) => `${ds}: ${SYMBOL_NAMES[k % SYMBOLS.length]}`).join(', ')}); `
        + 'accuracies on different datasets do not compare, so each dataset has its own Pareto front.' : '',
      missing.length ? `Not on the scatter (no ${errorM.short.toLowerCase()} or ${costM.short.toLowerCase()}: not recorded yet, or a network without XNOR layers): ${missing.join(', ')}.` : '',
    ].filter(Boolean).join(' ');
    const ok = pts.filter((p) => isNum(p.x) && isNum(p.y)).map((p) => ({x: Number(p.x), y: Number(p.y)}));
    /** @type {(vals: number[], frac: number, min: number) => number[]} */
    const pad = (vals, frac, min) => {
      const lo = Math.min(...vals);
      const hi = Math.max(...vals);
      const span = Math.max(hi - lo, min);
      return [lo - span * frac, hi + span * frac];
    };
    draw(pareto.graph, fp.length ? traces : [], {
      margin: {t: 16},
      xaxis: {title: {text: costM.label}, ...metricAxis(costM), range: ok.length ? pad(ok.map((p) => p.x), 0.15, 0.02) : undefined},
      yaxis: {title: {text: `accuracy (1 − ${errorM.label.toLowerCase()})`}, tickformat: '.2~%', range: ok.length ? pad(ok.map((p) => p.y), 0.2, 0.01) : undefined},
      showlegend: multi}, 'No finished epochs yet');
  }

  // ---- picker of recent runs
  async function loadPicker() {
    try {
      const list = await endpoints.list({limit: 100, sort: 'created_at', order: 'desc'}, life.signal);
      if (!life.alive) return;
      const chosen = new Set(st.ids);
      const rows = list.items.map((r) => {
        const box = h('input', {type: 'checkbox', checked: chosen.has(r.id), 'aria-label': `Compare run ${r.id}`});
        box.addEventListener('change', () => {
          const ids = parseIds(idsInput.value).filter((x) => x !== r.id);
          if (box.checked) ids.push(r.id);
          idsInput.value = ids.join(',');
        });
        return h('tr', null, h('td', null, box), h('td', {class: 'num'}, `#${r.id}`), h('td', {class: 'name', text: r.name}),
          h('td', {text: r.project}), h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
          h('td', {class: 'num', text: fmtMetric(errorM, r.summary[errorM.name])}));
      });
      fill(picker, h('summary', null, 'Pick runs'),
        rows.length ? h('div', {class: 'table-wrap', style: {maxHeight: '18rem', overflow: 'auto'}}, h('table', {class: 'data'},
          h('thead', null, h('tr', null, h('th'), h('th', {class: 'num'}, 'ID'), h('th', null, 'Name'), h('th', null, 'Project'),
            h('th', null, 'Status'), h('th', {class: 'num', title: metricTitle(errorM)}, errorM.short))), h('tbody', null, rows)))
          : h('p', {class: 'muted'}, 'No runs yet.'),
        h('div', {class: 'toolbar', style: {marginTop: '.5rem', marginBottom: 0}},
          h('button', {type: 'button', class: 'primary', onclick: () => apply.click()}, 'Compare these')));
    } catch (err) {
      if (life.alive && err.name !== 'AbortError') fill(picker, h('summary', null, 'Pick runs'), h('p', {class: 'muted', text: err.message}));
    }
  }

  // ---- events
  apply.addEventListener('click', () => { st.ids = parseIds(idsInput.value); idsInput.value = st.ids.join(','); picker.open = false; load(); });
  idsInput.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') apply.click(); });
  metricSel.addEventListener('change', () => { st.metric = metricSel.value; load(); });
  logBox.addEventListener('change', () => { st.log = logBox.checked; syncUrl(); redrawCurves(); });
  smooth.addEventListener('input', () => { st.smooth = Number(smooth.value); syncUrl(); redrawCurves(); });
  smoothOut.textContent = st.smooth ? st.smooth.toFixed(2) : 'off';
  csvBtn.addEventListener('click', () => {
    const d = st.data;
    if (!d) return;
    const header = ['epoch', ...d.runs.map((r) => `run_${r.id}`)];
    const rows = d.epochs.map((e, i) => [e, ...d.runs.map((r) => d.series[String(r.id)]?.[i] ?? null)]);
    download(`gxnor-compare-${d.metric}-${st.ids.join('_')}.csv`, toCSV(header, rows));
  });
  jsonBtn.addEventListener('click', () => {
    if (st.data) download(`gxnor-compare-${st.ids.join('_')}.json`, JSON.stringify(st.data, null, 2), 'application/json');
  });

  loadPicker();
  load();
}
