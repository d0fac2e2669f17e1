// @ts-check
// Messages about fields: the server's 422 next to the field it names, the form's own checks of the value lists.
import {fill} from '../../dom.js';
import {seeds, variedPaths} from './form.js';
/** @import {ApiError} from '../../api.js' */
/** @import {FormContext, Target, Vary} from './form.js' */

/**
 * The input a message about `path` belongs next to: a varied field's list, the seeds, the team.
 * @param {FormContext} ctx
 * @param {string} path
 * @returns {Target | undefined}
 */
function target(ctx, path) {
  if (ctx.aux.has(path)) return ctx.aux.get(path);
  const f = ctx.fields.get(path);
  return f && {wrap: f.wrap, error: f.error, input: f.vary?.on ? f.vary.input : f.input};
}

/**
 * @param {FormContext} ctx
 * @param {string} path
 */
export function clearError(ctx, path) {
  const t = target(ctx, path);
  if (!t || !t.wrap.classList.contains('invalid')) return;
  t.wrap.classList.remove('invalid');
  t.error.textContent = '';
  t.input.removeAttribute('aria-invalid');
}

/**
 * @param {FormContext} ctx
 * @param {string} path a config path, "team" or "seeds"
 * @param {string} message
 * @returns {Target}
 */
export function markError(ctx, path, message) {
  const t = /** @type {Target} */ (target(ctx, path));
  t.wrap.classList.add('invalid');
  t.error.textContent = message;
  t.input.setAttribute('aria-invalid', 'true');
  return t;
}

/**
 * A server field name ("config.weights.N", "base.weights.N", "grid.activations.r.1", "seeds.0", "team") → form path.
 * @param {FormContext} ctx
 * @param {string | null} field
 */
function formPath(ctx, field) {
  let path = String(field || '');
  if (/^seeds(\.|$)/.test(path)) return 'seeds';
  if (path === 'team') return ctx.aux.has('team') ? 'team' : '';
  path = path.replace(/^(config|base|grid)\.?/, '');
  while (path && !ctx.fields.has(path)) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
  return path;
}

/**
 * The server refused a run or a sweep (422): the message next to its field, or in the banner.
 * @param {FormContext} ctx
 * @param {ApiError} err
 * @param {string} what "config" or "sweep"
 */
export function showError(ctx, err, what) {
  const {banner} = ctx;
  const path = formPath(ctx, err.field);
  if (path) {
    const t = markError(ctx, path, err.message);
    t.wrap.scrollIntoView({block: 'center'});
    t.input.focus({preventScroll: true});
    fill(banner, `The server rejected this ${what}: fix the highlighted field.`);
  } else {
    fill(banner, `The server rejected this ${what}: ${err.message}`);
  }
  banner.classList.remove('hidden');
}

/**
 * A message in the form's banner.
 * @param {FormContext} ctx
 * @param {string} text
 */
export function showBanner(ctx, text) {
  fill(ctx.banner, text);
  ctx.banner.classList.remove('hidden');
}

/**
 * Client-side checks of the value lists before a sweep goes out; false when one is unreadable.
 * @param {FormContext} ctx
 */
export function checkLists(ctx) {
  /** @type {Target | null} */
  let first = null;
  for (const path of [...variedPaths(ctx), 'seeds']) {
    const r = path === 'seeds' ? seeds(ctx).parse() : /** @type {Vary} */ (ctx.fields.get(path)?.vary).parse();
    if (r.error) { const t = markError(ctx, path, r.error); first = first || t; }
  }
  if (first) { first.input.focus(); return false; }
  return true;
}
