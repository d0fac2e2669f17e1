// @ts-check
// What compare may put side by side.  A layer name means a place in one architecture: an MLP's fc1 and a CNN's fc1
// are different layers, so the per-layer charts key layers by the run's architecture (`model.arch`) and order them
// as the network does.  Accuracies on different datasets do not compare, so the Pareto front is one per dataset.
import {get} from '../../util.js';
/** @import {CompareOut, CompareRun} from '../../types' */

/**
 * @param {CompareRun} run
 * @returns {string}
 */
export function archOf(run) { return String(get(run.config, 'model.arch') ?? '—'); }

/**
 * @param {CompareRun} run
 * @returns {string}
 */
export function datasetOf(run) { return String(get(run.config, 'dataset.name') ?? '—'); }

/**
 * The per-layer charts' columns: each architecture's layers in network order (the layer records come first layer
 * first), architectures in the order of the runs.  A layer only some runs of an architecture have (a deeper MLP's
 * fc3) goes after the layer it follows in those runs.
 * @param {CompareOut} d
 * @returns {{arch: string, layer: string}[]}
 */
export function layerColumns(d) {
  /** @type {Map<string, string[]>} */
  const byArch = new Map();
  for (const r of d.runs) {
    const arch = archOf(r);
    const order = byArch.get(arch) ?? [];
    byArch.set(arch, order);
    let at = 0;  // where the next layer of this run goes in the merged order
    for (const layer of Object.keys(d.layers[String(r.id)] || {})) {
      const i = order.indexOf(layer);
      if (i >= 0) at = i + 1;
      else order.splice(at++, 0, layer);
    }
  }
  return [...byArch].flatMap(([arch, layers]) => layers.map((layer) => ({arch, layer})));
}

/**
 * The runs by dataset, datasets in the order of the runs.
 * @param {CompareRun[]} runs
 * @returns {Map<string, CompareRun[]>}
 */
export function byDataset(runs) {
  /** @type {Map<string, CompareRun[]>} */
  const out = new Map();
  for (const r of runs) out.set(datasetOf(r), [...out.get(datasetOf(r)) ?? [], r]);
  return out;
}
