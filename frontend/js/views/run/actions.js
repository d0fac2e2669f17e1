// @ts-check
// The run's actions: clone, checkpoint download, cancel (while it is queued or running), delete (once finished);
// a failed or cancelled run can be re-run (a new run with its config: the page goes there) or, with a checkpoint,
// resumed (this run queued again from its last epoch: the page stays and follows it).
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
      if (r.status !== 'succeeded') items.push(...restartButtons(r.id, r.progress.epochs_done > 0));
      items.push(confirmButton('Delete', 'Confirm delete', async () => {
        try { await endpoints.remove(r.id); toast(`Run #${r.id} deleted`); location.hash = '#/runs'; } catch (err) { toast(err.message, 'error'); }
      }));
    }
    fill(el, items);
  }

  return {el, render};
}

/**
 * Re-run (always) and Resume (with a checkpoint, i.e. once an epoch was recorded) for a failed or cancelled run.
 * @param {number} runId
 * @param {boolean} resumable
 */
function restartButtons(runId, resumable) {
  const rerun = h('button', {type: 'button', id: 'rerun-run', title: 'A new run with this config, queued now'}, 'Re-run');
  rerun.addEventListener('click', async () => {
    rerun.disabled = true;
    try {
      const made = await endpoints.rerun(runId);
      toast(`Run #${made.id} queued: a re-run of #${runId}`);
      location.hash = `#/runs/${made.id}`;
    } catch (err) { toast(err.message, 'error'); } finally { rerun.disabled = false; }
  });
  if (!resumable) return [rerun];
  const resume = h('button', {type: 'button', id: 'resume-run', title: 'Queue this run again; it goes on from its last recorded epoch'},
    'Resume');
  resume.addEventListener('click', async () => {
    resume.disabled = true;
    try {
      await endpoints.resume(runId);
      toast(`Run #${runId} queued again from its last epoch`);
      // The same page, loaded afresh: it reads the run, now queued, and follows it live.
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (err) { toast(err.message, 'error'); resume.disabled = false; }
  });
  return [rerun, resume];
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
