// @ts-check
// Compare's tables: the runs with the catalog's `compare` metrics (accuracy after the Pareto error), and the config
// keys whose values differ, one column per run.
import {fill, h} from '../../dom.js';
import {fmtMetric, metricTitle} from '../../metrics.js';
import {fmtPct, isNum, showValue} from '../../util.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {CompareOut, CompareRun} from '../../types' */

/**
 * @param {HTMLElement} box
 * @param {{d: CompareOut, mc: MetricCatalog, colorOf: (id: number) => string, groupOf: ((r: CompareRun) => string) | null}} args
 *   groupOf: a run's group label, when grouped (a column of its own)
 */
export function renderRuns(box, {d, mc, colorOf, groupOf}) {
  const errorM = mc.runBy[mc.pareto.y];
  const shown = mc.view('compare');
  const heads = shown.flatMap((m) => [h('th', {class: 'num', title: metricTitle(m)}, m.short),
    m.name === errorM.name ? h('th', {class: 'num', title: `1 − ${errorM.label.toLowerCase()}`}, 'Accuracy') : []]);
  const cells = (/** @type {CompareRun} */ r) => shown.flatMap((m) => {
    const v = r.summary[m.name];
    return [h('td', {class: 'num', 'data-metric': m.name, text: fmtMetric(m, v)}),
      m.name === errorM.name ? h('td', {class: 'num', text: isNum(v) ? fmtPct(1 - v, m.digits) : '—'}) : []];
  });
  fill(box, h('table', {class: 'data'},
    h('thead', null, h('tr', null, ['Run', 'Name', 'Status'].map((t) => h('th', null, t)), groupOf ? h('th', null, 'Group') : null, heads)),
    h('tbody', null, d.runs.map((r) => h('tr', {'data-run': r.id},
      h('td', null, h('span', {class: 'swatch', style: {background: colorOf(r.id)}}), h('a', {href: `#/runs/${r.id}`}, `#${r.id}`)),
      h('td', {class: 'name', text: r.name}),
      h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
      groupOf ? h('td', {class: 'group', text: groupOf(r)}) : null,
      cells(r))))));
}

/**
 * @param {HTMLElement} box
 * @param {{d: CompareOut, colorOf: (id: number) => string, runLabel: (r: CompareRun) => string}} args
 */
export function renderDiff(box, {d, colorOf, runLabel}) {
  const keys = Object.keys(d.config_diff).sort();
  if (!keys.length) {
    fill(box, h('p', {class: 'empty'}, 'The configs are identical.'));
    return;
  }
  fill(box, h('table', {class: 'data diff', id: 'config-diff-table'},
    h('thead', null, h('tr', null, h('th', null, 'key'), d.runs.map((r) => h('th', null,
      h('span', {class: 'swatch', style: {background: colorOf(r.id)}}), h('span', {text: runLabel(r)}))))),
    h('tbody', null, keys.map((k) => h('tr', {'data-key': k}, h('td', {class: 'key', text: k}),
      d.config_diff[k].map((v) => h('td', {class: 'value', text: showValue(v)})))))));
}
