// @ts-check
// The run's within-epoch loss points (GET /runs/{id}/batches: at most 50 an epoch, docs/METRICS.md): read once,
// then, while the run is queued or running, the epoch in progress again every few seconds — a poll of this page's
// own, so the live stream's hub (one feed per run, shared by every viewer) stays as cheap as it is.
import {endpoints} from '../../api.js';
import {poll} from '../../dom.js';
import {ACTIVE} from '../../util.js';
/** @import {BatchPoint} from '../../types' */
/** @import {RunContext} from './state.js' */

const POLL_MS = 3000;

/**
 * @param {RunContext} ctx
 * @param {() => void} onChange the points changed: redraw
 */
export function batchPoints(ctx, onChange) {
  /** @type {BatchPoint[]} */
  let points = [];
  let started = false;

  const poller = poll(ctx.life, async ({stale}) => {
    const active = ACTIVE.includes(ctx.st.run.status);  // one more read after the run ends: its last points
    const since = points.length ? /** @type {BatchPoint} */ (points.at(-1)).epoch : 1;
    const got = await endpoints.batches(ctx.id, {since}, ctx.life.signal);
    if (stale()) return null;
    points = [...points.filter((p) => p.epoch < since), ...got.points];
    onChange();
    return active ? POLL_MS : null;
  });

  return {
    /** @returns {BatchPoint[]} ascending epoch and fraction */
    get points() { return points; },
    /** Read the points (once; the poll goes on by itself while the run is active). */
    start() {
      if (started) return;
      started = true;
      poller.now();
    },
  };
}
