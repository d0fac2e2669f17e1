// @ts-check
// Small pure helpers: formatting, config access, CSV/JSON export, smoothing, Pareto front.
/** @import {Run, RunStatus, SweepRun} from './types' */

/** @type {RunStatus[]} */
export const FINISHED = ['succeeded', 'failed', 'cancelled'];
/** @type {RunStatus[]} */
export const ACTIVE = ['queued', 'running'];
/** @type {RunStatus[]} */
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/**
 * @param {unknown} v
 * @returns {v is number}
 */
export function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }

/**
 * @param {unknown} v
 * @param {number} [digits]
 */
export function fmtNum(v, digits = 4) {
  if (!isNum(v)) return '—';
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}

/**
 * @param {unknown} v
 * @param {number} [digits]
 */
export function fmtPct(v, digits = 2) { return isNum(v) ? `${(v * 100).toFixed(digits)}%` : '—'; }

/**
 * 37169 → "37.2k", 84480000 → "84.5M".
 * @param {unknown} v
 */
export function fmtCompact(v) {
  if (!isNum(v)) return '—';
  const a = Math.abs(v);
  for (const [d, u] of /** @type {[number, string][]} */ ([[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']])) if (a >= d) return `${Number((v / d).toPrecision(3))}${u}`;
  return String(Math.round(v));
}

/**
 * Short local time for tables: "11-25 22:09"; the full one goes in a title.
 * @param {string | null | undefined} s
 */
export function fmtShortTime(s) {
  const d = parseTime(s);
  if (!d) return '—';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** @param {unknown} v */
export function fmtInt(v) { return isNum(v) ? Math.round(v).toLocaleString('en-US') : '—'; }

/**
 * API timestamps are UTC without an offset: read them as UTC.
 * @param {string | null | undefined} s
 * @returns {Date | null}
 */
export function parseTime(s) {
  if (!s) return null;
  const t = /[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** @param {string | null | undefined} s */
export function fmtTime(s) {
  const d = parseTime(s);
  if (!d) return '—';
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** @param {unknown} seconds */
export function fmtDuration(seconds) {
  if (!isNum(seconds) || seconds < 0) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Overall fraction done: finished epochs plus the running epoch's share.
 * @param {Pick<Run | SweepRun, 'status' | 'progress'>} run
 */
export function progressFraction(run) {
  const p = run.progress || {};
  if (!p.total_epochs) return 0;
  if (run.status === 'succeeded') return 1;
  const partial = p.epoch > p.epochs_done ? Math.min(Math.max(p.fraction || 0, 0), 1) : 0;
  return Math.min(1, (p.epochs_done + partial) / p.total_epochs);
}

/**
 * The value at a dotted path ("weights.N"), or undefined.
 * @param {any} obj
 * @param {string} path
 * @returns {any}
 */
export function get(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/**
 * {a: {b: 1}} → {'a.b': 1} (lists stay values).
 * @param {any} obj
 * @param {string} [prefix]
 * @param {Record<string, any>} [out]
 * @returns {Record<string, any>}
 */
export function flatten(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, `${prefix}${k}.`, out);
    else out[prefix + k] = v;
  }
  return out;
}

/**
 * A copy of base with over's values on top, objects merged key by key.
 * @param {any} base
 * @param {any} over
 * @returns {any}
 */
export function deepMerge(base, over) {
  const out = structuredClone(base ?? {});
  for (const [k, v] of Object.entries(over || {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' && !Array.isArray(out[k])
      ? deepMerge(out[k], v) : structuredClone(v);
  }
  return out;
}

/**
 * Short config descriptions for tables.
 * @type {Record<'dataset' | 'model' | 'weightsN' | 'actN' | 'r', (c: any) => string | number>}
 */
export const configColumns = {
  dataset: (c) => get(c, 'dataset.name') ?? '—',
  model: (c) => {
    const arch = get(c, 'model.arch') ?? '—';
    const hidden = get(c, 'model.hidden');
    if (arch === 'mlp' && Array.isArray(hidden)) return `mlp ${hidden.join('-') || '(none)'}`;
    const w = get(c, 'model.width');
    return w && w !== 1 ? `${arch} ×${w}` : arch;
  },
  weightsN: (c) => (get(c, 'weights.discrete') === false ? 'fp' : get(c, 'weights.N') ?? '—'),
  actN: (c) => (get(c, 'activations.discrete') === false ? 'fp' : get(c, 'activations.N') ?? '—'),
  r: (c) => (get(c, 'activations.discrete') === false ? '—' : get(c, 'activations.r') ?? '—'),
};

/**
 * Display value of a JSON config value (as text).
 * @param {unknown} v
 */
export function showValue(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** @param {unknown} v */
function csvCell(v) {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  // Spreadsheet formula injection: a text cell must not start a formula.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * @param {string[]} header
 * @param {unknown[][]} rows
 */
export function toCSV(header, rows) {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/**
 * @param {string} filename
 * @param {string} text
 * @param {string} [mime]
 */
export function download(filename, text, mime = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], {type: `${mime};charset=utf-8`}));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * De-biased exponential moving average (as TensorBoard): gaps (null) stay gaps.
 * @param {(number | null)[]} values
 * @param {number} weight
 * @returns {(number | null)[]}
 */
export function ema(values, weight) {
  if (!(weight > 0)) return values.slice();
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (!isNum(v)) return null;
    acc = acc * weight + (1 - weight) * v;
    n += 1;
    return acc / (1 - weight ** n);
  });
}

/**
 * Indices of the Pareto-optimal points: minimise x, maximise y.
 * @param {{x: any, y: any}[]} points  (entries whose x or y is not a number are never on the front)
 * @returns {number[]}
 */
export function paretoFront(points) {
  const idx = points.map((p, i) => i).filter((i) => isNum(points[i].x) && isNum(points[i].y));
  return idx.filter((i) => !idx.some((j) => j !== i
    && points[j].x <= points[i].x && points[j].y >= points[i].y
    && (points[j].x < points[i].x || points[j].y > points[i].y)));
}

/**
 * Replace the address bar's query without a navigation (views own their state).
 * @param {string} path
 * @param {Record<string, unknown>} params
 */
export function setRoute(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString().replace(/%2C/g, ',');
  const hash = `#${path}${s ? `?${s}` : ''}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

/**
 * Labels of the 2^N+1 weight states in [-H, H] (index 0 = -H).
 * @param {number} count
 * @param {number} [H]
 */
export function stateLabels(count, H = 1) {
  const steps = count - 1;
  return Array.from({length: count}, (_, i) => {
    const v = -H + (2 * H * i) / steps;
    const s = String(Number(v.toFixed(4)));
    return v > 0 ? `+${s}` : s.replace('-', '−');
  });
}

/**
 * Labels of activation levels: binary N=0 counts (≤0, >0); otherwise 2K+1 levels k/K.
 * @param {number} count
 */
export function levelLabels(count) {
  if (count === 2) return ['−1', '+1'];
  const K = (count - 1) / 2;
  return Array.from({length: count}, (_, i) => {
    const v = (i - K) / K;
    const s = String(Number(v.toFixed(4)));
    return v > 0 ? `+${s}` : s.replace('-', '−');
  });
}
