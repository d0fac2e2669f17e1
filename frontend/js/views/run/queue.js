// @ts-check
// A queued run's wait, under its progress bar: whether any worker is alive, its place in the queue and when it
// should start (GET /runs/{id}/queue), refreshed while the run is queued.
import {endpoints} from '../../api.js';
import {h, poll} from '../../dom.js';
import {ACTIVE} from '../../util.js';
import {queueLine} from '../workers.js';
/** @import {RunContext} from './state.js' */

const POLL_MS = 5000;

/** @param {RunContext} ctx */
export function queueNote({id, st, life}) {
  const el = h('span', {class: 'muted small', id: 'queue-state'});
  poll(life, async ({stale}) => {
    if (st.run?.status !== 'queued') {  // not loaded yet, running, or finished
      el.textContent = '';
      return !st.run || ACTIVE.includes(st.run.status) ? POLL_MS : null;
    }
    const q = await endpoints.runQueue(id, life.signal);
    if (stale()) return null;
    el.textContent = q.status === 'queued' ? queueLine(q) : '';
    return POLL_MS;
  }).now();
  /** On every progress event: a run that left the queue says nothing more about it. */
  const render = () => { if (st.run?.status !== 'queued') el.textContent = ''; };
  return {el, render};
}
