// @ts-check
// One layer's card: weight-state composition, transitions and input sparsity over epochs; the weight-state
// histogram, the input activation levels and the transition matrix at the slider's epoch.
import {chartCard, colorFor, draw, stateColors} from '../../charts.js';
import {h} from '../../dom.js';
import {fmtInt, fmtPct, levelLabels, stateLabels} from '../../util.js';
import {weightH} from './state.js';
import {renderMatrix} from './transitions.js';
/** @import {LayerRecord} from '../../types' */
/** @import {RunContext} from './state.js' */

/**
 * @param {RunContext} ctx
 * @param {string} name the layer
 */
export function layerCard(ctx, name) {
  const {st} = ctx;
  const m = /** @type {LayerRecord} */ (st.layerMeta.get(name));
  const comp = chartCard({id: `layer-${name}-composition`, title: 'Weight-state composition', note: 'fraction of weights per state over epochs'});
  const hist = chartCard({id: `layer-${name}-histogram`, title: 'Weight states', note: 'at the selected epoch'});
  const trans = chartCard({id: `layer-${name}-transitions`, title: 'Transitions per epoch', note: 'weights that changed state; all DST moves'});
  const act = chartCard({id: `layer-${name}-activation`, title: 'Input sparsity and gate-event rate', note: 'probe set'});
  const levels = chartCard({id: `layer-${name}-levels`, title: 'Input activation levels', note: 'at the selected epoch'});
  const matrix = h('section', {class: 'panel chart-card'});
  const facts = h('span', {class: 'facts'});
  const fpNote = h('span', {class: 'badge note hidden', text: 'full-precision weights: no discrete states or transitions'});
  const section = h('section', {class: 'panel layer', 'data-layer': name, id: `layer-${name}`},
    h('header', null, h('h3', {text: name}), h('span', {class: 'badge note', text: m.kind}),
      m.input_is_real ? h('span', {class: 'badge real', title: 'Its input is the (real-valued) data, so its multiplies are not gated XNORs',
        text: 'real-valued input — not an XNOR layer'}) : null, fpNote, facts),
    h('div', {class: 'chart-grid'}, comp.card, hist.card, matrix, trans.card, act.card, levels.card));

  /**
   * The charts over epochs.
   * @param {number[]} epochs the epochs with layer records
   * @param {object} xaxis
   */
  function drawOverEpochs(epochs, xaxis) {
    const recs = /** @type {LayerRecord[]} */ (epochs.map((e) => st.layers.get(e)?.get(name)).filter(Boolean));
    const ex = recs.map((r) => r.epoch);
    facts.textContent = `${fmtInt(m.num_weights)} weights · ${fmtInt(m.macs)} dense MACs / sample`;
    const states = recs.find((r) => r.weight_states)?.weight_states?.length || 0;
    const fpWeights = recs.length > 0 && !states;
    for (const c of [comp.card, hist.card, matrix, trans.card]) c.classList.toggle('hidden', fpWeights);
    fpNote.classList.toggle('hidden', !fpWeights);
    if (!states) {
      draw(comp.graph, [], {}, recs.length ? 'Full-precision weights: no discrete states' : 'No data yet');
    } else {
      const labels = stateLabels(states, weightH(st));
      const fr = (/** @type {LayerRecord} */ r, /** @type {number} */ i) => (r.weight_states ? r.weight_states[i] / r.num_weights : null);
      if (states <= 9) {
        const colors = stateColors(states);
        draw(comp.graph, labels.map((lab, i) => ({
          type: 'scatter', mode: ex.length > 1 ? 'lines' : 'lines+markers', stackgroup: 'states', name: lab, meta: i,
          x: ex, y: recs.map((r) => fr(r, i)), line: {width: 0.5, color: colors[i]}, fillcolor: colors[i], marker: {color: colors[i]},
          hovertemplate: `state ${lab}: %{y:.2%}<extra>epoch %{x}</extra>`,
        })), {xaxis, yaxis: {title: {text: 'fraction of weights'}, tickformat: '.2~%', range: [0, 1]},
          legend: {title: {text: 'state '}}});
      } else {
        draw(comp.graph, [{type: 'heatmap', x: ex, y: labels, z: labels.map((_, i) => recs.map((r) => fr(r, i))),
          colorscale: 'Viridis', colorbar: {thickness: 10, tickformat: '.2~%'},
          hovertemplate: 'state %{y}: %{z:.2%}<extra>epoch %{x}</extra>'}],
        {xaxis, yaxis: {title: {text: 'state'}, type: 'category'}});
      }
    }
    draw(trans.graph, recs.some((r) => r.transitions != null) ? [
      {type: 'bar', name: 'changed state', x: ex, y: recs.map((r) => r.transitions ?? null), marker: {color: colorFor(0)},
        customdata: recs.map((r) => (r.transitions ?? 0) / r.num_weights), hovertemplate: '%{y} weights (%{customdata:.2%})<extra>epoch %{x}</extra>'},
      {type: 'scatter', mode: ex.length > 1 ? 'lines' : 'markers', name: 'DST moves', x: ex, y: recs.map((r) => r.moves ?? null),
        line: {color: colorFor(1), width: 2}, marker: {color: colorFor(1)}, hovertemplate: '%{y} moves<extra>epoch %{x}</extra>'},
    ] : [], {xaxis, yaxis: {title: {text: 'weights'}, rangemode: 'tozero'}, bargap: 0.15},
    recs.length ? 'Full-precision weights: no transitions' : 'No data yet');
    const mode = ex.length > 1 ? 'lines' : 'markers';
    draw(act.graph, recs.length ? [
      {type: 'scatter', mode, name: 'input sparsity', x: ex, y: recs.map((r) => r.activation_sparsity), line: {color: colorFor(5), width: 2},
        marker: {color: colorFor(5)}, hovertemplate: 'input zeros: %{y:.2%}<extra>epoch %{x}</extra>'},
      {type: 'scatter', mode, name: 'gate-event rate', x: ex, y: recs.map((r) => r.gate_event_rate), line: {color: colorFor(4), width: 2},
        marker: {color: colorFor(4)}, hovertemplate: 'gate events: %{y:.2%} of MACs<extra>epoch %{x}</extra>'},
      {type: 'scatter', mode, name: 'weight sparsity', x: ex, y: recs.map((r) => r.weight_sparsity), line: {color: colorFor(8), width: 1.5, dash: 'dot'},
        marker: {color: colorFor(8)}, hovertemplate: 'zero weights: %{y:.2%}<extra>epoch %{x}</extra>'},
    ] : [], {xaxis, yaxis: {title: {text: 'fraction'}, tickformat: '.2~%', range: [0, 1]}});
  }

  /**
   * The charts at one epoch.
   * @param {number} epoch
   * @param {LayerRecord | undefined} r the layer's record at that epoch
   */
  function drawAtEpoch(epoch, r) {
    if (r?.weight_states) {
      const labels = stateLabels(r.weight_states.length, weightH(st));
      draw(hist.graph, [{type: 'bar', x: labels, y: r.weight_states, marker: {color: stateColors(labels.length)},
        customdata: r.weight_states.map((c) => c / r.num_weights), text: r.weight_states.map((c) => (labels.length <= 9 ? fmtPct(c / r.num_weights, 1) : '')),
        textposition: 'auto', hovertemplate: 'state %{x}: %{y} weights (%{customdata:.2%})<extra></extra>'}],
      {xaxis: {type: 'category', title: {text: `state (epoch ${epoch})`}}, yaxis: {title: {text: 'weights'}}, bargap: 0.1});
    } else {
      draw(hist.graph, [], {}, r ? 'Full-precision weights' : 'No record at this epoch');
    }
    if (r?.activation_levels) {
      const lv = r.activation_levels;
      const total = lv.reduce((a, b) => a + b, 0) || 1;
      draw(levels.graph, [{type: 'bar', x: levelLabels(lv.length), y: lv.map((c) => c / total), marker: {color: colorFor(5)},
        hovertemplate: 'level %{x}: %{y:.2%}<extra></extra>'}],
      {xaxis: {type: 'category', title: {text: `level (epoch ${epoch})`}}, yaxis: {title: {text: 'fraction of inputs'}, tickformat: '.2~%'}, bargap: 0.1});
    } else {
      draw(levels.graph, [], {}, r?.input_is_real ? 'Real-valued input: no activation levels' : r ? 'Full-precision activations' : 'No record at this epoch');
    }
    renderMatrix(matrix, r, epoch, weightH(st));
  }

  /** No epoch yet: the charts at the slider's epoch say so. */
  function emptyAtEpoch() {
    draw(hist.graph, []);
    draw(levels.graph, []);
  }

  return {section, drawOverEpochs, drawAtEpoch, emptyAtEpoch};
}
