// @ts-check
// The summary cards: the catalog's `card` view of the run metrics, then non-zero MACs and weight memory from the
// latest layer records.
import {fill, h} from '../../dom.js';
import {fmtMetric, metricTitle} from '../../metrics.js';
import {fmtCompact, fmtInt, fmtNum} from '../../util.js';
import {lastLayerEpoch} from './state.js';
/** @import {RunContext} from './state.js' */

/**
 * @param {string} k
 * @param {string} v
 * @param {string | null} [hint]
 * @param {string | null} [sub]
 */
function card(k, v, hint, sub) {
  return h('div', {class: 'panel card', title: hint || null}, h('div', {class: 'k'}, k), h('div', {class: 'v', text: v}),
    sub ? h('div', {class: 'sub', text: sub}) : null);
}

/** @param {RunContext} ctx */
export function runCards(ctx) {
  const {st} = ctx;
  const el = h('div', {class: 'cards', id: 'run-cards'});

  function render() {
    const mc = ctx.mc;
    if (!mc) return;
    const s = st.run.summary || {};
    const last = st.layers.get(lastLayerEpoch(st));
    const recs = last ? [...last.values()] : [];
    const events = recs.reduce((a, r) => a + (r.events || 0), 0);
    const macs = recs.reduce((a, r) => a + (r.macs || 0), 0);
    const bits = recs.reduce((a, r) => a + (r.weight_states ? Math.ceil(Math.log2(r.weight_states.length)) : 32) * r.num_weights, 0);
    fill(el,
      // the catalog's `card` view; the best validation error also says its epoch
      mc.view('card').map((m) => card(m.label, fmtMetric(m, s[m.name]), metricTitle(m),
        m.name === 'best_val_error' && s.best_epoch ? `at epoch ${s.best_epoch}` : null)),
      // every layer's `events`: gate events on XNOR layers, non-zero multiplies elsewhere — so not called gate events
      card('Non-zero MACs / inference (whole network)', recs.length ? fmtCompact(events) : '—',
        recs.length ? `${fmtInt(events)} multiply-accumulates with weight and input both non-zero, mean per sample, of ${fmtInt(macs)} dense MACs, summed over every weight layer: gate events on XNOR layers, plain non-zero multiplies on the others (the first layer sees the data)` : null,
        recs.length ? `of ${fmtCompact(macs)} dense MACs` : null),
      card('Weight memory', recs.length ? `${fmtNum(bits / 8 / 1024, 3)} KiB` : '—', 'States packed at ceil(log2(2^N+1)) bits; 32 bits for full precision',
        recs.length ? `${fmtNum(bits / Math.max(1, recs.reduce((a, r) => a + r.num_weights, 0)), 3)} bits / weight` : null));
  }

  return {el, render};
}
