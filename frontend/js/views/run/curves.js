// @ts-check
// Training curves over epochs: loss (with the within-epoch loss points as a thin line between the epoch points),
// error (with the epoch of best validation error) and the network-level figures of the catalog's `network_curves` view.
import {chartCard, colorFor, draw} from '../../charts.js';
import {h} from '../../dom.js';
import {hoverFormat} from '../../metrics.js';
import {isNum} from '../../util.js';
import {batchPoints} from './batches.js';
import {epochAxis, noData} from './state.js';
/** @import {RunContext} from './state.js' */

const SERIES = {train: colorFor(0), val: colorFor(1), test: colorFor(3)};
const PCT_AXIS = {tickformat: '.2~%', rangemode: 'tozero'};
const PCT = ':.2%';  // a hover on a percent axis
const NETWORK_COLORS = [4, 5, 8, 2, 6, 7, 9, 0];  // the network-level curves, in the catalog's order

/** @param {RunContext} ctx */
export function trainingCurves(ctx) {
  const {st} = ctx;
  const loss = chartCard({id: 'chart-loss', title: 'Loss', note: 'per epoch; thin: training loss within each epoch'});
  const errs = chartCard({id: 'chart-error', title: 'Error', note: 'dashed: epoch of best validation error'});
  const net = chartCard({id: 'chart-network', title: 'Sparsity, gate events, transitions', note: 'whole network'});
  const el = h('div', {class: 'chart-grid'}, loss.card, errs.card, net.card);
  const batches = batchPoints(ctx, () => ctx.schedule('curves'));

  /**
   * One epoch metric as a trace (`meta` is its name: the browser tests read it back).
   * @param {string} key
   * @param {string} label
   * @param {string} color
   * @param {string} [dash]
   * @param {string} [fmt] the hover's number format: percentages on a percent axis
   */
  function line(key, label, color, dash, fmt = ':.4g') {
    return {type: 'scatter', mode: st.metrics.length > 1 ? 'lines' : 'markers', name: label, meta: key,
      x: st.metrics.map((m) => m.epoch), y: st.metrics.map((m) => (isNum(m[key]) ? m[key] : null)),
      line: {color, width: 2, dash}, marker: {color, size: 5}, hovertemplate: `${label}: %{y${fmt}}<extra>epoch %{x}</extra>`};
  }

  /**
   * The within-epoch points: the point ending fraction f of epoch e sits at e − 1 + f, so an epoch's points lead up
   * to its own epoch point (at e).
   */
  function withinEpochs() {
    const pts = batches.points;
    return {type: 'scatter', mode: 'lines', name: 'train, within epoch', meta: 'batch_loss',
      x: pts.map((p) => p.epoch - 1 + p.fraction), y: pts.map((p) => p.loss),
      line: {color: SERIES.train, width: 1}, opacity: 0.55,
      customdata: pts.map((p) => [p.epoch, p.fraction]),
      hovertemplate: 'train (within epoch): %{y:.4g}<extra>epoch %{customdata[0]}, %{customdata[1]:.0%}</extra>'};
  }

  function draw_() {
    batches.start();
    const mc = ctx.mc;
    const xaxis = epochAxis(st.metrics.map((m) => m.epoch));
    const none = noData(st);
    /** @type {object[]} */
    const lossTraces = [line('train_loss', 'train', SERIES.train), line('val_loss', 'validation', SERIES.val),
      line('test_loss', 'test', SERIES.test, 'dot')];
    if (batches.points.length) lossTraces.unshift(withinEpochs());
    draw(loss.graph, st.metrics.length || batches.points.length ? lossTraces : [],
      {xaxis, yaxis: {title: {text: 'loss'}}}, none);
    const best = st.run?.summary?.best_epoch;
    draw(errs.graph, st.metrics.length ? [line('train_error', 'train', SERIES.train, undefined, PCT),
      line('val_error', 'validation', SERIES.val, undefined, PCT), line('test_error', 'test', SERIES.test, 'dot', PCT)] : [], {
      xaxis, yaxis: {title: {text: 'error'}, ...PCT_AXIS},
      shapes: best ? [{type: 'line', xref: 'x', yref: 'paper', x0: best, x1: best, y0: 0, y1: 1,
        line: {dash: 'dash', width: 1, color: SERIES.val}}] : [],
    }, none);
    // the catalog's `network_curves` (fractions); a metric with no better direction (transitions) dotted
    draw(net.graph, st.metrics.length && mc ? mc.view('network_curves').map((m, i) => line(m.name, m.label,
      colorFor(NETWORK_COLORS[i % NETWORK_COLORS.length]), m.better ? undefined : 'dot', hoverFormat(m)))
      : [], {xaxis, yaxis: {title: {text: 'fraction'}, ...PCT_AXIS}}, none);
  }

  return {el, draw: draw_};
}
