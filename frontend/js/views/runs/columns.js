// @ts-check
// The runs table's columns, all of them: the run's own fields, a shorthand of its config, every config field (dotted
// keys, from the catalog's default config and its JSON schema) and every run metric of the catalog.  A column's key
// is its name in the address (`cols=`, `sort=`) and its header in the CSV; the page shows the chosen ones.
import {h} from '../../dom.js';
import {bestFirst, fmtMetric, metricTitle} from '../../metrics.js';
import {configColumns, flatten, fmtShortTime, fmtTime, get} from '../../util.js';
import {LABELS, resolve} from '../new/schema.js';
/** @import {MetricCatalog} from '../../metrics.js' */
/** @import {Catalog, Metric, Run} from '../../types' */

/**
 * What a cell needs from the page: the queue positions, and what a click on a tag chip does.
 * @typedef {object} CellContext
 * @property {(r: Run) => HTMLElement} progress the progress bar of a run
 * @property {(tag: string) => void} onTag
 */
/**
 * @typedef {object} Column
 * @property {string} key the address's and the CSV's name of the column
 * @property {string} label the table's header
 * @property {'run' | 'shorthand' | 'config' | 'metric'} group the chooser's section
 * @property {(r: Run) => unknown} value the raw value: the CSV's, and what a page-only sort compares
 * @property {string} [server] the API's sort key (GET /runs `sort=`): sorts every page
 * @property {boolean} [pageSort] sorts the rows of the current page only (the API cannot sort by it)
 * @property {'asc' | 'desc'} [first] the order of a first click
 * @property {boolean} [num]
 * @property {string | null} [title]
 * @property {Metric} [metric]
 * @property {(r: Run, ctx: CellContext) => HTMLTableCellElement} [cell] a cell other than the value as text
 */

/** @param {unknown} v */
function show(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (Array.isArray(v)) return v.length ? v.join(' ') : '(none)';
  return String(v);
}

/** @type {(cls: 'num' | 'name') => (r: Run) => HTMLTableCellElement} */
const link = (cls) => (r) => h('td', {class: cls}, h('a', {href: `#/runs/${r.id}`, text: cls === 'name' ? r.name : String(r.id)}));

/** @type {Column[]} */
const RUN_COLUMNS = [
  {key: 'id', label: 'ID', group: 'run', value: (r) => r.id, server: 'created_at', first: 'desc', num: true, cell: link('num')},
  {key: 'name', label: 'Name', group: 'run', value: (r) => r.name, server: 'name', first: 'asc', cell: link('name')},
  {key: 'tags', label: 'Tags', group: 'run', value: (r) => (r.tags || []).join('; '), title: 'Click a tag to list its runs',
    cell: (r, ctx) => h('td', {class: 'tags'}, (r.tags || []).map((t) => h('button', {type: 'button', class: 'chip',
      'data-tag': t, title: `Only runs tagged “${t}”`, onclick: () => ctx.onTag(t)}, t)))},
  {key: 'project', label: 'Project', group: 'run', value: (r) => r.project, server: 'project', first: 'asc'},
  {key: 'team', label: 'Team', group: 'run', value: (r) => r.team, pageSort: true},
  {key: 'sweep', label: 'Sweep', group: 'run', value: (r) => r.sweep_id ?? null, server: 'sweep', first: 'desc', num: true,
    cell: (r) => h('td', {class: 'num'}, r.sweep_id ? h('a', {href: `#/sweeps/${r.sweep_id}`, text: `#${r.sweep_id}`}) : '—')},
  {key: 'status', label: 'Status', group: 'run', value: (r) => r.status, server: 'status', first: 'asc',
    cell: (r) => h('td', null, h('span', {class: `badge ${r.status}`, text: r.status}))},
  {key: 'progress', label: 'Progress', group: 'run', value: (r) => `${r.progress.epochs_done}/${r.progress.total_epochs}`,
    server: 'epochs_done', first: 'desc', cell: (r, ctx) => h('td', null, ctx.progress(r))},
];

/** @type {(key: 'created_at' | 'started_at' | 'finished_at') => (r: Run) => HTMLTableCellElement} */
const when = (key) => (r) => h('td', {class: 'small muted nowrap', text: fmtShortTime(r[key]), title: fmtTime(r[key])});
/** @type {Column[]} */
const TIME_COLUMNS = [
  {key: 'created_at', label: 'Created', group: 'run', value: (r) => r.created_at, server: 'created_at', first: 'desc',
    cell: when('created_at')},
  {key: 'started_at', label: 'Started', group: 'run', value: (r) => r.started_at ?? null, pageSort: true, cell: when('started_at')},
  {key: 'finished_at', label: 'Finished', group: 'run', value: (r) => r.finished_at ?? null, pageSort: true,
    cell: when('finished_at')},
];

// The config in a few readable columns (a full-precision side shows "fp"); the raw fields are config columns.
/** @type {Column[]} */
const SHORTHAND_COLUMNS = [
  {key: 'dataset', label: 'Dataset', group: 'shorthand', value: (r) => configColumns.dataset(r.config), pageSort: true},
  {key: 'model', label: 'Model', group: 'shorthand', value: (r) => configColumns.model(r.config), pageSort: true,
    title: 'Architecture, and the MLP’s hidden widths or the CNN’s width multiplier'},
  {key: 'weightsN', label: 'W N', group: 'shorthand', value: (r) => configColumns.weightsN(r.config), pageSort: true, num: true,
    title: 'Weights: 2^N+1 states (fp = full precision)'},
  {key: 'actN', label: 'A N', group: 'shorthand', value: (r) => configColumns.actN(r.config), pageSort: true, num: true,
    title: 'Activations: N (fp = ReLU baseline)'},
  {key: 'r', label: 'r', group: 'shorthand', value: (r) => configColumns.r(r.config), pageSort: true, num: true,
    title: 'Activation sparsity window r'},
];

// The run's own name and project are run columns; the config's copies (as submitted) would only repeat them.
const NOT_CONFIG_COLUMNS = new Set(['name', 'project']);

/**
 * Every config field as a column: the catalog's default config, flattened, described by its JSON schema.
 * @param {Catalog} catalog
 * @returns {Column[]}
 */
function configFields(catalog) {
  return Object.keys(flatten(catalog.defaults)).filter((k) => !NOT_CONFIG_COLUMNS.has(k)).map((key) => {
    const [section, field] = key.split('.');
    const node = catalog.schema.properties[section];
    const description = node && field ? resolve(catalog.schema, node).properties?.[field]?.description : undefined;
    const num = typeof get(catalog.defaults, key) === 'number';
    return {key, label: key, group: /** @type {const} */ ('config'), value: (/** @type {Run} */ r) => get(r.config, key) ?? null,
      pageSort: true, num, title: [LABELS[key], description].filter(Boolean).join(': ') || null};
  });
}

/**
 * Every column, in the table's order.
 * @param {Catalog} catalog
 * @param {MetricCatalog} mc
 * @returns {Column[]}
 */
export function allColumns(catalog, mc) {
  /** @type {Column[]} */
  const metrics = mc.run.map((m) => ({key: m.name, label: m.short, group: 'metric', value: (r) => r.summary?.[m.name] ?? null,
    server: m.name, first: bestFirst(m), num: true, title: metricTitle(m), metric: m,
    cell: (r) => h('td', {class: 'num', 'data-metric': m.name, text: fmtMetric(m, r.summary?.[m.name])})}));
  return [...RUN_COLUMNS, ...SHORTHAND_COLUMNS, ...configFields(catalog), ...metrics, ...TIME_COLUMNS];
}

/**
 * The columns shown when the address names none: the run, the shorthand of its config, the catalog's `list` metrics.
 * @param {MetricCatalog} mc
 * @returns {string[]}
 */
export function defaultKeys(mc) {
  return ['id', 'name', 'tags', 'project', 'status', 'progress', ...SHORTHAND_COLUMNS.map((c) => c.key),
    ...mc.view('list').map((m) => m.name), 'created_at'];
}

/**
 * The chosen keys in the table's order (unknown keys dropped; none known: the defaults).
 * @param {string | null} param the address's `cols=`
 * @param {Column[]} columns
 * @param {string[]} defaults
 * @returns {string[]}
 */
export function chosenKeys(param, columns, defaults) {
  const asked = new Set((param || '').split(',').map((k) => k.trim()).filter(Boolean));
  const keys = columns.filter((c) => asked.has(c.key)).map((c) => c.key);
  return keys.length ? keys : defaults;
}

/**
 * How a column sorts, for its header's tooltip.
 * @param {Column} c
 */
export function sortNote(c) {
  if (c.server) return 'Sorts all runs';
  if (c.pageSort) return 'Sorts this page only (the API cannot sort by it)';
  return 'Not sortable';
}

/** @param {unknown} v */
const missing = (v) => v === '—' || v === null || v === undefined;

/**
 * Runs sorted by a column's values (missing last, then newest first): a page-only sort.
 * @param {Run[]} runs
 * @param {Column} c
 * @param {'asc' | 'desc'} order
 */
export function sortRuns(runs, c, order) {
  const dir = order === 'asc' ? 1 : -1;
  return [...runs].sort((a, b) => {
    const x = c.value(a);
    const y = c.value(b);
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
    if (typeof x === 'number' && typeof y === 'number') return (x - y) * dir || (b.id - a.id);
    return String(show(x)).localeCompare(String(show(y)), undefined, {numeric: true}) * dir || (b.id - a.id);
  });
}

/**
 * A cell: the column's own, or its value as text.
 * @param {Column} c
 * @param {Run} r
 * @param {CellContext} ctx
 */
export function cell(c, r, ctx) {
  if (c.cell) return c.cell(r, ctx);
  return h('td', {class: c.num ? 'num' : c.group === 'config' ? 'nowrap' : '', 'data-col': c.key, text: show(c.value(r))});
}
