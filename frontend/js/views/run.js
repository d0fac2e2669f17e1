// @ts-check
// Run detail: live over SSE while running; curves, per-layer weight states, transitions, activations, gate events.
// Each section of the page is a component in views/run/ (made with the shared RunContext of run/state.js); this
// file lays them out, loads the run and schedules the redraws.
import {endpoints} from '../api.js';
import {throttled} from '../charts.js';
import {h} from '../dom.js';
import {metricCatalog} from '../metrics.js';
import {ACTIVE, FINISHED} from '../util.js';
import {runArtifacts} from './run/artifacts.js';
import {runCards} from './run/cards.js';
import {runConfig} from './run/config.js';
import {costsPanel} from './run/costs.js';
import {trainingCurves} from './run/curves.js';
import {runErrors} from './run/errors.js';
import {runHeader} from './run/header.js';
import {layersSection} from './run/layers.js';
import {liveUpdates} from './run/live.js';
import {modelPanel} from './run/model.js';
import {LAYER_POINTS, METRIC_POINTS, addLayerRecords, createState} from './run/state.js';
/** @import {Life} from '../dom.js' */
/** @import {Part, RunContext} from './run/state.js' */

/**
 * @param {HTMLElement} root
 * @param {{id: number}} args
 * @param {Life} life
 */
export function mount(root, {id}, life) {
  document.title = `Run #${id} — GXNOR Lab`;

  // ---- redraws (throttled to ≤10/s, paused while the tab is hidden)
  /** @type {Set<Part>} */
  const dirty = new Set();
  const redraw = throttled(() => {
    const what = new Set(dirty);
    dirty.clear();
    if (what.has('curves')) curves.draw();
    if (what.has('layers')) { layers.drawOverEpochs(); cards.render(); }
    if (what.has('layers') || what.has('epoch')) layers.drawAtEpoch();
  }, 100);
  life.onCleanup(() => redraw.dispose());

  /** @type {RunContext} */
  const ctx = {
    id, life, st: createState(), mc: null,
    schedule: (...parts) => { parts.forEach((p) => dirty.add(p)); redraw(); },
  };

  // ---- the sections, top to bottom
  const header = runHeader(ctx, () => renderRun());
  const errors = runErrors(ctx);
  const cards = runCards(ctx);
  const curves = trainingCurves(ctx);
  const layers = layersSection(ctx);
  const config = runConfig(ctx);
  const artifacts = runArtifacts(ctx);  // the record files, once an epoch is recorded
  const costs = costsPanel(ctx);  // fetched when opened
  const model = modelPanel(ctx);  // exported and measured on the server when opened
  const status = h('p', {class: 'muted'}, 'Loading…');
  // A run that ended before its first epoch (a failed one, mostly) has nothing to chart: its error comes first, and
  // a line replaces the empty cards and charts.
  const charts = h('div', {id: 'run-charts'}, cards.el, h('h2', null, 'Training curves'), curves.el, h('h2', null, 'Layers'), ...layers.els);
  const nothing = h('p', {class: 'muted hidden', id: 'run-no-epochs'});
  // The cost model counts a recorded epoch: without one there is nothing to count either.
  const costSection = h('div', {id: 'run-costs-section'}, h('h2', null, 'Operation costs'), costs.el);
  // A model is exported once the run has finished with a checkpoint.
  const modelSection = h('div', {id: 'run-model', class: 'hidden'}, h('h2', null, 'Exported model'), model.el);
  root.append(
    header.head, errors.el, header.toolbar, header.meta, status, nothing, charts, costSection, modelSection, artifacts.el,
    h('h2', null, 'Config'), config.el,
  );

  /** Everything that shows the run record itself. */
  function renderRun() {
    header.render();
    errors.render();
    cards.render();
    config.render();
    artifacts.render();
    const {run} = ctx.st;
    const empty = FINISHED.includes(run.status) && !ctx.st.metrics.length && !ctx.st.layers.size;
    charts.classList.toggle('hidden', empty);
    costSection.classList.toggle('hidden', empty);
    modelSection.classList.toggle('hidden', empty || !FINISHED.includes(run.status));
    nothing.classList.toggle('hidden', !empty);
    nothing.textContent = empty ? `The run ${run.status === 'failed' ? 'failed' : 'ended'} before its first epoch: nothing to chart.` : '';
  }

  const live = liveUpdates(ctx, {
    renderRun, renderProgress: header.renderProgress, renderActions: header.renderActions,
    reconnecting: header.reconnecting, deleted: errors.deleted,
  });

  // ---- the first load: the run, its curves and layer records; then live updates while it is queued or running
  (async () => {
    const {st} = ctx;
    try {
      [st.run, ctx.mc] = await Promise.all([endpoints.run(id, life.signal), metricCatalog()]);
      const [mx, lx] = await Promise.all([
        endpoints.metrics(id, {points: METRIC_POINTS, metric: 'val_error'}, life.signal),
        endpoints.layers(id, {points: LAYER_POINTS}, life.signal),
      ]);
      if (!life.alive) return;
      st.metrics = mx.epochs;
      st.metricsTotal = mx.total_epochs_recorded;
      addLayerRecords(st, lx.records);
      st.layerTotal = st.run.progress.epochs_done;
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      root.replaceChildren(h('div', {class: 'empty'},
        h('p', {text: err.status === 404 ? `Run #${id} does not exist (any more).` : `Could not load the run: ${err.message}`}),
        h('a', {href: '#/runs'}, 'Back to the runs')));
      return;
    }
    status.remove();
    if (st.metricsTotal > st.metrics.length) {
      cards.el.before(h('p', {class: 'muted small', text: `Curves show ${st.metrics.length} of ${st.metricsTotal} epochs (the extremes and the last are kept).`}));
    }
    renderRun();
    ctx.schedule('curves', 'layers');
    if (ACTIVE.includes(st.run.status)) live.follow();
  })();
}
