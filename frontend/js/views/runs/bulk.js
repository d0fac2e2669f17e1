// @ts-check
// Bulk actions on the selected runs (POST /runs/bulk): tag, untag, archive, unarchive, cancel, delete.  Each run is
// answered on its own; those it was refused for are listed in words under the bar.  Cancel and delete ask for a
// second click, like the row buttons.
import {endpoints} from '../../api.js';
import {confirmButton, fill, h, toast} from '../../dom.js';
/** @import {BulkOut} from '../../types' */

/** @type {Record<string, string>} the action, done */
const DONE = {tag: 'Tagged', untag: 'Untagged', archive: 'Archived', unarchive: 'Unarchived', cancel: 'Cancelled',
  delete: 'Deleted'};

/**
 * Why one run was refused, in words.
 * @param {BulkOut['results'][number]} r
 */
export function refusal(r) {
  if (r.status === 404) return `Run #${r.id}: not found (deleted, or not one of your team’s runs).`;
  const why = (r.detail || 'refused').replace(new RegExp(`^run ${r.id} `), 'it ');
  return `Run #${r.id}: ${why}.`.replace(/\.\.$/, '.');
}

/**
 * @param {() => number[]} selectedIds the selected runs, in id order
 * @param {(result: BulkOut) => void} done after an action (the page reloads, and forgets deleted runs)
 * @returns {{el: HTMLElement, update: () => void}}
 */
export function bulkBar(selectedIds, done) {
  const count = h('span', {class: 'small', id: 'bulk-count'});
  const tags = h('input', {type: 'text', placeholder: 'tag, another tag', 'aria-label': 'Tags to add or remove',
    id: 'bulk-tags', style: {width: '12rem'}});
  const failures = h('div', {class: 'banner warn hidden', role: 'status', id: 'bulk-result'});
  /** @type {HTMLButtonElement[]} */
  const buttons = [];

  /**
   * @param {string} action
   * @param {string[]} [withTags]
   */
  async function run(action, withTags) {
    const ids = selectedIds();
    if (!ids.length) return;
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const result = await endpoints.bulk(ids, action, withTags);
      const refused = result.results.filter((r) => !r.ok);
      toast(`${DONE[action] || action} ${result.done} of ${ids.length} run${ids.length === 1 ? '' : 's'}`, refused.length ? 'error' : 'info');
      fill(failures, refused.length ? [h('b', null, `${refused.length} not ${(DONE[action] || action).toLowerCase()}:`),
        h('ul', null, refused.map((r) => h('li', {'data-run': r.id, text: refusal(r)})))] : []);
      failures.classList.toggle('hidden', !refused.length);
      done(result);
    } catch (err) {
      toast(`${action[0].toUpperCase()}${action.slice(1)} failed: ${err.message}`, 'error');  // "Cancel failed", not "Cancelled failed"
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  /** @param {'tag' | 'untag'} action */
  function tagAction(action) {
    const list = [...new Set(tags.value.split(',').map((t) => t.trim()).filter(Boolean))];
    if (!list.length) { tags.focus(); toast('Type the tags first (comma-separated)', 'error'); return; }
    run(action, list).then(() => { if (action === 'tag') tags.value = ''; });
  }

  const button = (/** @type {string} */ action, /** @type {string} */ label, /** @type {() => void} */ onclick) =>
    h('button', {type: 'button', class: 'small', 'data-bulk': action, onclick}, label);
  buttons.push(
    button('tag', 'Tag', () => tagAction('tag')),
    button('untag', 'Untag', () => tagAction('untag')),
    button('archive', 'Archive', () => run('archive')),
    button('unarchive', 'Unarchive', () => run('unarchive')));
  for (const [action, label] of [['cancel', 'Cancel'], ['delete', 'Delete']]) {
    const b = confirmButton(label, `Confirm ${action}`, () => run(action),
      {class: 'small', title: `${label} the selected runs (a second click confirms)`});
    b.dataset.bulk = action;
    buttons.push(b);
  }
  tags.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); tagAction('tag'); } });

  const bar = h('div', {class: 'toolbar bulk-bar hidden', id: 'bulk-bar'}, count, tags, buttons);
  const el = h('div', null, bar, failures);
  function update() {
    const n = selectedIds().length;
    bar.classList.toggle('hidden', n === 0);
    count.textContent = `${n} selected:`;
  }
  update();
  return {el, update};
}
