// @ts-check
// The top of the run page: name, status badge and actions; the progress bar and the live note; the facts line.
import {fill, h} from '../../dom.js';
import {ACTIVE, fmtDuration, fmtTime, parseTime, progressFraction} from '../../util.js';
import {runActions} from './actions.js';
import {queueNote} from './queue.js';
/** @import {RunContext} from './state.js' */

/**
 * @param {RunContext} ctx
 * @param {() => void} onRunChanged called after an action replaced ctx.st.run (a cancel)
 */
export function runHeader(ctx, onRunChanged) {
  const {id, st} = ctx;
  const title = h('h1', {id: 'run-title'});
  const badge = h('span', {class: 'badge', id: 'run-status'});
  const actions = runActions(ctx, onRunChanged);
  const progress = h('div', {class: 'progress big', id: 'run-progress'});
  const liveNote = h('span', {class: 'muted small', id: 'live-state'});
  const meta = h('div', {class: 'meta'});
  const head = h('div', {class: 'page-head'}, h('span', {class: 'muted mono'}, `#${id}`), title, badge, actions.el);
  const queue = queueNote(ctx);
  const toolbar = h('div', {class: 'toolbar'}, progress, liveNote, queue.el);

  /** Status, progress and the live note (on every progress event). */
  function renderProgress() {
    const r = st.run;
    const p = r.progress;
    const frac = progressFraction(r);
    badge.className = `badge ${r.status}`;
    badge.textContent = r.cancel_requested && ACTIVE.includes(r.status) ? `${r.status} · cancelling` : r.status;
    let label = `${p.epochs_done} / ${p.total_epochs} epochs`;
    if (r.status === 'running' && p.epoch > p.epochs_done) label += ` · epoch ${p.epoch} ${Math.round((p.fraction || 0) * 100)}%`;
    if (r.status === 'queued') label = 'waiting for a worker';
    fill(progress,
      h('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(frac * 100),
        'data-progress': frac.toFixed(4)}, h('div', {style: {width: `${(frac * 100).toFixed(1)}%`}})),
      h('span', {class: 'label'}, label));
    fill(liveNote, st.live ? [h('span', {class: 'live-dot'}), 'live'] : '');
    queue.render();
  }

  /** Seconds since the run started, until it finished (null before it starts). */
  function duration() {
    const started = parseTime(st.run.started_at);
    const finished = parseTime(st.run.finished_at);
    return started ? ((finished || new Date()).getTime() - started.getTime()) / 1000 : null;
  }

  // A running run's duration ticks every second, not only when an epoch ends and the run is fetched again.
  const ticker = setInterval(() => {
    const el = meta.querySelector('#run-duration');
    if (el && !document.hidden && st.run?.status === 'running' && !st.run.finished_at) el.textContent = fmtDuration(duration());
  }, 1000);
  ctx.life.onCleanup(() => clearInterval(ticker));

  /** Everything in the header, from st.run. */
  function render() {
    const r = st.run;
    title.textContent = r.name;
    document.title = `${r.name} (#${r.id}) — GXNOR Lab`;
    renderProgress();
    actions.render();
    const item = (/** @type {string} */ k, /** @type {string} */ v, /** @type {string | null} */ id = null) => h('span', null, `${k} `, h('b', {text: v, id}));
    fill(meta,
      item('project', r.project), r.team ? item('team', r.team) : null,
      r.sweep_id ? h('span', {id: 'run-sweep'}, 'sweep ', h('a', {href: `#/sweeps/${r.sweep_id}`}, `#${r.sweep_id}`)) : null,
      item('created', fmtTime(r.created_at)), item('started', fmtTime(r.started_at)),
      item('finished', fmtTime(r.finished_at)), item('duration', fmtDuration(duration()), 'run-duration'),
      r.worker ? item('worker', r.worker) : null, r.attempt > 1 ? item('attempt', String(r.attempt)) : null);
  }

  return {
    head, toolbar, meta, render, renderProgress,
    renderActions: actions.render,
    /** The stream dropped and EventSource is reconnecting by itself. */
    reconnecting: () => fill(liveNote, 'reconnecting…'),
  };
}
