// @ts-check
// Hardware figures per layer: gate events against dense MACs at the slider's epoch, and each layer's gate-event
// rate over epochs (dotted: a layer whose input is the real-valued data).
import {chartCard, colorFor, draw} from '../../charts.js';
import {h} from '../../dom.js';
import {fmtPct} from '../../util.js';
import {layerLabel} from './state.js';
/** @import {LayerRecord} from '../../types' */
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function hardwareCharts(ctx) {
  const {st} = ctx;
  const events = chartCard({id: 'chart-hw-events', title: 'Gate events per sample vs dense MACs', note: 'at the selected epoch'});
  const rate = chartCard({id: 'chart-hw-rate', title: 'Gate-event rate per layer', note: 'events / dense MACs'});
  const el = h('div', {class: 'chart-grid'}, events.card, rate.card);

  /**
   * @param {number[]} epochs
   * @param {object} xaxis
   * @param {string} none what the chart says without data
   */
  function drawRate(epochs, xaxis, none) {
    draw(rate.graph, st.layerNames.map((name, i) => {
      const recs = epochs.map((e) => st.layers.get(e)?.get(name));
      return {type: 'scatter', mode: epochs.length > 1 ? 'lines' : 'markers', name: layerLabel(st, name), x: epochs,
        y: recs.map((r) => r?.gate_event_rate ?? null), line: {color: colorFor(i), width: 2, dash: st.layerMeta.get(name)?.input_is_real ? 'dot' : 'solid'},
        marker: {color: colorFor(i)}, hovertemplate: `${layerLabel(st, name)}: %{y:.2%}<extra>epoch %{x}</extra>`};
    }), {xaxis, yaxis: {title: {text: 'gate-event rate'}, tickformat: '.2~%', rangemode: 'tozero'}}, none);
  }

  /**
   * @param {number | null} epoch null: none recorded yet
   * @param {Map<string, LayerRecord>} [at] that epoch's records
   */
  function drawEvents(epoch, at) {
    if (epoch === null || !at) { draw(events.graph, []); return; }
    const recs = /** @type {LayerRecord[]} */ (st.layerNames.map((n) => at.get(n)).filter(Boolean));
    const labels = recs.map((r) => layerLabel(st, r.layer));
    const sizes = recs.flatMap((r) => [r.macs, r.events]).filter((v) => v > 0);
    const logY = sizes.length > 1 && Math.max(...sizes) / Math.min(...sizes) > 30;  // CNNs: layers differ by decades
    draw(events.graph, recs.length ? [
      {type: 'bar', name: 'dense MACs', x: labels, y: recs.map((r) => r.macs), marker: {color: 'rgba(140,140,140,0.55)'},
        hovertemplate: '%{x}: %{y:,} dense MACs<extra></extra>'},
      {type: 'bar', name: 'gate events', x: labels, y: recs.map((r) => r.events), marker: {color: colorFor(4)},
        text: recs.map((r) => fmtPct(r.gate_event_rate, 1)), textposition: 'outside', cliponaxis: false,
        hovertemplate: '%{x}: %{y:,.0f} events (%{text} of MACs)<extra></extra>'},
    ] : [], {barmode: 'group', xaxis: {type: 'category', title: {text: `layer (epoch ${epoch})`}}, yaxis: {title: {text: logY ? 'per sample (log)' : 'per sample'}, type: logY ? 'log' : 'linear', dtick: logY ? 1 : undefined}});
  }

  return {el, drawRate, drawEvents};
}
