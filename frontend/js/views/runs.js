// @ts-check
// Runs: filter (status, project, tag, archived), search, sort, paginate, choose columns, select → compare or a bulk
// action, cancel/delete, CSV export of the columns shown; live while runs are active.  Everything the user sets is in
// the address, so a link reproduces the view.  The columns (views/runs/columns.js) come from GET /catalog: every
// config field and every run metric; the chooser (runs/chooser.js), the bulk bar (runs/bulk.js) and the CSV
// (runs/export.js) are sections of their own.
import {catalog, endpoints} from '../api.js';
import {confirmButton, fill, h, poll, toast} from '../dom.js';
import {metricCatalog} from '../metrics.js';
import {ACTIVE, FINISHED, STATUSES, progressFraction, setRoute} from '../util.js';
import {bulkBar} from './runs/bulk.js';
import {columnChooser} from './runs/chooser.js';
import {allColumns, cell, chosenKeys, defaultKeys, sortNote, sortRuns} from './runs/columns.js';
import {csvColumns, exportCsv} from './runs/export.js';
/** @import {Life} from '../dom.js' */
/** @import {MetricCatalog} from '../metrics.js' */
/** @import {Catalog, Run} from '../types' */
/** @import {CellContext} from './runs/columns.js' */

const PAGE_SIZES = [25, 50, 100, 200];
const POLL_ACTIVE_MS = 2000;
const POLL_IDLE_MS = 10000;
// GET /runs `archived=`: the choice's value → its label.
const ARCHIVED = /** @type {const} */ ([['false', 'Hide archived'], ['any', 'Show archived'], ['true', 'Only archived']]);

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 */
export function mount(root, args, life) {
  document.title = 'Runs — GXNOR Lab';
  Promise.all([catalog(), metricCatalog()]).then(([cat, mc]) => { if (life.alive) build(root, args, life, cat, mc); }, (err) => {
    if (life.alive) root.append(h('div', {class: 'banner error', role: 'alert', text: `Could not load the catalog: ${err.message}`}));
  });
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 * @param {Catalog} cat
 * @param {MetricCatalog} mc
 */
function build(root, {params}, life, cat, mc) {
  const COLUMNS = allColumns(cat, mc);
  const BY_KEY = Object.fromEntries(COLUMNS.map((c) => [c.key, c]));
  const DEFAULTS = defaultKeys(mc);
  const sortable = (/** @type {string} */ key) => Boolean(BY_KEY[key]?.server || BY_KEY[key]?.pageSort);
  const archivedParam = params.get('archived');
  const state = {
    status: STATUSES.find((s) => s === params.get('status')) ?? '',
    project: params.get('project') || '',
    q: params.get('q') || '',
    tag: params.get('tag') || '',
    archived: /** @type {string} */ (ARCHIVED.find(([v]) => v === archivedParam)?.[0] ?? 'false'),
    sort: sortable(params.get('sort') ?? '') ? String(params.get('sort')) : 'created_at',
    order: params.get('order') === 'asc' ? 'asc' : 'desc',
    page: Math.max(1, parseInt(params.get('page') ?? '', 10) || 1),
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 50,
    cols: chosenKeys(params.get('cols'), COLUMNS, DEFAULTS),
  };
  const shown = () => state.cols.map((k) => BY_KEY[k]);
  /** @type {Set<number>} */
  const selected = new Set();
  /** @type {Set<string>} */
  const projects = new Set();
  /** @type {Set<string>} */
  const tagsSeen = new Set();
  /** @type {Run[]} */
  let items = [];
  let total = 0;

  // ---- layout
  const search = h('input', {type: 'search', placeholder: 'Search names, notes  ( / )', value: state.q, 'data-search': '',
    'aria-label': 'Search run names and notes', id: 'run-search'});
  const statusSel = h('select', {'aria-label': 'Status filter', id: 'status-filter'},
    h('option', {value: ''}, 'All statuses'), STATUSES.map((s) => h('option', {value: s, selected: s === state.status}, s)));
  const projectList = h('datalist', {id: 'project-options'});
  const projectInput = h('input', {type: 'text', placeholder: 'Project', value: state.project, list: 'project-options',
    'aria-label': 'Project filter', id: 'project-filter', style: {width: '10rem'}});
  const tagList = h('datalist', {id: 'tag-options'});
  const tagInput = h('input', {type: 'search', placeholder: 'Tag', value: state.tag, list: 'tag-options',
    'aria-label': 'Tag filter', id: 'tag-filter', style: {width: '8rem'}});
  const archivedSel = h('select', {'aria-label': 'Archived runs', id: 'archived-filter'},
    ARCHIVED.map(([v, label]) => h('option', {value: v, selected: v === state.archived}, label)));
  const compareBtn = h('button', {type: 'button', class: 'primary', id: 'compare-selected', disabled: true}, 'Compare');
  const clearSel = h('button', {type: 'button', class: 'small hidden', id: 'clear-selection'}, 'Clear selection');
  const exportBtn = h('button', {type: 'button', id: 'export-csv', title: 'All runs matching the filters, the columns shown'}, 'Export CSV');
  const countNote = h('span', {class: 'muted', id: 'runs-count'});
  const liveNote = h('span', {class: 'muted small'});
  const errorBox = h('div', {class: 'banner error hidden', role: 'alert'});
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});
  const chooser = columnChooser(COLUMNS, () => state.cols, (keys) => {
    state.cols = keys;
    syncUrl();
    render();
  }, DEFAULTS, life);
  // After a bulk action the selection forgets the runs it took off the page (deleted, or now hidden by the archive
  // filter), so that the next action cannot reach a run the user no longer sees.
  const bulk = bulkBar(() => [...selected].sort((a, b) => a - b), (result) => {
    const gone = result.action === 'delete' || (result.action === 'archive' && state.archived === 'false')
      || (result.action === 'unarchive' && state.archived === 'true');
    if (gone) result.results.forEach((r) => { if (r.ok) selected.delete(r.id); });
    load();
  });

  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Runs'), countNote, liveNote,
      h('div', {class: 'actions'}, h('a', {class: 'button primary', href: '#/new'}, '+ New run'))),
    h('div', {class: 'toolbar'}, search, statusSel, projectInput, projectList, tagInput, tagList, archivedSel,
      h('span', {class: 'grow'}), clearSel, compareBtn, chooser.el, exportBtn),
    bulk.el,
    errorBox,
    h('div', {class: 'panel'}, h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'runs-table'}, thead, tbody)), pager),
  );

  // ---- state → URL and fetch
  function syncUrl() {
    const defaultCols = state.cols.join(',') === DEFAULTS.join(',');
    setRoute('/runs', {
      status: state.status, project: state.project, q: state.q, tag: state.tag,
      archived: state.archived === 'false' ? '' : state.archived,
      sort: state.sort === 'created_at' ? '' : state.sort, order: state.sort === 'created_at' && state.order === 'desc' ? '' : state.order,
      page: state.page > 1 ? state.page : '', limit: state.limit === 50 ? '' : state.limit,
      cols: defaultCols ? '' : state.cols.join(','),
    });
  }

  function serverSort() {
    const col = BY_KEY[state.sort];
    return col.server ? {sort: col.server, order: state.order} : {sort: 'created_at', order: 'desc'};
  }

  /** A sort the API cannot do (a config column): of the page's rows, and of the CSV's. */
  function pageSort() {
    const column = BY_KEY[state.sort];
    return column.server ? null : {column, order: /** @type {'asc' | 'desc'} */ (state.order)};
  }

  function listParams() {
    return {status: state.status, project: state.project, q: state.q, tag: state.tag, archived: state.archived, ...serverSort()};
  }

  /** @param {() => void} change */
  const refilter = (change) => { change(); state.page = 1; syncUrl(); load(); };

  // Polls every 2 s while a run on the page is active, else every 10 s (dom.js poll: paused while the tab is hidden,
  // back-off on errors); load() reloads at once after the user changes what is shown.
  const poller = poll(life, async ({stale}) => {
    const data = await endpoints.list({...listParams(), limit: state.limit, offset: (state.page - 1) * state.limit}, life.signal);
    if (stale()) return null;
    if (data.items.length === 0 && data.total > 0 && state.page > 1) {  // page ran past the end
      state.page = Math.max(1, Math.ceil(data.total / state.limit));
      syncUrl();
      load();
      return null;
    }
    items = data.items;
    total = data.total;
    items.forEach((r) => { projects.add(r.project); (r.tags || []).forEach((t) => tagsSeen.add(t)); });
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
    const ths = shown().map((c) => {
      const active = state.sort === c.key;
      const canSort = Boolean(c.server || c.pageSort);
      const title = [c.title, sortNote(c)].filter(Boolean).join(' — ');
      const click = () => {
        if (state.sort === c.key) state.order = state.order === 'asc' ? 'desc' : 'asc';
        else { state.sort = c.key; state.order = c.first || 'asc'; }
        state.page = 1;
        syncUrl();
        load();
      };
      return h('th', {class: `${canSort ? 'sortable' : ''} ${c.num ? 'num' : ''}`, title, 'data-sort': c.key,
        tabindex: canSort ? 0 : null, 'aria-sort': active ? (state.order === 'asc' ? 'ascending' : 'descending') : null,
        onkeydown: canSort ? (/** @type {KeyboardEvent} */ ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); click(); } } : null,
        onclick: canSort ? click : null},
      c.label, h('span', {class: 'arrow'}, active ? (state.order === 'asc' ? '▲' : '▼') : ''));
    });
    fill(thead, h('tr', null, h('th', null, allBox), ths, h('th', {class: 'num'}, '')));
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
    const td = h('td', {class: 'actions'});
    actionCells.set(r.id, {key, cell: td});
    if (ACTIVE.includes(r.status) && r.cancel_requested) {
      td.append(h('button', {type: 'button', class: 'small', 'data-action': 'cancel', disabled: true}, 'Cancelling…'));
    } else if (ACTIVE.includes(r.status)) {  // a second click confirms, as for Delete
      const b = confirmButton('Cancel', 'Confirm cancel', async () => {
        try { await endpoints.cancel(r.id); toast(`Run #${r.id} cancelled`); } catch (err) { toast(err.message, 'error'); }
        load();
      }, {class: 'small', title: 'Stop this run (a second click confirms)'});
      b.dataset.action = 'cancel';
      td.append(b);
    } else if (FINISHED.includes(r.status)) {
      td.append(confirmButton('Delete', 'Confirm delete', async () => {
        try { await endpoints.remove(r.id); selected.delete(r.id); toast(`Run #${r.id} deleted`); } catch (err) { toast(err.message, 'error'); }
        load();
      }, {class: 'small', title: 'Delete this run and its artifacts'}));
    }
    return td;
  }

  /** @type {Map<number, number>} */
  let lastPositions = new Map();
  function render(positions = lastPositions) {
    lastPositions = positions;
    renderHead();
    countNote.textContent = `${total} run${total === 1 ? '' : 's'}`;
    /** @type {CellContext} */
    const ctx = {progress: (r) => progressCell(r, positions), onTag: (t) => refilter(() => { state.tag = t; tagInput.value = t; })};
    const sorted = pageSort();
    const rows = (sorted ? sortRuns(items, sorted.column, sorted.order) : items).map((r) => {
      const box = h('input', {type: 'checkbox', checked: selected.has(r.id), 'aria-label': `Select run ${r.id}`, 'data-select': r.id});
      box.addEventListener('change', () => { box.checked ? selected.add(r.id) : selected.delete(r.id); render(positions); });
      return h('tr', {'data-run': r.id, class: `${selected.has(r.id) ? 'selected' : ''} ${r.archived ? 'archived' : ''}`},
        h('td', null, box), shown().map((c) => cell(c, r, ctx)), actionsCell(r));
    });
    if (!rows.length) {
      const filtered = state.status || state.project || state.q || state.tag || state.archived !== 'false';
      rows.push(h('tr', null, h('td', {colspan: state.cols.length + 2, class: 'empty'},
        filtered ? 'No runs match these filters.' : h('span', null, 'No runs yet — ', h('a', {href: '#/new'}, 'start one'), '.'))));
    }
    fill(tbody, rows);
    fill(projectList, [...projects].sort().map((p) => h('option', {value: p})));
    fill(tagList, [...tagsSeen].sort().map((t) => h('option', {value: t})));
    renderPager();
    chooser.update();
    bulk.update();
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
  /**
   * A text filter that applies once the user pauses typing.
   * @param {HTMLInputElement} input
   * @param {number} ms
   * @param {(value: string) => void} set
   */
  function debounced(input, ms, set) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => refilter(() => set(input.value.trim())), ms);
    });
    life.onCleanup(() => clearTimeout(timer));
  }
  debounced(search, 250, (v) => { state.q = v; });
  debounced(projectInput, 300, (v) => { state.project = v; });
  // A tag is matched whole: applied when picked or entered, not at every key.
  tagInput.addEventListener('change', () => refilter(() => { state.tag = tagInput.value.trim(); }));
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && search.value) { search.value = ''; state.q = ''; syncUrl(); load(); }
  });
  statusSel.addEventListener('change', () => refilter(() => { state.status = statusSel.value; }));
  archivedSel.addEventListener('change', () => refilter(() => { state.archived = archivedSel.value; }));
  compareBtn.addEventListener('click', () => {
    const ids = [...selected].sort((a, b) => a - b);
    location.hash = `#/compare?ids=${ids.join(',')}&metric=val_error`;
  });
  clearSel.addEventListener('click', () => { selected.clear(); render(); });
  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    try {
      await exportCsv({columns: csvColumns(shown(), BY_KEY), params: listParams(), pageSort: pageSort(), signal: life.signal});
    } catch (err) { toast(`Export failed: ${err.message}`, 'error'); } finally { exportBtn.disabled = false; }
  });

  syncUrl();
  load();
}
