// @ts-check
// The run page's data (the run, its epoch rows and layer records) and the context its sections share.
/** @import {Life} from '../../dom.js' */
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {EpochRow, LayerRecord, Run} from '../../types' */
import {FINISHED} from '../../util.js';

export const METRIC_POINTS = 500;  // epoch rows fetched at most (the API thins longer runs)
export const LAYER_POINTS = 200;   // epochs of layer records fetched at most

/**
 * @typedef {object} RunState
 * @property {Run} run the run as last fetched (set before any section renders), with progress from the stream
 * @property {EpochRow[]} metrics run-level rows, ascending epoch
 * @property {number} metricsTotal epochs recorded (the API may have thinned them)
 * @property {Map<number, Map<string, LayerRecord>>} layers epoch → layer → record
 * @property {string[]} layerNames in the order the layers first appeared
 * @property {Map<string, LayerRecord>} layerMeta layer → its first record (kind, input_is_real, num_weights, macs)
 * @property {number | null} layerTotal epochs with layer records on the server, when known
 * @property {number} sliderIdx the epoch slider's position (an index into the layer epochs)
 * @property {boolean} follow the slider stays on the latest epoch until the user moves it
 * @property {boolean} live the event stream is open
 */

/** What a redraw redraws: the curves, the layer charts over epochs, the charts at the slider's epoch. */
/** @typedef {'curves' | 'layers' | 'epoch'} Part */

/**
 * What every section of the run page gets.
 * @typedef {object} RunContext
 * @property {number} id
 * @property {Life} life
 * @property {RunState} st
 * @property {MetricCatalog | null} mc the metric catalog, loaded with the run
 * @property {(...parts: Part[]) => void} schedule redraw those parts (throttled to ≤ 10/s, paused while hidden)
 */

/** @returns {RunState} */
export function createState() {
  return {
    run: /** @type {any} */ (null),
    metrics: [],
    metricsTotal: 0,
    layers: new Map(),
    layerNames: [],
    layerMeta: new Map(),
    layerTotal: null,
    sliderIdx: 0,
    follow: true,
    live: false,
  };
}

/** @param {RunState} st */
export const lastMetricEpoch = (st) => (st.metrics.length ? /** @type {EpochRow} */ (st.metrics.at(-1)).epoch : 0);
/** @param {RunState} st */
export const layerEpochs = (st) => [...st.layers.keys()].sort((a, b) => a - b);
/** @param {RunState} st */
export const lastLayerEpoch = (st) => layerEpochs(st).at(-1) ?? 0;

/**
 * Add or replace one epoch row, keeping epoch order.
 * @param {RunState} st
 * @param {EpochRow} m
 */
export function upsertMetric(st, m) {
  const last = lastMetricEpoch(st);
  if (m.epoch > last) st.metrics.push(m);
  else {
    const i = st.metrics.findIndex((x) => x.epoch >= m.epoch);
    if (st.metrics[i].epoch === m.epoch) st.metrics[i] = m; else st.metrics.splice(i, 0, m);
  }
  st.metricsTotal = Math.max(st.metricsTotal, m.epoch);
}

/**
 * @param {RunState} st
 * @param {LayerRecord[]} records
 */
export function addLayerRecords(st, records) {
  for (const r of records) {
    let byLayer = st.layers.get(r.epoch);
    if (!byLayer) st.layers.set(r.epoch, byLayer = new Map());
    byLayer.set(r.layer, r);
    if (!st.layerMeta.has(r.layer)) { st.layerMeta.set(r.layer, r); st.layerNames.push(r.layer); }
  }
}

/**
 * The weights' range H (state labels run from -H to H).
 * @param {RunState} st
 * @returns {number}
 */
export function weightH(st) { return st.run?.config?.weights?.H ?? 1; }

/**
 * What an empty chart says: still waiting, or nothing was ever recorded.
 * @param {RunState} st
 */
export function noData(st) {
  return st.run && FINISHED.includes(st.run.status) ? 'No epochs recorded' : 'No data yet';
}

/**
 * A layer's name as charts show it.
 * @param {RunState} st
 * @param {string} name
 */
export function layerLabel(st, name) {
  return st.layerMeta.get(name)?.input_is_real ? `${name} (real input)` : name;
}

/**
 * An epoch axis: whole-number ticks when there are few epochs.
 * @param {number[]} epochs
 */
export function epochAxis(epochs) {
  const span = epochs.length ? /** @type {number} */ (epochs.at(-1)) - epochs[0] : 0;
  return {title: {text: 'epoch'}, dtick: span <= 12 ? 1 : undefined};
}
