// @ts-check
// Any run metric against any other (the catalog's run metrics, e.g. gate-event rate vs test error): one point per
// run in its colour, or, grouped, one point per group at its mean with ± one sample sd as error bars (n in the
// legend).  Axis titles, formats and which way is better come from the catalog.
import {colorFor, draw, plotText} from '../../charts.js';
import {hoverFormat, metricAxis} from '../../metrics.js';
import {isNum} from '../../util.js';
import {groupRuns, meanSd} from './groups.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {CompareOut, CompareRun, Metric} from '../../types' */

/**
 * An axis title: the metric's label and which way is better.
 * @param {Metric} m
 */
function axisTitle(m) {
  return m.better ? `${m.label} (${m.better} is better)` : m.label;
}

/**
 * @param {HTMLElement} graph
 * @param {{d: CompareOut, mc: MetricCatalog, xm: string, ym: string, group: string,
 *   colorOf: (id: number) => string, runLabel: (r: CompareRun) => string}} args xm, ym: run metric names
 * @returns {string[]} the runs (#id) with no value of either metric, left off the chart
 */
export function drawScatter(graph, {d, mc, xm, ym, group, colorOf, runLabel}) {
  const X = mc.runBy[xm];
  const Y = mc.runBy[ym];
  const has = (/** @type {CompareRun} */ r) => isNum(r.summary[xm]) && isNum(r.summary[ym]);
  const hover = `${plotText(X.short)} %{x${hoverFormat(X)}}<br>${plotText(Y.short)} %{y${hoverFormat(Y)}}`;
  /** @type {Record<string, any>[]} */
  let traces;
  if (!group) {
    traces = d.runs.filter(has).map((r) => ({type: 'scatter', mode: 'markers', name: plotText(runLabel(r)), meta: {run: r.id},
      x: [r.summary[xm]], y: [r.summary[ym]], marker: {color: colorOf(r.id), size: 11},
      hovertemplate: `${plotText(runLabel(r))}<br>${hover}<extra></extra>`}));
  } else {
    traces = groupRuns(d.runs.filter(has), group).map((g, k) => {
      const sx = meanSd(g.runs.map((r) => r.summary[xm]));
      const sy = meanSd(g.runs.map((r) => r.summary[ym]));
      const name = plotText(`${g.label} (n=${g.runs.length})`);
      return {type: 'scatter', mode: 'markers', name, meta: {group: g.label, n: g.runs.length, runs: g.runs.map((r) => r.id)},
        x: [sx.mean], y: [sy.mean], marker: {color: colorFor(k), size: 11},
        error_x: {type: 'data', array: [sx.sd], visible: g.runs.length > 1, color: colorFor(k)},
        error_y: {type: 'data', array: [sy.sd], visible: g.runs.length > 1, color: colorFor(k)},
        hovertemplate: `${name}<br>mean ${hover}<extra></extra>`};
    });
  }
  draw(graph, traces, {margin: {t: 16}, xaxis: {title: {text: axisTitle(X)}, ...metricAxis(X)},
    yaxis: {title: {text: axisTitle(Y)}, ...metricAxis(Y)}}, 'No run has both metrics yet');
  return d.runs.filter((r) => !has(r)).map((r) => `#${r.id}`);
}
