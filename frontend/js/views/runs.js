// @ts-check
// Runs: filter, search, sort, paginate, select → compare, cancel/delete, CSV export; live while runs are active.
// The metric columns are the catalog's `list` view and the CSV has every run metric (GET /catalog → metrics).
import {endpoints} from '../api.js';
import {confirmButton, fill, h, poll, toast} from '../dom.js';
import {bestFirst, fmtMetric, metricCatalog, metricTitle} from '../metrics.js';
import {
  ACTIVE, FINISHED, STATUSES, configColumns, download, fmtShortTime, fmtTime, progressFraction, setRoute, toCSV,
} from '../util.js';
/** @import {Life} from '../dom.js' */
/** @import {MetricCatalog} from '../metrics.js' */
/** @import {Metric, Run} from '../types' */

const PAGE_SIZES = [25, 50, 100, 200];
const POLL_ACTIVE_MS = 2000;
const POLL_IDLE_MS = 10000;

// server: the API's sort key; client: a value to sort the current page by (config columns); metric: a run metric of
// the catalog, between these and the last column.
/**
 * @typedef {object} Column
 * @property {string} key
 * @property {string} label
 * @property {string} [server] the API's sort key
 * @property {(r: Run) => unknown} [client] the value that sorts the current page
 * @property {'asc' | 'desc'} [first] the order of a first click
 * @property {boolean} [num]
 * @property {string | null} [title]
 * @property {Metric} [metric]
 */
/** @type {Column[]} */
const HEAD_COLUMNS = [
  {key: 'id', label: 'ID', server: 'created_at', first: 'desc', num: true},
  {key: 'name', label: 'Name', server: 'name', first: 'asc'},
  {key: 'project', label: 'Project', client: (r) => r.project},
  {key: 'status', label: 'Status', server: 'status', first: 'asc'},
  {key: 'progress', label: 'Progress', server: 'epochs_done', first: 'desc'},
  {key: 'dataset', label: 'Dataset', client: (r) => configColumns.dataset(r.config)},
  {key: 'model', label: 'Model', client: (r) => configColumns.model(r.config)},
  {key: 'weightsN', label: 'W N', client: (r) => configColumns.weightsN(r.config), num: true, title: 'Weights: 2^N+1 states (fp = full precision)'},
  {key: 'actN', label: 'A N', client: (r) => configColumns.actN(r.config), num: true, title: 'Activations: N (fp = ReLU baseline)'},
  {key: 'r', label: 'r', client: (r) => configColumns.r(r.config), num: true, title: 'Activation sparsity window r'},
];
/** @type {Column} */
const LAST_COLUMN = {key: 'created_at', label: 'Created', server: 'created_at', first: 'desc'};

/**
 * @param {MetricCatalog} mc
 * @returns {Column[]}
 */
function columns(mc) {
  const metrics = mc.view('list').map((m) => ({key: m.name, label: m.short, server: m.name, first: bestFirst(m), num: true,
    title: metricTitle(m), metric: m}));
  return [...HEAD_COLUMNS, ...metrics, LAST_COLUMN];
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 */
export function mount(root, args, life) {
  document.title = 'Runs — GXNOR Lab';
  metricCatalog().then((mc) => { if (life.alive) build(root, args, life, mc); }, (err) => {
    if (life.alive) root.append(h('div', {class: 'banner error', role: 'alert', text: `Could not load the catalog: ${err.message}`}));
  });
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 * @param {MetricCatalog} mc
 */
function build(root, {params}, life, mc) {
  const COLUMNS = columns(mc);
  const BY_KEY = Object.fromEntries(COLUMNS.map((c) => [c.key, c]));
  const state = {
    status: STATUSES.find((s) => s === params.get('status')) ?? '',
    project: params.get('project') || '',
    q: params.get('q') || '',
    sort: BY_KEY[params.get('sort') ?? ''] ? String(params.get('sort')) : 'created_at',
    order: params.get('order') === 'asc' ? 'asc' : 'desc',
    page: Math.max(1, parseInt(params.get('page') ?? '', 10) || 1),
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 50,
  };
  /** @type {Set<number>} */
  const selected = new Set();
  /** @type {Set<string>} */
  const projects = new Set();
  /** @type {Run[]} */
  let items = [];
  let total = 0;

  // ---- layout
  const search = h('input', {type: 'search', placeholder: 'Search names  ( / )', value: state.q, 'data-search': '',
    'aria-label': 'Search run names', id: 'run-search'});
  const statusSel = h('select', {'aria-label': 'Status filter', id: 'status-filter'},
    h('option', {value: ''}, 'All statuses'), STATUSES.map((s) => h('option', {value: s, selected: s === state.status}, s)));
  const projectList = h('datalist', {id: 'project-options'});
  const projectInput = h('input', {type: 'text', placeholder: 'Project', value: state.project, list: 'project-options',
    'aria-label': 'Project filter', id: 'project-filter', style: {width: '10rem'}});
  const compareBtn = h('button', {type: 'button', class: 'primary', id: 'compare-selected', disabled: true}, 'Compare');
  const clearSel = h('button', {type: 'button', class: 'small hidden'}, 'Clear selection');
  const exportBtn = h('button', {type: 'button', id: 'export-csv', title: 'All runs matching the filters'}, 'Export CSV');
  const countNote = h('span', {class: 'muted', id: 'runs-count'});
  const liveNote = h('span', {class: 'muted small'});
  const errorBox = h('div', {class: 'banner error hidden', role: 'alert'});
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});

  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Runs'), countNote, liveNote,
      h('div', {class: 'actions'}, h('a', {class: 'button primary', href: '#/new'}, '+ New run'))),
    h('div', {class: 'toolbar'}, search, statusSel, projectInput, projectList,
      h('span', {class: 'grow'}), clearSel, compareBtn, exportBtn),
    errorBox,
    h('div', {class: 'panel'}, h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'runs-table'}, thead, tbody)), pager),
  );

  // ---- state → URL and fetch
  function syncUrl() {
    setRoute('/runs', {
      status: state.status, project: state.project, q: state.q,
      sort: state.sort === 'created_at' ? '' : state.sort, order: state.sort === 'created_at' && state.order === 'desc' ? '' : state.order,
      page: state.page > 1 ? state.page : '', limit: state.limit === 50 ? '' : state.limit,
    });
  }

  function serverSort() {
    const col = BY_KEY[state.sort];
    return col.server ? {sort: col.server, order: state.order} : {sort: 'created_at', order: 'desc'};
  }

  function listParams(extra = {}) {
    return {status: state.status, project: state.project, q: state.q, ...serverSort(), ...extra};
  }

  // Polls every 2 s while a run on the page is active, else every 10 s (dom.js poll: paused while the tab is hidden,
  // back-off on errors); load() reloads at once after the user changes what is shown.
  const poller = poll(life, async ({stale}) => {
    const data = await endpoints.list(listParams({limit: state.limit, offset: (state.page - 1) * state.limit}), life.signal);
    if (stale()) return null;
    if (data.items.length === 0 && data.total > 0 && state.page > 1) {  // page ran past the end
      state.page = Math.max(1, Math.ceil(data.total / state.limit));
      syncUrl();
      load();
      return null;
    }
    items = data.items;
    total = data.total;
    items.forEach((r) => projects.add(r.project));
    errorBox.classList.add('hidden');
    const positions = items.some((r) => r.status === 'queued') ? await queuePositions() : new Map();
    if (stale()) return null;
    render(positions);
    const active = items.some((r) => ACTIVE.includes(r.status));
    liveNote.textContent = active ? '· live' : '';
    return active ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  }, {onError: (err) => {
    fill(errorBox, `Could not load runs: ${err.message}`);
    errorBox.classList.remove('hidden');
  }});
  const load = () => poller.now();

  /** @returns {Promise<Map<number, number>>} run id → place in the queue */
  async function queuePositions() {
    try {
      const q = await endpoints.list({status: 'queued', sort: 'created_at', order: 'asc', limit: 500}, life.signal);
      return new Map(q.items.map((r, i) => [r.id, i + 1]));
    } catch {
      return new Map();
    }
  }

  // ---- rendering
  function renderHead() {
    const allBox = h('input', {type: 'checkbox', 'aria-label': 'Select all on this page', id: 'select-all'});
    const pageIds = items.map((r) => r.id);
    const n = pageIds.filter((id) => selected.has(id)).length;
    allBox.checked = n > 0 && n === pageIds.length;
    allBox.indeterminate = n > 0 && n < pageIds.length;
    allBox.addEventListener('change', () => {
      pageIds.forEach((id) => (allBox.checked ? selected.add(id) : selected.delete(id)));
      render();
    });
    const ths = COLUMNS.map((c) => {
      const active = state.sort === c.key;
      const title = [c.title, c.client ? 'Sorts this page only' : null].filter(Boolean).join(' — ');
      return h('th', {class: `sortable ${c.num ? 'num' : ''}`, title: title || null, 'data-sort': c.key, tabindex: 0,
        'aria-sort': active ? (state.order === 'asc' ? 'ascending' : 'descending') : null,
        onkeydown: (/** @type {KeyboardEvent} */ ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); /** @type {HTMLElement} */ (ev.currentTarget).click(); } },
        onclick: () => {
          if (state.sort === c.key) state.order = state.order === 'asc' ? 'desc' : 'asc';
          else { state.sort = c.key; state.order = c.first || 'asc'; }
          state.page = 1;
          syncUrl();
          load();
        }},
      c.label, h('span', {class: 'arrow'}, active ? (state.order === 'asc' ? '▲' : '▼') : ''));
    });
    fill(thead, h('tr', null, h('th', null, allBox), ths, h('th', {class: 'num'}, '')));
  }

  function sortedItems() {
    const client = BY_KEY[state.sort].client;
    if (!client) return items;
    const dir = state.order === 'asc' ? 1 : -1;
    return [...items].sort((a, b) => {
      const x = client(a);
      const y = client(b);
      const missing = (/** @type {unknown} */ v) => v === '—' || v === null || v === undefined;
      if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
      if (typeof x === 'number' && typeof y === 'number') return (x - y) * dir;
      return String(x).localeCompare(String(y), undefined, {numeric: true}) * dir || (b.id - a.id);
    });
  }

  /**
   * @param {Run} r
   * @param {Map<number, number>} [positions]
   */
  function progressCell(r, positions) {
    if (r.status === 'queued') {
      const pos = positions?.get(r.id);
      return h('div', {class: 'progress'}, h('div', {class: 'bar'}, h('div', {style: {width: '0%'}})),
        h('span', {class: 'label'}, pos ? `queued #${pos}` : 'queued'));
    }
    const p = r.progress;
    const frac = progressFraction(r);
    const running = r.status === 'running';
    return h('div', {class: 'progress', 'data-progress': frac.toFixed(4)},
      h('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(frac * 100)},
        h('div', {style: {width: `${(frac * 100).toFixed(1)}%`, opacity: running ? 1 : 0.45}})),
      h('span', {class: 'label'}, `${p.epochs_done}/${p.total_epochs}`));
  }

  /** @type {Map<number, {key: string, cell: HTMLTableCellElement}>} */
  const actionCells = new Map();  // kept across refreshes, so that a button waiting for its confirming click stays so

  /** @param {Run} r */
  function actionsCell(r) {
    const key = `${r.status}|${r.cancel_requested}`;
    const kept = actionCells.get(r.id);
    if (kept?.key === key) return kept.cell;
    const cell = h('td', {class: 'actions'});
    actionCells.set(r.id, {key, cell});
    if (ACTIVE.includes(r.status) && r.cancel_requested) {
      cell.append(h('button', {type: 'button', class: 'small', 'data-action': 'cancel', disabled: true}, 'Cancelling…'));
    } else if (ACTIVE.includes(r.status)) {  // a second click confirms, as for Delete
      const b = confirmButton('Cancel', 'Confirm cancel', async () => {
        try { await endpoints.cancel(r.id); toast(`Run #${r.id} cancelled`); } catch (err) { toast(err.message, 'error'); }
        load();
      }, {class: 'small', title: 'Stop this run (a second click confirms)'});
      b.dataset.action = 'cancel';
      cell.append(b);
    } else if (FINISHED.includes(r.status)) {
      cell.append(confirmButton('Delete', 'Confirm delete', async () => {
        try { await endpoints.remove(r.id); selected.delete(r.id); toast(`Run #${r.id} deleted`); } catch (err) { toast(err.message, 'error'); }
        load();
      }, {class: 'small', title: 'Delete this run and its artifacts'}));
    }
    return cell;
  }

  /** @type {Map<number, number>} */
  let lastPositions = new Map();
  function render(positions = lastPositions) {
    lastPositions = positions;
    renderHead();
    countNote.textContent = `${total} run${total === 1 ? '' : 's'}`;
    const rows = sortedItems().map((r) => {
      const box = h('input', {type: 'checkbox', checked: selected.has(r.id), 'aria-label': `Select run ${r.id}`, 'data-select': r.id});
      box.addEventListener('change', () => { box.checked ? selected.add(r.id) : selected.delete(r.id); render(positions); });
      const s = r.summary || {};
      return h('tr', {'data-run': r.id, class: selected.has(r.id) ? 'selected' : ''},
        h('td', null, box),
        h('td', {class: 'num'}, h('a', {href: `#/runs/${r.id}`}, String(r.id))),
        h('td', {class: 'name'}, h('a', {href: `#/runs/${r.id}`, text: r.name})),
        h('td', {text: r.project}),
        h('td', null, h('span', {class: `badge ${r.status}`, text: r.status})),
        h('td', null, progressCell(r, positions)),
        h('td', {text: configColumns.dataset(r.config)}),
        h('td', {class: 'nowrap', text: configColumns.model(r.config)}),
        h('td', {class: 'num', text: configColumns.weightsN(r.config)}),
        h('td', {class: 'num', text: configColumns.actN(r.config)}),
        h('td', {class: 'num', text: configColumns.r(r.config)}),
        COLUMNS.filter((c) => c.metric).map((c) => h('td', {class: 'num', 'data-metric': c.key, text: fmtMetric(c.metric, s[c.key])})),
        h('td', {class: 'small muted nowrap', text: fmtShortTime(r.created_at), title: fmtTime(r.created_at)}),
        actionsCell(r));
    });
    if (!rows.length) {
      const filtered = state.status || state.project || state.q;
      rows.push(h('tr', null, h('td', {colspan: COLUMNS.length + 2, class: 'empty'},
        filtered ? 'No runs match these filters.' : h('span', null, 'No runs yet — ', h('a', {href: '#/new'}, 'start one'), '.'))));
    }
    fill(tbody, rows);
    fill(projectList, [...projects].sort().map((p) => h('option', {value: p})));
    renderPager();
    const n = selected.size;
    compareBtn.textContent = n ? `Compare (${n})` : 'Compare';
    compareBtn.disabled = n < 2 || n > 20;
    compareBtn.title = n > 20 ? 'At most 20 runs' : n < 2 ? 'Select 2–20 runs' : '';
    clearSel.classList.toggle('hidden', n === 0);
  }

  function renderPager() {
    const pages = Math.max(1, Math.ceil(total / state.limit));
    const from = total ? (state.page - 1) * state.limit + 1 : 0;
    const to = Math.min(total, state.page * state.limit);
    const go = (/** @type {number} */ p) => { state.page = p; syncUrl(); load(); };
    const size = h('select', {'aria-label': 'Runs per page'}, PAGE_SIZES.map((n) => h('option', {value: n, selected: n === state.limit}, `${n} / page`)));
    size.addEventListener('change', () => { state.limit = Number(size.value); state.page = 1; syncUrl(); load(); });
    fill(pager,
      h('span', {class: 'muted small'}, `${from}–${to} of ${total}`), size,
      h('button', {type: 'button', class: 'small', disabled: state.page <= 1, onclick: () => go(state.page - 1)}, '‹ Prev'),
      h('span', {class: 'small'}, `page ${state.page} / ${pages}`),
      h('button', {type: 'button', class: 'small', disabled: state.page >= pages, onclick: () => go(state.page + 1)}, 'Next ›'));
  }

  // ---- events
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let searchTimer;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.q = search.value.trim(); state.page = 1; syncUrl(); load(); }, 250);
  });
  life.onCleanup(() => clearTimeout(searchTimer));
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && search.value) { search.value = ''; state.q = ''; syncUrl(); load(); }
  });
  statusSel.addEventListener('change', () => { state.status = statusSel.value; state.page = 1; syncUrl(); load(); });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let projectTimer;
  projectInput.addEventListener('input', () => {
    clearTimeout(projectTimer);
    projectTimer = setTimeout(() => { state.project = projectInput.value.trim(); state.page = 1; syncUrl(); load(); }, 300);
  });
  life.onCleanup(() => clearTimeout(projectTimer));
  compareBtn.addEventListener('click', () => {
    const ids = [...selected].sort((a, b) => a - b);
    location.hash = `#/compare?ids=${ids.join(',')}&metric=val_error`;
  });
  clearSel.addEventListener('click', () => { selected.clear(); render(); });
  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    try { await exportCsv(); } catch (err) { toast(`Export failed: ${err.message}`, 'error'); } finally { exportBtn.disabled = false; }
  });

  async function exportCsv() {
    /** @type {Run[]} */
    const all = [];
    for (let offset = 0; offset < 20000; offset += 500) {
      const page = await endpoints.list(listParams({limit: 500, offset}), life.signal);
      all.push(...page.items);
      if (all.length >= page.total || !page.items.length) break;
    }
    // Every run metric of the catalog, raw numbers, after the config columns.
    const metrics = mc.run.map((m) => m.name);
    const header = ['id', 'name', 'project', 'status', 'epochs_done', 'total_epochs', 'dataset', 'arch', 'hidden',
      'weights_discrete', 'weights_N', 'activations_discrete', 'activations_N', 'activations_r', ...metrics,
      'created_at', 'started_at', 'finished_at'];
    const c = (/** @type {Run} */ r, /** @type {string} */ p) => p.split('.').reduce((o, k) => (o == null ? undefined : o[k]), r.config);
    const rows = all.map((r) => [r.id, r.name, r.project, r.status, r.progress.epochs_done, r.progress.total_epochs,
      c(r, 'dataset.name'), c(r, 'model.arch'), (c(r, 'model.hidden') || []).join(' '), c(r, 'weights.discrete'), c(r, 'weights.N'),
      c(r, 'activations.discrete'), c(r, 'activations.N'), c(r, 'activations.r'), ...metrics.map((k) => r.summary?.[k] ?? null),
      r.created_at, r.started_at, r.finished_at]);
    download('gxnor-runs.csv', toCSV(header, rows));
  }

  syncUrl();
  load();
}
