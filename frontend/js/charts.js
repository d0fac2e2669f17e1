// @ts-check
// Plotly wrappers: theme from CSS variables (dark mode follows the OS), stable run colours,
// throttled redraws and text escaping for labels Plotly would otherwise parse as markup.

import {h} from './dom.js';
/** @import {Child} from './dom.js' */

export const PALETTE = [
  '#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#17becf',
  '#1f4e99', '#b5540b', '#8f1d3a', '#2e7d32', '#6a3d9a', '#00897b', '#a68a00', '#d81b60', '#5d4037', '#78909c',
];

/** @param {number} index */
export function colorFor(index) { return PALETTE[index % PALETTE.length]; }

/**
 * Plotly turns a few HTML-like tags in labels into markup: escape user text as entities.
 * @param {unknown} s
 */
export function plotText(s) {
  return String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function theme() {
  const cs = getComputedStyle(document.documentElement);
  const v = (/** @type {string} */ name) => cs.getPropertyValue(name).trim();
  return {fg: v('--fg'), muted: v('--muted'), grid: v('--grid'), border: v('--border'), panel: v('--panel'), accent: v('--accent')};
}

/**
 * @param {unknown} x
 * @returns {x is Record<string, any>}
 */
function isObj(x) { return Boolean(x) && typeof x === 'object' && !Array.isArray(x); }

/**
 * @param {Record<string, any>} a
 * @param {Record<string, any>} b
 * @returns {Record<string, any>}
 */
function merge(a, b) {
  const out = {...a};
  for (const [k, v] of Object.entries(b || {})) out[k] = isObj(v) && isObj(a[k]) ? merge(a[k], v) : v;
  return out;
}

/** @param {Record<string, any>} [extra] */
export function baseLayout(extra = {}) {
  const t = theme();
  const axis = {gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.border, automargin: true, title: {font: {size: 11, color: t.muted}}};
  return merge({
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: {color: t.fg, size: 11, family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'},
    margin: {l: 48, r: 12, t: 28, b: 36},
    xaxis: axis,
    yaxis: axis,
    // Above the plot, under the strip where Plotly's mode bar appears (draw() sets y), so the bar never covers it.
    legend: {orientation: 'h', xref: 'container', x: 0, xanchor: 'left', yref: 'container', y: 1, yanchor: 'top',
      tracegroupgap: 0, font: {size: 10}, bgcolor: 'rgba(0,0,0,0)'},
    hoverlabel: {bgcolor: t.panel, bordercolor: t.border, font: {color: t.fg}},
    hovermode: 'closest',
    uirevision: 'keep',
  }, extra);
}

const MODEBAR_PX = 28;  // the strip at the top of a chart where Plotly's mode bar appears

const CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['select2d', 'lasso2d'], toImageButtonOptions: {scale: 2}};

/**
 * Draw (or update in place) a chart; an empty data set shows a short note instead.
 * @param {HTMLElement | null | undefined} el
 * @param {Record<string, any>[]} data Plotly traces
 * @param {Record<string, any>} [layout] on top of baseLayout()
 * @param {string} [emptyText]
 */
export function draw(el, data, layout = {}, emptyText = 'No data yet') {
  if (!el || !window.Plotly) return;
  const hasData = data.some((t) => (t.y && t.y.length) || (t.z && t.z.length) || (t.x && t.x.length));
  let note = el.querySelector(':scope > .chart-empty');
  if (!hasData) {
    if (el.classList.contains('js-plotly-plot')) window.Plotly.purge(el);
    el.replaceChildren();
    note = h('div', {class: 'chart-empty', text: emptyText});
    el.append(note);
    return;
  }
  if (note) note.remove();
  const full = baseLayout(layout);
  if (full.legend.yref === 'container') full.legend.y = 1 - MODEBAR_PX / (el.clientHeight || 270);
  window.Plotly.react(el, data, full, CONFIG);
}

/**
 * Ticks for a log axis over these values.  Plotly labels a log axis at 1, 2, 5 × powers of ten, so a range inside
 * two decades gets one label or none (a gate-event rate of 47–71 % showed a lone "50%"): there, five ticks evenly
 * spaced on the log scale, at two significant digits (more where the range is narrower).  Wider ranges keep Plotly's own.
 * @param {unknown[]} values
 * @returns {{tickvals?: number[]}}
 */
export function logTicks(values) {
  const pos = /** @type {number[]} */ (values.filter((v) => typeof v === 'number' && Number.isFinite(v) && v > 0));
  if (!pos.length) return {};
  const lo = Math.min(...pos);
  const hi = Math.max(...pos);
  if (hi / lo >= 100) return {};
  const [a, b] = hi > lo ? [Math.log10(lo), Math.log10(hi)] : [Math.log10(lo) - 0.1, Math.log10(hi) + 0.1];
  let ticks = [lo];
  for (let digits = 2; digits <= 4 && ticks.length < 5; digits += 1) {  // more digits when the range is very narrow
    ticks = [...new Set(Array.from({length: 5}, (_, i) => Number((10 ** (a + ((b - a) * i) / 4)).toPrecision(digits))))];
  }
  return {tickvals: ticks};
}

/** @param {ParentNode} root */
export function purgeAll(root) {
  if (!window.Plotly) return;
  for (const el of root.querySelectorAll('.js-plotly-plot')) window.Plotly.purge(/** @type {HTMLElement} */ (el));
}

/**
 * A chart card: title, optional note and tools, and the graph div.
 * @param {{id?: string, title: string, note?: string, tools?: Child, cls?: string, chartCls?: string}} spec
 */
export function chartCard({id, title, note, tools, cls = '', chartCls = ''}) {
  const graph = h('div', {class: `chart ${chartCls}`, id});
  const card = h('section', {class: `panel chart-card ${cls}`},
    h('header', null, h('h3', {text: title}), note ? h('span', {class: 'note', text: note}) : null,
      tools ? h('div', {class: 'tools'}, tools) : null),
    graph);
  return {card, graph};
}

/**
 * Run fn at most every `ms` milliseconds; while the tab is hidden, wait until it is visible.
 * @param {() => void} fn
 * @param {number} [ms]
 * @returns {(() => void) & {dispose: () => void}}
 */
export function throttled(fn, ms = 100) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let last = 0;
  let pending = false;
  let disposed = false;
  const run = () => {
    timer = null;
    if (disposed) return;
    if (document.hidden) { pending = true; return; }
    pending = false;
    last = performance.now();
    fn();
  };
  const schedule = () => {
    if (disposed) return;
    pending = true;
    if (timer !== null) return;
    timer = setTimeout(run, Math.max(0, ms - (performance.now() - last)));
  };
  const onVisible = () => { if (!document.hidden && pending) schedule(); };
  document.addEventListener('visibilitychange', onVisible);
  return Object.assign(schedule, {
    dispose: () => { disposed = true; if (timer !== null) clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); },
  });
}

/**
 * Diverging colours for weight states: negative blue, zero grey, positive red.
 * @param {number} count
 */
export function stateColors(count) {
  const mid = (count - 1) / 2;
  return Array.from({length: count}, (_, i) => {
    if (count % 2 === 1 && i === mid) return 'rgb(150,150,150)';
    const t = Math.min(1, Math.abs(i - mid) / (mid || 1));
    const light = Math.round(200 - 120 * t);
    return i < mid ? `rgb(${light - 60},${light},235)` : `rgb(235,${light - 20},${light - 60})`;
  });
}
