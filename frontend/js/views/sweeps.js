// @ts-check
// Sweeps: one row per sweep (swept fields, status counts, progress over all its epochs); live while any is active.
import {endpoints} from '../api.js';
import {fill, h, poll} from '../dom.js';
import {ACTIVE, STATUSES, fmtShortTime, fmtTime, setRoute} from '../util.js';
/** @import {Life} from '../dom.js' */
/** @import {Page, RunStatus, Sweep} from '../types' */

const PAGE_SIZE = 50;
const POLL_ACTIVE_MS = 2000;
const POLL_IDLE_MS = 10000;

/**
 * Status counts as small badges: "3 succeeded · 1 running …" (zeros left out).
 * @param {Partial<Record<RunStatus, number>> | undefined} counts
 * @param {number} total
 */
export function countBadges(counts, total) {
  const items = STATUSES.filter((s) => counts?.[s]).map((s) => h('span', {class: `badge ${s}`, 'data-count': s, text: `${counts?.[s]} ${s}`}));
  return h('span', {class: 'counts', title: `${total} run${total === 1 ? '' : 's'}`}, items.length ? items : h('span', {class: 'muted', text: 'no runs'}));
}

/**
 * A progress bar (the bar and its label) for a fraction in [0, 1].
 * @param {unknown} frac
 * @param {string} ariaLabel
 * @param {boolean} active
 * @param {string} [label]
 */
export function progressBar(frac, ariaLabel, active, label) {
  const f = Math.min(1, Math.max(0, Number(frac) || 0));
  return [
    h('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(f * 100),
      'aria-label': ariaLabel, 'data-progress': f.toFixed(4)},
    h('div', {style: {width: `${(f * 100).toFixed(1)}%`, opacity: active ? 1 : 0.45}})),
    h('span', {class: 'label', text: label ?? `${Math.round(f * 100)}%`}),
  ];
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} args
 * @param {Life} life
 */
export function mount(root, {params}, life) {
  document.title = 'Sweeps — GXNOR Lab';
  let page = Math.max(1, parseInt(params.get('page') ?? '', 10) || 1);

  const countNote = h('span', {class: 'muted', id: 'sweeps-count'});
  const liveNote = h('span', {class: 'muted small'});
  const errorBox = h('div', {class: 'banner error hidden', role: 'alert'});
  const tbody = h('tbody');
  const pager = h('div', {class: 'pager'});
  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Sweeps'), countNote, liveNote,
      h('div', {class: 'actions'}, h('a', {class: 'button primary', href: '#/sweeps/new', id: 'new-sweep'}, '+ New sweep'))),
    errorBox,
    h('div', {class: 'panel'}, h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'sweeps-table'},
      h('thead', null, h('tr', null, ['ID', 'Name', 'Team', 'Swept fields', 'Status', 'Runs', 'Progress', 'Created']
        .map((t, i) => h('th', {class: i === 0 ? 'num' : ''}, t)))), tbody)), pager));

  // Polls every 2 s while a sweep is active, else every 10 s (dom.js poll: paused while hidden, back-off on errors).
  const poller = poll(life, async ({stale}) => {
    const data = await endpoints.sweeps({limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE}, life.signal);
    if (stale()) return null;
    if (!data.items.length && data.total > 0 && page > 1) {  // ran past the last page
      page = Math.ceil(data.total / PAGE_SIZE);
      setRoute('/sweeps', {page: page > 1 ? page : ''});
      load();
      return null;
    }
    errorBox.classList.add('hidden');
    render(data);
    const active = data.items.some((s) => ACTIVE.includes(s.status));
    liveNote.textContent = active ? '· live' : '';
    return active ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  }, {onError: (err) => {
    fill(errorBox, `Could not load sweeps: ${err.message}`);
    errorBox.classList.remove('hidden');
  }});
  const load = () => poller.now();

  /** @param {Page<Sweep>} data */
  function render(data) {
    countNote.textContent = `${data.total} sweep${data.total === 1 ? '' : 's'}`;
    const rows = data.items.map((s) => h('tr', {'data-sweep': s.id},
      h('td', {class: 'num'}, h('a', {href: `#/sweeps/${s.id}`}, String(s.id))),
      h('td', {class: 'name'}, h('a', {href: `#/sweeps/${s.id}`, text: s.name})),
      h('td', {text: s.team ?? '—'}),
      h('td', {class: 'fields', text: (s.fields || []).join(' × ') || '—'}),
      h('td', null, h('span', {class: `badge ${s.status}`, text: s.status})),
      h('td', null, countBadges(s.counts, s.total)),
      h('td', null, h('div', {class: 'progress'}, progressBar(s.progress, `Sweep ${s.id} progress`, s.status === 'running'))),
      h('td', {class: 'small muted nowrap', text: fmtShortTime(s.created_at), title: fmtTime(s.created_at)})));
    if (!rows.length) {
      rows.push(h('tr', null, h('td', {colspan: 8, class: 'empty'},
        h('span', null, 'No sweeps yet — ', h('a', {href: '#/sweeps/new'}, 'start one'),
          ', or press “vary” next to a field of the new-run form.'))));
    }
    fill(tbody, rows);
    const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
    const go = (/** @type {number} */ p) => { page = p; setRoute('/sweeps', {page: p > 1 ? p : ''}); load(); };
    fill(pager,
      h('span', {class: 'muted small'}, `page ${page} / ${pages}`),
      h('button', {type: 'button', class: 'small', disabled: page <= 1, onclick: () => go(page - 1)}, '‹ Prev'),
      h('button', {type: 'button', class: 'small', disabled: page >= pages, onclick: () => go(page + 1)}, 'Next ›'));
  }

  load();
}
