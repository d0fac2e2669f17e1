// @ts-check
// Workers and the queue: every worker process (alive or dead, its device, the run it trains, its last heartbeat)
// and your teams' queued runs with their place in the whole queue and an ETA; refreshed every few seconds.
// Workers and the queue are shared by every team: another team's run shows as "busy", and counts in positions.
import {endpoints} from '../api.js';
import {fill, h, poll} from '../dom.js';
import {fmtDuration, fmtShortTime, fmtTime} from '../util.js';
/** @import {Life} from '../dom.js' */
/** @import {QueueOut, RunQueueOut, WorkerOut, WorkersOut} from '../types' */

const POLL_MS = 3000;

/** An estimate for people: "≈ 12 min 5 s", "< 1 s". */
const approx = (/** @type {number | null} */ seconds) =>
  (seconds === null ? '—' : seconds < 1 ? '< 1 s' : `≈ ${fmtDuration(seconds)}`);
/** When a queued run should start: "next" when nothing is ahead of it (no work running or queued before it). */
const startsIn = (/** @type {number} */ seconds) => (seconds === 0 ? 'next' : approx(seconds));

/**
 * What a queued run's page says about its wait: whether any worker is alive, its place and when it should start.
 * @param {RunQueueOut} q
 * @returns {string}
 */
export function queueLine(q) {
  if (!q.workers_alive) return 'No worker is alive: this run waits until one starts.';
  if (q.position === null) return '';
  const start = q.eta_seconds === null ? '' : ` · starts ${q.eta_seconds === 0 ? 'next' : `in ${approx(q.eta_seconds)}`}`;
  const workers = `${q.workers_alive} worker${q.workers_alive === 1 ? '' : 's'} alive`;
  return `Position ${q.position} of ${q.length} in the queue${start} · ${workers}`;
}

/** @param {WorkerOut} w */
function runCell(w) {
  if (w.run) return h('a', {href: `#/runs/${w.run.id}`, text: `#${w.run.id} ${w.run.name ?? ''}`.trim()});
  if (w.busy) return h('span', {class: 'muted', text: 'busy (another team\'s run)'});
  return h('span', {class: 'muted', text: w.alive ? 'idle' : '—'});
}

/**
 * @param {HTMLElement} root
 * @param {{params: URLSearchParams}} _args
 * @param {Life} life
 */
export function mount(root, _args, life) {
  document.title = 'Workers — GXNOR Lab';
  const summary = h('span', {class: 'muted', id: 'workers-summary'});
  const errorBox = h('div', {class: 'banner error hidden', role: 'alert'});
  const workersBody = h('tbody');
  const queueNote = h('p', {class: 'muted small', id: 'queue-summary'});
  const queueBody = h('tbody');
  const table = (/** @type {string} */ id, /** @type {string[]} */ heads, /** @type {HTMLElement} */ body) =>
    h('div', {class: 'table-wrap'}, h('table', {class: 'data', id},
      h('thead', null, h('tr', null, heads.map((t) => h('th', null, t)))), body));
  root.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Workers'), summary),
    errorBox,
    h('div', {class: 'panel'}, h('h2', null, 'Workers'),
      table('workers-table', ['Worker', 'State', 'Device', 'Running', 'Started', 'Last seen'], workersBody)),
    h('div', {class: 'panel'}, h('h2', null, 'Queue'), queueNote,
      table('queue-table', ['Position', 'Run', 'Team', 'Estimated time', 'Starts in'], queueBody)));

  poll(life, async ({stale}) => {
    const [workers, queue] = await Promise.all([endpoints.workers(life.signal), endpoints.queue(life.signal)]);
    if (stale()) return null;
    errorBox.classList.add('hidden');
    render(workers, queue);
    return POLL_MS;
  }, {onError: (err) => {
    fill(errorBox, `Could not load the workers: ${err.message}`);
    errorBox.classList.remove('hidden');
  }}).now();

  /**
   * @param {WorkersOut} data
   * @param {QueueOut} queue
   */
  function render(data, queue) {
    summary.textContent = `${data.alive} alive · ${queue.length} run${queue.length === 1 ? '' : 's'} queued`;
    const rows = data.workers.map((w) => h('tr', {'data-worker': w.id, 'data-alive': String(w.alive)},
      h('td', {class: 'mono', text: w.id}),
      h('td', null, h('span', {class: `badge ${w.alive ? 'alive' : 'dead'}`, text: w.alive ? 'alive' : 'dead'})),
      h('td', {text: w.device + (w.concurrency > 1 ? ` × ${w.concurrency}` : '')}),
      h('td', {class: 'worker-run'}, runCell(w)),
      h('td', {class: 'small muted nowrap', text: fmtShortTime(w.started_at), title: fmtTime(w.started_at)}),
      h('td', {class: 'small muted nowrap', text: fmtTime(w.last_seen)})));
    if (!rows.length) {
      rows.push(h('tr', null, h('td', {colspan: 6, class: 'empty', id: 'no-workers'},
        'No worker has reported: queued runs wait until one starts.')));
    }
    fill(workersBody, rows);

    const yours = queue.items.length;
    queueNote.textContent = !queue.length ? 'The queue is empty.'
      : `${queue.length} run${queue.length === 1 ? '' : 's'} queued (every team's), ${yours} of them yours.`
        + (queue.workers_alive ? '' : ' No worker is alive: nothing starts until one does.');
    fill(queueBody, queue.items.map((r) => h('tr', {'data-run': r.id},
      h('td', {class: 'num', text: `${r.position} of ${queue.length}`}),
      h('td', {class: 'name'}, h('a', {href: `#/runs/${r.id}`, text: `#${r.id} ${r.name}`})),
      h('td', {text: r.team}),
      h('td', {class: 'nowrap', text: approx(r.seconds)}),
      h('td', {class: 'nowrap eta', text: r.eta_seconds === null ? 'no worker alive' : startsIn(r.eta_seconds)}))));
  }
}
