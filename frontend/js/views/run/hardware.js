// @ts-check
// Hardware figures per layer: gate events against dense MACs at the slider's epoch, and each layer's gate-event
// rate over epochs (dotted: a layer whose input is the real-valued data).
import {chartCard, colorFor, draw, logTicks} from '../../charts.js';
import {h} from '../../dom.js';
import {fmtPct} from '../../util.js';
import {layerLabel} from './state.js';
/** @import {LayerRecord} from '../../types' */
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function hardwareCharts(ctx) {
  const {st} = ctx;
  const events = chartCard({id: 'chart-hw-events', title: 'Gate events per sample vs dense MACs', note: 'at the selected epoch; layers that are not XNOR layers: non-zero multiplies'});
  const rate = chartCard({id: 'chart-hw-rate', title: 'Gate-event rate per layer', note: 'events / dense MACs; dotted: real-valued input, so non-zero multiplies, not gate events'});
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
    const traces = [
      {type: 'bar', name: 'dense MACs', x: labels, y: recs.map((r) => r.macs), marker: {color: 'rgba(140,140,140,0.55)'},
        hovertemplate: '%{x}: %{y:,} dense MACs<extra></extra>'},
      // a layer's `events` are gate events only on an XNOR layer (discrete weights and input); elsewhere they are
      // non-zero multiplies, and say so
      ...[[true, 'gate events (XNOR layers)', 'gate events', colorFor(4)], [false, 'non-zero multiplies (not XNOR layers)', 'non-zero multiplies', colorFor(1)]]
        .map(([gated, name, what, color]) => {
          const these = recs.filter((r) => (r.weight_states !== null && !r.input_is_real) === gated);
          return {type: 'bar', name, x: these.map((r) => layerLabel(st, r.layer)), y: these.map((r) => r.events), marker: {color},
            text: these.map((r) => fmtPct(r.gate_event_rate, 1)), textposition: 'outside', cliponaxis: false,
            hovertemplate: `%{x}: %{y:,.0f} ${what} (%{text} of MACs)<extra></extra>`};
        }).filter((t) => t.x.length),
    ];
    // On a log axis a bar's length means nothing (it starts at an arbitrary 1): there each count is a marker, the
    // dense MACs a bar-wide dash above the layer's events.
    const shown = logY ? traces.map((t, i) => ({...t, type: 'scatter', mode: i ? 'markers+text' : 'markers', textposition: 'bottom center',
      marker: i ? {color: t.marker.color, size: 10} : {symbol: 'line-ew-open', size: 26, color: 'rgba(140,140,140,0.9)', line: {width: 3, color: 'rgba(140,140,140,0.9)'}}})) : traces;
    draw(events.graph, recs.length ? shown : [], {barmode: 'group', xaxis: {type: 'category', title: {text: `layer (epoch ${epoch})`}},
      yaxis: {title: {text: logY ? 'per sample (log)' : 'per sample'}, type: logY ? 'log' : 'linear', ...(logY ? {dtick: 1, ...logTicks(sizes)} : {})}});
  }

  return {el, drawRate, drawEvents};
}
