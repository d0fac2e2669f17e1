// @ts-check
// Compare's accuracy vs hardware-cost scatter (the catalog's Pareto pair): one marker per run, ringed on the Pareto
// front (higher accuracy, lower cost).  Accuracies on different datasets do not compare: one front per dataset,
// each dataset its own marker.
import {draw, plotText, theme} from '../../charts.js';
import {hoverFormat, metricAxis} from '../../metrics.js';
import {isNum, paretoFront} from '../../util.js';
import {byDataset, datasetOf} from './groups.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {CompareOut, CompareRun} from '../../types' */

// The scatter's marker per dataset, and each dataset's front line.
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up'];
const SYMBOL_NAMES = ['circles', 'squares', 'diamonds', 'triangles'];
const FRONT_DASHES = ['dot', 'dash', 'dashdot', 'longdash'];

/**
 * @param {HTMLElement} graph
 * @param {HTMLElement} note what the chart leaves out, and why several fronts
 * @param {{d: CompareOut, mc: MetricCatalog, colorOf: (id: number) => string, runLabel: (r: CompareRun) => string}} args
 */
export function drawPareto(graph, note, {d, mc, colorOf, runLabel}) {
  const costM = mc.runBy[mc.pareto.x];
  const errorM = mc.runBy[mc.pareto.y];
  const pts = d.runs.map((r) => {
    const err = r.summary[errorM.name];
    return {r, x: r.summary[costM.name], y: isNum(err) ? 1 - err : null};
  });
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
  const missing = pts.filter((p) => !(isNum(p.x) && isNum(p.y))).map((p) => `#${p.r.id}`);
  note.textContent = [
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
  draw(graph, front.size ? traces : [], {
    margin: {t: 16},
    xaxis: {title: {text: costM.label}, ...metricAxis(costM), range: ok.length ? pad(ok.map((p) => p.x), 0.15, 0.02) : undefined},
    yaxis: {title: {text: `accuracy (1 − ${errorM.label.toLowerCase()})`}, tickformat: '.2~%', range: ok.length ? pad(ok.map((p) => p.y), 0.2, 0.01) : undefined},
    showlegend: multi}, 'No finished epochs yet');
}
