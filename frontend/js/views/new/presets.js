// @ts-check
// Presets and where the form's values come from: the preset buttons (a run config) and sweep preset buttons (a
// base config with a grid, a list or a random search), a clone's config, or the defaults.  A preset whose dataset
// this server cannot train on is marked on its button ("data missing on this server").
import {fill, h} from '../../dom.js';
import {deepMerge, get, setRoute} from '../../util.js';
import {clearError} from './errors.js';
import {seeds} from './form.js';
import {dataMissing} from './schema.js';
import {setVaried} from './vary.js';
/** @import {Catalog, Config, Run} from '../../types' */
/** @import {FormContext} from './form.js' */

const PRESET_ORDER = ['quick', 'quick-fp', 'mnist-paper', 'mnist-paper-fp', 'cifar-paper', 'cifar-paper-fp',
  'mnist-reference', 'mnist-reference-fp', 'cifar-reference', 'cifar-reference-fp'];

/**
 * A preset button's tooltip: dataset · architecture, full precision.
 * @param {Config} preset
 */
function presetTitle(preset) {
  const ds = preset.dataset?.name;
  const arch = preset.model?.arch;
  const fp = preset.weights?.discrete === false ? ', full precision' : '';
  return [ds, arch].filter(Boolean).join(' · ') + fp;
}

/**
 * A preset (or a sweep preset's base) whose dataset this server cannot train on gets a visible badge and says why.
 * @param {HTMLElement} button
 * @param {Config} config
 * @param {Catalog} cat
 */
function markMissingData(button, config, cat) {
  const name = config.dataset?.name ?? cat.defaults.dataset.name;
  const why = dataMissing(cat.datasets.find((x) => x.name === name));
  if (!why) return;
  button.dataset.missingData = name;
  button.title = `${button.title ? `${button.title} — ` : ''}${name}: ${why}${why.startsWith('data') ? ' (an admin puts its files in the server’s datasets directory)' : ''}`;
  button.append(' ', h('span', {class: 'badge cancelled note', text: why}));
}

/** @param {FormContext} ctx */
export function presetBars(ctx) {
  const {cat, sweep, fields, sweepState} = ctx;
  const sweepPresets = cat.sweep_presets || {};
  const presetBar = h('div', {class: 'presets', id: 'presets'}, h('span', {class: 'muted'}, 'Presets:'));
  const sweepPresetBar = h('div', {class: 'presets', id: 'sweep-presets'}, h('span', {class: 'muted'}, 'Sweep presets:'));
  // What the sweep preset the form started from does (shown while the form is a sweep).
  const note = h('div', {class: 'banner info hidden', id: 'sweep-preset-note'});

  const presetNames = [...PRESET_ORDER.filter((n) => cat.presets[n]), ...Object.keys(cat.presets).filter((n) => !PRESET_ORDER.includes(n))];
  /** @type {Map<string, HTMLButtonElement>} */
  const presetButtons = new Map();
  for (const name of presetNames) {
    const b = h('button', {type: 'button', class: 'small', 'data-preset': name, title: presetTitle(cat.presets[name])}, name);
    markMissingData(b, cat.presets[name], cat);
    b.addEventListener('click', () => applyPreset(name));
    presetButtons.set(name, b);
    presetBar.append(b);
  }

  /** @type {Map<string, HTMLButtonElement>} */
  const sweepPresetButtons = new Map();
  for (const [name, preset] of Object.entries(sweepPresets)) {
    const b = h('button', {type: 'button', class: 'small', 'data-sweep-preset': name, title: preset.description || null}, name);
    // From the new-run page a sweep preset opens the sweep page (its own address); there it fills the form.
    b.addEventListener('click', () => (sweep ? applySweepPreset(name) : (location.hash = `#/sweeps/new?preset=${encodeURIComponent(name)}`)));
    sweepPresetButtons.set(name, b);
    markMissingData(b, preset.spec?.base || {}, cat);
    sweepPresetBar.append(b);
  }
  if (!sweepPresetButtons.size) sweepPresetBar.classList.add('hidden');

  /**
   * Every field from `config` (the defaults where it has none); no field varied, no sweep preset.
   * @param {Config} config
   */
  function setValues(config) {
    for (const [path, f] of fields) {
      if (f.vary?.on) setVaried(ctx, path, false);
      const v = get(config, path);
      f.write(v === undefined ? get(cat.defaults, path) : v);
      clearError(ctx, path);
    }
    sweepState.preset = null;
    sweepState.applied = null;
    for (const b of sweepPresetButtons.values()) b.classList.remove('active');
    ctx.banner.classList.add('hidden');
    ctx.on.updateInactive();
    ctx.on.updateSweep();
  }

  /** @param {string} name */
  function applyPreset(name) {
    for (const [n, b] of presetButtons) b.classList.toggle('active', n === name);
    setValues(deepMerge(cat.defaults, cat.presets[name]));
    setRoute(sweep ? '/sweeps/new' : '/new', sweep ? {base: name} : {preset: name});
  }

  /**
   * A sweep preset: its base config fills the form, its grid varies fields; a list or random search is sent by name.
   * @param {string} name
   */
  function applySweepPreset(name) {
    const {spec = {}, description = ''} = sweepPresets[name];
    presetButtons.forEach((b) => b.classList.remove('active'));
    setValues(deepMerge(cat.defaults, spec.base || {}));
    // A grid over fields the form can vary fills the form; anything else (a list, a random search) goes by name.
    const grid = spec.grid;
    const sendByName = !grid || Object.keys(grid).some((path) => !fields.get(path)?.vary);
    if (!sendByName) for (const [path, values] of Object.entries(grid)) setVaried(ctx, path, true, values);
    if (Array.isArray(spec.seeds) && spec.seeds.length) seeds(ctx).input.value = spec.seeds.join(', ');
    ctx.baseline.checked = Boolean(spec.baseline);
    sweepState.preset = sendByName ? name : null;
    sweepState.applied = name;
    const how = spec.random ? `a random search (${spec.budget ?? '?'} points)` : spec.list ? `a list of ${spec.list.length} points` : 'a grid';
    const over = Object.keys(spec.grid || spec.random || Object.assign({}, ...(spec.list || []))).join(', ');
    fill(note, 'Sweep preset ', h('b', {text: name}), description ? `: ${description}` : '.', ' ',
      sendByName ? [`It runs ${how} over `, h('code', {text: over}), ' around the config below; varying a field here replaces it.']
        : 'Edit the values, seeds or base config below, or vary more fields.');
    for (const [n, b] of sweepPresetButtons) b.classList.toggle('active', n === name);
    setRoute('/sweeps/new', {preset: name});
    ctx.on.updateSweep();
  }

  /** "Reset to defaults". */
  function reset() {
    presetButtons.forEach((b) => b.classList.remove('active'));
    sweepState.seedsOn = false;
    setValues(cat.defaults);
    setRoute(sweep ? '/sweeps/new' : '/new', {});
  }

  /**
   * The first values: a clone's config, else the preset in the address (`preset`, or `base` on the sweep page),
   * else the defaults; then on the sweep page the sweep preset in the address.
   * @param {Run | null} source
   * @param {URLSearchParams} params
   */
  function start(source, params) {
    const runPreset = sweep ? params.get('base') : params.get('preset');
    if (source) setValues(deepMerge(cat.defaults, source.config));
    else if (runPreset && cat.presets[runPreset]) applyPreset(runPreset);
    else setValues(cat.defaults);
    const sweepPreset = params.get('preset');
    if (sweep && sweepPreset && sweepPresets[sweepPreset]) applySweepPreset(sweepPreset);
  }

  return {bars: [presetBar, sweepPresetBar], note, reset, start};
}
