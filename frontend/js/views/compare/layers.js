// @ts-check
// Compare's per-layer bars (last epoch): gate-event rate and activation sparsity, one bar per run and layer.
import {draw, plotText} from '../../charts.js';
import {archOf, layerColumns} from './groups.js';
/** @import {CompareOut, CompareRun} from '../../types' */

/**
 * @param {{gate: HTMLElement, sparsity: HTMLElement}} graphs
 * @param {{d: CompareOut, colorOf: (id: number) => string, runLabel: (r: CompareRun) => string}} args
 */
export function drawLayers({gate, sparsity}, {d, colorOf, runLabel}) {
  // One column per layer of each architecture (an MLP's fc1 is not a CNN's); two architectures: a two-level axis.
  // Plotly orders a two-level axis's layers by where a name first appears in any group (a CNN's fc1 before its
  // conv1 after an MLP's fc1): zero-width spaces, one per group, keep each group's names its own.
  const cols = layerColumns(d);
  const archs = [...new Set(cols.map((c) => c.arch))];
  const mixed = archs.length > 1;
  const x = mixed ? [cols.map((c) => plotText(c.arch)), cols.map((c) => c.layer + '\u200b'.repeat(archs.indexOf(c.arch)))]
    : cols.map((c) => c.layer);
  const bars = (/** @type {string} */ key) => d.runs.map((r) => ({type: 'bar', name: plotText(runLabel(r)), meta: {run: r.id}, x,
    y: cols.map((c) => (c.arch === archOf(r) ? d.layers[String(r.id)]?.[c.layer]?.[key] ?? null : null)), marker: {color: colorOf(r.id)},
    hovertemplate: `${plotText(runLabel(r))}<br>%{x}: %{y:.2%}<extra></extra>`}));
  const layout = {barmode: 'group', xaxis: {type: mixed ? 'multicategory' : 'category', title: {text: mixed ? 'architecture, layer' : 'layer'}},
    yaxis: {tickformat: '.2~%', rangemode: 'tozero'}};
  draw(gate, cols.length ? bars('gate_event_rate') : [], layout, 'No layer records yet');
  draw(sparsity, cols.length ? bars('activation_sparsity') : [], layout, 'No layer records yet');
}
