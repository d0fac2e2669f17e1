// New run: a form built from GET /api/v1/catalog (JSON schema bounds, descriptions, presets); clone from a run.
import {ApiError, catalog, endpoints} from '../api.js';
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

export function mount(root, {params}, life) {
  document.title = 'New run — GXNOR Lab';
  const cloneId = params.get('clone');
  root.append(h('div', {class: 'page-head'}, h('h1', null, cloneId ? `Clone run #${cloneId}` : 'New run')));
  const status = h('p', {class: 'muted'}, 'Loading the catalog…');
  root.append(status);

  (async () => {
    let cat;
    let source = null;
    try {
      cat = await catalog();
      if (cloneId) source = await endpoints.run(Number(cloneId), life.signal);
    } catch (err) {
      if (!life.alive) return;
      fill(status, h('span', {class: 'banner error', text: `Could not load: ${err.message}`}));
      return;
    }
    if (!life.alive) return;
    status.remove();
    build(root, cat, source, params, life);
  })();
}

function build(root, cat, source, params, life) {
  const schema = cat.schema;
  const fields = new Map();  // "weights.N" → {wrap, input, read, write, error}
  const form = h('form', {class: 'config', id: 'new-run-form', autocomplete: 'off'});
  const banner = h('div', {class: 'banner error hidden', role: 'alert', id: 'form-error'});
  const preview = h('pre', {class: 'mono'});
  const presetBar = h('div', {class: 'presets', id: 'presets'}, h('span', {class: 'muted'}, 'Presets:'));

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
    const wrap = h('div', {class: 'field', 'data-field': path},
      h('label', {for: id}, LABELS[path] || p.title || path, h('span', {class: 'key', text: path})),
      h('div', {class: 'control'}, input, bounds ? h('span', {class: 'bounds', text: bounds}) : null),
      help, error);
    input.addEventListener('input', () => { clearError(path); updatePreview(); });
    input.addEventListener('change', () => { clearError(path); updateInactive(); updatePreview(); });
    fields.set(path, {wrap, input, read, write, error});
    return wrap;
  }

  const top = h('fieldset', null, h('legend', null, 'Run'));
  for (const key of ['name', 'project']) top.append(makeField(key, schema.properties[key]));
  form.append(top);
  for (const [key, title] of SECTIONS) {
    const sec = resolve(schema, schema.properties[key]);
    const fs = h('fieldset', {'data-section': key}, h('legend', null, title));
    for (const [name, prop] of Object.entries(sec.properties)) fs.append(makeField(`${key}.${name}`, prop));
    form.append(fs);
  }
  const submit = h('button', {type: 'submit', class: 'primary', id: 'submit-run'}, 'Queue run');
  const reset = h('button', {type: 'button'}, 'Reset to defaults');
  form.append(h('div', {class: 'form-actions'}, submit, reset,
    h('span', {class: 'muted small'}, 'Bounds are checked here and again by the server.')),
  h('details', {class: 'preview'}, h('summary', null, 'Config JSON that will be sent'), preview));

  // ---- presets and values
  const presetNames = [...PRESET_ORDER.filter((n) => cat.presets[n]), ...Object.keys(cat.presets).filter((n) => !PRESET_ORDER.includes(n))];
  const presetButtons = new Map();
  for (const name of presetNames) {
    const b = h('button', {type: 'button', class: 'small', 'data-preset': name, title: presetTitle(cat.presets[name])}, name);
    b.addEventListener('click', () => applyPreset(name));
    presetButtons.set(name, b);
    presetBar.append(b);
  }

  function setValues(config) {
    for (const [path, f] of fields) {
      const v = get(config, path);
      f.write(v === undefined ? get(cat.defaults, path) : v);
      clearError(path);
    }
    banner.classList.add('hidden');
    updateInactive();
    updatePreview();
  }

  function applyPreset(name) {
    for (const [n, b] of presetButtons) b.classList.toggle('active', n === name);
    setValues(deepMerge(cat.defaults, cat.presets[name]));
    setRoute('/new', {preset: name});
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

  function updatePreview() { preview.textContent = JSON.stringify(collect(), null, 2); }

  function updateInactive() {
    const val = (p) => fields.get(p)?.read();
    const set = (p, inactive) => fields.get(p)?.wrap.classList.toggle('inactive', Boolean(inactive));
    ['weights.N', 'weights.H', 'dst.m'].forEach((p) => set(p, val('weights.discrete') === false));
    ['activations.N', 'activations.r', 'activations.a', 'activations.window'].forEach((p) => set(p, val('activations.discrete') === false));
    set('model.hidden', val('model.arch') !== 'mlp');
    set('model.width', val('model.arch') === 'mlp');
  }

  // ---- errors
  function clearError(path) {
    const f = fields.get(path);
    if (!f || !f.wrap.classList.contains('invalid')) return;
    f.wrap.classList.remove('invalid');
    f.error.textContent = '';
    f.input.removeAttribute('aria-invalid');
  }

  function showError(err) {
    let path = err.field ? String(err.field).replace(/^config\.?/, '') : '';
    while (path && !fields.has(path)) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    const f = path ? fields.get(path) : null;
    if (f) {
      f.wrap.classList.add('invalid');
      f.error.textContent = err.message;
      f.input.setAttribute('aria-invalid', 'true');
      f.wrap.scrollIntoView({block: 'center'});
      f.input.focus({preventScroll: true});
      fill(banner, 'The server rejected this config: fix the highlighted field.');
    } else {
      fill(banner, `The server rejected this config: ${err.message}`);
    }
    banner.classList.remove('hidden');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    banner.classList.add('hidden');
    for (const path of fields.keys()) clearError(path);
    submit.disabled = true;
    submit.textContent = 'Queueing…';
    try {
      const run = await endpoints.create(collect());
      if (!life.alive) return;
      toast(`Run #${run.id} queued`);
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      if (!life.alive) return;
      if (err instanceof ApiError && err.status === 422) showError(err);
      else { fill(banner, `Could not queue the run: ${err.message}`); banner.classList.remove('hidden'); }
    } finally {
      submit.disabled = false;
      submit.textContent = 'Queue run';
    }
  });
  reset.addEventListener('click', () => {
    presetButtons.forEach((b) => b.classList.remove('active'));
    setValues(cat.defaults);
    setRoute('/new', {});
  });

  const intro = source
    ? h('div', {class: 'banner info'}, 'Pre-filled from run ', h('a', {href: `#/runs/${source.id}`}, `#${source.id}`), ' ',
      h('b', {text: source.name}), '. Edit and queue.')
    : h('p', {class: 'muted'}, 'Pick a preset or start from the defaults. Every field has the server’s bounds; ',
      'the full-precision (-fp) presets are the paper’s baselines.');
  root.append(intro, h('div', {class: 'toolbar'}, presetBar), banner, form);

  if (source) setValues(deepMerge(cat.defaults, source.config));
  else if (params.get('preset') && cat.presets[params.get('preset')]) applyPreset(params.get('preset'));
  else setValues(cat.defaults);
}

function presetTitle(preset) {
  const ds = preset.dataset?.name;
  const arch = preset.model?.arch;
  const fp = preset.weights?.discrete === false ? ', full precision' : '';
  return [ds, arch].filter(Boolean).join(' · ') + fp;
}
