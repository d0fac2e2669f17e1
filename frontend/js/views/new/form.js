// @ts-check
// The new-run form's model, shared by its parts: the fields by config path, the fields outside the config (team,
// seeds), the sweep state, and what a submit sends (one config, or a sweep request).  The parts that own the
// page's reactions set `ctx.on` (actions.js: the sweep summary and preview; sections.js: inactive fields).
import {h} from '../../dom.js';
/** @import {Life} from '../../dom.js' */
/** @import {Catalog, Config} from '../../types' */
/** @import {Described, Parsed} from './schema.js' */

/**
 * A field's list of values to sweep over ("vary").
 * @typedef {object} Vary
 * @property {boolean} on
 * @property {HTMLInputElement} input the comma-separated values
 * @property {HTMLButtonElement} button
 * @property {() => Parsed} parse
 * @property {number} [since] when it was varied: the first varied field is the x axis of the sweep's plots
 */

/**
 * One config field of the form.
 * @typedef {object} Field
 * @property {HTMLElement} wrap
 * @property {HTMLInputElement | HTMLSelectElement} input
 * @property {() => any} read its value as the config takes it
 * @property {(v: any) => void} write
 * @property {HTMLElement} error
 * @property {HTMLLabelElement} label
 * @property {string} labelText
 * @property {Described} d
 * @property {Vary} [vary] (numbers and choices a sweep can vary)
 */

/**
 * Where a message about a field goes (its input, or the list of values while varied).
 * @typedef {{wrap: HTMLElement, error: HTMLElement, input: HTMLElement}} Target
 */

/**
 * The seeds: in a sweep, the train.seed field becomes this list.
 * @typedef {Target & {input: HTMLInputElement, button: HTMLButtonElement, field: Field, help: HTMLElement,
 *   helpText: string, parse: () => Parsed}} Seeds
 */

/**
 * @typedef {object} SweepState
 * @property {boolean} forced the sweep page (#/sweeps/new): always a sweep
 * @property {boolean} seedsOn several seeds asked for on the new-run page
 * @property {string | null} preset a sweep preset sent by name (a list or a random search)
 * @property {string | null} applied the sweep preset the form started from
 */

/**
 * @typedef {object} FormHooks
 * @property {() => void} updatePreview the JSON that will be sent
 * @property {() => void} updateSweep run or sweep: buttons, seeds, summary, then the preview
 * @property {() => void} updateInactive fields that do not apply (weights.N with full-precision weights…)
 */

/**
 * @typedef {object} FormContext
 * @property {Catalog} cat
 * @property {boolean} sweep the sweep page
 * @property {Life} life
 * @property {HTMLElement} heading the page title (says "New run → sweep" once a field is varied)
 * @property {HTMLElement} banner the form's error banner
 * @property {HTMLInputElement} baseline "Add a full-precision baseline"
 * @property {Map<string, Field>} fields config path ("weights.N") → field
 * @property {Map<string, Target>} aux form fields outside the config: "team", "seeds"
 * @property {SweepState} sweepState
 * @property {number} varyCount fields varied so far (orders them)
 * @property {FormHooks} on
 */

/**
 * @param {{cat: Catalog, sweep: boolean, life: Life, heading: HTMLElement}} parts
 * @returns {FormContext}
 */
export function createForm({cat, sweep, life, heading}) {
  heading.dataset.runTitle = heading.textContent ?? '';
  const nothing = () => {};
  return {
    cat, sweep, life, heading,
    banner: h('div', {class: 'banner error hidden', role: 'alert', id: 'form-error'}),
    baseline: h('input', {type: 'checkbox', id: 'f-sweep-baseline', name: 'baseline'}),
    fields: new Map(),
    aux: new Map(),
    sweepState: {forced: sweep, seedsOn: false, preset: null, applied: null},
    varyCount: 0,
    on: {updatePreview: nothing, updateSweep: nothing, updateInactive: nothing},
  };
}

/**
 * The config the fields make.
 * @param {FormContext} ctx
 * @returns {Config}
 */
export function collect(ctx) {
  /** @type {Config} */
  const config = {};
  for (const [path, f] of ctx.fields) {
    const parts = path.split('.');
    let o = config;
    for (const p of parts.slice(0, -1)) o = o[p] = o[p] || {};
    o[/** @type {string} */ (parts.at(-1))] = f.read();
  }
  return config;
}

/**
 * The team chosen (only when the user is in several).
 * @param {FormContext} ctx
 * @returns {string | undefined}
 */
export function team(ctx) {
  const t = ctx.aux.get('team');
  return t ? /** @type {HTMLSelectElement} */ (t.input).value : undefined;
}

/**
 * @param {FormContext} ctx
 * @returns {Seeds}
 */
export function seeds(ctx) {
  return /** @type {Seeds} */ (ctx.aux.get('seeds'));
}

/**
 * The varied fields, in the order they were varied: the first is the x axis of the sweep's plots.
 * @param {FormContext} ctx
 */
export function variedPaths(ctx) {
  return [...ctx.fields].filter(([, f]) => f.vary?.on).sort(([, a], [, b]) => (a.vary?.since ?? 0) - (b.vary?.since ?? 0))
    .map(([path]) => path);
}

/**
 * Whether a submit launches a sweep: on the sweep page, with several seeds, a sweep preset or any field varied.
 * @param {FormContext} ctx
 */
export function inSweep(ctx) {
  const s = ctx.sweepState;
  return s.forced || s.seedsOn || s.preset !== null || variedPaths(ctx).length > 0;
}

/**
 * The POST /sweeps body and the number of runs it makes (null while a list is unreadable).
 * @param {FormContext} ctx
 * @returns {{body: Record<string, any>, runs: number | null, configs: number | null}}
 */
export function sweepBody(ctx) {
  const {cat, sweepState, baseline} = ctx;
  const config = collect(ctx);
  /** @type {Record<string, any>} */
  const body = {name: config.name, base: config};
  if (team(ctx)) body.team = team(ctx);
  /** @type {Record<string, any[]>} */
  const grid = {};
  /** @type {number | null} */
  let configs = 1;
  let ok = true;
  for (const path of variedPaths(ctx)) {
    const r = /** @type {Vary} */ (ctx.fields.get(path)?.vary).parse();
    if (r.values) { grid[path] = r.values; configs *= r.values.length; } else ok = false;
  }
  const s = seeds(ctx).parse();
  if (s.values) body.seeds = s.values; else ok = false;
  if (sweepState.preset !== null && !variedPaths(ctx).length) {
    body.preset = sweepState.preset;
    const spec = cat.sweep_presets[sweepState.preset].spec || {};
    configs = spec.random ? spec.budget ?? null : spec.list ? spec.list.length : configs;
  } else if (Object.keys(grid).length || !ok) {
    body.grid = grid;
  } else {
    body.list = [{}];  // only the seeds vary: one config, once per seed
  }
  if (baseline.checked) body.baseline = true;
  const runs = ok && configs !== null ? (configs + (baseline.checked ? 1 : 0)) * body.seeds.length : null;
  return {body, runs, configs};
}
