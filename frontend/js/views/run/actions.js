// @ts-check
// The run's actions: clone, checkpoint download, cancel (while it is queued or running), delete (once finished).
import {endpoints} from '../../api.js';
import {confirmButton, fill, h, toast} from '../../dom.js';
import {ACTIVE, FINISHED} from '../../util.js';
/** @import {RunContext} from './state.js' */

/**
 * @param {RunContext} ctx
 * @param {() => void} onRunChanged called after a cancel replaced ctx.st.run
 */
export function runActions(ctx, onRunChanged) {
  const {st} = ctx;
  const el = h('div', {class: 'actions', id: 'run-actions'});
  let shownFor = '';  // the buttons are rebuilt only when what they offer changes

  function render() {
    const r = st.run;
    const key = `${r.status}|${r.cancel_requested}|${r.progress.epochs_done > 0}`;
    if (key === shownFor) return;
    shownFor = key;
    /** @type {HTMLElement[]} */
    const items = [h('a', {class: 'button', href: `#/new?clone=${r.id}`, id: 'clone-run'}, 'Clone')];
    if (r.progress.epochs_done > 0) items.push(checkpointButton(r.id));
    if (ACTIVE.includes(r.status) && r.cancel_requested) {
      items.push(h('button', {type: 'button', disabled: true, id: 'cancel-run'}, 'Cancelling…'));
    } else if (ACTIVE.includes(r.status)) {  // a second click confirms, as for Delete: a cancelled run cannot resume
      const b = confirmButton('Cancel', 'Confirm cancel', async () => {
        try { st.run = await endpoints.cancel(r.id); onRunChanged(); } catch (err) { toast(err.message, 'error'); }
      }, {title: 'Stop this run (a second click confirms)'});
      b.id = 'cancel-run';
      items.push(b);
    } else if (FINISHED.includes(r.status)) {
      items.push(confirmButton('Delete', 'Confirm delete', async () => {
        try { await endpoints.remove(r.id); toast(`Run #${r.id} deleted`); location.hash = '#/runs'; } catch (err) { toast(err.message, 'error'); }
      }));
    }
    fill(el, items);
  }

  return {el, render};
}

/**
 * The latest checkpoint, through a short-lived link made for the download (no token in any address).
 * @param {number} runId
 */
function checkpointButton(runId) {
  const dl = h('button', {type: 'button', id: 'checkpoint-link', title: 'Latest checkpoint (load with gxnor_core.load_model)'},
    'Checkpoint ↓');
  dl.addEventListener('click', async () => {
    dl.disabled = true;
    try {
      const {url} = await endpoints.checkpointLink(runId);
      const a = h('a', {href: url, download: ''});
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) { toast(err.message, 'error'); } finally { dl.disabled = false; }
  });
  return dl;
}
