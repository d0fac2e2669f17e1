// @ts-check
// What compare may put side by side.  A layer name means a place in one architecture: an MLP's fc1 and a CNN's fc1
// are different layers, so the per-layer charts key layers by the run's architecture (`model.arch`) and order them
// as the network does.  Accuracies on different datasets do not compare, so the Pareto front is one per dataset.
// Runs group by a config field or by sweep point (the seeds of one point), each group summarised as mean ± sd.
import {get, isNum, showValue} from '../../util.js';
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

export const SWEEP_POINT = 'sweep';  // the grouping by sweep point (`group=sweep` in the address)

/**
 * What runs can be grouped by: "sweep point" when any run comes from a sweep, then every config key whose values
 * differ (the config diff's keys, less the names every run has its own of).
 * @param {CompareOut} d
 * @returns {{key: string, label: string}[]}
 */
export function groupChoices(d) {
  const keys = Object.keys(d.config_diff).filter((k) => k !== 'name').sort();
  return [
    ...(d.runs.some((r) => r.sweep) ? [{key: SWEEP_POINT, label: 'sweep point'}] : []),
    ...keys.map((k) => ({key: k, label: k})),
  ];
}

/**
 * A run's group under a grouping: its value of the config key, or its sweep point (a run from no sweep is a group
 * of its own).  `label` names the group in legends and tables.
 * @param {CompareRun} run
 * @param {string} by a config key or SWEEP_POINT
 * @returns {{key: string, label: string}}
 */
export function groupOf(run, by) {
  if (by !== SWEEP_POINT) {
    const v = showValue(get(run.config, by));
    return {key: v, label: `${by.split('.').at(-1)}=${v}`};
  }
  const s = run.sweep;
  if (!s) return {key: `run ${run.id}`, label: `#${run.id} (no sweep)`};
  const fields = Object.entries(s.overrides).map(([k, v]) => `${k.split('.').at(-1)}=${showValue(v)}`).join(' · ');
  return {key: `${s.id}/${s.point}`, label: `sweep #${s.id}${fields ? ` ${fields}` : ` point ${s.point}`}`};
}

/**
 * The runs in groups, groups in the order their first run comes.
 * @param {CompareRun[]} runs
 * @param {string} by
 * @returns {{key: string, label: string, runs: CompareRun[]}[]}
 */
export function groupRuns(runs, by) {
  /** @type {Map<string, {key: string, label: string, runs: CompareRun[]}>} */
  const out = new Map();
  for (const r of runs) {
    const g = groupOf(r, by);
    const entry = out.get(g.key) ?? {...g, runs: []};
    entry.runs.push(r);
    out.set(g.key, entry);
  }
  return [...out.values()];
}

/**
 * Mean and sample standard deviation of the numbers among `values` (n: how many; sd 0 for one, null for none).
 * @param {unknown[]} values
 * @returns {{mean: number | null, sd: number | null, n: number}}
 */
export function meanSd(values) {
  const xs = /** @type {number[]} */ (values.filter(isNum));
  const n = xs.length;
  if (!n) return {mean: null, sd: null, n};
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return {mean, sd, n};
}
