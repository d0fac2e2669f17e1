// @ts-check
// Messages about fields, each next to its field and all at once: the form's own checks of the values (bounds, whole
// numbers, the lists of a sweep) before anything is sent, then every field the server's 422 names, in words rather
// than the validator's (the server's own text stays in the message's tooltip).  The banner over the form goes once
// no field is marked any more.
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
  t.error.removeAttribute('title');
  t.input.removeAttribute('aria-invalid');
  const {banner} = ctx;
  if (banner.dataset.about === 'fields' && ![...ctx.fields.values(), ...ctx.aux.values()].some((f) => f.wrap.classList.contains('invalid'))) {
    banner.classList.add('hidden');
    delete banner.dataset.about;
  }
}

/**
 * @param {FormContext} ctx
 * @param {string} path a config path, "team" or "seeds"
 * @param {string} message
 * @param {string | null} [raw] the server's own words, kept in the message's tooltip
 * @returns {Target}
 */
export function markError(ctx, path, message, raw = null) {
  const t = /** @type {Target} */ (target(ctx, path));
  t.wrap.classList.add('invalid');
  t.error.textContent = message;
  if (raw && raw !== message) t.error.title = `The server said: ${raw}`;
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

/** The validator's phrases (pydantic's, as the server passes them on) in plain words. */
const PHRASES = /** @type {[RegExp, string][]} */ ([
  [/^Input should be less than or equal to (.+)$/i, 'must be at most $1'],
  [/^Input should be greater than or equal to (.+)$/i, 'must be at least $1'],
  [/^Input should be less than (.+)$/i, 'must be less than $1'],
  [/^Input should be greater than (.+)$/i, 'must be more than $1'],
  [/^Input should be a valid integer.*$/i, 'must be a whole number'],
  [/^Input should be a valid (number|float).*$/i, 'must be a number'],
  [/^Input should be a valid boolean.*$/i, 'must be true or false'],
  [/^Input should be a valid (string|list|array|dictionary).*$/i, 'must be a $1'],
  [/^Input should be (.+)$/i, 'must be $1'],
  [/^List should have at most (\d+) items? after validation, not (\d+)$/i, 'at most $1 values, not $2'],
  [/^List should have at least (\d+) items? after validation, not (\d+)$/i, 'at least $1 values, not $2'],
  [/^String should have at most (\d+) characters?$/i, 'at most $1 characters'],
  [/^String should have at least (\d+) characters?$/i, 'at least $1 characters'],
  [/^Field required$/i, 'required'],
  [/^(Extra inputs are not permitted|unknown key)$/i, 'not a setting this server knows'],
  [/^Value error, (.+)$/i, '$1'],
]);

/**
 * A server message as a sentence for next to its field: without the field's path ("config.weights.N: "), the
 * validator's phrasing in plain words, a list item named by its place ("item 2: must be at least 1").
 * @param {string} message
 * @param {string} [field] the server's field ("config.model.hidden.1")
 */
export function readable(message, field = '') {
  let text = String(message || '').trim();
  if (field && text.startsWith(`${field}: `)) text = text.slice(field.length + 2);
  let value = '';
  const sweep = text.match(/^value (.+?) is invalid for [\w.]+: (.*)$/s);  // a sweep's list: "value 9 is invalid for weights.N: …"
  if (sweep) [, value, text] = sweep;
  const phrase = PHRASES.find(([re]) => re.test(text));
  if (phrase) text = text.replace(phrase[0], phrase[1]);
  const item = field.match(/\.(\d+)$/);
  const about = value ? `value ${value}: ` : item ? `item ${Number(item[1]) + 1}: ` : '';
  if (phrase || about) text = `${about}${text}`.replace(/^\w/, (c) => c.toUpperCase());  // (the server's own sentences stay)
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * The server refused a run or a sweep (422): every field it names gets its message (the first one each), the rest
 * goes in the banner.
 * @param {FormContext} ctx
 * @param {ApiError} err
 * @param {string} what "config" or "sweep"
 */
export function showError(ctx, err, what) {
  const {banner} = ctx;
  const detail = Array.isArray(err.body?.detail) ? err.body.detail : [];
  const problems = detail.length
    ? detail.map((/** @type {{loc?: unknown[], msg?: string}} */ d) => {
      const field = (d.loc || []).filter((x) => x !== 'body').join('.');
      return {field, raw: `${field}: ${d.msg ?? ''}`, text: readable(d.msg ?? '', field)};
    })
    : [{field: err.field ?? '', raw: err.message, text: readable(err.message, err.field ?? '')}];
  /** @type {Target[]} */
  const marked = [];
  /** @type {string[]} */
  const elsewhere = [];
  const seen = new Set();
  for (const p of problems) {
    const path = formPath(ctx, p.field);
    if (!path) { elsewhere.push(p.field ? `${p.field}: ${p.text}` : p.text); continue; }
    if (seen.has(path)) continue;
    seen.add(path);
    marked.push(markError(ctx, path, p.text, p.raw));
  }
  if (marked.length) {
    marked[0].wrap.scrollIntoView({block: 'center'});
    marked[0].input.focus({preventScroll: true});
  }
  const fix = marked.length ? `fix the ${marked.length === 1 ? 'highlighted field' : `${marked.length} highlighted fields`}` : '';
  fill(banner, `The server rejected this ${what}: ${[fix, ...elsewhere].filter(Boolean).join('; ')}${elsewhere.length ? '' : '.'}`);
  if (elsewhere.length) delete banner.dataset.about; else banner.dataset.about = 'fields';
  banner.classList.remove('hidden');
}

/**
 * Why a field's value cannot be sent, by the input's own constraints (the schema's bounds are on it), or ''.
 * @param {HTMLInputElement | HTMLSelectElement | HTMLElement} input
 */
function invalidity(input) {
  if (!(input instanceof HTMLInputElement || input instanceof HTMLSelectElement) || !input.willValidate
    || input.classList.contains('hidden') || input.validity.valid) return '';
  const v = input.validity;
  const el = /** @type {HTMLInputElement} */ (input);
  if (v.badInput) return 'Must be a number.';
  if (v.valueMissing) return 'Required.';
  if (v.rangeUnderflow) return `Must be at least ${el.min}.`;
  if (v.rangeOverflow) return `Must be at most ${el.max}.`;
  if (v.stepMismatch) return 'Must be a whole number.';
  if (v.tooLong) return `At most ${el.maxLength} characters.`;
  if (v.tooShort) return `At least ${el.minLength} characters.`;
  if (v.patternMismatch) return `${el.title || 'Not in the expected form'}.`;
  return input.validationMessage || 'Not a valid value.';
}

// A message appearing while a button is pressed moves what is under the pointer (the submit button, further down)
// and the click is lost: a field left by pressing elsewhere is checked once the press is over.
let pressing = false;
/** @type {(() => void)[]} */
let afterPress = [];
document.addEventListener('pointerdown', () => { pressing = true; }, true);
for (const type of ['pointerup', 'pointercancel']) {
  document.addEventListener(type, () => setTimeout(() => {  // (after the click the press makes)
    pressing = false;
    const due = afterPress;
    afterPress = [];
    due.forEach((fn) => fn());
  }), true);
}

/**
 * Check one field as the user leaves it: its message shows at once (or when the press that left it ends).
 * @param {FormContext} ctx
 * @param {string} path
 */
export function checkField(ctx, path) {
  const check = () => {
    const f = ctx.fields.get(path);
    const why = f && ctx.life.alive ? invalidity(f.input) : '';
    if (why && !f?.wrap.classList.contains('invalid')) markError(ctx, path, why);
  };
  if (pressing) afterPress.push(check); else check();
}

/**
 * Before anything is sent: every field whose value is out of its bounds (or not a number, or missing) is marked
 * with its message, all at once, and the first gets the focus; false when any was.
 * @param {FormContext} ctx
 */
export function checkFields(ctx) {
  /** @type {Target[]} */
  const marked = [];
  for (const [path, f] of ctx.fields) {
    const why = invalidity(f.input);
    if (why) marked.push(markError(ctx, path, why));
  }
  if (!marked.length) return true;
  fill(ctx.banner, marked.length === 1 ? 'Fix the highlighted field: its value is not allowed.'
    : `Fix the ${marked.length} highlighted fields: their values are not allowed.`);
  ctx.banner.dataset.about = 'fields';
  ctx.banner.classList.remove('hidden');
  marked[0].wrap.scrollIntoView({block: 'center'});
  marked[0].input.focus({preventScroll: true});
  return false;
}

/**
 * A message in the form's banner.
 * @param {FormContext} ctx
 * @param {string} text
 */
export function showBanner(ctx, text) {
  fill(ctx.banner, text);
  delete ctx.banner.dataset.about;
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
