// Compare 2–20 runs: overlaid metric curves (log axis, smoothing), config diff, per-layer figures,
// accuracy vs gate-event rate with the Pareto front; CSV and JSON export.  One colour per run everywhere.
import {endpoints} from '../api.js';
import {fill, h} from '../dom.js';
import {chartCard, colorFor, draw, plotText, theme, throttled} from '../charts.js';
import {download, ema, fmtPct, isNum, paretoFront, setRoute, showValue, toCSV} from '../util.js';

const METRICS = ['val_error', 'test_error', 'train_error', 'train_loss', 'val_loss', 'test_loss', 'gate_event_rate',
  'activation_sparsity', 'weight_sparsity', 'transition_rate', 'lr', 'epoch_seconds', 'samples_per_second'];
const POINTS = 500;
const MAX_RUNS = 20;

function parseIds(text) {
  return [...new Set(String(text || '').split(/[\s,;]+/).map((s) => parseInt(s, 10)).filter((n) => Number.isInteger(n) && n > 0))];
}

export function mount(root, {params}, life) {
  document.title = 'Compare — GXNOR Lab';
  const st = {
    ids: parseIds(params.get('ids')),
    metric: METRICS.includes(params.get('metric')) ? params.get('metric') : 'val_error',
    log: params.get('log') === '1',
    smooth: Math.min(0.99, Math.max(0, Number(params.get('smooth')) || 0)),
    data: null,
  };

  const idsInput = h('input', {type: 'text', id: 'compare-ids', value: st.ids.join(','), placeholder: 'run ids, e.g. 3,7',
    'aria-label': 'Run ids', style: {width: '14rem'}});
  const apply = h('button', {type: 'button', class: 'primary'}, 'Compare');
  const metricSel = h('select', {id: 'compare-metric', 'aria-label': 'Metric'}, METRICS.map((m) => h('option', {value: m, selected: m === st.metric}, m)));
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
  const pareto = chartCard({id: 'compare-pareto', title: 'Accuracy vs gate-event rate', chartCls: 'tall',
    note: 'accuracy = 1 − test error; ringed: Pareto front (higher accuracy, fewer gate events)'});
  const gate = chartCard({id: 'compare-layer-gate', title: 'Gate-event rate per layer', note: 'last epoch', chartCls: 'tall'});
  const sparsity = chartCard({id: 'compare-layer-sparsity', title: 'Input activation sparsity per layer', note: 'last epoch', chartCls: 'tall'});
  const runsTable = h('div', {class: 'panel table-wrap', id: 'compare-runs', style: {marginBottom: '.8rem'}});
  const diffBox = h('div', {class: 'panel table-wrap', id: 'config-diff'});
  const paretoNote = h('p', {class: 'muted small'});

  function syncUrl() {
    setRoute('/compare', {ids: st.ids.join(','), metric: st.metric, log: st.log ? 1 : '', smooth: st.smooth ? st.smooth : ''});
  }

  function colorOf(runId) {
    const i = st.data ? st.data.runs.findIndex((r) => r.id === runId) : st.ids.indexOf(runId);
    return colorFor(Math.max(0, i));
  }

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
      st.data = await endpoints.compare({ids: st.ids.join(','), metric: st.metric, points: POINTS}, life.signal);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      fill(message, h('div', {class: 'banner error', text: `Could not compare: ${err.message}`}));
      body.replaceChildren();
      return;
    }
    if (!life.alive) return;
    message.replaceChildren();
    csvBtn.disabled = jsonBtn.disabled = false;
    if (!body.childElementCount) {
      fill(body,
        runsTable,
        h('div', {class: 'chart-grid'}, curves.card),
        h('h2', null, 'Config differences'), diffBox,
        h('h2', null, 'Accuracy and hardware cost'),
        h('div', {class: 'chart-grid'}, pareto.card, gate.card, sparsity.card),
        paretoNote);
    }
    renderRuns();
    renderDiff();
    redrawCurves();
    drawLayers();
    drawPareto();
  }

  function renderRuns() {
    const d = st.data;
    fill(runsTable, h('table', {class: 'data'},
      h('thead', null, h('tr', null, ['Run', 'Name', 'Status', 'Best val err', 'Test err', 'Accuracy', 'Gate-event rate', 'Act. sparsity']
        .map((t, i) => h('th', {class: i > 2 ? 'num' : ''}, t)))),
      h('tbody', null, d.runs.map((r) => h('tr', {'data-run': r.id},
        h('td', null, h('span', {class: 'swatch', style: {background: colorOf(r.id)}}), h('a', {href: `#/runs/${r.id}`}, `#${r.id}`)),
        h('td', {class: 'name', text: r.name}),
        h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
        h('td', {class: 'num', text: fmtPct(r.summary.best_val_error)}),
        h('td', {class: 'num', text: fmtPct(r.summary.test_error)}),
        h('td', {class: 'num', text: isNum(r.summary.test_error) ? fmtPct(1 - r.summary.test_error) : '—'}),
        h('td', {class: 'num', text: fmtPct(r.summary.gate_event_rate, 1)}),
        h('td', {class: 'num', text: fmtPct(r.summary.activation_sparsity, 1)}))))));
  }

  function renderDiff() {
    const d = st.data;
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
    const traces = [];
    for (const r of d.runs) {
      const y = d.series[String(r.id)] || [];
      const color = colorOf(r.id);
      const name = plotText(runLabel(r));
      const mode = d.epochs.length > 1 ? 'lines' : 'markers';
      traces.push({type: 'scatter', mode, x: d.epochs, y, name, legendgroup: String(r.id), meta: {run: r.id, kind: 'raw'},
        showlegend: !st.smooth, opacity: st.smooth ? 0.25 : 1, line: {color, width: st.smooth ? 1 : 2}, marker: {color},
        hovertemplate: `${name}: %{y:.4g}<extra>epoch %{x}</extra>`});
      if (st.smooth) {
        traces.push({type: 'scatter', mode, x: d.epochs, y: ema(y, st.smooth), name, legendgroup: String(r.id), meta: {run: r.id, kind: 'smoothed'},
          line: {color, width: 2}, marker: {color}, hovertemplate: `${name} (smoothed): %{y:.4g}<extra>epoch %{x}</extra>`});
      }
    }
    curves.card.querySelector('h3').textContent = d.metric;
    const pct = /(_error|_sparsity|_rate)$/.test(d.metric);
    draw(curves.graph, traces, {xaxis: {title: {text: 'epoch'}},
      yaxis: {title: {text: d.metric}, type: st.log ? 'log' : 'linear', tickformat: pct ? '.2~%' : undefined, dtick: st.log ? 'D2' : undefined}},
      'No epochs recorded yet');
  }, 100);
  life.onCleanup(() => redrawCurves.dispose());

  function drawLayers() {
    const d = st.data;
    const names = [];
    for (const r of d.runs) for (const l of Object.keys(d.layers[String(r.id)] || {})) if (!names.includes(l)) names.push(l);
    const bars = (key) => d.runs.map((r) => ({type: 'bar', name: plotText(runLabel(r)), meta: {run: r.id}, x: names,
      y: names.map((l) => d.layers[String(r.id)]?.[l]?.[key] ?? null), marker: {color: colorOf(r.id)},
      hovertemplate: `${plotText(runLabel(r))}<br>%{x}: %{y:.2%}<extra></extra>`}));
    const layout = {barmode: 'group', xaxis: {type: 'category', title: {text: 'layer'}}, yaxis: {tickformat: '.2~%', rangemode: 'tozero'}};
    draw(gate.graph, names.length ? bars('gate_event_rate') : [], layout, 'No layer records yet');
    draw(sparsity.graph, names.length ? bars('activation_sparsity') : [], layout, 'No layer records yet');
  }

  function drawPareto() {
    const d = st.data;
    const pts = d.runs.map((r) => ({r, x: r.summary.gate_event_rate, y: isNum(r.summary.test_error) ? 1 - r.summary.test_error : null}));
    const front = new Set(paretoFront(pts));
    const fg = theme().fg;
    const traces = pts.map((p, i) => ({type: 'scatter', mode: 'markers+text', name: plotText(runLabel(p.r)), meta: {run: p.r.id, pareto: front.has(i)},
      x: isNum(p.x) && isNum(p.y) ? [p.x] : [], y: isNum(p.x) && isNum(p.y) ? [p.y] : [], text: [plotText(`#${p.r.id}`)], textposition: i % 2 ? 'bottom center' : 'top center',
      marker: {color: colorOf(p.r.id), size: front.has(i) ? 14 : 10, line: {width: front.has(i) ? 2.5 : 0, color: fg}},
      hovertemplate: `${plotText(runLabel(p.r))}<br>accuracy %{y:.2%}<br>gate-event rate %{x:.2%}<extra></extra>`}));
    const fp = [...front].map((i) => pts[i]).sort((a, b) => a.x - b.x);
    if (fp.length) {
      traces.push({type: 'scatter', mode: 'lines', name: 'Pareto front', meta: {pareto: 'front'}, x: fp.map((p) => p.x), y: fp.map((p) => p.y),
        line: {shape: 'hv', dash: 'dot', color: fg, width: 1.5}, hoverinfo: 'skip'});
    }
    const missing = pts.filter((p) => !(isNum(p.x) && isNum(p.y))).map((p) => `#${p.r.id}`);
    paretoNote.textContent = missing.length ? `Not on the scatter (no test error or gate-event rate yet): ${missing.join(', ')}.` : '';
    const ok = pts.filter((p) => isNum(p.x) && isNum(p.y));
    const pad = (vals, frac, min) => {
      const lo = Math.min(...vals);
      const hi = Math.max(...vals);
      const span = Math.max(hi - lo, min);
      return [lo - span * frac, hi + span * frac];
    };
    draw(pareto.graph, fp.length ? traces : [], {
      margin: {t: 16},
      xaxis: {title: {text: 'gate-event rate (events / dense MACs)'}, tickformat: '.2~%', range: ok.length ? pad(ok.map((p) => p.x), 0.15, 0.02) : undefined},
      yaxis: {title: {text: 'accuracy (1 − test error)'}, tickformat: '.2~%', range: ok.length ? pad(ok.map((p) => p.y), 0.2, 0.01) : undefined},
      showlegend: false}, 'No finished epochs yet');
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
          h('td', {class: 'num', text: fmtPct(r.summary.test_error)}));
      });
      fill(picker, h('summary', null, 'Pick runs'),
        rows.length ? h('div', {class: 'table-wrap', style: {maxHeight: '18rem', overflow: 'auto'}}, h('table', {class: 'data'},
          h('thead', null, h('tr', null, h('th'), h('th', {class: 'num'}, 'ID'), h('th', null, 'Name'), h('th', null, 'Project'),
            h('th', null, 'Status'), h('th', {class: 'num'}, 'Test err'))), h('tbody', null, rows)))
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
