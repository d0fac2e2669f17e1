// @ts-check
// A failed (or cancelled) run's message, with the traceback for admins; a note when the run was deleted meanwhile.
import {fill, h} from '../../dom.js';
/** @import {RunContext} from './state.js' */

/** @param {RunContext} ctx */
export function runErrors(ctx) {
  const {st} = ctx;
  const el = h('div', {id: 'run-error'});

  function render() {
    const r = st.run;
    if (!r.error) { el.replaceChildren(); return; }
    const open = /** @type {HTMLDetailsElement | null} */ (el.querySelector('#error-detail'))?.open ?? false;  // (kept open across refreshes)
    fill(el, h('h3', {class: 'muted'}, r.status === 'failed' ? 'Error' : 'Message'),
      h('pre', {class: 'error-text', id: 'error-text', text: r.error}),
      r.error_detail ? h('details', {class: 'preview error-detail', id: 'error-detail', open},
        h('summary', null, 'Traceback (admins only)'), h('pre', {text: r.error_detail})) : null);
  }

  function deleted() {
    fill(el, h('div', {class: 'banner warn', text: 'This run was deleted.'}));
  }

  return {el, render, deleted};
}
