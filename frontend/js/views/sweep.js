// @ts-check
// One sweep: status counts, progress and cancel; its runs; one row per config (mean ± std over seeds); the swept
// fields against error, sparsity and gate-event rate; test error vs gate-event rate with the Pareto front; a
// heatmap for two swept fields; parallel coordinates of the swept fields → a chosen metric; CSV of the results.  Polls every ~2 s until the sweep ends.  Which metrics, and
// their labels and formats, come from the metric catalog (GET /catalog → metrics: the `sweep` and `sweep_runs`
// views and the Pareto pair).
import {endpoints} from '../api.js';
import {fill, h, poll, toast} from '../dom.js';
import {chartCard, colorFor, draw, logTicks, plotText, theme, throttled} from '../charts.js';
import {fmtMetric, hoverFormat, metricAxis, metricCatalog, metricTitle} from '../metrics.js';
import {ACTIVE, download, fmtTime, isNum, progressFraction, showValue, toCSV} from '../util.js';
import {countBadges, progressBar} from './sweeps.js';
import {sweepParcoords} from './sweep/parcoords.js';
/** @import {Life} from '../dom.js' */
/** @import {MetricCatalog} from '../metrics.js' */
/** @import {Metric, MetricStat, SweepDetail, SweepResult} from '../types' */

const POLL_MS = 2000;
const MAX_COMPARE = 20;
const BASELINE = 'full precision';
// Low error green, high error red (reads the same in light and dark mode).
const ERROR_SCALE = [[0, '#1a9850'], [0.5, '#fee08b'], [1, '#d73027']];
/**
 * Baseline rows turn quantisation off; their overrides do not set the swept fields.
 * @param {{overrides?: Record<string, any>}} row
 * @param {string[]} fields
 */
function isBaseline(row, fields) {
  const o = row.overrides || {};
  return o['weights.discrete'] === false && o['activations.discrete'] === false && !fields.some((f) => f in o);
}

/**
 * "activations.r" → "r", unless two swept fields end alike ("weights.N", "activations.N" stay whole).
 * @param {string[]} fields
 * @returns {Record<string, string>}
 */
function shortNames(fields) {
  const last = fields.map((f) => f.split('.').at(-1) ?? f);
  return Object.fromEntries(fields.map((f, i) => [f, last.filter((x) => x === last[i]).length > 1 ? f : last[i]]));
}

/**
 * Distinct values in the order the grid lists them, else numbers ascending / first seen.
 * @param {any[]} values
 * @param {any[] | undefined} gridOrder
 * @returns {any[]}
 */
function axisValues(values, gridOrder) {
  /** @type {any[]} */
  const seen = [];
  for (const v of values) if (v !== undefined && !seen.some((s) => s === v)) seen.push(v);
  if (Array.isArray(gridOrder)) return [...gridOrder.filter((v) => seen.includes(v)), ...seen.filter((v) => !gridOrder.includes(v))];
  return seen.every(isNum) ? seen.sort((a, b) => a - b) : seen;
}

/** Axis settings for a swept field: categories for choices, log for a log-uniform search or for positive numbers
 * over two decades or more.
 * @param {any[]} values
 * @param {boolean} [log]
 * @returns {{type: 'category' | 'log' | 'linear'}}
 */
function fieldAxis(values, log = false) {
  if (!values.every(isNum)) return {type: 'category'};
  if (log) return {type: 'log'};
  const pos = values.filter((v) => v > 0);
  if (pos.length === values.length && pos.length > 1 && Math.max(...pos) / Math.min(...pos) >= 100) return {type: 'log'};
  return {type: 'linear'};
}

/**
 * @param {HTMLElement} root
 * @param {{id: number}} args
 * @param {Life} life
 */
export function mount(root, args, life) {
  document.title = `Sweep #${args.id} — GXNOR Lab`;
  metricCatalog().then((mc) => { if (life.alive) build(root, args, life, mc); }, (err) => {
    if (life.alive) root.append(h('div', {class: 'banner error', role: 'alert', text: `Could not load the catalog: ${err.message}`}));
  });
}

/**
 * @param {HTMLElement} root
 * @param {{id: number}} args
 * @param {Life} life
 * @param {MetricCatalog} mc
 */
function build(root, {id}, life, mc) {
  const METRICS = mc.view('sweep');  // the results table's columns and the metric plots
  const RUN_METRICS = mc.view('sweep_runs');  // the runs table's
  const AGGREGATED = mc.run.filter((m) => m.over_seeds.length);  // every aggregated metric: the CSV
  const costM = mc.runBy[mc.pareto.x];
  const errorM = mc.runBy[mc.pareto.y];
  // sweep: the last one loaded (the first load sets it before anything renders)
  /** @type {{sweep: SweepDetail, key: string, xField: string | null}} */
  const st = {sweep: /** @type {any} */ (null), key: '', xField: null};

  const title = h('h1', {id: 'sweep-title'});
  const badge = h('span', {class: 'badge', id: 'sweep-status'});
  const actions = h('div', {class: 'actions', id: 'sweep-actions'});
  const progress = h('div', {class: 'progress big', id: 'sweep-progress'});
  const counts = h('div', {id: 'sweep-counts'});
  const liveNote = h('span', {class: 'muted small'});
  const meta = h('div', {class: 'meta', id: 'sweep-meta'});
  const status = h('p', {class: 'muted'}, 'Loading…');
  const trouble = h('div', {id: 'sweep-trouble'});  // a failed refresh (the page stays, a retry follows)
  const csvBtn = h('button', {type: 'button', id: 'sweep-csv', class: 'small', title: 'The results table, raw numbers'}, 'Download CSV');
  const resultsBox = h('div', {class: 'panel table-wrap'});
  const resultsNote = h('p', {class: 'muted small'});
  const xSelect = h('select', {id: 'sweep-x', 'aria-label': 'Field on the x axis'});
  const metricsChart = chartCard({id: 'sweep-plot-metrics', title: `Swept fields vs ${METRICS.map((m) => m.short.toLowerCase()).join(', ')}`,
    cls: 'wide', note: 'mean ± std over seeds', tools: h('label', {class: 'inline small', for: 'sweep-x'}, 'x axis', xSelect)});
  const paretoChart = chartCard({id: 'sweep-plot-pareto', title: `${errorM.label} vs ${costM.label}`, chartCls: 'tall',
    note: `one marker per config; line: Pareto front (lower ${errorM.short.toLowerCase()}, lower ${costM.short.toLowerCase()})`});
  const paretoHover = `${plotText(errorM.short.toLowerCase())} %{y${hoverFormat(errorM)}}<br>`
    + `${plotText(costM.short.toLowerCase())} %{x${hoverFormat(costM)}}`;
  const heatChart = chartCard({id: 'sweep-plot-heatmap', title: `Mean ${errorM.label.toLowerCase()}`, chartCls: 'tall'});
  const runsBox = h('div', {class: 'panel table-wrap scroll-box'});
  const parcoords = sweepParcoords(mc, {metric: errorM.name, scale: /** @type {[number, string][]} */ (ERROR_SCALE)});
  const body = h('div', {class: 'hidden', id: 'sweep-body'},
    h('div', {class: 'page-head', style: {marginBottom: '.4rem', marginTop: '1.2rem'}},
      h('h2', {style: {margin: 0}}, 'Results'), h('div', {class: 'actions'}, csvBtn)),
    resultsBox, resultsNote,
    h('div', {class: 'chart-grid'}, metricsChart.card),
    h('div', {class: 'chart-grid', style: {marginTop: '.8rem'}}, paretoChart.card, heatChart.card),
    h('div', {class: 'chart-grid', style: {marginTop: '.8rem'}}, parcoords.card),
    h('h2', null, 'Runs'), runsBox);

  root.append(
    h('div', {class: 'page-head'}, h('span', {class: 'muted mono'}, `sweep #${id}`), title, badge, actions),
    h('div', {class: 'toolbar'}, progress, counts, liveNote),
    meta, status, trouble, body);

  // ---- loading and polling: every 2 s until the sweep ends (dom.js poll: paused while the tab is hidden, back-off
  // on errors)
  const poller = poll(life, async ({stale}) => {
    let sweep;
    try {
      sweep = await endpoints.sweep(id, life.signal);
    } catch (err) {
      if (err.status !== 404 || stale()) throw err;
      fill(trouble, h('div', {class: 'empty'}, h('p', {text: `There is no sweep #${id}.`}), h('a', {href: '#/sweeps', text: 'All sweeps'})));
      status.remove();
      body.classList.add('hidden');
      return null;
    }
    if (stale()) return null;
    status.remove();
    trouble.replaceChildren();
    body.classList.remove('hidden');
    const key = JSON.stringify(sweep);
    if (key !== st.key) {
      st.key = key;
      st.sweep = sweep;
      render();
    }
    if (!ACTIVE.includes(sweep.status)) { fill(liveNote, ''); return null; }
    fill(liveNote, h('span', {class: 'live-dot'}), 'live');
    return POLL_MS;
  }, {onError: (err) => {
    status.remove();
    fill(trouble, h('div', {class: 'banner error', role: 'alert', text: `Could not load the sweep: ${err.message} (retrying)`}));
    fill(liveNote, h('span', {class: 'live-dot'}), 'live');
  }});
  const load = () => poller.now();

  // ---- rendering
  const fieldsOf = () => st.sweep.fields || [];
  const names = () => shortNames(fieldsOf());
  const configRows = () => (st.sweep.results || []).filter((r) => !isBaseline(r, fieldsOf()));
  const baselineRow = () => (st.sweep.results || []).find((r) => isBaseline(r, fieldsOf()));
  const onFront = (/** @type {SweepResult} */ row, /** @type {number} */ i) => (st.sweep.pareto || []).includes(row.group ?? i);

  /** @param {SweepResult} row */
  function configLabel(row) {
    if (isBaseline(row, fieldsOf())) return BASELINE;
    const n = names();
    return fieldsOf().map((f) => `${n[f]}=${showValue(row.overrides?.[f])}`).join(' · ') || 'base config';
  }

  function render() {
    const s = st.sweep;
    title.textContent = s.name;
    document.title = `${s.name} (sweep #${s.id}) — GXNOR Lab`;
    badge.className = `badge ${s.status}`;
    badge.textContent = s.status;
    fill(progress, progressBar(s.progress, 'Sweep progress', s.status === 'running',
      `${Math.round((s.progress || 0) * 100)}% of all epochs · ${s.total} run${s.total === 1 ? '' : 's'}`));
    fill(counts, countBadges(s.counts, s.total));
    renderMeta();
    renderActions();
    renderResults();
    renderRuns();
    redraw();
  }

  function renderMeta() {
    const s = st.sweep;
    const spec = s.spec || {};
    const item = (/** @type {string} */ k, /** @type {string} */ v) => h('span', null, `${k} `, h('b', {text: v}));
    const mode = spec.grid ? 'grid' : spec.list ? 'list' : spec.random ? `random, budget ${spec.budget ?? '—'}` : '—';
    fill(meta,
      item('project', s.project ?? '—'), s.team ? item('team', s.team) : null, item('created', fmtTime(s.created_at)),
      item('swept', fieldsOf().join(' × ') || '—'), item('search', mode),
      item('seeds', Array.isArray(spec.seeds) ? spec.seeds.join(', ') : String(spec.seed ?? '—')),
      spec.baseline ? item('baseline', BASELINE) : null, spec.preset ? item('preset', spec.preset) : null);
  }

  let actionsKey = '';
  function renderActions() {
    const s = st.sweep;
    const ids = (s.runs || []).map((r) => r.id).slice(0, MAX_COMPARE);
    const key = `${s.status}|${ids.join(',')}`;
    if (key === actionsKey) return;
    actionsKey = key;
    const items = [];
    if (ids.length >= 2) {
      items.push(h('a', {class: 'button', id: 'compare-sweep', href: `#/compare?ids=${ids.join(',')}`,
        title: (s.runs || []).length > MAX_COMPARE ? `The first ${MAX_COMPARE} of ${s.runs.length} runs` : 'All the runs of this sweep'},
      'Compare these runs'));
    }
    if (ACTIVE.includes(s.status)) {
      const b = h('button', {type: 'button', id: 'cancel-sweep', class: 'danger', title: 'Cancel every run that has not finished'}, 'Cancel sweep');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await endpoints.cancelSweep(s.id);
          toast(`Sweep #${s.id} cancelled`);
        } catch (err) {
          toast(err.message, 'error');
          b.disabled = false;
        }
        if (life.alive) load();
      });
      items.push(b);
    }
    fill(actions, items);
  }

  /**
   * @param {MetricStat | undefined} stat
   * @param {Metric} metric
   */
  function pmCell(stat, metric) {
    const mean = stat?.mean;
    const sd = stat?.std;
    return h('td', {class: 'num pm', 'data-metric': metric.name, 'data-mean': isNum(mean) ? mean : '', 'data-std': isNum(sd) ? sd : ''},
      fmtMetric(metric, mean), isNum(mean) && isNum(sd) && (stat?.n ?? 0) > 1 ? h('span', {class: 'sd', text: ` ± ${fmtMetric(metric, sd)}`}) : null);
  }

  function renderResults() {
    const s = st.sweep;
    const fields = fieldsOf();
    const n = names();
    const rows = (s.results || []).map((row, i) => {
      const base = isBaseline(row, fields);
      const front = onFront(row, i);
      const fieldCells = base
        ? [h('td', {colspan: Math.max(1, fields.length), class: 'muted', text: BASELINE})]
        : fields.length ? fields.map((f) => h('td', {class: 'num mono', 'data-field': f, text: showValue(row.overrides?.[f])}))
          : [h('td', {text: 'base config'})];
      return h('tr', {'data-group': row.group ?? i, class: front ? 'front' : null},
        fieldCells,
        h('td', {class: 'num', 'data-n': row.n, 'data-n-done': row.n_done, text: `${row.n_done ?? 0}/${row.n ?? 0}`}),
        METRICS.map((m) => pmCell(row.metrics?.[m.name], m)),
        h('td', null, front ? h('span', {class: 'front-mark', title: 'On the Pareto front', 'aria-label': 'On the Pareto front', text: '★'}) : null));
    });
    if (!rows.length) rows.push(h('tr', null, h('td', {colspan: fields.length + METRICS.length + 2, class: 'empty', text: 'No results yet.'})));
    fill(resultsBox, h('table', {class: 'data', id: 'sweep-results'},
      h('thead', null, h('tr', null,
        fields.length ? fields.map((f) => h('th', {class: 'num mono', title: f, text: n[f]})) : h('th', null, 'Config'),
        h('th', {class: 'num', title: 'Runs finished / runs of this config'}, 'Runs'),
        METRICS.map((m) => h('th', {class: 'num', title: `${metricTitle(m)} Mean ± std over seeds.`}, m.short)),
        h('th', {title: `On the Pareto front of ${errorM.label.toLowerCase()} vs ${costM.label.toLowerCase()}`}, 'Front'))),
      h('tbody', null, rows)));
    resultsNote.textContent = `Mean ± std over seeds (${METRICS.map((m) => m.label.toLowerCase()).join('; ')}; `
      + `the CSV has every aggregated metric). ★: on the Pareto front of ${errorM.label.toLowerCase()} vs ${costM.label.toLowerCase()}.`;
  }

  function renderRuns() {
    const runs = st.sweep.runs || [];
    const fields = fieldsOf();
    const n = names();
    const rows = runs.map((r) => {
      const s = r.summary || {};
      const frac = progressFraction(r);
      const p = r.progress || {};
      return h('tr', {'data-run': r.id},
        h('td', {class: 'num'}, h('a', {href: `#/runs/${r.id}`}, String(r.id))),
        h('td', {class: 'name'}, h('a', {href: `#/runs/${r.id}`, text: r.name})),
        h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
        h('td', {class: 'fields', text: isBaseline(r, fields) ? BASELINE
          : fields.map((f) => `${n[f]}=${showValue(r.overrides?.[f])}`).join(' · ') || 'base config'}),
        h('td', {class: 'num', text: r.seed ?? '—'}),
        h('td', null, h('div', {class: 'progress', 'data-progress': frac.toFixed(4)},
          h('div', {class: 'bar', role: 'progressbar', 'aria-label': `Run ${r.id} progress`, 'aria-valuemin': 0, 'aria-valuemax': 100,
            'aria-valuenow': Math.round(frac * 100)}, h('div', {style: {width: `${(frac * 100).toFixed(1)}%`, opacity: r.status === 'running' ? 1 : 0.45}})),
          h('span', {class: 'label', text: r.status === 'queued' ? 'queued' : `${p.epochs_done ?? 0}/${p.total_epochs ?? '?'}`}))),
        RUN_METRICS.map((m) => h('td', {class: 'num', 'data-metric': m.name, text: fmtMetric(m, s[m.name])})));
    });
    if (!rows.length) rows.push(h('tr', null, h('td', {colspan: 6 + RUN_METRICS.length, class: 'empty', text: 'No runs.'})));
    fill(runsBox, h('table', {class: 'data', id: 'sweep-runs'},
      h('thead', null, h('tr', null, ['Run', 'Name', 'Status', 'Config', 'Seed', 'Progress']
        .map((t, i) => h('th', {class: [0, 4].includes(i) ? 'num' : ''}, t)),
      RUN_METRICS.map((m) => h('th', {class: 'num', title: metricTitle(m)}, m.short)))),
      h('tbody', null, rows)));
  }

  // ---- charts (redraws throttled to ≤10/s, paused while hidden)
  const redraw = throttled(() => {
    if (!st.sweep) return;
    // Cards shown first, so that each chart is sized to its card's final width.
    metricsChart.card.classList.toggle('hidden', !fieldsOf().length);
    heatChart.card.classList.toggle('hidden', fieldsOf().length !== 2);
    renderXSelect();
    drawMetrics();
    drawPareto();
    drawHeatmap();
    const spec = st.sweep.spec || {};
    parcoords.update(fieldsOf(), (st.sweep.runs || []).filter((r) => !isBaseline(r, fieldsOf())),
      (f, values) => axisValues(values, spec.grid?.[f]));
  }, 100);
  life.onCleanup(() => redraw.dispose());

  function renderXSelect() {
    const fields = fieldsOf();
    if (st.xField === null || !fields.includes(st.xField)) st.xField = fields[0] ?? null;
    if (xSelect.options.length !== fields.length) {
      fill(xSelect, fields.map((f) => h('option', {value: f, text: f})));
    }
    xSelect.value = st.xField ?? '';
    xSelect.closest('label')?.classList.toggle('hidden', fields.length < 2);
  }

  /** The metric plots' columns: one when the chart is narrower than two plots need. */
  function gridColumns() {
    return (metricsChart.graph.clientWidth || window.innerWidth) < 640 ? 1 : 2;
  }
  let drawnColumns = 0;
  life.listen(window, 'resize', () => { if (drawnColumns && gridColumns() !== drawnColumns) redraw(); });

  function drawMetrics() {
    const fields = fieldsOf();
    const xf = st.xField;
    const rows = configRows();
    if (!xf) return;
    if (!rows.length) { draw(metricsChart.graph, [], {}, 'No configs'); return; }
    const spec = st.sweep.spec || {};
    const random = Boolean(spec.random);
    const others = fields.filter((f) => f !== xf);
    const n = names();
    const xs = axisValues(rows.map((r) => r.overrides?.[xf]), spec.grid?.[xf]);
    const axis = fieldAxis(xs, spec.random?.[xf]?.log);
    // One line per combination of the other swept fields (a random search has no repeated values: one set of points).
    /** @type {Map<string, SweepResult[]>} */
    const lines = new Map();
    for (const r of rows) {
      const key = random ? '' : others.map((f) => `${n[f]}=${showValue(r.overrides?.[f])}`).join(' · ');
      lines.set(key, [...lines.get(key) ?? [], r]);
    }
    const t = theme();
    /** @type {Record<string, any>[]} */
    const traces = [];
    const base = baselineRow();
    METRICS.forEach((m, k) => {
      const {name: key, short: label} = m;
      const ax = k ? String(k + 1) : '';
      [...lines].forEach(([lineKey, members], li) => {
        const pts = members.map((r) => ({x: r.overrides?.[xf], m: r.metrics?.[key], label: configLabel(r)}))
          .filter((p) => p.x !== undefined)
          .sort((a, b) => (axis.type === 'category' ? xs.indexOf(a.x) - xs.indexOf(b.x) : a.x - b.x));
        const name = plotText(lineKey || label);
        traces.push({type: 'scatter', mode: random ? 'markers' : 'lines+markers', xaxis: `x${ax}`, yaxis: `y${ax}`,
          x: pts.map((p) => (axis.type === 'category' ? showValue(p.x) : p.x)), y: pts.map((p) => p.m?.mean ?? null),
          error_y: {type: 'data', array: pts.map((p) => (isNum(p.m?.std) ? p.m.std : 0)), visible: true, thickness: 1, width: 3},
          name, legendgroup: lineKey, showlegend: k === 0 && Boolean(lineKey), meta: {metric: key, line: lineKey},
          line: {color: colorFor(li), width: 2}, marker: {color: colorFor(li), size: 7}, text: pts.map((p) => plotText(p.label)),
          hovertemplate: `%{text}<br>${plotText(label)}: %{y${hoverFormat(m)}}<extra></extra>`});
      });
      if (base && isNum(base.metrics?.[key]?.mean)) {
        const xr = axis.type === 'category' ? [showValue(xs[0]), showValue(xs.at(-1))] : [xs[0], xs.at(-1)];
        traces.push({type: 'scatter', mode: 'lines', xaxis: `x${ax}`, yaxis: `y${ax}`, x: xr, y: [base.metrics[key].mean, base.metrics[key].mean],
          name: BASELINE, legendgroup: 'baseline', showlegend: k === 0, meta: {metric: key, line: 'baseline'},
          line: {color: t.muted, dash: 'dash', width: 1.5}, hovertemplate: `${BASELINE}: %{y${hoverFormat(m)}}<extra></extra>`});
      }
    });
    const axisTitle = (/** @type {string} */ text) => ({text, font: {size: 11, color: t.muted}});
    const xAxis = {...axis, title: axisTitle(xf), gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.border, automargin: true,
      // ticks at the swept values; a log-uniform search's narrow range gets enough ticks too
      tickvals: axis.type !== 'category' && !random && xs.length <= 12 ? xs : axis.type === 'log' ? logTicks(xs).tickvals : undefined,
      categoryorder: axis.type === 'category' ? 'array' : undefined, categoryarray: axis.type === 'category' ? xs.map(showValue) : undefined};
    // errors zoom in on their values; hardware figures (the cost, sparsities) start at zero
    const yAxis = (/** @type {number} */ k) => ({...metricAxis(METRICS[k]), title: axisTitle(METRICS[k].short), gridcolor: t.grid, zerolinecolor: t.grid,
      linecolor: t.border, automargin: true,
      rangemode: METRICS[k].better === 'lower' && METRICS[k].name !== costM.name ? undefined : 'tozero'});
    // Two columns of small plots; one on a narrow page, where a second column's axis titles would overlap the first's
    const columns = gridColumns();
    const gridRows = Math.max(1, Math.ceil(METRICS.length / columns));
    metricsChart.graph.style.height = `${(columns === 1 ? 250 : 280) * gridRows}px`;
    /** @type {Record<string, any>} */
    // (ygap: room under each row for its tick labels and x title — a fraction of one plot's height, ~70 px)
    const layout = {grid: {rows: gridRows, columns, pattern: 'independent', xgap: 0.12, ygap: 0.35},
      margin: {t: 36},
      xaxis: xAxis, yaxis: yAxis(0)};
    for (let k = 1; k < METRICS.length; k += 1) { layout[`xaxis${k + 1}`] = xAxis; layout[`yaxis${k + 1}`] = yAxis(k); }
    const any = traces.some((tr) => tr.y.some(isNum));
    draw(metricsChart.graph, any ? traces : [], layout, 'No finished configs yet');
    drawnColumns = columns;
  }

  function drawPareto() {
    const rows = st.sweep.results || [];
    const t = theme();
    const pts = rows.map((r, i) => ({r, i, label: configLabel(r), base: isBaseline(r, fieldsOf()), front: onFront(r, i),
      x: r.metrics?.[costM.name]?.mean, y: r.metrics?.[errorM.name]?.mean,
      sx: r.metrics?.[costM.name]?.std, sy: r.metrics?.[errorM.name]?.std}))
      .filter((p) => isNum(p.x) && isNum(p.y));
    const cfg = pts.filter((p) => !p.base);
    /** @type {Record<string, any>[]} */
    const traces = [];
    const front = cfg.filter((p) => p.front).sort((a, b) => Number(a.x) - Number(b.x));
    if (front.length) {
      traces.push({type: 'scatter', mode: 'lines', name: 'Pareto front', meta: {kind: 'front', groups: front.map((p) => p.r.group ?? p.i)},
        x: front.map((p) => p.x), y: front.map((p) => p.y), line: {shape: 'hv', dash: 'dot', color: t.fg, width: 1.5}, hoverinfo: 'skip'});
    }
    if (cfg.length) {  // drawn over the front's line
      // The configs on the front are named; the others on hover.
      traces.push({type: 'scatter', mode: 'markers+text', name: 'configs', meta: {kind: 'configs', groups: cfg.map((p) => p.r.group ?? p.i)},
        x: cfg.map((p) => p.x), y: cfg.map((p) => p.y), hovertext: cfg.map((p) => plotText(p.label)),
        text: cfg.map((p) => (p.front ? plotText(p.label) : '')), textposition: 'top right', cliponaxis: false,
        textfont: {size: 10, color: t.muted},
        error_x: {type: 'data', array: cfg.map((p) => (isNum(p.sx) ? p.sx : 0)), visible: true, thickness: 1, width: 0, color: t.grid},
        error_y: {type: 'data', array: cfg.map((p) => (isNum(p.sy) ? p.sy : 0)), visible: true, thickness: 1, width: 0, color: t.grid},
        marker: {size: cfg.map((p) => (p.front ? 13 : 9)), color: cfg.map((p) => (p.front ? colorFor(3) : colorFor(0))),
          line: {width: cfg.map((p) => (p.front ? 2 : 0)), color: t.fg}},
        hovertemplate: `%{hovertext}<br>${paretoHover}<extra></extra>`});
    }
    const base = pts.find((p) => p.base);
    if (base) {
      traces.push({type: 'scatter', mode: 'markers+text', name: BASELINE, meta: {kind: 'baseline'}, x: [base.x], y: [base.y],
        text: [BASELINE], textposition: 'top center', cliponaxis: false, marker: {symbol: 'diamond', size: 11, color: t.muted},
        hovertemplate: `${BASELINE}<br>${paretoHover}<extra></extra>`});
    }
    draw(paretoChart.graph, traces, {margin: {t: 16}, showlegend: false,
      xaxis: {...metricAxis(costM), title: {text: costM.label}},
      yaxis: {...metricAxis(errorM), title: {text: errorM.label}}}, 'No finished configs yet');
  }

  function drawHeatmap() {
    const fields = fieldsOf();
    if (fields.length !== 2) return;
    const [fx, fy] = fields;
    const n = names();
    const spec = st.sweep.spec || {};
    const rows = configRows();
    const title = /** @type {HTMLElement} */ (heatChart.card.querySelector('h3'));
    const errName = errorM.label.toLowerCase();
    if (spec.random) {  // scattered points: colour by the mean error
      title.textContent = `Mean ${errName} over ${n[fx]} × ${n[fy]}`;
      const pts = rows.filter((r) => isNum(r.metrics?.[errorM.name]?.mean));
      draw(heatChart.graph, pts.length ? [{type: 'scatter', mode: 'markers', meta: {kind: 'random'},
        x: pts.map((r) => r.overrides?.[fx]), y: pts.map((r) => r.overrides?.[fy]),
        marker: {size: 12, color: pts.map((r) => r.metrics[errorM.name].mean), colorscale: ERROR_SCALE, showscale: true,
          colorbar: {tickformat: '.1%', thickness: 12}},
        hovertemplate: `${plotText(n[fx])}=%{x}<br>${plotText(n[fy])}=%{y}<br>${plotText(errName)} %{marker.color${hoverFormat(errorM)}}<extra></extra>`}] : [],
      {xaxis: {...fieldAxis(pts.map((r) => r.overrides?.[fx]), spec.random[fx]?.log), title: {text: fx}},
        yaxis: {...fieldAxis(pts.map((r) => r.overrides?.[fy]), spec.random[fy]?.log), title: {text: fy}}}, 'No finished configs yet');
      return;
    }
    title.textContent = `Mean ${errName}: ${n[fx]} × ${n[fy]}`;
    const xs = axisValues(rows.map((r) => r.overrides?.[fx]), spec.grid?.[fx]);
    const ys = axisValues(rows.map((r) => r.overrides?.[fy]), spec.grid?.[fy]);
    const z = ys.map((y) => xs.map((x) => rows.find((r) => r.overrides?.[fx] === x && r.overrides?.[fy] === y)?.metrics?.[errorM.name]?.mean ?? null));
    const any = z.some((row) => row.some(isNum));
    draw(heatChart.graph, any ? [{type: 'heatmap', meta: {kind: 'heatmap'}, x: xs.map(showValue), y: ys.map(showValue), z,
      colorscale: ERROR_SCALE, colorbar: {tickformat: '.1%', thickness: 12}, xgap: 2, ygap: 2,
      texttemplate: `%{z${hoverFormat(errorM)}}`,
      hovertemplate: `${plotText(n[fx])}=%{x}<br>${plotText(n[fy])}=%{y}<br>${plotText(errName)} %{z${hoverFormat(errorM)}}<extra></extra>`}] : [],
    {xaxis: {type: 'category', title: {text: fx}}, yaxis: {type: 'category', title: {text: fy}}, margin: {t: 16}}, 'No finished configs yet');
  }

  // ---- events
  xSelect.addEventListener('change', () => { st.xField = xSelect.value; redraw(); });
  csvBtn.addEventListener('click', () => {
    if (!st.sweep) return;
    const fields = fieldsOf();
    const header = [...fields, 'baseline', 'n_done', 'n', ...AGGREGATED.flatMap(({name}) => [`${name}_mean`, `${name}_std`])];
    const rows = (st.sweep.results || []).map((r) => {
      const base = isBaseline(r, fields);
      return [...fields.map((f) => (base ? null : r.overrides?.[f] ?? null)), base, r.n_done ?? null, r.n ?? null,
        ...AGGREGATED.flatMap(({name}) => [r.metrics?.[name]?.mean ?? null, r.metrics?.[name]?.std ?? null])];
    });
    download(`gxnor-sweep-${st.sweep.id}.csv`, toCSV(header, rows));
  });

  load();
}
