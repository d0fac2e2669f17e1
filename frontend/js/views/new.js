// New run or sweep: a form built from GET /api/v1/catalog (JSON schema bounds, descriptions, presets); clone from a
// run.  "vary" next to a field turns it into a comma-separated list of values; with any field varied the form
// launches a grid sweep (POST /sweeps) over the varied fields × seeds instead of one run.
import {ApiError, catalog, endpoints, me} from '../api.js';
import {fill, h, toast} from '../dom.js';
import {deepMerge, get, setRoute} from '../util.js';

const SECTIONS = [
  ['dataset', 'Dataset'], ['model', 'Model'], ['weights', 'Weights'], ['activations', 'Activations'],
  ['dst', 'DST — discrete state transition'], ['train', 'Training'],
];
const PRESET_ORDER = ['quick', 'quick-fp', 'mnist-paper', 'mnist-paper-fp', 'cifar-paper', 'cifar-paper-fp'];

// Help for fields whose schema has no description.
const HELP = {
  name: 'Shown in the runs table and in charts.',
  project: 'Groups runs; the runs table filters by it.',
  'train.epochs': 'Passes over the training set.',
  'train.batch_size': 'Samples per update step.',
  'train.loss': 'squared_hinge as in the paper, or cross_entropy.',
  'train.seed': 'Same seed and config give the same run.',
  'train.device': 'auto: the worker’s GPU when it has one, else CPU.',
};
// Readable labels (the schema's titles are derived from the field names).
const LABELS = {
  name: 'Name', project: 'Project',
  'dataset.name': 'Dataset', 'dataset.root': 'Root directory', 'dataset.download': 'Download files',
  'dataset.val_fraction': 'Validation fraction', 'dataset.limit': 'Sample limit',
  'model.arch': 'Architecture', 'model.hidden': 'Hidden widths', 'model.width': 'Width multiplier',
  'weights.discrete': 'Discrete weights', 'weights.N': 'N (2^N+1 states)', 'weights.H': 'Range H',
  'activations.discrete': 'Discrete activations', 'activations.N': 'N (levels)', 'activations.r': 'Sparsity window r',
  'activations.a': 'Derivative window a', 'activations.window': 'Window shape',
  'dst.optimizer': 'Base optimizer', 'dst.m': 'Nonlinearity m', 'dst.restart_patience': 'Restart patience',
  'train.epochs': 'Epochs', 'train.batch_size': 'Batch size', 'train.lr': 'Learning rate', 'train.lr_final': 'Final learning rate',
  'train.loss': 'Loss', 'train.seed': 'Seed', 'train.device': 'Device',
};
const CLI_ONLY = new Set(['dataset.root', 'dataset.download']);
// Fields a sweep cannot vary from the form (numbers and choices elsewhere can); the seed becomes the seeds list.
const NOT_VARIED = new Set(['train.device', 'train.seed', ...CLI_ONLY]);
const MAX_SEEDS = 100;

function resolve(schema, prop) {
  return prop.$ref ? schema.$defs[prop.$ref.split('/').pop()] : prop;
}

function describe(prop) {
  let nullable = false;
  let p = prop;
  if (prop.anyOf) {
    const nonNull = prop.anyOf.filter((x) => x.type !== 'null');
    nullable = nonNull.length < prop.anyOf.length;
    p = {...prop, ...nonNull[0]};
    delete p.anyOf;
  }
  const kind = p.enum ? 'enum' : p.type === 'boolean' ? 'bool' : p.type === 'integer' ? 'int'
    : p.type === 'number' ? 'num' : p.type === 'array' ? 'list' : 'str';
  return {kind, nullable, p};
}

function boundsText({kind, nullable, p}, maxOverride) {
  const parts = [];
  if (kind === 'int' || kind === 'num') {
    const hi = maxOverride ?? p.maximum;
    if (p.minimum !== undefined && hi !== undefined) parts.push(`${p.minimum} – ${hi}`);
    else {
      if (p.minimum !== undefined) parts.push(`≥ ${p.minimum}`);
      if (p.exclusiveMinimum !== undefined) parts.push(`> ${p.exclusiveMinimum}`);
      if (hi !== undefined) parts.push(`≤ ${hi}`);
    }
    if (p.exclusiveMaximum !== undefined) parts.push(`< ${p.exclusiveMaximum}`);
  } else if (kind === 'str' && p.maxLength) {
    parts.push(`${p.minLength || 0}–${p.maxLength} chars`);
  } else if (kind === 'list' && p.maxItems) {
    parts.push(`≤ ${p.maxItems} items`);
  }
  if (nullable && kind !== 'str') parts.push('empty = none');
  return parts.join(', ');
}

export function mount(root, {params, sweep = false}, life) {
  document.title = sweep ? 'New sweep — GXNOR Lab' : 'New run — GXNOR Lab';
  const cloneId = params.get('clone');
  const heading = h('h1', {id: 'new-title'}, cloneId ? `Clone run #${cloneId}` : sweep ? 'New sweep' : 'New run');
  root.append(h('div', {class: 'page-head'}, heading));
  const status = h('p', {class: 'muted'}, 'Loading the catalog…');
  root.append(status);

  (async () => {
    let cat;
    let who = null;
    let source = null;
    try {
      // The teams only add a select: a failure other than sign-in (handled by the app) leaves it out.
      [cat, who] = await Promise.all([catalog(), me().catch(() => null)]);
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

/** Values of a varied field, from its comma-separated text: {values} or {error}. */
function parseValues(text, {kind, p}) {
  const parts = text.split(',').map((x) => x.trim()).filter(Boolean);
  if (!parts.length) return {error: 'Give at least one value, separated by commas.'};
  const values = [];
  for (const part of parts) {
    let v = part;
    if (kind === 'int' || kind === 'num') {
      v = Number(part);
      if (!Number.isFinite(v) || (kind === 'int' && !Number.isInteger(v))) {
        return {error: `Not ${kind === 'int' ? 'a whole number' : 'a number'}: ${part}`};
      }
    } else if (kind === 'enum' && !p.enum.includes(part)) {
      return {error: `Not one of ${p.enum.join(', ')}: ${part}`};
    }
    if (!values.includes(v)) values.push(v);
  }
  return {values};
}

function build(root, {cat, teams, source, params, sweep, heading}, life) {
  const schema = cat.schema;
  const fields = new Map();  // "weights.N" → {wrap, input, read, write, error, vary?}
  const aux = new Map();     // form fields outside the config: "team", "seeds"
  const form = h('form', {class: 'config', id: 'new-run-form', autocomplete: 'off'});
  const banner = h('div', {class: 'banner error hidden', role: 'alert', id: 'form-error'});
  const preview = h('pre', {class: 'mono'});
  const previewTitle = h('summary', null, 'Config JSON that will be sent');
  const presetBar = h('div', {class: 'presets', id: 'presets'}, h('span', {class: 'muted'}, 'Presets:'));
  const sweepPresets = cat.sweep_presets || {};
  const sweepPresetBar = h('div', {class: 'presets', id: 'sweep-presets'}, h('span', {class: 'muted'}, 'Sweep presets:'));
  // preset: a sweep preset sent by name (a list or random search); applied: the sweep preset the form started from.
  const sweepState = {forced: sweep, seedsOn: false, preset: null, applied: null};
  const presetNote = h('div', {class: 'banner info hidden', id: 'sweep-preset-note'});
  let varyCount = 0;

  // ---- one field from its JSON schema
  function makeField(path, prop) {
    const d = describe(prop);
    const {kind, nullable, p} = d;
    const id = `f-${path.replace(/\./g, '-')}`;
    const maxEpochs = path === 'train.epochs' ? Math.min(p.maximum ?? Infinity, cat.limits?.max_epochs ?? Infinity) : undefined;
    let input;
    if (kind === 'bool') {
      input = h('input', {type: 'checkbox', id, name: path});
    } else if (kind === 'enum') {
      input = h('select', {id, name: path, required: true}, p.enum.map((v) => {
        const opt = h('option', {value: v}, String(v));
        if (path === 'dataset.name') {
          const info = cat.datasets.find((x) => x.name === v);
          if (info) {
            opt.textContent = `${v}${info.bundled ? ' — bundled' : ' — needs files on the server'}${info.served ? '' : ' (not served here)'}`;
            opt.disabled = !info.served;
          }
        }
        return opt;
      }));
    } else if (kind === 'int' || kind === 'num') {
      input = h('input', {type: 'number', id, name: path, step: kind === 'int' ? 1 : 'any', inputmode: kind === 'int' ? 'numeric' : 'decimal',
        min: p.minimum ?? p.exclusiveMinimum, max: maxEpochs ?? p.maximum, required: !nullable, placeholder: nullable ? 'none' : null});
      if (p.exclusiveMinimum !== undefined || p.exclusiveMaximum !== undefined) {
        input.addEventListener('input', () => {
          const v = Number(input.value);
          let msg = '';
          if (input.value !== '' && p.exclusiveMinimum !== undefined && v <= p.exclusiveMinimum) msg = `Must be greater than ${p.exclusiveMinimum}.`;
          if (input.value !== '' && p.exclusiveMaximum !== undefined && v >= p.exclusiveMaximum) msg = `Must be less than ${p.exclusiveMaximum}.`;
          input.setCustomValidity(msg);
        });
      }
    } else if (kind === 'list') {
      input = h('input', {type: 'text', id, name: path, class: 'wide-input', placeholder: 'e.g. 256, 256',
        pattern: '\\s*(\\d+\\s*(,\\s*\\d+\\s*)*)?', title: 'Comma-separated whole numbers'});
    } else {
      input = h('input', {type: 'text', id, name: path, class: nullable ? '' : 'wide-input',
        minlength: p.minLength, maxlength: p.maxLength, required: !nullable && p.minLength > 0});
    }
    if (CLI_ONLY.has(path)) input.disabled = true;

    const read = () => {
      if (kind === 'bool') return input.checked;
      const raw = input.value.trim();
      if (kind === 'enum') return raw;
      if (kind === 'list') return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number) : [];
      if (raw === '') return nullable ? null : (kind === 'str' ? '' : null);
      if (kind === 'int' || kind === 'num') return Number(raw);
      return raw;
    };
    const write = (v) => {
      if (kind === 'bool') input.checked = Boolean(v);
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
      let extra = '';
      if (path === 'model.arch') extra = cat.architectures.find((a) => a.name === input.value)?.help || '';
      if (path === 'activations.window') extra = cat.windows.find((w) => w.name === input.value)?.equation || '';
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
    input.addEventListener('input', () => { clearError(path); updatePreview(); });
    input.addEventListener('change', () => { clearError(path); updateInactive(); updatePreview(); });
    const field = {wrap, input, read, write, error, label, labelText, d};
    fields.set(path, field);
    if (path === 'train.seed') addSeeds(field, control);
    else if (['int', 'num', 'enum'].includes(kind) && !NOT_VARIED.has(path)) addVary(path, field, control);
    return wrap;
  }

  // ---- "vary": the field becomes a comma-separated list of values to sweep over
  function varyButton(path, labelText, onclick) {
    return h('button', {type: 'button', class: 'small vary', 'data-vary': path, 'aria-pressed': 'false', onclick,
      title: 'Sweep over several values of this field', 'aria-label': `Vary ${labelText} (sweep over several values)`}, 'vary');
  }

  function addVary(path, field, control) {
    const {kind, p} = field.d;
    const values = h('input', {type: 'text', id: `${field.input.id}-values`, class: 'vary-input hidden', 'data-vary-input': path,
      placeholder: kind === 'enum' ? p.enum.join(', ') : 'e.g. 0, 0.5, 1', title: 'Comma-separated values to sweep over'});
    const button = varyButton(path, field.labelText, () => setVaried(path, !field.vary.on));
    control.prepend(values);
    control.append(button);
    field.vary = {on: false, input: values, button, parse: () => parseValues(values.value, field.d)};
    values.addEventListener('input', () => { clearError(path); updateSweep(); });
  }

  /** Turn a field's list of values on (with `values`, or starting from its current value) or off. */
  function setVaried(path, on, values) {
    const f = fields.get(path);
    if (!f?.vary) return;
    const v = f.vary;
    if (on && !v.on) v.input.value = (values ?? [f.read()]).join(', ');
    else if (on && values) v.input.value = values.join(', ');
    else if (!on && v.on) {  // back to one value: the first of the list
      const parsed = v.parse();
      if (parsed.values) f.write(parsed.values[0]);
    }
    if (on && !v.on) v.since = ++varyCount;
    v.on = on;
    f.wrap.classList.toggle('varied', on);
    v.button.setAttribute('aria-pressed', String(on));
    v.button.textContent = on ? 'one value' : 'vary';
    v.input.classList.toggle('hidden', !on);
    f.input.classList.toggle('hidden', on);
    f.label.htmlFor = on ? v.input.id : f.input.id;
    f.label.querySelector('.sr-only').textContent = on ? ' — values to sweep, comma-separated' : '';
    clearError(path);
    if (on && sweepState.preset !== null) sweepState.preset = sweepState.applied = null;  // a grid replaces it
    updateSweep();
    if (on && !values) { v.input.focus(); v.input.select(); }
  }

  // The seed field: in a sweep it becomes the list of seeds every config runs with.
  function addSeeds(field, control) {
    const seeds = h('input', {type: 'text', id: 'f-sweep-seeds', class: 'vary-input hidden', name: 'seeds', placeholder: 'e.g. 0, 1, 2',
      title: 'Comma-separated seeds: every config runs once per seed; results are mean ± std over seeds'});
    const button = varyButton('train.seed', field.labelText, () => {
      sweepState.seedsOn = !sweepState.seedsOn;
      updateSweep();
      if (sweepState.seedsOn) { seeds.focus(); seeds.select(); }
    });
    control.prepend(seeds);
    control.append(button);
    seeds.addEventListener('input', () => { clearError('seeds'); updateSweep(); });
    const help = field.wrap.querySelector('.help');
    aux.set('seeds', {wrap: field.wrap, input: seeds, error: field.error, button, field, help, helpText: help.textContent, parse: () => {
      const r = parseValues(seeds.value, {kind: 'int', p: {}});
      if (r.values && r.values.some((x) => x < 0)) return {error: 'Seeds are whole numbers ≥ 0.'};
      if (r.values && r.values.length > MAX_SEEDS) return {error: `At most ${MAX_SEEDS} seeds.`};
      return r;
    }});
  }

  const top = h('fieldset', null, h('legend', null, 'Run'));
  for (const key of ['name', 'project']) top.append(makeField(key, schema.properties[key]));
  if (teams.length > 1) top.append(makeTeamField());
  form.append(top);
  for (const [key, title] of SECTIONS) {
    const sec = resolve(schema, schema.properties[key]);
    const fs = h('fieldset', {'data-section': key}, h('legend', null, title));
    for (const [name, prop] of Object.entries(sec.properties)) fs.append(makeField(`${key}.${name}`, prop));
    form.append(fs);
  }
  const submit = h('button', {type: 'submit', class: 'primary', id: 'submit-run'}, 'Queue run');
  const submitSweep = h('button', {type: 'submit', class: 'primary hidden', id: 'submit-sweep'}, 'Launch sweep');
  const baseline = h('input', {type: 'checkbox', id: 'f-sweep-baseline', name: 'baseline'});
  const baselineLabel = h('label', {class: 'inline hidden', for: 'f-sweep-baseline',
    title: 'The same network with full-precision weights and activations, once per seed: the paper’s comparison point'},
  baseline, 'Add a full-precision baseline');
  const sweepSummary = h('span', {class: 'muted small hidden', id: 'sweep-summary', 'aria-live': 'polite'});
  const reset = h('button', {type: 'button'}, 'Reset to defaults');
  baseline.addEventListener('change', updateSweep);
  form.append(h('div', {class: 'form-actions'}, submit, submitSweep, baselineLabel, reset, sweepSummary,
    h('span', {class: 'muted small', id: 'bounds-note'}, 'Bounds are checked here and again by the server.')),
  h('details', {class: 'preview'}, previewTitle, preview));

  function makeTeamField() {
    const input = h('select', {id: 'f-team', name: 'team'}, teams.map((t) => h('option', {value: t.name, text: t.name})));
    const error = h('div', {class: 'field-error', role: 'alert', 'aria-live': 'polite'});
    const wrap = h('div', {class: 'field', 'data-field': 'team'},
      h('label', {for: 'f-team'}, 'Team', h('span', {class: 'key', text: 'team'})),
      h('div', {class: 'control'}, input),
      h('div', {class: 'help', text: 'The runs count against this team’s queue; its members see them.'}), error);
    input.addEventListener('change', () => { clearError('team'); updatePreview(); });
    aux.set('team', {wrap, input, error});
    return wrap;
  }
  const team = () => (aux.has('team') ? aux.get('team').input.value : undefined);

  // ---- presets and values
  const presetNames = [...PRESET_ORDER.filter((n) => cat.presets[n]), ...Object.keys(cat.presets).filter((n) => !PRESET_ORDER.includes(n))];
  const presetButtons = new Map();
  for (const name of presetNames) {
    const b = h('button', {type: 'button', class: 'small', 'data-preset': name, title: presetTitle(cat.presets[name])}, name);
    b.addEventListener('click', () => applyPreset(name));
    presetButtons.set(name, b);
    presetBar.append(b);
  }

  const sweepPresetButtons = new Map();
  for (const [name, preset] of Object.entries(sweepPresets)) {
    const b = h('button', {type: 'button', class: 'small', 'data-sweep-preset': name, title: preset.description || null}, name);
    // From the new-run page a sweep preset opens the sweep page (its own address); there it fills the form.
    b.addEventListener('click', () => (sweep ? applySweepPreset(name) : (location.hash = `#/sweeps/new?preset=${encodeURIComponent(name)}`)));
    sweepPresetButtons.set(name, b);
    sweepPresetBar.append(b);
  }
  if (!sweepPresetButtons.size) sweepPresetBar.classList.add('hidden');

  function setValues(config) {
    for (const [path, f] of fields) {
      if (f.vary?.on) setVaried(path, false);
      const v = get(config, path);
      f.write(v === undefined ? get(cat.defaults, path) : v);
      clearError(path);
    }
    sweepState.preset = null;
    sweepState.applied = null;
    for (const b of sweepPresetButtons.values()) b.classList.remove('active');
    banner.classList.add('hidden');
    updateInactive();
    updateSweep();
  }

  function applyPreset(name) {
    for (const [n, b] of presetButtons) b.classList.toggle('active', n === name);
    setValues(deepMerge(cat.defaults, cat.presets[name]));
    setRoute(sweep ? '/sweeps/new' : '/new', sweep ? {base: name} : {preset: name});
  }

  /** A sweep preset: its base config fills the form, its grid varies fields; a list or random search is sent by name. */
  function applySweepPreset(name) {
    const {spec = {}, description = ''} = sweepPresets[name];
    presetButtons.forEach((b) => b.classList.remove('active'));
    setValues(deepMerge(cat.defaults, spec.base || {}));
    // A grid over fields the form can vary fills the form; anything else (a list, a random search) goes by name.
    const sendByName = !spec.grid || Object.keys(spec.grid).some((path) => !fields.get(path)?.vary);
    if (!sendByName) for (const [path, values] of Object.entries(spec.grid)) setVaried(path, true, values);
    const seeds = aux.get('seeds');
    if (Array.isArray(spec.seeds) && spec.seeds.length) seeds.input.value = spec.seeds.join(', ');
    baseline.checked = Boolean(spec.baseline);
    sweepState.preset = sendByName ? name : null;
    sweepState.applied = name;
    const how = spec.random ? `a random search (${spec.budget ?? '?'} points)` : spec.list ? `a list of ${spec.list.length} points` : 'a grid';
    const over = Object.keys(spec.grid || spec.random || Object.assign({}, ...(spec.list || []))).join(', ');
    fill(presetNote, 'Sweep preset ', h('b', {text: name}), description ? `: ${description}` : '.', ' ',
      sendByName ? [`It runs ${how} over `, h('code', {text: over}), ' around the config below; varying a field here replaces it.']
        : 'Edit the values, seeds or base config below, or vary more fields.');
    for (const [n, b] of sweepPresetButtons) b.classList.toggle('active', n === name);
    setRoute('/sweeps/new', {preset: name});
    updateSweep();
  }

  function collect() {
    const config = {};
    for (const [path, f] of fields) {
      const parts = path.split('.');
      let o = config;
      for (const p of parts.slice(0, -1)) o = o[p] = o[p] || {};
      o[parts.at(-1)] = f.read();
    }
    return config;
  }

  // ---- sweep mode: any varied field (or the seeds) turns "Queue run" into "Launch sweep (K runs)"
  // In the order the fields were varied: the first is the x axis of the sweep's plots.
  const variedPaths = () => [...fields].filter(([, f]) => f.vary?.on).sort(([, a], [, b]) => a.vary.since - b.vary.since)
    .map(([path]) => path);
  const inSweep = () => sweepState.forced || sweepState.seedsOn || sweepState.preset !== null || variedPaths().length > 0;

  /** The POST /sweeps body and the number of runs it makes (null while a list is unreadable). */
  function sweepBody() {
    const config = collect();
    const body = {name: config.name, base: config};
    if (team()) body.team = team();
    const grid = {};
    let configs = 1;
    let ok = true;
    for (const path of variedPaths()) {
      const r = fields.get(path).vary.parse();
      if (r.values) { grid[path] = r.values; configs *= r.values.length; } else ok = false;
    }
    const seeds = aux.get('seeds').parse();
    if (seeds.values) body.seeds = seeds.values; else ok = false;
    if (sweepState.preset !== null && !variedPaths().length) {
      body.preset = sweepState.preset;
      const spec = sweepPresets[sweepState.preset].spec || {};
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

  function updateSweep() {
    const on = inSweep();
    const seeds = aux.get('seeds');
    if (on && seeds.input.classList.contains('hidden') && !seeds.input.value) seeds.input.value = String(fields.get('train.seed').read() ?? 0);
    seeds.input.classList.toggle('hidden', !on);
    seeds.field.input.classList.toggle('hidden', on);
    seeds.field.label.htmlFor = on ? seeds.input.id : seeds.field.input.id;
    seeds.field.label.querySelector('.label-text').textContent = on ? 'Seeds' : seeds.field.labelText;
    seeds.field.wrap.classList.toggle('varied', on);
    seeds.help.textContent = on ? 'Every config runs once per seed; the results are mean ± std over the seeds.' : seeds.helpText;
    seeds.button.setAttribute('aria-pressed', String(on));
    seeds.button.textContent = on ? 'one seed' : 'vary';
    // The seeds stay a list while fields are varied (or on the sweep page): only a seeds-only sweep can end here.
    seeds.button.disabled = on && !(sweepState.seedsOn && !sweepState.forced && !variedPaths().length && sweepState.preset === null);
    seeds.button.title = seeds.button.disabled ? 'A sweep runs every config once per seed' : 'Run with several seeds';
    submit.classList.toggle('hidden', on);
    submitSweep.classList.toggle('hidden', !on);
    baselineLabel.classList.toggle('hidden', !on);
    sweepSummary.classList.toggle('hidden', !on);
    presetNote.classList.toggle('hidden', !(on && sweepState.applied !== null));
    heading.textContent = on ? (sweepState.forced ? 'New sweep' : 'New run → sweep') : heading.dataset.runTitle;
    if (on) {
      const {runs, configs, body} = sweepBody();
      submitSweep.textContent = runs === null ? 'Launch sweep' : `Launch sweep (${runs} run${runs === 1 ? '' : 's'})`;
      const varied = variedPaths();
      sweepSummary.textContent = runs === null ? 'Check the lists of values.'
        : `${varied.length ? varied.join(' × ') : body.preset ? `preset ${body.preset}` : 'one config'}: ${configs ?? '?'} config${configs === 1 ? '' : 's'}`
          + `${baseline.checked ? ' + baseline' : ''}, × ${body.seeds.length} seed${body.seeds.length === 1 ? '' : 's'}`;
    }
    updatePreview();
  }

  function updatePreview() {
    const sweeping = inSweep();
    previewTitle.textContent = sweeping ? 'Sweep request that will be sent' : 'Config JSON that will be sent';
    preview.textContent = JSON.stringify(sweeping ? sweepBody().body : collect(), null, 2);
  }

  function updateInactive() {
    const val = (p) => fields.get(p)?.read();
    const set = (p, inactive) => fields.get(p)?.wrap.classList.toggle('inactive', Boolean(inactive));
    ['weights.N', 'weights.H', 'dst.m'].forEach((p) => set(p, val('weights.discrete') === false));
    ['activations.N', 'activations.r', 'activations.a', 'activations.window'].forEach((p) => set(p, val('activations.discrete') === false));
    set('model.hidden', val('model.arch') !== 'mlp');
    set('model.width', val('model.arch') === 'mlp');
  }

  // ---- errors
  /** The input a message about `path` belongs next to: a varied field's list, the seeds, the team. */
  function target(path) {
    if (aux.has(path)) return aux.get(path);
    const f = fields.get(path);
    return f && {wrap: f.wrap, error: f.error, input: f.vary?.on ? f.vary.input : f.input};
  }

  function clearError(path) {
    const t = target(path);
    if (!t || !t.wrap.classList.contains('invalid')) return;
    t.wrap.classList.remove('invalid');
    t.error.textContent = '';
    t.input.removeAttribute('aria-invalid');
  }

  function markError(path, message) {
    const t = target(path);
    t.wrap.classList.add('invalid');
    t.error.textContent = message;
    t.input.setAttribute('aria-invalid', 'true');
    return t;
  }

  /** A server field name ("config.weights.N", "base.weights.N", "grid.activations.r.1", "seeds.0", "team") → form path. */
  function formPath(field) {
    let path = String(field || '');
    if (/^seeds(\.|$)/.test(path)) return 'seeds';
    if (path === 'team') return aux.has('team') ? 'team' : '';
    path = path.replace(/^(config|base|grid)\.?/, '');
    while (path && !fields.has(path)) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    return path;
  }

  function showError(err, what) {
    const path = formPath(err.field);
    if (path) {
      const t = markError(path, err.message);
      t.wrap.scrollIntoView({block: 'center'});
      t.input.focus({preventScroll: true});
      fill(banner, `The server rejected this ${what}: fix the highlighted field.`);
    } else {
      fill(banner, `The server rejected this ${what}: ${err.message}`);
    }
    banner.classList.remove('hidden');
  }

  /** Client-side checks of the value lists before a sweep goes out; false when one is unreadable. */
  function checkLists() {
    let first = null;
    for (const path of [...variedPaths(), 'seeds']) {
      const r = path === 'seeds' ? aux.get('seeds').parse() : fields.get(path).vary.parse();
      if (r.error) { const t = markError(path, r.error); first = first || t; }
    }
    if (first) { first.input.focus(); return false; }
    return true;
  }

  async function launchSweep() {
    if (!checkLists()) return;
    submitSweep.disabled = true;
    submitSweep.textContent = 'Launching…';
    try {
      const created = await endpoints.createSweep(sweepBody().body);
      if (!life.alive) return;
      toast(`Sweep #${created.id} queued: ${created.total} runs`);
      location.hash = `#/sweeps/${created.id}`;
    } catch (err) {
      if (!life.alive) return;
      if (err instanceof ApiError && err.status === 422) showError(err, 'sweep');
      else if (err instanceof ApiError && err.status === 429) {
        fill(banner, `The team’s queue is full: ${err.message}`);
        banner.classList.remove('hidden');
      } else { fill(banner, `Could not launch the sweep: ${err.message}`); banner.classList.remove('hidden'); }
    } finally {
      submitSweep.disabled = false;
      if (life.alive) updateSweep();
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    banner.classList.add('hidden');
    for (const path of [...fields.keys(), ...aux.keys()]) clearError(path);
    if (inSweep()) { await launchSweep(); return; }
    submit.disabled = true;
    submit.textContent = 'Queueing…';
    try {
      const run = await endpoints.create(collect(), team());
      if (!life.alive) return;
      toast(`Run #${run.id} queued`);
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      if (!life.alive) return;
      if (err instanceof ApiError && err.status === 422) showError(err, 'config');
      else if (err instanceof ApiError && err.status === 429) {
        fill(banner, `The team’s queue is full: ${err.message}`);
        banner.classList.remove('hidden');
      } else { fill(banner, `Could not queue the run: ${err.message}`); banner.classList.remove('hidden'); }
    } finally {
      submit.disabled = false;
      submit.textContent = 'Queue run';
    }
  });
  reset.addEventListener('click', () => {
    presetButtons.forEach((b) => b.classList.remove('active'));
    sweepState.seedsOn = false;
    setValues(cat.defaults);
    setRoute(sweep ? '/sweeps/new' : '/new', {});
  });

  heading.dataset.runTitle = heading.textContent;
  const intro = source
    ? h('div', {class: 'banner info'}, 'Pre-filled from run ', h('a', {href: `#/runs/${source.id}`}, `#${source.id}`), ' ',
      h('b', {text: source.name}), '. Edit and queue.')
    : sweep
      ? h('p', {class: 'muted'}, 'Start from a sweep preset, or set the base config below and press ', h('b', null, 'vary'),
        ' next to each field to sweep (comma-separated values). Every combination runs once per seed.')
      : h('p', {class: 'muted'}, 'Pick a preset or start from the defaults. Every field has the server’s bounds; ',
        'the full-precision (-fp) presets are the paper’s baselines. ', h('b', null, 'vary'),
        ' next to a field turns the run into a sweep.');
  root.append(intro, h('div', {class: 'toolbar'}, presetBar, sweepPresetBar), presetNote, banner, form);

  const runPreset = sweep ? params.get('base') : params.get('preset');
  if (source) setValues(deepMerge(cat.defaults, source.config));
  else if (runPreset && cat.presets[runPreset]) applyPreset(runPreset);
  else setValues(cat.defaults);
  if (sweep && sweepPresets[params.get('preset')]) applySweepPreset(params.get('preset'));
}

function presetTitle(preset) {
  const ds = preset.dataset?.name;
  const arch = preset.model?.arch;
  const fp = preset.weights?.discrete === false ? ', full precision' : '';
  return [ds, arch].filter(Boolean).join(' · ') + fp;
}
