// @ts-check
// The form's fieldsets: "Run" (name, project, team), then one per config section (dataset, model, weights,
// activations, DST, training), each field from the catalog's JSON schema; and which fields do not apply.
import {h} from '../../dom.js';
import {makeField, makeTeamField} from './fields.js';
import {SECTIONS, resolve} from './schema.js';
/** @import {Team} from '../../types' */
/** @import {FormContext} from './form.js' */

/**
 * Name, project and (for a user in several teams) the team.
 * @param {FormContext} ctx
 * @param {Team[]} teams
 */
export function runSection(ctx, teams) {
  const {schema} = ctx.cat;
  const top = h('fieldset', null, h('legend', null, 'Run'));
  for (const key of ['name', 'project']) top.append(makeField(ctx, key, schema.properties[key]));
  if (teams.length > 1) top.append(makeTeamField(ctx, teams));
  return top;
}

/**
 * One config section's fieldset ("weights": every field of the weights config).
 * @param {FormContext} ctx
 * @param {string} key
 * @param {string} title its legend
 */
export function configSection(ctx, key, title) {
  const {schema} = ctx.cat;
  const sec = resolve(schema, schema.properties[key]);
  const fs = h('fieldset', {'data-section': key}, h('legend', null, title));
  for (const [name, prop] of Object.entries(sec.properties ?? {})) fs.append(makeField(ctx, `${key}.${name}`, prop));
  return fs;
}

/**
 * Every fieldset, in order; sets ctx.on.updateInactive.
 * @param {FormContext} ctx
 * @param {Team[]} teams
 */
export function formSections(ctx, teams) {
  ctx.on.updateInactive = () => updateInactive(ctx);
  return [runSection(ctx, teams), ...SECTIONS.map(([key, title]) => configSection(ctx, key, title))];
}

/**
 * Grey out the fields that do not apply: the discrete-weight settings with full-precision weights, the activation
 * settings with full-precision activations, hidden widths outside the MLP and the width multiplier inside it.
 * @param {FormContext} ctx
 */
function updateInactive(ctx) {
  const val = (/** @type {string} */ p) => ctx.fields.get(p)?.read();
  const set = (/** @type {string} */ p, /** @type {boolean} */ inactive) => ctx.fields.get(p)?.wrap.classList.toggle('inactive', Boolean(inactive));
  ['weights.N', 'weights.H', 'dst.m'].forEach((p) => set(p, val('weights.discrete') === false));
  ['activations.N', 'activations.r', 'activations.a', 'activations.window'].forEach((p) => set(p, val('activations.discrete') === false));
  set('model.hidden', val('model.arch') !== 'mlp');
  set('model.width', val('model.arch') === 'mlp');
}
