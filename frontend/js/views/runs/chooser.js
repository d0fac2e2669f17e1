// @ts-check
// The column chooser: a drop-down of every column (run fields, config shorthand, every config field, every run
// metric), a box each, with a filter and "Defaults".  The page keeps the choice in its address (`cols=`).
import {h} from '../../dom.js';
import {sortNote} from './columns.js';
/** @import {Life} from '../../dom.js' */
/** @import {Column} from './columns.js' */

const GROUPS = /** @type {const} */ ([['run', 'Run'], ['shorthand', 'Config at a glance'], ['config', 'Config fields'],
  ['metric', 'Metrics']]);

/**
 * @param {Column[]} columns every column, in the table's order
 * @param {() => string[]} shown the keys shown now
 * @param {(keys: string[]) => void} onChange the new choice, in the table's order (never empty)
 * @param {string[]} defaults
 * @param {Life} life
 * @returns {{el: HTMLElement, update: () => void}}
 */
export function columnChooser(columns, shown, onChange, defaults, life) {
  const summary = h('summary', {class: 'button', id: 'columns-button'}, 'Columns');
  const filter = h('input', {type: 'search', placeholder: 'Find a column', 'aria-label': 'Find a column', id: 'columns-filter'});
  /** @type {Map<string, {box: HTMLInputElement, row: HTMLElement, text: string}>} */
  const boxes = new Map();
  const sections = GROUPS.map(([group, title]) => {
    const rows = columns.filter((c) => c.group === group).map((c) => {
      const box = h('input', {type: 'checkbox', 'data-col': c.key});
      box.addEventListener('change', () => {
        const chosen = new Set(shown());
        box.checked ? chosen.add(c.key) : chosen.delete(c.key);
        if (!chosen.size) { box.checked = true; return; }  // a table keeps at least one column
        onChange(columns.filter((x) => chosen.has(x.key)).map((x) => x.key));
      });
      const tip = [c.title, sortNote(c)].filter(Boolean).join(' — ');
      const row = h('label', {class: 'chooser-item', title: tip}, box,
        c.label === c.key ? h('span', {class: 'mono', text: c.key}) : h('span', null, c.label, ' ', h('span', {class: 'muted small mono', text: c.key})));
      boxes.set(c.key, {box, row, text: `${c.key} ${c.label}`.toLowerCase()});
      return row;
    });
    return h('fieldset', {class: 'chooser-group', 'data-group': group}, h('legend', null, title), rows);
  });
  const reset = h('button', {type: 'button', class: 'small', id: 'columns-default', onclick: () => onChange(defaults)}, 'Defaults');
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const {row, text} of boxes.values()) row.classList.toggle('hidden', Boolean(q) && !text.includes(q));
  });
  const el = h('details', {class: 'chooser', id: 'column-chooser'}, summary,
    h('div', {class: 'chooser-panel panel'}, h('div', {class: 'toolbar'}, filter, reset,
      h('span', {class: 'muted small'}, 'Shown in the table and in the CSV, in this order')), sections));

  // It closes like a menu: a click outside it, or Escape.
  life.listen(document, 'click', (/** @type {MouseEvent} */ ev) => {
    if (el.hasAttribute('open') && !el.contains(/** @type {Node} */ (ev.target))) el.removeAttribute('open');
  });
  el.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { el.removeAttribute('open'); summary.focus(); } });

  function update() {
    const on = new Set(shown());
    for (const [key, {box}] of boxes) box.checked = on.has(key);
    summary.textContent = `Columns (${on.size})`;
  }
  update();
  return {el, update};
}
