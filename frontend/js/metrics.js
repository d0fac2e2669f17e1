// @ts-check
// The metric catalog, from GET /api/v1/catalog (`metrics`; gxnor_core.metrics on the server, docs/METRICS.md):
// every run, epoch and layer metric with its label, table header, unit and format, better-direction and what it
// is a fraction of, plus which metrics each view shows by default.  Views read metrics here, never declare them.
import {catalog} from './api.js';
import {fmtCompact, fmtDuration, fmtInt, fmtNum, fmtPct, isNum} from './util.js';
/** @import {Metric, MetricsCatalog} from './types' */

/**
 * The catalog's metrics, indexed by name, and the metrics each view shows.
 * @typedef {MetricsCatalog & {
 *   runBy: Record<string, Metric>, epochBy: Record<string, Metric>, layerBy: Record<string, Metric>,
 *   view: (name: string) => Metric[],
 * }} MetricCatalog
 */

/** @type {Promise<MetricCatalog> | null} */
let promise = null;

/** The catalog's metrics, indexed: {run, epoch, layer: [metric…], runBy, epochBy, layerBy: {name: metric},
 * view(name): the metrics a view shows (run metrics, or epoch/layer metrics for the views of those), pareto}.
 * @returns {Promise<MetricCatalog>}
 */
export function metricCatalog() {
  promise = promise || catalog().then((c) => indexed(c.metrics)).catch((err) => { promise = null; throw err; });
  return promise;
}

/**
 * @param {MetricsCatalog} m
 * @returns {MetricCatalog}
 */
function indexed(m) {
  const by = (/** @type {Metric[]} */ list) => Object.fromEntries(list.map((x) => [x.name, x]));
  const runBy = by(m.run);
  const epochBy = by(m.epoch);
  const layerBy = by(m.layer);
  /** @type {Record<string, Record<string, Metric>>} */
  const kinds = {network_curves: epochBy, compare_layers: layerBy};
  return {
    ...m, runBy, epochBy, layerBy,
    view: (name) => (m.views[name] || []).map((n) => (kinds[name] || runBy)[n]).filter(Boolean),
  };
}

/** @param {unknown} v */
function fmtBytes(v) {
  if (!isNum(v)) return '—';
  for (const [d, u] of /** @type {[number, string][]} */ ([[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']])) if (Math.abs(v) >= d) return `${fmtNum(v / d, 3)} ${u}`;
  return `${Math.round(v)} B`;
}

/**
 * A metric's value as text ("—" when missing), in the metric's own format.
 * @param {Metric | null | undefined} m
 * @param {unknown} v
 */
export function fmtMetric(m, v) {
  switch (m?.format) {
    case 'percent': return fmtPct(v, m.digits);
    case 'integer': return fmtInt(v);
    case 'compact': return fmtCompact(v);
    case 'duration': return fmtDuration(v);
    case 'bytes': return fmtBytes(v);
    default: return fmtNum(v, m?.digits ?? 4);
  }
}

/**
 * Plotly axis settings for a metric (percent axes for fractions).
 * @param {Metric | null | undefined} m
 * @returns {{tickformat?: string}}
 */
export function metricAxis(m) {
  return m?.format === 'percent' ? {tickformat: '.2~%'} : {};
}

/**
 * A Plotly hover format for a metric's values (e.g. `%{y${hoverFormat(m)}}`).
 * @param {Metric | null | undefined} m
 */
export function hoverFormat(m) {
  return m?.format === 'percent' ? ':.2%' : ':.4g';
}

/**
 * A column's tooltip: what the metric is and what it is a fraction of.
 * @param {Metric | null | undefined} m
 */
export function metricTitle(m) {
  return m ? `${m.label}: ${m.description}` : null;
}

/**
 * The sort direction that shows the best first.
 * @param {Metric | null | undefined} m
 * @returns {'asc' | 'desc'}
 */
export function bestFirst(m) {
  return m?.better === 'higher' ? 'desc' : 'asc';
}
