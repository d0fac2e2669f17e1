// @ts-check
// Compare's curve chart: one metric per epoch, against the epoch or the wall time (seconds of training since the
// run started: GET /compare's `wall_time`, the running sum of each epoch's `epoch_seconds`), one line per run or,
// grouped, one mean line per group over a band of ± one sample sd (n, the group's runs, in the legend).  On a
// wall-time axis a group's point for an epoch sits at its runs' mean time of that epoch.
import {colorFor, draw, logTicks, plotText} from '../../charts.js';
import {hoverFormat, metricAxis} from '../../metrics.js';
import {ema, isNum} from '../../util.js';
import {groupRuns, meanSd} from './groups.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {CompareOut, CompareRun} from '../../types' */

/** @typedef {'epoch' | 'wall'} XAxis */

/**
 * A colour of the palette (#rrggbb) at this opacity: a band under its mean line.
 * @param {string} hex
 * @param {number} alpha
 */
function fade(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * @param {HTMLElement} graph
 * @param {HTMLElement} title the card's title: the metric's label
 * @param {{d: CompareOut, mc: MetricCatalog, log: boolean, smooth: number, x: XAxis, group: string,
 *   colorOf: (id: number) => string, runLabel: (r: CompareRun) => string}} args group: '' or what groups.js groups by
 */
export function drawCurves(graph, title, {d, mc, log, smooth, x, group, colorOf, runLabel}) {
  const m = mc.epochBy[d.metric];
  const fmt = hoverFormat(m);  // percentages on a percent axis
  const xOf = (/** @type {CompareRun} */ r) => (x === 'wall' ? d.wall_time[String(r.id)] || [] : d.epochs);
  const yOf = (/** @type {CompareRun} */ r) => d.series[String(r.id)] || [];
  const xHover = x === 'wall' ? 'epoch %{customdata}, %{x:.1f} s' : 'epoch %{x}';
  const mode = d.epochs.length > 1 ? 'lines' : 'markers';
  /** @type {Record<string, any>[]} */
  const traces = [];
  if (!group) {
    for (const r of d.runs) {
      const color = colorOf(r.id);
      const name = plotText(runLabel(r));
      // On a wall-time axis an epoch without a time (none recorded) has no place.
      const keep = xOf(r).map((v, i) => i).filter((i) => isNum(xOf(r)[i]));
      const pick = (/** @type {any[]} */ vals) => keep.map((i) => vals[i] ?? null);
      const common = {type: 'scatter', mode, x: pick(xOf(r)), customdata: pick(d.epochs), name, legendgroup: String(r.id)};
      traces.push({...common, y: pick(yOf(r)), meta: {run: r.id, kind: 'raw'}, showlegend: !smooth, opacity: smooth ? 0.25 : 1,
        line: {color, width: smooth ? 1 : 2}, marker: {color}, hovertemplate: `${name}: %{y${fmt}}<extra>${xHover}</extra>`});
      if (smooth) {
        traces.push({...common, y: pick(ema(yOf(r), smooth)), meta: {run: r.id, kind: 'smoothed'}, line: {color, width: 2}, marker: {color},
          hovertemplate: `${name} (smoothed): %{y${fmt}}<extra>${xHover}</extra>`});
      }
    }
  } else {
    groupRuns(d.runs, group).forEach((g, k) => {
      const color = colorFor(k);
      const n = g.runs.length;
      const name = plotText(`${g.label} (n=${n})`);
      const ys = g.runs.map((r) => ema(yOf(r), smooth));
      const points = d.epochs.map((epoch, i) => ({epoch, x: x === 'wall' ? meanSd(g.runs.map((r) => xOf(r)[i])).mean : epoch,
        ...meanSd(ys.map((y) => y[i]))})).filter((p) => isNum(p.x) && isNum(p.mean));
      const xs = points.map((p) => p.x);
      const meta = {group: g.label, n};
      if (n > 1) {
        const band = {type: 'scatter', mode: 'lines', x: xs, legendgroup: g.key, showlegend: false, hoverinfo: 'skip', line: {width: 0, color}};
        traces.push({...band, y: points.map((p) => Number(p.mean) - Number(p.sd)), meta: {...meta, kind: 'band-lo'}});
        traces.push({...band, y: points.map((p) => Number(p.mean) + Number(p.sd)), meta: {...meta, kind: 'band-hi'},
          fill: 'tonexty', fillcolor: fade(color, 0.2)});
      }
      traces.push({type: 'scatter', mode, x: xs, y: points.map((p) => p.mean), customdata: points.map((p) => [p.epoch, p.sd, p.n]),
        name, legendgroup: g.key, meta: {...meta, kind: 'mean'}, line: {color, width: 2}, marker: {color},
        hovertemplate: `${name}: %{y${fmt}} ± %{customdata[1]${fmt}} (%{customdata[2]} runs)<extra>`
          + `${x === 'wall' ? 'epoch %{customdata[0]}, %{x:.1f} s' : 'epoch %{x}'}</extra>`});
    });
  }
  title.textContent = m ? m.label : d.metric;
  draw(graph, traces, {xaxis: {title: {text: x === 'wall' ? 'wall time (s of training since the run started)' : 'epoch'}},
    yaxis: {title: {text: d.metric}, type: log ? 'log' : 'linear', ...metricAxis(m),
      ...(log ? logTicks(traces.flatMap((t) => t.y)) : {})}},
  'No epochs recorded yet');
}
