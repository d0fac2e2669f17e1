// @ts-check
// A layer's state-transition matrix at one epoch: a table for up to 9 states, a heatmap of the off-diagonal counts
// beyond that.
import {draw} from '../../charts.js';
import {fill, h} from '../../dom.js';
import {fmtInt, fmtPct, stateLabels} from '../../util.js';
/** @import {LayerRecord} from '../../types' */

/**
 * @param {HTMLElement} box the matrix's card
 * @param {LayerRecord | undefined} r the layer's record at that epoch
 * @param {number} epoch
 * @param {number} H the weights' range
 */
export function renderMatrix(box, r, epoch, H) {
  const tm = r?.transition_matrix;
  if (!r || !tm) {
    const plot = /** @type {HTMLElement | null} */ (box.querySelector('.js-plotly-plot'));
    if (plot) window.Plotly?.purge(plot);
    fill(box, h('header', null, h('h3', null, 'State transitions')),
      h('p', {class: 'muted small'}, r ? 'Full-precision weights: no transitions.' : 'No record at this epoch.'));
    return;
  }
  const labels = stateLabels(tm.length, H);
  const summary = h('p', {class: 'muted small'}, `${fmtInt(r.transitions)} weights changed state (${fmtPct(Number(r.transitions) / r.num_weights)}); `,
    `${fmtInt(r.moves)} DST moves in all.`);
  const head = h('header', null, h('h3', null, 'State transitions'), h('span', {class: 'note', text: `epoch ${epoch}: start state → end state`}));
  if (tm.length > 9) {  // too many states for a table: a heatmap of the off-diagonal counts
    let graph = /** @type {HTMLElement | null} */ (box.querySelector('.chart'));
    if (!graph) {
      graph = h('div', {class: 'chart short'});
      fill(box, head, graph, summary);
    } else {
      box.replaceChild(head, /** @type {Node} */ (box.querySelector('header')));
      box.replaceChild(summary, /** @type {Node} */ (box.querySelector('p')));
    }
    draw(graph, [{type: 'heatmap', x: labels, y: labels, z: tm.map((row, i) => row.map((c, j) => (i === j ? null : c))),
      colorscale: 'Blues', reversescale: false, colorbar: {thickness: 10},
      hovertemplate: '%{y} → %{x}: %{z} weights<extra></extra>'}],
    {xaxis: {type: 'category', title: {text: 'to'}}, yaxis: {type: 'category', title: {text: 'from'}}, margin: {t: 8}});
    return;
  }
  const max = Math.max(1, ...tm.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2b66d9';
  fill(box, head,
    h('div', {class: 'table-wrap'}, h('table', {class: 'matrix'},
      h('thead', null, h('tr', null, h('th', null, 'from ╲ to'), labels.map((l) => h('th', {text: l})))),
      h('tbody', null, tm.map((row, i) => h('tr', null, h('th', {text: labels[i]}),
        row.map((c, j) => {
          const td = h('td', {class: i === j ? 'diag' : '', text: fmtInt(c), title: i === j ? 'stayed' : `${labels[i]} → ${labels[j]}`});
          if (i !== j && c > 0) td.style.background = `color-mix(in srgb, ${accent} ${Math.round(10 + 50 * c / max)}%, transparent)`;
          return td;
        })))))),
    summary);
}
