// @ts-check
// "vary": a field becomes a comma-separated list of values to sweep over; the seed field becomes the list of seeds
// every config runs with.
import {h} from '../../dom.js';
import {clearError} from './errors.js';
import {MAX_SEEDS, parseValues} from './schema.js';
/** @import {Field, FormContext, Seeds} from './form.js' */

/**
 * @param {string} path
 * @param {string} labelText
 * @param {() => void} onclick
 */
function varyButton(path, labelText, onclick) {
  return h('button', {type: 'button', class: 'small vary', 'data-vary': path, 'aria-pressed': 'false', onclick,
    title: 'Sweep over several values of this field', 'aria-label': `Vary ${labelText} (sweep over several values)`}, 'vary');
}

/**
 * Give a number or choice field its list of values and its "vary" button.
 * @param {FormContext} ctx
 * @param {string} path
 * @param {Field} field
 * @param {HTMLElement} control where the input is
 */
export function addVary(ctx, path, field, control) {
  const {kind, p} = field.d;
  const values = h('input', {type: 'text', id: `${field.input.id}-values`, class: 'vary-input hidden', 'data-vary-input': path,
    placeholder: kind === 'enum' ? p.enum?.join(', ') : 'e.g. 0, 0.5, 1', title: 'Comma-separated values to sweep over'});
  const button = varyButton(path, field.labelText, () => setVaried(ctx, path, !field.vary?.on));
  control.prepend(values);
  control.append(button);
  field.vary = {on: false, input: values, button, parse: () => parseValues(values.value, field.d)};
  values.addEventListener('input', () => { clearError(ctx, path); ctx.on.updateSweep(); });
}

/**
 * Turn a field's list of values on (with `values`, or starting from its current value) or off.
 * @param {FormContext} ctx
 * @param {string} path
 * @param {boolean} on
 * @param {any[]} [values]
 */
export function setVaried(ctx, path, on, values) {
  const f = ctx.fields.get(path);
  if (!f?.vary) return;
  const v = f.vary;
  if (on && !v.on) v.input.value = (values ?? [f.read()]).join(', ');
  else if (on && values) v.input.value = values.join(', ');
  else if (!on && v.on) {  // back to one value: the first of the list
    const parsed = v.parse();
    if (parsed.values) f.write(parsed.values[0]);
  }
  if (on && !v.on) v.since = ++ctx.varyCount;
  v.on = on;
  f.wrap.classList.toggle('varied', on);
  v.button.setAttribute('aria-pressed', String(on));
  v.button.textContent = on ? 'one value' : 'vary';
  v.input.classList.toggle('hidden', !on);
  f.input.classList.toggle('hidden', on);
  f.label.htmlFor = on ? v.input.id : f.input.id;
  const sr = f.label.querySelector('.sr-only');
  if (sr) sr.textContent = on ? ' — values to sweep, comma-separated' : '';
  clearError(ctx, path);
  if (on && ctx.sweepState.preset !== null) ctx.sweepState.preset = ctx.sweepState.applied = null;  // a grid replaces it
  ctx.on.updateSweep();
  if (on && !values) { v.input.focus(); v.input.select(); }
}

/**
 * The seed field: in a sweep it becomes the list of seeds every config runs with.
 * @param {FormContext} ctx
 * @param {Field} field train.seed
 * @param {HTMLElement} control
 */
export function addSeeds(ctx, field, control) {
  const {sweepState} = ctx;
  const seeds = h('input', {type: 'text', id: 'f-sweep-seeds', class: 'vary-input hidden', name: 'seeds', placeholder: 'e.g. 0, 1, 2',
    title: 'Comma-separated seeds: every config runs once per seed; results are mean ± std over seeds'});
  const button = varyButton('train.seed', field.labelText, () => {
    sweepState.seedsOn = !sweepState.seedsOn;
    ctx.on.updateSweep();
    if (sweepState.seedsOn) { seeds.focus(); seeds.select(); }
  });
  control.prepend(seeds);
  control.append(button);
  seeds.addEventListener('input', () => { clearError(ctx, 'seeds'); ctx.on.updateSweep(); });
  const help = /** @type {HTMLElement} */ (field.wrap.querySelector('.help'));
  /** @type {Seeds} */
  const entry = {wrap: field.wrap, input: seeds, error: field.error, button, field, help, helpText: help.textContent ?? '', parse: () => {
    const r = parseValues(seeds.value, {kind: 'int', p: {}});
    if (r.values && r.values.some((x) => x < 0)) return {error: 'Seeds are whole numbers ≥ 0.'};
    if (r.values && r.values.length > MAX_SEEDS) return {error: `At most ${MAX_SEEDS} seeds.`};
    return r;
  }};
  ctx.aux.set('seeds', entry);
}
