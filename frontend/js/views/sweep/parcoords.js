// @ts-check
// A sweep's parallel coordinates: one line per finished run, one axis per swept field (a field of choices — text,
// booleans — as its values at ticks) and a catalog run metric last, the lines coloured by that metric (good
// green, bad red, by the metric's better-direction).  Drawn as plain SVG lines on axes scaled to [0, 1] — Plotly's
// own `parcoords` trace draws with WebGL, whose shader compiler needs `eval`, which the page's CSP forbids (and
// browsers without a GPU have no WebGL at all).  The trace's `meta` holds each axis's real values.
import {chartCard, draw} from '../../charts.js';
import {h} from '../../dom.js';
import {metricAxis, metricTitle} from '../../metrics.js';
import {isNum, showValue} from '../../util.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {SweepRun} from '../../types' */

/** @typedef {{label: string, values: number[], ticktext: string[] | null, min: number, max: number}} Axis */

/**
 * A colour of a [position, '#rrggbb'] scale at t in [0, 1].
 * @param {[number, string][]} scale
 * @param {number} t
 */
function colorAt(scale, t) {
  const rgb = (/** @type {string} */ hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let i = 1;
  while (i < scale.length - 1 && t > scale[i][0]) i += 1;
  const [a, ca] = scale[i - 1];
  const [b, cb] = scale[i];
  const f = b > a ? Math.min(1, Math.max(0, (t - a) / (b - a))) : 0;
  const [x, y] = [rgb(ca), rgb(cb)];
  return `rgb(${x.map((v, k) => Math.round(v + f * (y[k] - v))).join(',')})`;
}

/**
 * @param {MetricCatalog} mc
 * @param {{metric: string, scale: [number, string][]}} options metric: shown first; scale: low-is-good colours
 */
export function sweepParcoords(mc, {metric, scale}) {
  let chosen = mc.runBy[metric] ? metric : mc.pareto.y;
  const select = h('select', {id: 'sweep-parcoords-metric', 'aria-label': 'Metric of the last axis'}, mc.run.map((m) => h('option',
    {value: m.name, selected: m.name === chosen, title: metricTitle(m)}, m.name)));
  const {card, graph} = chartCard({id: 'sweep-plot-parcoords', title: 'Config → metric', cls: 'wide',
    note: 'one line per finished run, coloured by the metric; each axis from its lowest value (bottom) to its highest',
    tools: h('label', {class: 'inline small', for: 'sweep-parcoords-metric'}, 'metric', select)});
  /** @type {{fields: string[], runs: SweepRun[], order: (field: string, values: any[]) => any[]}} */
  let last = {fields: [], runs: [], order: (f, v) => v};

  function render() {
    const {fields, runs, order} = last;
    const m = mc.runBy[chosen];
    const done = runs.filter((r) => isNum(r.summary?.[chosen]));
    const percent = Boolean(metricAxis(m).tickformat);
    /** @type {Axis[]} */
    const axes = fields.map((f) => {
      const values = done.map((r) => r.overrides?.[f]);
      if (values.every(isNum)) return {label: f, values, ticktext: null, min: Math.min(...values), max: Math.max(...values)};
      const cats = order(f, values);  // choices: their index on the axis, their value as its tick
      return {label: f, values: values.map((v) => cats.indexOf(v)), ticktext: cats.map(showValue), min: 0, max: Math.max(1, cats.length - 1)};
    });
    const values = done.map((r) => /** @type {number} */ (r.summary[chosen]));  // (finished: a number)
    axes.push({label: m.short, values, ticktext: null, min: Math.min(...values), max: Math.max(...values)});
    const at = (/** @type {Axis} */ a, /** @type {number} */ v) => (a.max > a.min ? (v - a.min) / (a.max - a.min) : 0.5);
    const metricAxisOf = axes[axes.length - 1];
    const good = m.better === 'higher' ? (/** @type {number} */ t) => 1 - t : (/** @type {number} */ t) => t;
    const x = axes.map((_, i) => i);
    const show = (/** @type {Axis} */ a, /** @type {number} */ v) => (a.ticktext ? a.ticktext[v]
      : a === metricAxisOf && percent ? `${(100 * v).toFixed(2)} %` : String(Number(v.toPrecision(4))));
    const traces = done.map((r, i) => ({
      type: 'scatter', mode: 'lines+markers', x, y: axes.map((a) => at(a, a.values[i])), showlegend: false,
      line: {color: colorAt(scale, good(at(metricAxisOf, values[i]))), width: 2}, marker: {size: 5},
      text: axes.map((a) => `${a.label}: ${show(a, a.values[i])}`), hovertemplate: `run #${r.id}<br>%{text}<extra></extra>`,
      ...(i === 0 ? {meta: {metric: chosen, runs: done.map((d) => d.id), color: values,
        dims: axes.map((a) => ({label: a.label, values: a.values, ticktext: a.ticktext}))}} : {}),
    }));
    // Each axis: a vertical line, its extremes (or its choices) written beside it.
    const shapes = x.map((i) => ({type: 'line', x0: i, x1: i, y0: 0, y1: 1, line: {color: '#888', width: 1}}));
    const labels = axes.flatMap((a, i) => (a.ticktext ? a.ticktext.map((t, k) => ({v: k, t})) : [{v: a.min, t: show(a, a.min)},
      {v: a.max, t: show(a, a.max)}]).map(({v, t}) => ({x: i, y: at(a, v), text: t, showarrow: false, xanchor: 'right',
      xshift: -4, font: {size: 10}})));
    draw(graph, done.length && fields.length ? traces : [], {
      margin: {l: 70, r: 30, t: 30, b: 40}, shapes, annotations: labels,
      xaxis: {tickvals: x, ticktext: axes.map((a) => a.label), range: [-0.5, axes.length - 0.7], zeroline: false, showgrid: false},
      yaxis: {range: [-0.08, 1.08], showticklabels: false, showgrid: false, zeroline: false, fixedrange: true},
    }, 'No finished runs yet');
  }
  select.addEventListener('change', () => { chosen = select.value; render(); });

  return {
    card,
    /**
     * @param {string[]} fields the swept fields, in the sweep's order
     * @param {SweepRun[]} runs the runs of the swept configs (no baseline)
     * @param {(field: string, values: any[]) => any[]} order a field's distinct values in axis order
     */
    update(fields, runs, order) {
      last = {fields, runs, order};
      card.classList.toggle('hidden', !fields.length);
      if (fields.length) render();
    },
  };
}
