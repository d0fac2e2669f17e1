// @ts-check
// The epoch slider: which epoch the histograms, levels, transition matrices and gate-event bars show.  It follows
// the latest epoch until the user moves it.
import {h} from '../../dom.js';
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function epochSlider(ctx) {
  const {st} = ctx;
  const slider = h('input', {type: 'range', min: 0, max: 0, value: 0, step: 1, id: 'epoch-slider', 'aria-label': 'Epoch for the histograms'});
  const out = h('output', {for: 'epoch-slider', id: 'epoch-label'});
  const note = h('span', {class: 'muted small'});
  const el = h('div', {class: 'panel epoch-slider'}, h('label', {for: 'epoch-slider'}, 'Histograms at'), slider, out, note);

  slider.addEventListener('input', () => {
    st.sliderIdx = Number(slider.value);
    st.follow = st.sliderIdx === Number(slider.max);
    ctx.schedule('epoch');
  });

  /**
   * The epochs it can show changed.
   * @param {number[]} epochs
   */
  function update(epochs) {
    const max = Math.max(0, epochs.length - 1);
    slider.max = String(max);
    slider.disabled = epochs.length < 2;
    if (st.follow || st.sliderIdx > max) st.sliderIdx = max;
    slider.value = String(st.sliderIdx);
    const thinned = st.layerTotal !== null && st.layerTotal > epochs.length;
    note.textContent = thinned ? `${epochs.length} of ${st.layerTotal} epochs kept (point budget)` : '';
  }

  /**
   * The epoch the slider stands on (null: none recorded yet).
   * @param {number | null} epoch
   * @param {number} [latest]
   */
  function label(epoch, latest) {
    if (epoch === null) { out.textContent = 'no epoch yet'; return; }
    out.textContent = `epoch ${epoch}${epoch === latest ? ' (latest)' : ` of ${latest}`}`;
    slider.setAttribute('aria-valuetext', out.textContent);
  }

  return {el, update, label};
}
