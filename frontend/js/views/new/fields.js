// @ts-check
// One form field from its JSON schema node: an input of the right kind with the schema's bounds, its label, help and
// error line; numbers and choices get "vary" (vary.js).  The team select when the user is in several teams.
import {h} from '../../dom.js';
import {checkField, clearError} from './errors.js';
import {CLI_ONLY, HELP, LABELS, NOT_VARIED, boundsText, dataMissing, describe} from './schema.js';
import {addSeeds, addVary} from './vary.js';
/** @import {Catalog, SchemaProp, Team} from '../../types' */
/** @import {Field, FormContext} from './form.js' */

/**
 * Per field, a few words after its help that depend on the choice (from the catalog).
 * @type {Record<string, (cat: Catalog, value: string) => string>}
 */
const CHOICE_HELP = {
  'model.arch': (cat, v) => cat.architectures.find((a) => a.name === v)?.help || '',
  'dataset.name': (cat, v) => {
    const why = dataMissing(cat.datasets.find((x) => x.name === v));
    return why ? `${v}: ${why} — the server will refuse it.` : '';
  },
  'activations.window': (cat, v) => cat.windows.find((w) => w.name === v)?.equation || '',
};

/**
 * A dataset choice says whether it is bundled and, when this server cannot train on it, why (and is disabled).
 * @param {Catalog} cat
 * @param {HTMLOptionElement} opt
 * @param {string} v
 */
function datasetOption(cat, opt, v) {
  const info = cat.datasets.find((x) => x.name === v);
  if (!info) return;
  const why = dataMissing(info);
  opt.textContent = `${v}${info.bundled ? ' — bundled' : ' — needs files on the server'}${why ? ` (${why})` : ''}`;
  opt.disabled = !info.served;
}

/**
 * @param {FormContext} ctx
 * @param {string} path the config path ("weights.N"; "name" and "project" at the top)
 * @param {SchemaProp} prop its schema node
 * @returns {HTMLElement} the field's wrapper
 */
export function makeField(ctx, path, prop) {
  const {cat} = ctx;
  const d = describe(prop);
  const {kind, nullable, p} = d;
  const id = `f-${path.replace(/\./g, '-')}`;
  const maxEpochs = path === 'train.epochs' ? Math.min(p.maximum ?? Infinity, cat.limits?.max_epochs ?? Infinity) : undefined;
  /** @type {HTMLInputElement | HTMLSelectElement} */
  let input;
  if (kind === 'bool') {
    input = h('input', {type: 'checkbox', id, name: path});
  } else if (kind === 'enum') {
    input = h('select', {id, name: path, required: true}, (p.enum ?? []).map((v) => {
      const opt = h('option', {value: v}, String(v));
      if (path === 'dataset.name') datasetOption(cat, opt, v);
      return opt;
    }));
  } else if (kind === 'int' || kind === 'num') {
    const num = h('input', {type: 'number', id, name: path, step: kind === 'int' ? 1 : 'any', inputmode: kind === 'int' ? 'numeric' : 'decimal',
      min: p.minimum ?? p.exclusiveMinimum, max: maxEpochs ?? p.maximum, required: !nullable, placeholder: nullable ? 'none' : null});
    if (p.exclusiveMinimum !== undefined || p.exclusiveMaximum !== undefined) {
      num.addEventListener('input', () => {
        const v = Number(num.value);
        let msg = '';
        if (num.value !== '' && p.exclusiveMinimum !== undefined && v <= p.exclusiveMinimum) msg = `Must be greater than ${p.exclusiveMinimum}.`;
        if (num.value !== '' && p.exclusiveMaximum !== undefined && v >= p.exclusiveMaximum) msg = `Must be less than ${p.exclusiveMaximum}.`;
        num.setCustomValidity(msg);
      });
    }
    input = num;
  } else if (kind === 'list') {
    input = h('input', {type: 'text', id, name: path, class: 'wide-input', placeholder: 'e.g. 256, 256',
      pattern: '\\s*(\\d+\\s*(,\\s*\\d+\\s*)*)?', title: 'Comma-separated whole numbers'});
  } else {
    input = h('input', {type: 'text', id, name: path, class: nullable ? '' : 'wide-input',
      minlength: p.minLength, maxlength: p.maxLength, required: !nullable && (p.minLength ?? 0) > 0});
  }
  if (CLI_ONLY.has(path)) input.disabled = true;

  const read = () => {
    if (kind === 'bool') return /** @type {HTMLInputElement} */ (input).checked;
    const raw = input.value.trim();
    if (kind === 'enum') return raw;
    if (kind === 'list') return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number) : [];
    if (raw === '') return nullable ? null : (kind === 'str' ? '' : null);
    if (kind === 'int' || kind === 'num') return Number(raw);
    return raw;
  };
  /** @param {any} v */
  const write = (v) => {
    if (kind === 'bool') /** @type {HTMLInputElement} */ (input).checked = Boolean(v);
    else if (kind === 'list') input.value = Array.isArray(v) ? v.join(', ') : '';
    else input.value = v === null || v === undefined ? '' : String(v);
    input.setCustomValidity('');
    input.dispatchEvent(new Event('input'));
  };

  const help = h('div', {class: 'help'});
  const baseHelp = CLI_ONLY.has(path)
    ? `${p.description || ''} The server takes dataset names only.`
    : p.description || HELP[path] || '';
  const setHelp = () => {
    const extra = CHOICE_HELP[path]?.(cat, input.value) ?? '';
    help.textContent = [baseHelp, extra].filter(Boolean).join(' — ');
  };
  setHelp();
  input.addEventListener('change', setHelp);

  const error = h('div', {class: 'field-error', role: 'alert', 'aria-live': 'polite'});
  const bounds = boundsText(d, maxEpochs);
  const labelText = LABELS[path] || p.title || path;
  const label = h('label', {for: id}, h('span', {class: 'label-text', text: labelText}), h('span', {class: 'sr-only'}),
    h('span', {class: 'key', text: path}));
  const control = h('div', {class: 'control'}, input, bounds ? h('span', {class: 'bounds', text: bounds}) : null);
  const wrap = h('div', {class: 'field', 'data-field': path}, label, control, help, error);
  input.addEventListener('input', () => { clearError(ctx, path); ctx.on.updatePreview(); });
  // leaving a field with a value out of its bounds says so at once
  input.addEventListener('change', () => { clearError(ctx, path); checkField(ctx, path); ctx.on.updateInactive(); ctx.on.updatePreview(); });
  /** @type {Field} */
  const field = {wrap, input, read, write, error, label, labelText, d};
  ctx.fields.set(path, field);
  if (path === 'train.seed') addSeeds(ctx, field, control);
  else if (['int', 'num', 'enum'].includes(kind) && !NOT_VARIED.has(path)) addVary(ctx, path, field, control);
  return wrap;
}

/**
 * The team the runs count against, for a user in several teams.
 * @param {FormContext} ctx
 * @param {Team[]} teams
 */
export function makeTeamField(ctx, teams) {
  const input = h('select', {id: 'f-team', name: 'team'}, teams.map((t) => h('option', {value: t.name, text: t.name})));
  const error = h('div', {class: 'field-error', role: 'alert', 'aria-live': 'polite'});
  const wrap = h('div', {class: 'field', 'data-field': 'team'},
    h('label', {for: 'f-team'}, 'Team', h('span', {class: 'key', text: 'team'})),
    h('div', {class: 'control'}, input),
    h('div', {class: 'help', text: 'The runs count against this team’s queue; its members see them.'}), error);
  input.addEventListener('change', () => { clearError(ctx, 'team'); ctx.on.updatePreview(); });
  ctx.aux.set('team', {wrap, input, error});
  return wrap;
}
