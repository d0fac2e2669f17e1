// @ts-check
// New run or sweep: a form built from GET /api/v1/catalog (JSON schema bounds, descriptions, presets); clone from a
// run.  "vary" next to a field turns it into a comma-separated list of values; with any field varied the form
// launches a grid sweep (POST /sweeps) over the varied fields × seeds instead of one run.
// The parts are in views/new/: the form's model (form.js), its fieldsets (sections.js, fields.js, vary.js), the
// preset bars (presets.js), the foot with the submit (actions.js) and the field messages (errors.js).
import {endpoints, me} from '../api.js';
import {fill, h} from '../dom.js';
import {formActions} from './new/actions.js';
import {createForm} from './new/form.js';
import {presetBars} from './new/presets.js';
import {formSections} from './new/sections.js';
/** @import {Life} from '../dom.js' */
/** @import {Catalog, Run, Team} from '../types' */

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams, sweep?: boolean}} args sweep: the sweep page (#/sweeps/new)
 * @param {Life} life
 */
export function mount(root, {params, sweep = false}, life) {
  document.title = sweep ? 'New sweep — GXNOR Lab' : 'New run — GXNOR Lab';
  const cloneId = params.get('clone');
  const heading = h('h1', {id: 'new-title'}, cloneId ? `Clone run #${cloneId}` : sweep ? 'New sweep' : 'New run');
  root.append(h('div', {class: 'page-head'}, heading));
  const status = h('p', {class: 'muted'}, 'Loading the catalog…');
  root.append(status);

  (async () => {
    /** @type {Catalog} */
    let cat;
    let who = null;
    let source = null;
    try {
      // The teams only add a select: a failure other than sign-in (handled by the app) leaves it out.
      // A fresh catalog, not the page's cached one: which datasets this server has can change (an admin adds files).
      [cat, who] = await Promise.all([endpoints.catalog(life.signal), me().catch(() => null)]);
      if (cloneId) source = await endpoints.run(Number(cloneId), life.signal);
    } catch (err) {
      if (!life.alive) return;
      fill(status, h('span', {class: 'banner error', text: `Could not load: ${err.message}`}));
      return;
    }
    if (!life.alive) return;
    status.remove();
    build(root, {cat, teams: who?.teams || [], source, params, sweep, heading}, life);
  })();
}

/**
 * @param {HTMLElement} root
 * @param {{cat: Catalog, teams: Team[], source: Run | null, params: URLSearchParams, sweep: boolean, heading: HTMLElement}} parts
 * @param {Life} life
 */
function build(root, {cat, teams, source, params, sweep, heading}, life) {
  const ctx = createForm({cat, sweep, life, heading});
  // noValidate: the form checks every field itself on submit and shows all the messages at once (errors.js), not
  // the browser's bubble for one field at a time
  const form = h('form', {class: 'config', id: 'new-run-form', autocomplete: 'off', noValidate: true}, formSections(ctx, teams));
  const presets = presetBars(ctx);
  const actions = formActions(ctx, {presetNote: presets.note, onReset: presets.reset});
  form.append(...actions.els);
  form.addEventListener('submit', actions.onSubmit);

  const intro = source
    ? h('div', {class: 'banner info'}, 'Pre-filled from run ', h('a', {href: `#/runs/${source.id}`}, `#${source.id}`), ' ',
      h('b', {text: source.name}), '. Edit and queue.')
    : sweep
      ? h('p', {class: 'muted'}, 'Start from a sweep preset, or set the base config below and press ', h('b', null, 'vary'),
        ' next to each field to sweep (comma-separated values). Every combination runs once per seed.')
      : h('p', {class: 'muted'}, 'Pick a preset or start from the defaults. Every field has the server’s bounds; ',
        'the full-precision (-fp) presets are the paper’s baselines. ', h('b', null, 'vary'),
        ' next to a field turns the run into a sweep.');
  root.append(intro, h('div', {class: 'toolbar'}, presets.bars), presets.note, ctx.banner, form);
  presets.start(source, params);
}
