// @ts-check
// Live updates of a queued or running run: the event stream (progress, each new epoch, the final status), the
// layer records of new epochs, and a refetch of the run when its status or summary changes.  A stream the server
// refuses (429 past the stream limits, 503 while it restarts) is opened again after a back-off (dom.js poll).
import {endpoints} from '../../api.js';
import {poll} from '../../dom.js';
import {throttled} from '../../charts.js';
import {LAYER_POINTS, addLayerRecords, lastLayerEpoch, lastMetricEpoch, upsertMetric} from './state.js';
/** @import {RunContext} from './state.js' */

/**
 * What the live updates redraw.
 * @typedef {object} RunView
 * @property {() => void} renderRun everything that shows st.run (header, message, cards, config)
 * @property {() => void} renderProgress status badge, progress bar and live note
 * @property {() => void} renderActions
 * @property {() => void} reconnecting the live note says the stream is being reopened
 * @property {() => void} deleted the page says the run was deleted
 */

/**
 * @param {RunContext} ctx
 * @param {RunView} view
 */
export function liveUpdates(ctx, view) {
  const {id, st, life} = ctx;
  let fetchingLayers = false;
  let wantLayersUpTo = 0;

  /** Fetch the layer records of epochs up to wantLayersUpTo: one epoch at a time while live, all at once after a gap. */
  async function fetchLayers() {
    if (fetchingLayers) return;  // the running loop picks up the new target
    fetchingLayers = true;
    let stalls = 0;
    try {
      while (life.alive && wantLayersUpTo > lastLayerEpoch(st) && stalls < 10) {
        const have = lastLayerEpoch(st);
        const missing = st.metrics.map((m) => m.epoch).filter((e) => e > have && e <= wantLayersUpTo);
        if (missing.length && missing.length <= 5) {
          for (const e of missing) addLayerRecords(st, (await endpoints.layers(id, {epoch: e}, life.signal)).records);
        } else {
          const all = await endpoints.layers(id, {points: LAYER_POINTS}, life.signal);
          st.layers.clear();
          addLayerRecords(st, all.records);
        }
        if (!life.alive) return;
        ctx.schedule('layers');
        if (lastLayerEpoch(st) === have) {  // not written yet (or this run records no layers)
          stalls += 1;
          await new Promise((res) => setTimeout(res, 500));
        }
      }
    } catch (err) {
      if (life.alive && err.name !== 'AbortError') console.warn('layers', err);
    } finally {
      fetchingLayers = false;
    }
  }

  /** @type {Promise<void> | null} */
  let runRefresh = null;
  const refreshRun = throttled(async () => {
    if (runRefresh) return;
    runRefresh = endpoints.run(id, life.signal).then((r) => {
      if (!life.alive) return;
      st.run = r;
      view.renderRun();
      ctx.schedule('curves');
    }).catch(() => {}).finally(() => { runRefresh = null; });
  }, 1500);
  life.onCleanup(() => refreshRun.dispose());

  /**
   * One event stream, from the epoch after the last one shown: resolves when the run ends (its `status` event),
   * rejects when the server refuses or drops the stream for good (EventSource reconnects by itself otherwise).
   * @returns {Promise<void>}
   */
  function stream() {
    return new Promise((resolve, reject) => {
      const es = new EventSource(endpoints.eventsUrl(id, lastMetricEpoch(st)));
      life.onCleanup(() => es.close());
      es.addEventListener('open', () => { st.live = true; view.renderProgress(); });
      es.addEventListener('progress', (ev) => {
        const d = JSON.parse(ev.data);
        const statusChanged = d.status !== st.run.status;
        st.run.status = d.status;
        st.run.progress = {epoch: d.epoch, fraction: d.fraction, epochs_done: d.epochs_done, total_epochs: d.total_epochs};
        view.renderProgress();
        view.renderActions();
        if (statusChanged) refreshRun();
      });
      es.addEventListener('epoch', (ev) => {
        const m = JSON.parse(ev.data);
        upsertMetric(st, m);
        ctx.schedule('curves');
        wantLayersUpTo = Math.max(wantLayersUpTo, m.epoch);
        st.layerTotal = Math.max(st.layerTotal ?? 0, m.epoch);
        fetchLayers();
        refreshRun();
      });
      es.addEventListener('status', async (ev) => {
        es.close();  // the server ends the stream here; do not let EventSource reconnect
        resolve();
        st.live = false;
        const d = JSON.parse(ev.data);
        if (d.status === 'deleted') {
          view.deleted();
          view.renderProgress();
          return;
        }
        try { st.run = await endpoints.run(id, life.signal); } catch { return; }
        if (!life.alive) return;
        view.renderRun();
        wantLayersUpTo = Math.max(wantLayersUpTo, st.run.progress.epochs_done);
        await fetchLayers();
        ctx.schedule('curves', 'layers');
      });
      es.addEventListener('error', () => {
        if (es.readyState === EventSource.CLOSED) {
          st.live = false;
          view.renderProgress();
          reject(new Error('the live stream was refused'));
          return;
        }
        view.reconnecting();
      });
    });
  }

  // The stream, reopened after a back-off while the server refuses it.  Before reopening, the run is fetched again:
  // a revoked token then shows the sign-in view (api.js), a deleted run says so, and the page catches up.
  let reopening = false;
  const streamer = poll(life, async ({stale}) => {
    if (reopening) {
      try {
        st.run = await endpoints.run(id, life.signal);
      } catch (err) {
        if (err.status !== 404 || stale()) throw err;
        view.deleted();
        return null;
      }
      if (stale()) return null;
      view.renderRun();
    }
    reopening = true;
    await stream();
    return null;
  }, {onError: () => view.reconnecting()});

  /** Follow the run: fetch the layer records up to the last epoch shown, then open the stream. */
  function follow() {
    wantLayersUpTo = lastMetricEpoch(st);
    fetchLayers();
    streamer.now();
  }

  return {follow};
}
