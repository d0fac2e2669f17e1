// @ts-check
// The run's config as a key/value table, with a JSON download and "Clone and edit" (drawn once: it never changes).
import {fill, h} from '../../dom.js';
import {download, flatten, showValue} from '../../util.js';
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function runConfig(ctx) {
  const {id, st} = ctx;
  const el = h('div', {class: 'panel', id: 'run-config'});
  let shown = false;

  function render() {
    if (shown) return;
    shown = true;
    const flat = flatten(st.run.config);
    const btn = h('button', {type: 'button', class: 'small'}, 'Download JSON');
    btn.addEventListener('click', () => download(`run-${id}-config.json`, JSON.stringify(st.run.config, null, 2), 'application/json'));
    fill(el,
      h('div', {class: 'toolbar', style: {padding: '.6rem .6rem 0'}}, btn, h('a', {class: 'button small', href: `#/new?clone=${id}`}, 'Clone and edit')),
      h('table', {class: 'kv', style: {width: '100%'}}, h('tbody', null,
        Object.entries(flat).map(([k, v]) => h('tr', null, h('td', {text: k}), h('td', {class: 'mono', text: showValue(v)}))))));
  }

  return {el, render};
}
