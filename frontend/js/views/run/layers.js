// @ts-check
// The "Layers" part of the run page: the epoch slider, the hardware charts and one card per layer (layer.js).
import {h} from '../../dom.js';
import {hardwareCharts} from './hardware.js';
import {layerCard} from './layer.js';
import {epochSlider} from './slider.js';
import {epochAxis, layerEpochs, noData} from './state.js';
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function layersSection(ctx) {
  const {st} = ctx;
  const slider = epochSlider(ctx);
  const hardware = hardwareCharts(ctx);
  const box = h('div', {id: 'layers'});
  /** @type {Map<string, ReturnType<typeof layerCard>>} */
  const cards = new Map();  // layer → its card, made when its first record arrives

  /** @param {string} name */
  function card(name) {
    let c = cards.get(name);
    if (!c) {
      c = layerCard(ctx, name);
      cards.set(name, c);
      box.append(c.section);
    }
    return c;
  }

  /** The charts over epochs (and the slider's range). */
  function drawOverEpochs() {
    const epochs = layerEpochs(st);
    slider.update(epochs);
    const xaxis = epochAxis(epochs);
    for (const name of st.layerNames) card(name).drawOverEpochs(epochs, xaxis);
    hardware.drawRate(epochs, xaxis, noData(st));
  }

  /** The charts at the slider's epoch. */
  function drawAtEpoch() {
    const epochs = layerEpochs(st);
    if (!epochs.length) {
      slider.label(null);
      for (const c of cards.values()) c.emptyAtEpoch();
      hardware.drawEvents(null);
      return;
    }
    const epoch = epochs[Math.min(st.sliderIdx, epochs.length - 1)];
    slider.label(epoch, epochs.at(-1));
    const at = st.layers.get(epoch) ?? new Map();
    for (const name of st.layerNames) card(name).drawAtEpoch(epoch, at.get(name));
    hardware.drawEvents(epoch, at);
  }

  return {
    els: [slider.el, hardware.el, h('div', {style: {height: '.8rem'}}), box],
    drawOverEpochs, drawAtEpoch,
  };
}
